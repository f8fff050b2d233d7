//! Shared by the parity tests: the tiny Wan fixtures (`tests/fixtures/wan_tiny_*`, made by
//! `tools/make_wan_fixtures.py`) and the one way we compare tensors with the reference.
//!
//! Tolerance: max |ours - reference| <= 1e-4 · max |reference| per tensor. Both sides compute
//! in f32; they differ only in summation order (matmul blocking) and in transcendental
//! function implementations, which moves results by a few ulps per operation — far below
//! 1e-4 after a handful of layers, while any real mistake (a wrong axis, a missing scale, a
//! swapped norm) moves them by orders of magnitude more.

#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use genclip::models::diffusers::ModelFolder;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

pub const TOLERANCE: f32 = 1e-4;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture's own run (prompt, negative prompt, seed, steps, guidance, size, frames) as a
/// plain engine request.
pub fn plain_request(f: &Fixture) -> genclip::engine::Request {
    let i = &f.inputs;
    genclip::engine::Request {
        prompt: i["prompt"].as_str().unwrap().to_string(),
        negative_prompt: i["negative_prompt"].as_str().unwrap().to_string(),
        seed: i["seed"].as_u64().unwrap(),
        steps: i["num_inference_steps"].as_u64().unwrap() as usize,
        guidance_scale: i["guidance_scale"].as_f64().unwrap(),
        width: i["width"].as_u64().unwrap() as usize,
        height: i["height"].as_u64().unwrap() as usize,
        frames: i["num_frames"].as_u64().unwrap() as usize,
    }
}

/// One tiny pipeline: its Diffusers folder, the reference tensors, and the run's inputs.
pub struct Fixture {
    pub root: PathBuf,
    pub folder: ModelFolder,
    pub expected: HashMap<String, Tensor>,
    pub inputs: Value,
}

pub fn fixture(name: &str) -> Fixture {
    let root = fixtures_dir().join(name);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected.json")).unwrap())
            .unwrap();
    Fixture {
        folder: ModelFolder::open(root.join("model")).unwrap(),
        expected: candle_core::safetensors::load(root.join("expected.safetensors"), &Device::Cpu)
            .unwrap(),
        inputs: json["inputs"].clone(),
        root,
    }
}

impl Fixture {
    /// A component's weights, f32 on the CPU, as the parity tests load them.
    pub fn var_builder(&self, component: &str) -> candle_nn::VarBuilder<'static> {
        self.folder
            .weights(component, DType::F32, &Device::Cpu)
            .unwrap()
            .var_builder()
    }

    pub fn get(&self, name: &str) -> &Tensor {
        self.expected
            .get(name)
            .unwrap_or_else(|| panic!("fixture tensor {name} missing"))
    }
}

/// max |ours - reference| / max |reference|; infinite when `ours` holds a NaN or an
/// infinity (candle's max skips NaN, so they are counted first).
pub fn relative_error(ours: &Tensor, reference: &Tensor) -> f32 {
    assert_eq!(ours.dims(), reference.dims(), "shapes differ");
    let ours = ours.to_dtype(DType::F32).unwrap();
    let values = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    if values.iter().any(|v| !v.is_finite()) {
        return f32::INFINITY;
    }
    let diff = (ours - reference)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = reference
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(f32::MIN_POSITIVE);
    diff / scale
}

/// Asserts [`TOLERANCE`] and prints the error (see it with `-- --nocapture`).
pub fn assert_close(what: &str, ours: &Tensor, reference: &Tensor) {
    let err = relative_error(ours, reference);
    eprintln!("{what}: relative error {err:e}");
    assert!(
        err <= TOLERANCE,
        "{what}: relative error {err:e} > {TOLERANCE:e}"
    );
}
