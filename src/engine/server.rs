//! `genclip-engine serve`: the engine process the plugin starts (protocol in
//! `crate::client::protocol`, behaviour in `docs/engine-process.md`).
//!
//! Two threads. The reader takes `ToEngine` lines from stdin: `generate` joins the queue,
//! `abort` drops a queued job or raises the running job's flag, `shutdown` and end of input
//! close the engine. The worker (the caller of [`serve`]) runs the queue in arrival order, one
//! job at a time, and exits when it has been idle for the idle timeout. Only `FromEngine`
//! lines go to the output; every log line goes to stderr.

mod journal;
mod outbox;
mod progress;
mod provenance;
mod runner;
mod weights;

pub use journal::JOURNAL_ENV;
pub use provenance::{civil_from_days, utc_iso8601};
pub use runner::{compute_device, device_name, open_device};
pub use weights::hash_model_folder;

use crate::client::protocol::{decode, ClipRequest, FromEngine, ToEngine, PROTOCOL_VERSION};
use crate::client::{DeviceChoice, TextEncoderDevice};
use candle_core::Device;
use journal::Journal;
use outbox::Outbox;
use parking_lot::{Condvar, Mutex};
use runner::{Placement, Runner};
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment variable that sets the idle timeout in seconds (`--idle-timeout` wins).
pub const IDLE_ENV: &str = "GENCLIP_ENGINE_IDLE_SECS";
/// Exit after this long without a job: the model's memory (VRAM) goes back to the host.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

pub struct ServeOptions {
    pub idle_timeout: Duration,
    /// After the input closes, end the process this long later even if the running job has
    /// not reached its next abort check (one step of a large model on a CPU takes minutes,
    /// and nobody waits for it any more). `None` in tests that serve inside their process.
    pub exit_after_input_closes: Option<Duration>,
    /// `--device`: where to compute ([`open_device`]). A GPU that cannot be used is answered
    /// to `hello` with `failed`, and the engine exits.
    pub device: DeviceChoice,
    /// `--text-encoder`: where the text encoder runs (with the model, or the CPU).
    pub text_encoder: TextEncoderDevice,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            exit_after_input_closes: Some(Duration::from_secs(5)),
            device: DeviceChoice::Auto,
            text_encoder: TextEncoderDevice::WithModel,
        }
    }
}

/// Why the engine stopped serving (all are a clean exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// No job for the idle timeout.
    Idle,
    /// The plugin closed our stdin (it exited, crashed, or dropped the engine).
    InputClosed,
    /// The plugin sent `shutdown`.
    Shutdown,
}

/// Serves the protocol on `input` / `output` until idle, `shutdown` or end of input. `Err`
/// (after answering `failed` for job 0): the first message was not a matching `hello`.
pub fn serve(
    mut input: impl BufRead + Send + 'static,
    output: Box<dyn Write + Send>,
    options: &ServeOptions,
) -> Result<Exit, String> {
    let outbox = Outbox::new(output);
    let opened = open_device(options.device);
    let name = opened.as_ref().map(|(device, _)| device_name(device));
    let name = match &name {
        Ok(name) => Ok(name.as_str()),
        Err(why) => Err(why.to_string()),
    };
    if !handshake(&mut input, &outbox, name)? {
        return Ok(Exit::InputClosed);
    }
    let (device, dtype) = opened.expect("the handshake refuses a device that did not open");
    let text_device = match options.text_encoder {
        TextEncoderDevice::Cpu => Device::Cpu,
        TextEncoderDevice::WithModel => device.clone(),
    };
    eprintln!(
        "genclip-engine: computing on {} in {}, the text encoder on {}",
        device_name(&device),
        dtype.as_str(),
        device_name(&text_device)
    );
    let runner = Runner::new(
        outbox.clone(),
        Journal::from_env(),
        Placement {
            device,
            dtype,
            text_device,
        },
    );
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            jobs: VecDeque::new(),
            running: None,
            closing: None,
            idle_since: Instant::now(),
        }),
        wake: Condvar::new(),
        outbox,
    });
    let reader = shared.clone();
    let exit_after = options.exit_after_input_closes;
    std::thread::Builder::new()
        .name("genclip-engine-input".into())
        .spawn(move || read_commands(input, &reader, exit_after))
        .map_err(|e| format!("cannot start the engine's input thread: {e}"))?;
    Ok(work(&shared, runner, options.idle_timeout))
}

/// The process's stdout, for protocol lines only: it is moved to a new descriptor and
/// descriptor 1 then points at stderr, so a stray `println!` in any library lands in the log
/// instead of corrupting the protocol. Also ignores SIGTTOU: the plugin starts the engine in
/// its own process group, and a terminal set to `tostop` would otherwise stop it at its
/// first log line.
#[cfg(unix)]
pub fn take_stdout() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain descriptor and signal-disposition calls; the new descriptor is owned by
    // the returned File only.
    unsafe {
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        let protocol = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if protocol < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::dup2(2, 1) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(protocol);
            return Err(e);
        }
        Ok(std::fs::File::from_raw_fd(protocol))
    }
}

/// Reads `hello` and answers `ready` (or `failed` when `device` is the sentence saying why
/// the device cannot be used). `Ok(false)`: the input ended first.
fn handshake(
    input: &mut impl BufRead,
    outbox: &Outbox,
    device: Result<&str, String>,
) -> Result<bool, String> {
    let Some(line) = read_line(input) else {
        return Ok(false);
    };
    let message = match (decode::<ToEngine>(&line), device) {
        (Ok(ToEngine::Hello { version }), Err(no_device)) if version == PROTOCOL_VERSION => {
            no_device
        }
        (Ok(ToEngine::Hello { version }), Ok(device)) if version == PROTOCOL_VERSION => {
            outbox.send(&FromEngine::Ready {
                version,
                pid: std::process::id(),
                device: device.to_string(),
            });
            return Ok(true);
        }
        (Ok(ToEngine::Hello { version }), _) => format!(
            "GenClip.ofx speaks engine protocol {version} and this genclip-engine speaks \
             {PROTOCOL_VERSION}: they come from different GenClip builds; reinstall the GenClip \
             bundle."
        ),
        _ => format!(
            "genclip-engine expected a hello first and got {:?}: start it from GenClip.ofx, \
             which speaks its protocol.",
            line.trim_end()
        ),
    };
    outbox.send(&FromEngine::Failed {
        job: 0,
        message: message.clone(),
    });
    Err(message)
}

/// One line, lossily UTF-8; `None` at the end of the input (a read error ends it too).
fn read_line(input: &mut impl BufRead) -> Option<String> {
    let mut buf = Vec::new();
    match input.read_until(b'\n', &mut buf) {
        Ok(0) => None,
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(e) => {
            eprintln!("genclip-engine: cannot read from the plugin ({e})");
            None
        }
    }
}

struct Queue {
    jobs: VecDeque<(u64, Box<ClipRequest>)>,
    /// The running job and its abort flag.
    running: Option<(u64, Arc<AtomicBool>)>,
    closing: Option<Exit>,
    /// When the last job ended (or serving began).
    idle_since: Instant,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    outbox: Outbox,
}

fn read_commands(mut input: impl BufRead, shared: &Shared, exit_after: Option<Duration>) {
    while let Some(line) = read_line(&mut input) {
        if line.trim().is_empty() {
            continue;
        }
        match decode::<ToEngine>(&line) {
            Ok(message) => shared.command(message),
            Err(e) => shared.unreadable(&line, &e),
        }
    }
    shared.close(Exit::InputClosed);
    if let Some(grace) = exit_after {
        std::thread::sleep(grace);
        eprintln!("genclip-engine: the plugin is gone and the job did not stop in time; exiting");
        std::process::exit(0);
    }
}

impl Shared {
    fn command(&self, message: ToEngine) {
        match message {
            ToEngine::Generate { job, request } => {
                let mut q = self.queue.lock();
                if q.closing.is_some() {
                    // Closing (idle): no answer; the plugin sees the engine exit cleanly with
                    // the job unanswered and sends it to a fresh engine.
                    eprintln!("genclip-engine: closing; job {job} left for the next engine");
                    return;
                }
                q.jobs.push_back((job, request));
                self.wake.notify_all();
            }
            ToEngine::Abort { job } => {
                let mut q = self.queue.lock();
                if let Some(at) = q.jobs.iter().position(|(j, _)| *j == job) {
                    q.jobs.remove(at);
                    drop(q);
                    self.outbox.send(&FromEngine::Aborted { job });
                } else if let Some((_, flag)) = q.running.as_ref().filter(|(j, _)| *j == job) {
                    // The worker answers `aborted` when the job stops.
                    flag.store(true, Ordering::Relaxed);
                }
                // Otherwise the job has ended and its answer is already on its way.
            }
            ToEngine::Shutdown => self.close(Exit::Shutdown),
            ToEngine::Hello { .. } => eprintln!("genclip-engine: ignored a second hello"),
        }
    }

    /// A line that is not a message of this protocol. A `generate` we cannot read is answered
    /// (the plugin waits for it); anything else is only logged.
    fn unreadable(&self, line: &str, error: &str) {
        let job = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .filter(|v| v["type"] == "generate")
            .and_then(|v| v["job"].as_u64());
        match job {
            Some(job) => self.outbox.send(&FromEngine::Failed {
                job,
                message: format!(
                    "The engine could not read the request ({error}): GenClip.ofx and \
                     genclip-engine come from different builds; reinstall the GenClip bundle."
                ),
            }),
            None => eprintln!("genclip-engine: ignored {error}"),
        }
    }

    /// Stops serving: the running job is aborted, queued ones are dropped.
    fn close(&self, why: Exit) {
        let mut q = self.queue.lock();
        q.closing.get_or_insert(why);
        if let Some((_, flag)) = &q.running {
            flag.store(true, Ordering::Relaxed);
        }
        let dropped: Vec<u64> = q.jobs.drain(..).map(|(job, _)| job).collect();
        self.wake.notify_all();
        drop(q);
        for job in dropped {
            self.outbox.send(&FromEngine::Aborted { job });
        }
    }
}

/// The worker: jobs in arrival order until closed or idle.
fn work(shared: &Shared, mut runner: Runner, idle_timeout: Duration) -> Exit {
    loop {
        let (job, request, abort) = {
            let mut q = shared.queue.lock();
            loop {
                if let Some(exit) = q.closing {
                    return exit;
                }
                if let Some((job, request)) = q.jobs.pop_front() {
                    let abort = Arc::new(AtomicBool::new(false));
                    q.running = Some((job, abort.clone()));
                    break (job, request, abort);
                }
                let deadline = q.idle_since + idle_timeout;
                if Instant::now() >= deadline {
                    // A `generate` read after this point finds the engine closing and stays
                    // unanswered; the plugin sends it again to a fresh engine.
                    q.closing = Some(Exit::Idle);
                    eprintln!("genclip-engine: idle for {idle_timeout:?}; exiting");
                    return Exit::Idle;
                }
                shared.wake.wait_until(&mut q, deadline);
            }
        };
        runner.run(job, &request, &abort);
        let mut q = shared.queue.lock();
        q.running = None;
        q.idle_since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::outbox::Sink;
    use super::*;
    use std::io::Cursor;

    /// Serves `input` (lines) inside this process; returns the exit and what was written.
    fn serve_lines(input: &str, idle: Duration) -> (Result<Exit, String>, Vec<FromEngine>) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let options = ServeOptions {
            idle_timeout: idle,
            exit_after_input_closes: None,
            device: DeviceChoice::Cpu,
            ..ServeOptions::default()
        };
        let exit = serve(
            Cursor::new(input.to_string()),
            Box::new(Sink(out.clone())),
            &options,
        );
        let text = String::from_utf8(out.lock().clone()).unwrap();
        let messages = text.lines().map(|l| decode(l).unwrap()).collect();
        (exit, messages)
    }

    #[test]
    fn a_version_mismatch_is_answered_and_refused() {
        let (exit, out) = serve_lines(
            "{\"type\":\"hello\",\"version\":99}\n",
            DEFAULT_IDLE_TIMEOUT,
        );
        let message = exit.unwrap_err();
        assert!(
            message.contains("reinstall the GenClip bundle"),
            "{message}"
        );
        assert_eq!(out, [FromEngine::Failed { job: 0, message }]);
    }

    #[test]
    fn something_other_than_hello_first_is_refused() {
        let (exit, out) = serve_lines("{\"type\":\"shutdown\"}\n", DEFAULT_IDLE_TIMEOUT);
        assert!(exit.is_err());
        assert!(matches!(out[..], [FromEngine::Failed { job: 0, .. }]));
    }

    #[test]
    fn hello_then_end_of_input_exits_cleanly() {
        let (exit, out) = serve_lines("{\"type\":\"hello\",\"version\":1}\n", DEFAULT_IDLE_TIMEOUT);
        assert_eq!(exit, Ok(Exit::InputClosed));
        assert!(
            matches!(&out[..], [FromEngine::Ready { version: 1, device, .. }] if device == "cpu")
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_gpu_this_build_cannot_use_is_refused_at_hello() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let options = ServeOptions {
            device: DeviceChoice::Gpu(1),
            exit_after_input_closes: None,
            ..ServeOptions::default()
        };
        let exit = serve(
            Cursor::new("{\"type\":\"hello\",\"version\":1}\n".to_string()),
            Box::new(Sink(out.clone())),
            &options,
        );
        let message = exit.unwrap_err();
        assert!(
            message.contains("GPU 1") && message.contains("genclip-engine-cuda"),
            "{message}"
        );
        let text = String::from_utf8(out.lock().clone()).unwrap();
        assert_eq!(
            decode::<FromEngine>(text.trim()).unwrap(),
            FromEngine::Failed { job: 0, message }
        );
    }

    #[test]
    fn an_unreadable_generate_is_answered_with_its_job() {
        let input = "{\"type\":\"hello\",\"version\":1}\n\
                     {\"type\":\"generate\",\"job\":5,\"request\":{\"steps\":\"many\"}}\n\
                     not json at all\n";
        let (exit, out) = serve_lines(input, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(exit, Ok(Exit::InputClosed));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(
            matches!(&out[1], FromEngine::Failed { job: 5, message } if message.contains("reinstall"))
        );
    }

    #[test]
    fn an_idle_engine_exits() {
        // Input that never ends: a reader blocked on a pipe whose writer we keep.
        let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
        writer
            .write_all(b"{\"type\":\"hello\",\"version\":1}\n")
            .unwrap();
        let options = ServeOptions {
            idle_timeout: Duration::from_millis(200),
            exit_after_input_closes: None,
            device: DeviceChoice::Cpu,
            ..ServeOptions::default()
        };
        let started = Instant::now();
        let exit = serve(
            std::io::BufReader::new(reader),
            Box::new(std::io::sink()),
            &options,
        );
        assert_eq!(exit, Ok(Exit::Idle));
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(writer);
    }
}
