//! The engine process through the plugin's client: `genclip-engine serve` (the binary of
//! this build) started by `client::Engine`, on the tiny fixture model
//! `tests/fixtures/wan_tiny_a/model`; and fake engines that misbehave.
//!
//! Timings print with `--nocapture`. The only timing asserts are the ones the design names
//! (a killed engine's job fails within 2 s; a silent engine fails within its start timeout),
//! with margins for a loaded 2-core machine.

mod common;

use candle_core::{DType, Device};
use genclip::cache::{CacheKey, Clip, DiskCache, ReadOutcome};
use genclip::client::protocol::{CacheTarget, ClipRequest, Sampler, Stage};
use genclip::client::{Engine, EngineConfig, Job, JobState};
use genclip::engine::{Pipeline, Request};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn model_folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_tiny_a/model")
}

/// An engine of this build, journaling into `dir/journal.log`.
fn engine_in(dir: &Path, extra_args: &[&str]) -> Engine {
    let mut config = EngineConfig::serve(env!("CARGO_BIN_EXE_genclip-engine"));
    config.args.extend(extra_args.iter().map(|a| a.to_string()));
    config.env.push((
        "GENCLIP_ENGINE_JOURNAL".into(),
        dir.join("journal.log").to_string_lossy().into_owned(),
    ));
    Engine::new(config)
}

fn key(name: &str) -> String {
    CacheKey::builder("genclip-test-engine-process")
        .str("test", name)
        .u64("pid", u64::from(std::process::id()))
        .finish()
        .to_hex()
}

/// A single-prompt request of `width` x `height` x `frames` in `steps` steps into `root`.
fn request(
    root: &Path,
    name: &str,
    (width, height, frames, steps): (usize, usize, usize, usize),
) -> ClipRequest {
    ClipRequest {
        model_folder: model_folder(),
        prompts: vec!["a lighthouse in fog at dawn".into()],
        weights: vec![vec![1.0]; (frames - 1) / 4 + 1],
        negative_prompt: "blurry".into(),
        seed: 20250101,
        steps,
        guidance_scale: 5.0,
        shift: None,
        sampler: Sampler::ModelDefault,
        width,
        height,
        frames,
        windows: None,
        output: CacheTarget {
            root: root.to_path_buf(),
            key: key(name),
        },
        provenance: serde_json::json!({"test": name, "seed": 20250101}),
    }
}

/// Small and quick (a tenth of a second).
const SMALL: (usize, usize, usize, usize) = (48, 32, 9, 3);
/// Seconds of denoising on the tiny model, long enough to abort or kill in the middle.
const LONG: (usize, usize, usize, usize) = (256, 256, 17, 30);

fn wait_done(job: &Job) -> (JobState, Vec<JobState>) {
    let mut seen = Vec::new();
    let end = job.wait(&mut |s| {
        if seen.last() != Some(s) {
            seen.push(s.clone());
        }
        true
    });
    (end, seen)
}

/// Polls `job` until `pred` holds (or the job ends); panics after `limit`.
fn wait_until(job: &Job, limit: Duration, pred: impl Fn(&JobState) -> bool) -> JobState {
    let started = Instant::now();
    loop {
        let state = job.state();
        if pred(&state) || state.is_finished() {
            return state;
        }
        assert!(started.elapsed() < limit, "still {state:?} after {limit:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn in_denoising_past_step_one(s: &JobState) -> bool {
    matches!(s, JobState::Running { stage: Stage::Denoising, step, .. } if *step >= 1)
}

fn journal(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("journal.log")).unwrap_or_default()
}

/// Whether `pid` is still a process (a zombie counts: not reaped).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn eventually_gone(pid: u32) -> bool {
    let started = Instant::now();
    while process_exists(pid) {
        if started.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "weights")
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_request_becomes_the_cache_entry_the_pipeline_makes() {
    let dir = common::scratch("engine-done");
    let engine = engine_in(&dir, &[]);
    let req = request(&dir, "done", SMALL);
    let started = Instant::now();
    let job = engine.submit(req.clone());
    let (end, seen) = wait_done(&job);
    println!(
        "engine start + small job: {:.2} s ({} states seen)",
        started.elapsed().as_secs_f64(),
        seen.len()
    );
    assert_eq!(end, JobState::Done);
    assert_eq!(job.state(), JobState::Done);
    assert_eq!(engine.jobs_sent(), 1);
    // Progress arrived, and the overall fraction never went back.
    assert!(
        seen.iter().any(|s| matches!(
            s,
            JobState::Running {
                stage: Stage::Denoising,
                ..
            }
        )),
        "{seen:?}"
    );
    let fractions: Vec<f64> = seen
        .iter()
        .filter_map(|s| match s {
            JobState::Running { fraction, .. } => Some(*fraction),
            _ => None,
        })
        .collect();
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");

    // The cache entry equals what the pipeline makes in this process.
    let cache_key = CacheKey::from_hex(&req.output.key).unwrap();
    let ReadOutcome::Hit(clip) = DiskCache::new(&dir).read(&cache_key).unwrap() else {
        panic!("no cache entry for the finished job");
    };
    let pipeline = Pipeline::load(model_folder(), &Device::Cpu, DType::F32).unwrap();
    let plain = Request::from(&req);
    let video = pipeline.generate(&plain, &mut |_| {}, &|| false).unwrap();
    assert_eq!(clip, Clip::from(video), "the engine's clip differs");

    // The provenance record: the plugin's fields and the engine's, weight hashes included.
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{}.json", req.output.key))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["test"], "done");
    let engine_facts = &record["engine"];
    assert_eq!(engine_facts["device"], "cpu");
    assert_eq!(engine_facts["dtype"], "f32");
    assert_eq!(engine_facts["version"], env!("CARGO_PKG_VERSION"));
    let weights = engine_facts["weights_sha256"].as_object().unwrap();
    for file in [
        "model_index.json",
        "transformer/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "tokenizer/tokenizer.json",
    ] {
        let bytes = std::fs::read(model_folder().join(file)).unwrap();
        let want: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(weights[file], want.as_str(), "{file}");
    }
    let finished = engine_facts["finished_utc"].as_str().unwrap();
    assert!(
        finished.len() == 20 && finished.ends_with('Z') && finished.as_bytes()[10] == b'T',
        "{finished}"
    );

    let log = journal(&dir);
    let pid = engine.pid().unwrap();
    for event in ["start", "done"] {
        let line = format!("pid={pid} job=1 key={} event={event}", req.output.key);
        assert!(log.lines().any(|l| l == line), "no {line:?} in\n{log}");
    }
}

#[test]
fn the_same_key_submitted_twice_at_once_is_generated_once() {
    let dir = common::scratch("engine-join");
    let engine = engine_in(&dir, &[]);
    // About a second: the second submit comes long before the first job ends.
    let req = request(&dir, "join", (128, 128, 17, 20));
    let barrier = std::sync::Barrier::new(2);
    let (a, b) = std::thread::scope(|s| {
        let submit = || {
            barrier.wait();
            engine.submit(req.clone())
        };
        let a = s.spawn(submit);
        let b = s.spawn(submit);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(wait_done(&a).0, JobState::Done);
    assert_eq!(wait_done(&b).0, JobState::Done);
    assert_eq!(engine.jobs_sent(), 1, "the second request was sent too");
    let starts = journal(&dir).matches("event=start").count();
    assert_eq!(starts, 1, "{}", journal(&dir));
}

#[test]
fn an_abort_mid_denoise_stops_the_job_and_writes_nothing() {
    let dir = common::scratch("engine-abort");
    let engine = engine_in(&dir, &[]);
    let req = request(&dir, "abort", LONG);
    let job = engine.submit(req.clone());
    let started = Instant::now();
    // A job queued behind it is dropped by the engine at once.
    let queued = engine.submit(request(&dir, "abort-queued", SMALL));
    wait_until(&job, Duration::from_secs(60), |s| {
        matches!(s, JobState::Running { .. })
    });
    queued.abort();
    assert_eq!(
        wait_until(&queued, Duration::from_secs(10), |s| s.is_finished()),
        JobState::Aborted
    );
    let returned = job.wait(&mut |s| !in_denoising_past_step_one(s));
    let asked = Instant::now();
    assert_eq!(returned, JobState::Aborted);
    let confirmed = wait_until(&job, Duration::from_secs(60), |s| s.is_finished());
    println!(
        "abort asked {:.2} s into the job, confirmed by the engine {:.3} s later",
        asked.duration_since(started).as_secs_f64(),
        asked.elapsed().as_secs_f64()
    );
    assert_eq!(confirmed, JobState::Aborted);
    let left = leftovers(&dir);
    assert!(
        !left
            .iter()
            .any(|n| n.ends_with(".gcf") || n.ends_with(".tmp") || n.ends_with(".json")),
        "an aborted job left {left:?}"
    );
    assert!(journal(&dir).contains(&format!("key={} event=aborted", req.output.key)));

    // The engine serves on, and the same key now starts a fresh job.
    let pid = engine.pid();
    let again = engine.submit(request(&dir, "abort", SMALL));
    assert_eq!(wait_done(&again).0, JobState::Done);
    assert_eq!(engine.pid(), pid);
    assert_eq!(engine.jobs_sent(), 3);
}

#[test]
fn a_repeated_prompt_costs_no_text_encoder_pass() {
    let dir = common::scratch("engine-encoder-runs");
    let engine = engine_in(&dir, &[]);
    assert_eq!(
        wait_done(&engine.submit(request(&dir, "runs-1", SMALL))).0,
        JobState::Done
    );
    let first = engine.text_encoder_runs();
    // The prompt and the negative prompt: two passes.
    assert_eq!(first, 2);
    let mut other_seed = request(&dir, "runs-2", SMALL);
    other_seed.seed += 1;
    assert_eq!(wait_done(&engine.submit(other_seed)).0, JobState::Done);
    assert_eq!(
        engine.text_encoder_runs(),
        first,
        "the embeddings were not reused"
    );
}

#[test]
fn a_killed_engine_fails_its_job_and_the_next_submit_starts_another() {
    let dir = common::scratch("engine-kill");
    let engine = engine_in(&dir, &[]);
    let job = engine.submit(request(&dir, "kill", LONG));
    wait_until(&job, Duration::from_secs(60), in_denoising_past_step_one);
    let pid = engine.pid().expect("a live engine");
    // SAFETY: kill(2) on the engine this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let end = wait_until(&job, Duration::from_secs(10), |s| s.is_finished());
    let noticed = killed.elapsed();
    println!(
        "a SIGKILL became a failed job in {:.3} s",
        noticed.as_secs_f64()
    );
    let JobState::Failed(message) = end else {
        panic!("{end:?}")
    };
    assert!(
        message
            .starts_with("The generation engine stopped unexpectedly (killed, or out of memory?)")
            && message.contains("SIGKILL")
            && message.ends_with("Render again to restart it."),
        "{message}"
    );
    assert!(noticed < Duration::from_secs(2), "took {noticed:?}");
    assert!(
        eventually_gone(pid),
        "the killed engine {pid} was not reaped"
    );

    let next = engine.submit(request(&dir, "after-kill", SMALL));
    assert_eq!(wait_done(&next).0, JobState::Done);
    let new_pid = engine.pid().expect("a new engine");
    assert_ne!(new_pid, pid);
}

#[test]
fn an_idle_engine_exits_and_the_next_submit_starts_another() {
    let dir = common::scratch("engine-idle");
    let engine = engine_in(&dir, &["--idle-timeout", "1"]);
    let first = engine.submit(request(&dir, "idle-1", SMALL));
    assert_eq!(wait_done(&first).0, JobState::Done);
    let pid = engine.pid().expect("a live engine");
    let done = Instant::now();
    while engine.pid().is_some() {
        assert!(
            done.elapsed() < Duration::from_secs(30),
            "the engine never went idle"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "the engine exited {:.2} s after its last job",
        done.elapsed().as_secs_f64()
    );
    assert!(eventually_gone(pid), "the idle engine {pid} was not reaped");
    let second = engine.submit(request(&dir, "idle-2", SMALL));
    assert_eq!(wait_done(&second).0, JobState::Done);
    assert_ne!(engine.pid(), Some(pid));
    assert_eq!(engine.jobs_sent(), 2);
}

#[test]
fn a_bad_request_fails_with_a_sentence_and_the_engine_serves_on() {
    let dir = common::scratch("engine-bad");
    let engine = engine_in(&dir, &[]);
    let mut bad = request(&dir, "bad-folder", SMALL);
    bad.model_folder = dir.join("no-such-model");
    let job = engine.submit(bad);
    let JobState::Failed(message) = wait_done(&job).0 else {
        panic!("a missing model folder did not fail")
    };
    assert!(
        message.contains("check the Model folder parameter"),
        "{message}"
    );
    let pid = engine.pid();

    let mut odd = request(&dir, "bad-size", SMALL);
    odd.frames = 10;
    let JobState::Failed(message) = wait_done(&engine.submit(odd)).0 else {
        panic!("10 frames did not fail")
    };
    assert!(message.contains("4k+1"), "{message}");

    let good = engine.submit(request(&dir, "good", SMALL));
    assert_eq!(wait_done(&good).0, JobState::Done);
    assert_eq!(engine.pid(), pid, "the engine restarted");
    assert_eq!(journal(&dir).matches("event=failed").count(), 2);
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_panic_in_a_job_fails_it_and_the_engine_serves_on() {
    let dir = common::scratch("engine-panic");
    let engine = engine_in(&dir, &[]);
    let mut req = request(&dir, "panic", SMALL);
    req.prompts = vec!["genclip:fault:engine-panic".into()];
    let JobState::Failed(message) = wait_done(&engine.submit(req)).0 else {
        panic!("the injected panic did not fail the job: built without fault-injection?")
    };
    assert!(message.contains("internal error"), "{message}");
    let pid = engine.pid();
    let good = engine.submit(request(&dir, "after-panic", SMALL));
    assert_eq!(wait_done(&good).0, JobState::Done);
    assert_eq!(engine.pid(), pid);
}

// ---------------------------------------------------------------------------------------------
// Fake engines

/// A shell script as the engine program; it writes its pid to `<name>.pid` first.
fn fake_engine(dir: &Path, name: &str, body: &str, start_timeout: Duration) -> (Engine, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(format!("{name}.sh"));
    let pid_file = dir.join(format!("{name}.pid"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho $$ > '{}'\n{body}\n", pid_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = EngineConfig {
        program: script,
        args: vec!["serve".into()],
        env: Vec::new(),
        start_timeout,
    };
    (Engine::new(config), pid_file)
}

fn failure(engine: &Engine, dir: &Path, name: &str) -> (String, Duration) {
    let started = Instant::now();
    let end = wait_done(&engine.submit(request(dir, name, SMALL))).0;
    let took = started.elapsed();
    match end {
        JobState::Failed(message) => (message, took),
        other => panic!("{name}: {other:?}"),
    }
}

fn assert_reaped(pid_file: &Path) {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(eventually_gone(pid), "fake engine {pid} left behind");
}

#[test]
fn fake_engines_fail_with_sentences_and_never_hang() {
    let dir = common::scratch("engine-fakes");
    let timeout = Duration::from_secs(2);
    let cases = [
        (
            "garbage",
            "echo 'Segmentation fault (core dumped)'\nsleep 30",
            "instead of its greeting",
        ),
        ("exits", "exit 3", "exited with status 3"),
        ("silent", "sleep 30", "did not answer within 2 s"),
        (
            "refuses",
            r#"echo '{"type":"failed","job":0,"message":"The engine is too old."}'"#,
            "refused to start: The engine is too old.",
        ),
        (
            "dies-on-generate",
            r#"read hello
echo '{"type":"ready","version":1,"pid":1,"device":"cpu"}'
read job
exit 7"#,
            "stopped unexpectedly (killed, or out of memory?): it exited with status 7",
        ),
        (
            "wrong-version",
            r#"read hello
echo '{"type":"ready","version":99,"pid":1,"device":"cpu"}'
sleep 30"#,
            "speaks protocol 99",
        ),
    ];
    for (name, body, expected) in cases {
        let (engine, pid_file) = fake_engine(&dir, name, body, timeout);
        let (message, took) = failure(&engine, &dir, name);
        println!("{name}: failed in {:.2} s: {message}", took.as_secs_f64());
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            took < timeout + Duration::from_secs(5),
            "{name} took {took:?}"
        );
        assert_reaped(&pid_file);
        assert_eq!(engine.pid(), None, "{name}");
    }

    // An engine that exits cleanly (its idle timeout) just as a job arrives leaves the job
    // unanswered; it goes to a fresh engine, once.
    let marker = dir.join("idle-race.second-run");
    let (engine, _) = fake_engine(
        &dir,
        "idle-race",
        &format!(
            r#"read hello
echo '{{"type":"ready","version":1,"pid":1,"device":"cpu"}}'
read job
if [ -e '{marker}' ]; then
  echo '{{"type":"done","job":1,"seconds":0.1,"text_encoder_runs":2}}'
  sleep 30
fi
touch '{marker}'
exit 0"#,
            marker = marker.display()
        ),
        timeout,
    );
    let job = engine.submit(request(&dir, "idle-race", SMALL));
    assert_eq!(wait_done(&job).0, JobState::Done);
    assert_eq!(engine.jobs_sent(), 2);

    let missing = Engine::new(EngineConfig::serve(dir.join("no-engine-here")));
    let (message, _) = failure(&missing, &dir, "missing");
    assert!(
        message.contains("could not start its generation engine"),
        "{message}"
    );
    assert!(
        message.contains("reinstall the GenClip bundle"),
        "{message}"
    );
}

#[test]
fn an_engine_beside_the_test_binary_is_missing_and_says_so() {
    if std::env::var_os(genclip::client::ENGINE_ENV).is_some() {
        println!("skipped: GENCLIP_ENGINE is set");
        return;
    }
    // In a test the client's code lives in the test executable (target/<profile>/deps/),
    // where no genclip-engine is.
    let message = genclip::client::engine_program().unwrap_err();
    assert!(
        message.starts_with("genclip-engine is missing beside GenClip.ofx in ")
            && message.ends_with("reinstall the GenClip bundle."),
        "{message}"
    );
}
