//! One engine child process: spawn, handshake, sending lines, the reader thread that hears
//! it, and reaping it when it ends (no zombies).
//!
//! Its stdin is one end of a Unix socket pair rather than a pipe, so that writing to an
//! engine that has died returns an error (`send` with `MSG_NOSIGNAL`) instead of raising
//! SIGPIPE, which would kill a host that does not ignore it. Its stdout is a pipe. It runs in
//! its own process group: a Ctrl-C meant for the host's terminal does not reach it (it ends
//! when its stdin closes), and killing the group ends anything it started.

use super::engine::EngineConfig;
use super::protocol::{decode, encode, FromEngine, ToEngine, PROTOCOL_VERSION};
use parking_lot::Mutex;
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A send that cannot go out within this long means the engine stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// After its output closes, how long the engine has to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// What the reader thread reports to the engine owner.
pub(crate) trait Events: Send + Sync {
    /// A message from the engine of `generation` (after its `ready`).
    fn message(&self, generation: u64, message: FromEngine);
    /// The engine ended (reaped). Called with [`Process::mark_exited`] still to do: the
    /// owner marks it under its own lock.
    fn exited(self: Arc<Self>, process: &Process, end: End);
}

/// How an engine ended.
#[derive(Debug, Clone)]
pub(crate) struct End {
    /// It exited with status 0 (idle timeout, shutdown or end of its input).
    pub clean: bool,
    /// What happened, as part of a sentence: "it was killed by signal 9 (SIGKILL)".
    pub what: String,
}

pub(crate) struct Process {
    pub generation: u64,
    pub pid: u32,
    /// What its `ready` said it computes on: "cpu", "cuda:0", …
    pub device: std::sync::OnceLock<String>,
    /// Our end of its stdin; `None` once closed.
    input: Mutex<Option<UnixStream>>,
    child: Mutex<Child>,
    exited: AtomicBool,
    /// Why we killed it, if we did (said instead of the bare signal).
    kill_reason: Mutex<Option<String>>,
}

impl Process {
    /// Spawns the engine and waits for its `ready` (at most `config.start_timeout`).
    pub fn start(
        config: &EngineConfig,
        generation: u64,
        events: Arc<dyn Events>,
    ) -> Result<Arc<Process>, String> {
        let program = config.program.display().to_string();
        let cannot_start = |e: io::Error| {
            format!(
                "GenClip could not start its generation engine {program} ({e}): reinstall the \
                 GenClip bundle."
            )
        };
        let (ours, theirs) = UnixStream::pair().map_err(cannot_start)?;
        ours.set_write_timeout(Some(SEND_TIMEOUT))
            .map_err(cannot_start)?;
        let mut command = Command::new(&config.program);
        command
            .args(&config.args)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let spawned = command.spawn();
        // The command holds the child's end of the socket: close it here, or the socket
        // never reports the child's death.
        drop(command);
        let mut child = spawned.map_err(cannot_start)?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(cannot_start(io::Error::other("no output pipe")));
        };
        let process = Arc::new(Process {
            generation,
            pid: child.id(),
            device: std::sync::OnceLock::new(),
            input: Mutex::new(Some(ours)),
            child: Mutex::new(child),
            exited: AtomicBool::new(false),
            kill_reason: Mutex::new(None),
        });
        super::program::keep_plugin_loaded();
        let (greeted, greeting) = mpsc::channel();
        let reader = process.clone();
        let spawned = std::thread::Builder::new()
            .name("genclip-engine-reader".into())
            .spawn(move || read_engine(stdout, &reader, events, greeted, program));
        if let Err(e) = spawned {
            process.kill("GenClip could not watch it");
            process.reap();
            return Err(format!(
                "GenClip could not start a thread to talk to its generation engine ({e}): close \
                 other work and render again."
            ));
        }
        // A failed hello shows up as the engine's end of output, reported by the reader.
        let _ = process.send(&encode(&ToEngine::Hello {
            version: PROTOCOL_VERSION,
        }));
        match greeting.recv_timeout(config.start_timeout) {
            Ok(Ok(device)) => {
                let _ = process.device.set(device);
                Ok(process)
            }
            Ok(Err(message)) => Err(message),
            Err(_) => {
                process.kill("it did not answer in time");
                Err(format!(
                    "The generation engine {} did not answer within {:.0} s of starting: the \
                     machine may be overloaded, or the file is not a GenClip engine; render \
                     again, or reinstall the GenClip bundle.",
                    config.program.display(),
                    config.start_timeout.as_secs_f64()
                ))
            }
        }
    }

    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// Marks the process gone (its owner does so under its own lock, so a job is either sent
    /// before this or sees it).
    pub fn mark_exited(&self) {
        self.exited.store(true, Ordering::Release);
    }

    /// Sends one line (a `\n` is added).
    pub fn send(&self, line: &str) -> io::Result<()> {
        let input = self.input.lock();
        let Some(stream) = input.as_ref() else {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine's input is closed",
            ));
        };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        send_all(stream, &bytes)
    }

    /// Closes its stdin: the engine stops its job and exits.
    pub fn close_input(&self) {
        self.input.lock().take();
    }

    /// Kills the engine's process group, unless it has been reaped already (then its pid may
    /// belong to someone else).
    pub fn kill(&self, reason: &str) {
        let mut child = self.child.lock();
        if let Ok(None) = child.try_wait() {
            self.kill_reason.lock().get_or_insert_with(|| reason.into());
            // SAFETY: kill(2) on our child's process group, which it still leads.
            unsafe { libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
        }
    }

    /// Waits for the process to end (killing it if it lingers) and says how it ended.
    fn reap(&self) -> End {
        let deadline = Instant::now() + EXIT_GRACE;
        let status = loop {
            {
                let mut child = self.child.lock();
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() >= deadline => {
                        drop(child);
                        self.kill("it closed its output but did not exit");
                        break self.child.lock().wait().ok();
                    }
                    Ok(None) => {}
                    Err(_) => break None,
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let reason = self.kill_reason.lock().clone();
        End {
            clean: status.is_some_and(|s| s.success()) && reason.is_none(),
            what: describe_end(status, reason.as_deref()),
        }
    }
}

fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: a send(2) from a live buffer on a socket we own.
        let n = unsafe {
            libc::send(
                stream.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// "it was killed by signal 9 (SIGKILL)", "it exited with status 3", with our reason first
/// if we killed it.
fn describe_end(status: Option<ExitStatus>, our_reason: Option<&str>) -> String {
    let status_text = match status {
        None => "its exit status is unknown".to_string(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("it exited with status {code}"),
            (None, Some(signal)) => {
                format!("it was killed by signal {signal}{}", signal_name(signal))
            }
            (None, None) => format!("it ended ({s})"),
        },
    };
    match our_reason {
        Some(reason) => format!("GenClip stopped it because {reason}"),
        None => status_text,
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGSEGV => " (SIGSEGV, a crash)",
        libc::SIGABRT => " (SIGABRT, an abort)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGFPE => " (SIGFPE)",
        _ => "",
    }
}

/// One line from the engine, `None` at the end of its output.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut buf = Vec::new();
    match reader.read_until(b'\n', &mut buf) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
    }
}

/// The reader thread: the greeting (answered on `greeted`), then every message, then the
/// end (reaped and reported).
fn read_engine(
    stdout: ChildStdout,
    process: &Process,
    events: Arc<dyn Events>,
    greeted: mpsc::Sender<Result<String, String>>,
    program: String,
) {
    let mut reader = BufReader::new(stdout);
    let greeting = match read_line(&mut reader) {
        None => {
            let end = process.reap();
            Err(format!(
                "The generation engine stopped as it started ({}): run `{program} serve` in a \
                 terminal to see why, or reinstall the GenClip bundle.",
                end.what
            ))
        }
        Some(line) => match decode::<FromEngine>(&line) {
            Ok(FromEngine::Ready {
                version, device, ..
            }) if version == PROTOCOL_VERSION => Ok(device),
            Ok(FromEngine::Ready { version, .. }) => Err(format!(
                "The generation engine {program} speaks protocol {version}, GenClip.ofx speaks \
                 {PROTOCOL_VERSION}: they come from different builds; reinstall the GenClip \
                 bundle."
            )),
            Ok(FromEngine::Failed { message, .. }) => {
                Err(format!("The generation engine refused to start: {message}"))
            }
            _ => Err(format!(
                "The generation engine {program} answered {:?} instead of its greeting: it is \
                 not a GenClip engine of this version; reinstall the GenClip bundle.",
                truncate(line.trim_end(), 120)
            )),
        },
    };
    let greeted_ok = greeting.is_ok();
    let _ = greeted.send(greeting);
    if greeted_ok {
        while let Some(line) = read_line(&mut reader) {
            match decode::<FromEngine>(&line) {
                Ok(message) => events.message(process.generation, message),
                Err(e) => eprintln!("GenClip: ignored a line from the generation engine: {e}"),
            }
        }
    } else {
        process.kill("its greeting was wrong");
    }
    drop(reader);
    process.close_input();
    let end = process.reap();
    events.exited(process, end);
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_described() {
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(
            describe_end(Some(killed), None),
            "it was killed by signal 9 (SIGKILL)"
        );
        let exited = ExitStatus::from_raw(3 << 8);
        assert_eq!(describe_end(Some(exited), None), "it exited with status 3");
        assert_eq!(
            describe_end(Some(killed), Some("it did not answer in time")),
            "GenClip stopped it because it did not answer in time"
        );
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
