//! What the memory guard does short of refusing (`memory_plan::Residency`), through real
//! engine processes of this build: with less memory the engine drops the text encoder after
//! encoding, or runs it alone before loading the transformer, and the clip stays the same bit
//! for bit.
//!
//! The model is the tiny fixture with a text encoder widened to about 200 MB (its FFN, which
//! changes no shape the transformer sees), so that holding it or not shows in the engine's
//! resident memory.

use candle_core::{DType, Device, Tensor};
use genclip::cache::{CacheKey, DiskCache, ReadOutcome};
use genclip::client::protocol::{CacheTarget, ClipRequest, Sampler};
use genclip::client::{ComputeClass, Engine, EngineConfig, JobState};
use genclip::engine::memory_plan::{
    self, JobShape, MemoryPlan, ModelShape, Residency, TextWork, BUDGET_ENV,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{fixture_model, scratch};
use genclip::engine::bench::memory_of;

fn rss_of(pid: u32) -> u64 {
    memory_of(pid).expect("the engine's /proc status").resident
}

fn hwm_of(pid: u32) -> u64 {
    memory_of(pid).expect("the engine's /proc status").peak
}

/// The widened encoder: 32 layers of FFN width 16,384 (3 matrices × 32 × 16,384 × 4 bytes
/// each), 201 MB. Many layers rather than a wider FFN: the estimate of the encoder's pass
/// grows with the width and not with the layers, and the test needs the weights to dominate.
const WIDE_LAYERS: usize = 32;
const WIDE_FFN: usize = 16_384;

/// The fixture's folder with the wide text encoder (the other components linked), made once.
fn wide_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| make_wide_model("model", DType::F32))
}

/// The same with the text encoder's file in bf16 (as Wan's umT5 is published), 101 MB.
fn wide_model_bf16() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| make_wide_model("model-bf16", DType::BF16))
}

fn make_wide_model(name: &str, stored: DType) -> PathBuf {
    {
        let root = scratch(name);
        for entry in ["scheduler", "tokenizer", "transformer", "vae"] {
            std::os::unix::fs::symlink(fixture_model().join(entry), root.join(entry)).unwrap();
        }
        std::fs::copy(
            fixture_model().join("model_index.json"),
            root.join("model_index.json"),
        )
        .unwrap();
        let text = root.join("text_encoder");
        std::fs::create_dir(&text).unwrap();
        let config =
            std::fs::read_to_string(fixture_model().join("text_encoder/config.json")).unwrap();
        let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
        let fixture_layers = config["num_layers"].as_u64().unwrap() as usize;
        config["d_ff"] = WIDE_FFN.into();
        config["num_layers"] = WIDE_LAYERS.into();
        std::fs::write(text.join("config.json"), config.to_string()).unwrap();
        let fixture_weights = candle_core::safetensors::load(
            fixture_model().join("text_encoder/model.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        let d_model = config["d_model"].as_u64().unwrap() as usize;
        // Layer i takes the fixture's attention of layer i mod 2 and a new, wide FFN.
        let mut weights = HashMap::new();
        for (name, tensor) in &fixture_weights {
            let Some(rest) = name.strip_prefix("encoder.block.") else {
                weights.insert(name.clone(), tensor.clone());
                continue;
            };
            let (layer, inner) = rest.split_once('.').unwrap();
            let layer: usize = layer.parse().unwrap();
            for i in (layer..WIDE_LAYERS).step_by(fixture_layers) {
                let tensor = if inner.contains(".DenseReluDense.") {
                    let shape = if inner.ends_with("wo.weight") {
                        (d_model, WIDE_FFN)
                    } else {
                        (WIDE_FFN, d_model)
                    };
                    Tensor::randn(0f32, 0.02, shape, &Device::Cpu).unwrap()
                } else {
                    tensor.clone()
                };
                weights.insert(format!("encoder.block.{i}.{inner}"), tensor);
            }
        }
        let weights: HashMap<String, Tensor> = weights
            .into_iter()
            .map(|(name, t)| (name, t.to_dtype(stored).unwrap()))
            .collect();
        candle_core::safetensors::save(&weights, text.join("model.safetensors")).unwrap();
        root
    }
}

/// An engine computing on the CPU, its memory capped at `budget` bytes if given.
fn engine(budget: Option<u64>) -> Engine {
    let mut config = EngineConfig::serve(env!("CARGO_BIN_EXE_genclip-engine"));
    config.args.extend(["--device".into(), "cpu".into()]);
    if let Some(bytes) = budget {
        // The variable is in MB and takes fractions: the byte counts here differ by less.
        config
            .env
            .push((BUDGET_ENV.into(), format!("{:.6}", bytes as f64 / 1e6)));
    }
    Engine::new(config)
}

fn request(dir: &Path, prompt: &str) -> ClipRequest {
    // Large enough that the decode, not the encoder's pass, is the largest stage: else
    // keeping the encoder costs nothing at the peak, and no budget lies between the two.
    request_on(wide_model(), dir, prompt, 384)
}

fn request_on(model: &Path, dir: &Path, prompt: &str, size: usize) -> ClipRequest {
    ClipRequest {
        model_folder: model.to_path_buf(),
        prompts: vec![prompt.into()],
        weights: vec![vec![1.0]; 3],
        negative_prompt: "blurry".into(),
        seed: 5,
        steps: 3,
        guidance_scale: 5.0,
        shift: None,
        sampler: Sampler::ModelDefault,
        width: size,
        height: size,
        frames: 9,
        windows: None,
        output: CacheTarget {
            root: dir.join("cache"),
            key: CacheKey::builder("genclip-test-memory-residency")
                .str("prompt", prompt)
                .u64("pid", u64::from(std::process::id()))
                .finish()
                .to_hex(),
        },
        provenance: serde_json::json!({"test": prompt}),
    }
}

fn plan(request: &ClipRequest) -> MemoryPlan {
    memory_plan::estimate(
        &ModelShape::read(&request.model_folder).unwrap(),
        &JobShape::of(request),
        ComputeClass::Cpu,
        DType::F32,
    )
}

/// Generates `request` on `engine` and returns the clip's pixels from the cache.
fn generate(engine: &Engine, request: ClipRequest) -> Vec<f32> {
    let root = request.output.root.clone();
    let job = engine.submit(request);
    assert_eq!(job.wait(&mut |_| true), JobState::Done);
    match DiskCache::new(root).read(&CacheKey::from_hex(job.key()).unwrap()) {
        Ok(ReadOutcome::Hit(clip)) => clip.data,
        other => panic!("no clip in the cache: {other:?}"),
    }
}

/// A budget (bytes) halfway between two residencies' peaks.
fn budget_between(plan: &MemoryPlan, more: Residency, less: Residency) -> u64 {
    let encoding = TextWork {
        encoding: true,
        on_compute_device: true,
    };
    let (high, low) = (plan.peak(more, encoding), plan.peak(less, encoding));
    assert!(
        low < high,
        "{more:?} and {less:?} need the same at the peak (make the clip larger): {plan:?}"
    );
    (high + low) / 2
}

#[test]
fn short_of_memory_the_engine_drops_the_text_encoder_and_makes_the_same_clip() {
    let dir = scratch("drop");
    let plan = plan(&request(&dir, "a red kite"));
    assert!(plan.text_encoder_weights > 200_000_000, "{plan:?}");

    // Plenty of memory: everything stays loaded.
    let plenty = engine(None);
    let kept_clip = generate(&plenty, request(&dir.join("plenty"), "a red kite"));
    let kept_rss = rss_of(plenty.pid().unwrap());

    // Too little to keep the encoder: it is dropped once the prompts are encoded.
    let short = engine(Some(budget_between(
        &plan,
        Residency::Resident,
        Residency::TextEncoderWhileEncoding,
    )));
    let dropped_clip = generate(&short, request(&dir.join("short"), "a red kite"));
    let dropped_rss = rss_of(short.pid().unwrap());
    eprintln!(
        "engine resident after the job: encoder kept {} MiB, dropped {} MiB (encoder weights {} MiB)",
        kept_rss >> 20,
        dropped_rss >> 20,
        plan.text_encoder_weights >> 20
    );
    assert!(
        dropped_rss + plan.text_encoder_weights * 3 / 4 < kept_rss,
        "kept {kept_rss}, dropped {dropped_rss}, {plan:?}"
    );
    assert!(
        kept_clip == dropped_clip,
        "dropping the encoder changed the clip"
    );
}

#[test]
fn shorter_still_the_encoder_runs_alone_and_the_transformer_is_loaded_again() {
    let dir = scratch("alone");
    let plan = plan(&request(&dir, "a blue boat"));
    let budget = budget_between(
        &plan,
        Residency::TextEncoderWhileEncoding,
        Residency::TextEncoderAlone,
    );
    let reference = engine(None);
    let alone = engine(Some(budget));
    // The second job has a new prompt with the transformer loaded by the first: the engine
    // drops the transformer to encode it, then loads it again.
    for prompt in ["a blue boat", "a green field"] {
        let expected = generate(&reference, request(&dir.join("reference"), prompt));
        let got = generate(&alone, request(&dir.join("alone"), prompt));
        assert!(expected == got, "{prompt}: the clip changed");
    }
    // Below the least the job is refused with the sentence.
    let tight = engine(Some(
        plan.peak(
            Residency::TextEncoderAlone,
            TextWork {
                encoding: true,
                on_compute_device: true,
            },
        ) - 1_000,
    ));
    let job = tight.submit(request(&dir.join("tight"), "a grey sky"));
    match job.wait(&mut |_| true) {
        JobState::Failed(message) => assert!(
            message.starts_with("This clip needs about ")
                && message.contains("GENCLIP_MEMORY_BUDGET_MB allows"),
            "{message}"
        ),
        other => panic!("expected the refusal, got {other:?}"),
    }
}

#[test]
fn an_encoder_stored_in_bf16_is_held_as_stored_when_memory_is_shortest() {
    let dir = scratch("as-stored");
    let model = wide_model_bf16();
    // Small frames: the encoding phase is the peak.
    let request = |dir: &Path, prompt: &str| request_on(model, dir, prompt, 64);
    let plan = plan(&request(&dir, "a yellow tram"));
    let stored = plan
        .text_encoder_stored_weights
        .expect("bf16 files, f32 engine");
    assert_eq!(stored * 2, plan.text_encoder_weights);

    let reference = engine(None);
    let alone = engine(Some(budget_between(
        &plan,
        Residency::TextEncoderWhileEncoding,
        Residency::TextEncoderAlone,
    )));
    let as_stored = engine(Some(budget_between(
        &plan,
        Residency::TextEncoderAlone,
        Residency::TextEncoderAsStoredAlone,
    )));
    let expected = generate(&reference, request(&dir.join("reference"), "a yellow tram"));
    let widened = generate(&alone, request(&dir.join("alone"), "a yellow tram"));
    let narrow = generate(&as_stored, request(&dir.join("as-stored"), "a yellow tram"));
    assert!(expected == widened, "the encoder alone changed the clip");
    assert!(
        expected == narrow,
        "the encoder's weights as stored changed the clip"
    );
    let (alone_peak, as_stored_peak) = (
        hwm_of(alone.pid().unwrap()),
        hwm_of(as_stored.pid().unwrap()),
    );
    eprintln!(
        "engine peaks: encoder widened to f32 {} MiB, as stored (bf16) {} MiB",
        alone_peak >> 20,
        as_stored_peak >> 20
    );
    // Half the encoder's 201 MB, less what the load's own copies blur.
    assert!(
        as_stored_peak + stored / 2 < alone_peak,
        "widened {alone_peak}, as stored {as_stored_peak}, {plan:?}"
    );
}
