//! Shared by the clip-request tests (tests/conditioning.rs, tests/long_clip.rs): the tiny
//! fixture pipeline and engine-protocol requests for it.

#![allow(dead_code)]

pub use crate::reference::plain_request;
use crate::reference::Fixture;
use candle_core::{DType, Device};
use genclip::client::protocol::{CacheTarget, ClipRequest, Sampler};
use genclip::engine::{Pipeline, Video};

pub fn pipeline(f: &Fixture) -> Pipeline {
    Pipeline::load(f.root.join("model"), &Device::Cpu, DType::F32).unwrap()
}

/// A second prompt, unlike the fixture's.
pub const PROMPT_B: &str = "an empty beach under a white sky, waves rolling in";

/// The fixture's run as a clip request with the given prompts and one weight row per latent
/// frame, the model's sampler, no windows.
pub fn clip_request(f: &Fixture, prompts: &[&str], weights: Vec<Vec<f64>>) -> ClipRequest {
    let plain = plain_request(f);
    ClipRequest {
        model_folder: f.root.join("model"),
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        weights,
        negative_prompt: plain.negative_prompt,
        seed: plain.seed,
        steps: plain.steps,
        guidance_scale: plain.guidance_scale,
        shift: None,
        sampler: Sampler::ModelDefault,
        width: plain.width,
        height: plain.height,
        frames: plain.frames,
        windows: None,
        output: CacheTarget {
            root: "unused".into(),
            key: "0".repeat(64),
        },
        provenance: serde_json::Value::Null,
    }
}

/// `clip_request` with one prompt, the fixture's.
pub fn single_prompt_request(f: &Fixture) -> ClipRequest {
    let plain = plain_request(f);
    let latent_frames = (plain.frames - 1) / 4 + 1;
    clip_request(f, &[&plain.prompt], vec![vec![1.0]; latent_frames])
}

pub fn generate(pipeline: &Pipeline, req: &ClipRequest) -> Video {
    pipeline
        .generate_clip(req, &mut |_| {}, &|| false)
        .unwrap_or_else(|e| panic!("generate_clip: {e}"))
}

/// Whether two frame sets are the same bits (NaN-safe, unlike `==` on floats).
pub fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Largest |a - b| over two frame sets.
pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}
