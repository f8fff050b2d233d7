//! The memory guard (`engine::memory_plan`) through the client and a real engine process
//! (`genclip-engine serve` of this build) on the tiny fixture model: a job over its budget
//! fails before anything is loaded, with the sentence that says what to do, and leaves no
//! cache entry; within its budget it is generated, and the engine's measured peak stays
//! under the estimate.

use candle_core::DType;
use genclip::cache::{CacheKey, DiskCache, ReadOutcome};
use genclip::client::protocol::{CacheTarget, ClipRequest, Sampler};
use genclip::client::{ComputeClass, Engine, EngineConfig, JobState};
use genclip::engine::memory_plan::{self, JobShape, ModelShape, Residency, TextWork, BUDGET_ENV};
use std::path::Path;

mod common;
use common::{fixture_model, scratch};
use genclip::engine::bench::memory_of;

fn engine(dir: &Path, budget_mb: Option<&str>) -> Engine {
    let mut config = EngineConfig::serve(env!("CARGO_BIN_EXE_genclip-engine"));
    config.args.extend(["--device".into(), "cpu".into()]);
    config.env.push((
        "GENCLIP_ENGINE_JOURNAL".into(),
        dir.join("journal.log").to_string_lossy().into_owned(),
    ));
    if let Some(mb) = budget_mb {
        config.env.push((BUDGET_ENV.into(), mb.into()));
    }
    Engine::new(config)
}

fn request(dir: &Path, name: &str) -> ClipRequest {
    ClipRequest {
        model_folder: fixture_model(),
        prompts: vec!["a kite over a beach".into()],
        weights: vec![vec![1.0]; 5],
        negative_prompt: String::new(),
        seed: 11,
        steps: 3,
        guidance_scale: 5.0,
        shift: None,
        sampler: Sampler::ModelDefault,
        width: 256,
        height: 256,
        frames: 17,
        windows: None,
        output: CacheTarget {
            root: dir.join("cache"),
            key: CacheKey::builder("genclip-test-memory-guard")
                .str("test", name)
                .u64("pid", u64::from(std::process::id()))
                .finish()
                .to_hex(),
        },
        provenance: serde_json::json!({"test": name}),
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn over_budget_fails_before_loading_with_the_sentence_and_caches_nothing() {
    let dir = scratch("over");
    let engine = engine(&dir, Some("1"));
    let request = request(&dir, "over");
    let key = request.output.key.clone();
    let job = engine.submit(request);
    let end = job.wait(&mut |_| true);
    let JobState::Failed(message) = end else {
        panic!("expected a failure, got {end:?}");
    };
    assert!(
        message.starts_with("This clip needs about ")
            && message.ends_with(
                " but GENCLIP_MEMORY_BUDGET_MB allows 1 MB: lower Resolution or Duration, use \
                 Preview quality, or close other programs."
            ),
        "{message}"
    );
    let cache = DiskCache::new(dir.join("cache"));
    assert!(!matches!(
        cache.read(&CacheKey::from_hex(&key).unwrap()),
        Ok(ReadOutcome::Hit(_))
    ));
    assert!(
        files_in(&dir.join("cache"))
            .iter()
            .all(|f| !f.starts_with(&key)),
        "{:?}",
        files_in(&dir.join("cache"))
    );
    let journal = std::fs::read_to_string(dir.join("journal.log")).unwrap();
    assert!(journal.contains("event=failed"), "{journal}");
    // Nothing was loaded: the engine's peak is a process that never read a weight.
    if let Some(peak) = engine.pid().and_then(memory_of).map(|m| m.peak) {
        eprintln!("engine peak after the refused job: {} MiB", peak >> 20);
    }
}

#[test]
fn within_budget_the_job_is_done_and_the_peak_stays_under_the_estimate() {
    let dir = scratch("within");
    let engine = engine(&dir, None);
    let request = request(&dir, "within");
    let plan = memory_plan::estimate(
        &ModelShape::read(&fixture_model()).unwrap(),
        &JobShape::of(&request),
        ComputeClass::Cpu,
        DType::F32,
    );
    // What the engine chooses with the whole machine's memory: everything stays loaded.
    let peak = plan.peak(
        Residency::Resident,
        TextWork {
            encoding: true,
            on_compute_device: true,
        },
    );
    let job = engine.submit(request);
    assert_eq!(job.wait(&mut |_| true), JobState::Done);
    let key = CacheKey::from_hex(job.key()).unwrap();
    assert!(matches!(
        DiskCache::new(dir.join("cache")).read(&key),
        Ok(ReadOutcome::Hit(_))
    ));
    // The engine is still up (idle): its high-water mark covers the whole job.
    let pid = engine.pid().expect("the engine idles after its job");
    if let Some(measured) = memory_of(pid).map(|m| m.peak) {
        eprintln!(
            "tiny 256 x 256 x 17: engine peak {} MiB, estimate {} MiB ({plan:?})",
            measured >> 20,
            peak >> 20
        );
        assert!(
            measured <= peak,
            "peak {measured} above the estimate {peak} ({plan:?})"
        );
    }
}

#[test]
fn a_budget_that_is_not_a_number_is_ignored() {
    let dir = scratch("garbage");
    let engine = engine(&dir, Some("lots"));
    let job = engine.submit(request(&dir, "garbage"));
    assert_eq!(job.wait(&mut |_| true), JobState::Done);
}
