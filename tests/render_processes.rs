//! Generation when processes die or compete: the plugin's engine killed mid-generation, two
//! `genclip render` processes making the same clip in one cache, and a `genclip render`
//! killed mid-generation. Its own test binary, so the in-process plugin starts a fresh engine.
//!
//! Engine calls are counted in the engines' job journal (`GENCLIP_ENGINE_JOURNAL`, one line
//! per job event). Run `cargo test --release --features fault-injection --test
//! render_processes -- --nocapture` to see the measured numbers.

mod common;

use genclip::cache::{CacheKey, DiskCache, ReadOutcome};
use genclip::host::{HostOptions, ParamValue, RenderRequest, RenderedImage};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::journal::{self, Event};
use common::*;

const PROMPT: &str = "a lighthouse in fog at dawn";
const NEGATIVE: &str = "blurry";

/// Whether `pid` has ended (gone, or a zombie waiting for a reaper that is not us).
fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (name) S ...": the state follows the closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until_ended(pid: u32, limit: Duration) -> Duration {
    let started = Instant::now();
    while !process_ended(pid) {
        assert!(
            started.elapsed() < limit,
            "process {pid} still runs after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

fn sigkill(pid: u32) {
    // SAFETY: kill(2) on a pid this test read from its own engines' journal.
    let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(r, 0, "kill -9 {pid}: {}", std::io::Error::last_os_error());
}

// ---------------------------------------------------------------------------------------
// The in-process plugin's engine

/// The journal of this process's plugin engine, named before the plugin starts one.
fn plugin_journal() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let file = scratch("journal").join("journal.log");
        std::env::set_var("GENCLIP_ENGINE_JOURNAL", &file);
        file
    })
}

fn picture(image: &RenderedImage) -> Vec<f32> {
    let (w, h) = (image.width(), image.height());
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for x in 0..w {
            let p = image.rgba_f32(x, h - 1 - row);
            assert_eq!(p[3], 1.0, "alpha at ({x}, {row})");
            rgb.extend_from_slice(&p[..3]);
        }
    }
    rgb
}

/// The plugin's engine killed with SIGKILL while a final render waits: the render fails with
/// the sentence that says what happened (also posted to the host), the host process lives
/// on, and the next render starts a fresh engine and delivers the clip.
#[test]
fn a_killed_engine_fails_the_render_with_a_sentence_and_the_next_render_works() {
    let _g = serial();
    let journal = plugin_journal();
    // 64 × 64 × 33 frames in 200 steps: about 3 s on 2 cores, 1.5 s of it denoising.
    let options = HostOptions {
        project_size: (64.0, 64.0),
        frame_rate: 16.0,
        frame_range: (0.0, 32.0),
        echo_messages: false,
        ..HostOptions::default()
    };
    let (host, plugin, inst) = instance(options, GENERATOR);
    for (name, value) in [
        (
            "modelFolder",
            ParamValue::Str(fixture_model().display().to_string()),
        ),
        ("promptA", ParamValue::Str(PROMPT.into())),
        ("negativePrompt", ParamValue::Str(NEGATIVE.into())),
        ("seed", ParamValue::Int(401)),
        ("steps", ParamValue::Int(200)),
        ("guidanceScale", ParamValue::Double(5.0)),
        ("resolution", ParamValue::Choice(0)),
        ("outputTransfer", ParamValue::Choice(0)),
    ] {
        inst.set_param(name, value).unwrap();
    }
    let since = journal::read(journal).len();

    let (result, killed_at, start) = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let start = journal::wait_for(journal, since, Duration::from_secs(30), |e| {
                e.event == "start"
            });
            std::thread::sleep(Duration::from_millis(300));
            sigkill(start.pid);
            (Instant::now(), start)
        });
        let result = inst.render(&RenderRequest::new(0.0));
        let (killed_at, start) = killer.join().unwrap();
        (result, killed_at, start)
    });
    let failed_after = killed_at.elapsed();
    let err = result.expect_err("the render of a killed engine's clip must fail");
    println!(
        "engine {} killed 300 ms into its job; the render failed {:.0} ms later (at most): {}",
        start.pid,
        failed_after.as_secs_f64() * 1e3,
        err.message
    );
    assert_eq!(err.status, 1, "kOfxStatFailed: {err}");
    assert!(
        err.message
            .contains("The generation engine stopped unexpectedly"),
        "{err}"
    );
    let posted = host.messages();
    assert!(
        posted.iter().any(|m| m.kind == "OfxMessageError"
            && m.text
                .starts_with("The generation engine stopped unexpectedly")
            && m.text.contains("SIGKILL")),
        "{posted:?}"
    );
    assert!(
        journal::read(journal)
            .iter()
            .all(|e| e.key != start.key || e.event == "start"),
        "a killed engine journals nothing after start"
    );
    wait_until_ended(start.pid, Duration::from_secs(10));
    assert!(
        !cache_dir().join(format!("{}.gcf", start.key)).exists(),
        "a clip from the killed job"
    );

    // The host lives on; the next render starts another engine.
    let started = Instant::now();
    let frame = picture(
        &inst
            .render(&RenderRequest::new(0.0))
            .unwrap_or_else(|e| panic!("the render after the kill: {e}")),
    );
    let seconds = started.elapsed().as_secs_f64();
    let events: Vec<Event> = journal::read(journal)
        .into_iter()
        .filter(|e| e.key == start.key)
        .collect();
    let fresh: Vec<&Event> = events.iter().filter(|e| e.pid != start.pid).collect();
    assert_eq!(
        fresh.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["start", "done"],
        "{events:?}"
    );
    println!(
        "the next render started engine {} and generated the clip in {seconds:.2} s",
        fresh[0].pid
    );
    let key = CacheKey::from_hex(&start.key).unwrap();
    let ReadOutcome::Hit(clip) = DiskCache::new(cache_dir()).read(&key).unwrap() else {
        panic!("no clip after the rerun");
    };
    assert_eq!(clip.frames, 33);
    assert_eq!(frame.as_slice(), clip.frame(0).unwrap());
    assert!(frame
        .iter()
        .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    drop(inst);
    plugin.unload().unwrap();
}

// ---------------------------------------------------------------------------------------
// `genclip render` processes

/// The cache and journal the `genclip render` processes of this test binary share.
fn cli_cache() -> PathBuf {
    scratch("cli-cache")
}

fn cli_journal() -> PathBuf {
    scratch("cli-journal").join("journal.log")
}

/// `genclip render` of the tiny model at `size`, `frames` frames at 16 fps, into `out`.
fn genclip_render(seed: u32, steps: u32, size: (u32, u32), frames: u32, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_genclip"))
        .arg("render")
        .arg("--bundle")
        .arg(bundle_path())
        .arg("--model")
        .arg(fixture_model())
        .args(["--prompt", PROMPT, "--negative-prompt", NEGATIVE])
        .args(["--seed", &seed.to_string(), "--steps", &steps.to_string()])
        .args(["--guidance", "5"])
        .args([
            "--width",
            &size.0.to_string(),
            "--height",
            &size.1.to_string(),
        ])
        .args(["--frames", &frames.to_string(), "--fps", "16"])
        .arg("--out")
        .arg(out)
        .env("GENCLIP_CACHE_DIR", cli_cache())
        .env("GENCLIP_ENGINE_JOURNAL", cli_journal())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start genclip render")
}

/// Waits for a `genclip render` (killed after `limit`) and checks that it succeeded.
fn finish(child: Child, what: &str, limit: Duration) {
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < limit {
            if process_ended(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: our own child, not yet reaped (wait_with_output below reaps it).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    });
    let output = child.wait_with_output().unwrap();
    watchdog.join().unwrap();
    assert!(
        output.status.success(),
        "{what}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn frame_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("frame.") && n.ends_with(".png"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Two `genclip render` processes on the same clip and cache: one generates (one `start` in
/// the journal), the other waits on the cache lock and reads the file; their frames are
/// byte-identical PNGs. Then a `genclip render` killed with SIGKILL mid-generation: its
/// engine notices and exits, every clip in the cache still verifies, nothing half-written is
/// left, and a rerun renders the clip.
#[test]
fn genclip_processes_share_one_generation_and_survive_a_kill() {
    let out = scratch("cli-out");
    let journal = cli_journal();

    // 64 × 64 × 17 in 200 steps: about a second, so the two processes overlap.
    let started = Instant::now();
    let a = genclip_render(901, 200, (64, 64), 17, &out.join("a"));
    let b = genclip_render(901, 200, (64, 64), 17, &out.join("b"));
    finish(a, "genclip render a", Duration::from_secs(120));
    finish(b, "genclip render b", Duration::from_secs(120));
    println!(
        "two genclip render processes of one 64 x 64 x 17 clip: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let events = journal::read(&journal);
    let starts: Vec<&Event> = events.iter().filter(|e| e.event == "start").collect();
    assert_eq!(starts.len(), 1, "{events:?}");
    let (frames_a, frames_b) = (frame_files(&out.join("a")), frame_files(&out.join("b")));
    assert_eq!(frames_a.len(), 17);
    assert!(
        frames_a == frames_b,
        "the two processes wrote different frames"
    );

    // A new, longer clip (64 × 64 × 33 in 200 steps, about 3 s); its process killed 300 ms
    // after its engine started the job.
    let since = journal::read(&journal).len();
    let mut victim = genclip_render(902, 200, (64, 64), 33, &out.join("killed"));
    let start = journal::wait_for(&journal, since, Duration::from_secs(60), |e| {
        e.event == "start"
    });
    std::thread::sleep(Duration::from_millis(300));
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let engine_exit = wait_until_ended(start.pid, Duration::from_secs(15));
    let after_kill: Vec<Event> = journal::read(&journal)
        .into_iter()
        .filter(|e| e.key == start.key)
        .collect();
    println!(
        "genclip killed: its engine {} exited {:.0} ms later; journal: {:?}",
        start.pid,
        engine_exit.as_secs_f64() * 1e3,
        after_kill
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>()
    );
    assert!(
        !after_kill.iter().any(|e| e.event == "done"),
        "the killed process's job finished anyway: {after_kill:?}"
    );

    // No corrupt entry: every clip verifies; no temporary file is left.
    let cache = DiskCache::new(cli_cache());
    let names: Vec<String> = std::fs::read_dir(cli_cache())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut verified = 0;
    for name in &names {
        assert!(!name.ends_with(".tmp"), "a temporary file is left: {name}");
        if let Some(hex) = name.strip_suffix(".gcf") {
            let key = CacheKey::from_hex(hex).unwrap();
            match cache.read(&key).unwrap() {
                ReadOutcome::Hit(_) => verified += 1,
                ReadOutcome::Miss => panic!("{name} vanished"),
                ReadOutcome::Removed(why) => panic!("{name} was corrupt: {why:?}"),
            }
        }
    }
    assert_eq!(verified, 1, "the first clip only: {names:?}");
    assert!(!names.contains(&format!("{}.gcf", start.key)));
    // The dead process's cache lock is still there: the rerun must judge it stale.
    assert!(
        names.contains(&format!("{}.lock", start.key)),
        "no lock left by the killed process: {names:?}"
    );

    // The rerun breaks the dead process's lock and renders the clip.
    let started = Instant::now();
    let rerun = genclip_render(902, 200, (64, 64), 33, &out.join("rerun"));
    finish(
        rerun,
        "genclip render after the kill",
        Duration::from_secs(120),
    );
    println!(
        "the rerun rendered the 33 frames in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(frame_files(&out.join("rerun")).len(), 33);
    let events: Vec<Event> = journal::read(&journal)
        .into_iter()
        .filter(|e| e.key == start.key)
        .collect();
    assert_eq!(events.iter().filter(|e| e.event == "start").count(), 2);
    assert_eq!(events.iter().filter(|e| e.event == "done").count(), 1);
    let key = CacheKey::from_hex(&start.key).unwrap();
    assert!(matches!(cache.read(&key).unwrap(), ReadOutcome::Hit(c) if c.frames == 33));
}
