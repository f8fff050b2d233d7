//! The plugin ↔ engine protocol (version [`PROTOCOL_VERSION`]).
//!
//! The plugin starts `genclip-engine serve` with its stdin and stdout as pipes. Each message is
//! one JSON object on one line (UTF-8, `\n`-terminated), tagged by `"type"`. Messages are small:
//! frames never travel through the pipe; the engine writes the finished clip into the frame
//! cache (atomically) under the key the plugin chose, and the plugin reads it from there.
//!
//! ```text
//! plugin → engine                     engine → plugin
//! {"type":"hello","version":1}        {"type":"ready","version":1,"pid":…,"device":"cpu"}
//! {"type":"generate","job":7,…}       {"type":"progress","job":7,"stage":"denoising","step":3,"of":50}
//! {"type":"abort","job":7}            {"type":"done","job":7,…} | {"type":"failed",…} | {"type":"aborted",…}
//! {"type":"shutdown"}                 (exit)
//! ```
//!
//! The engine runs one job at a time, in the order received; `abort` of a queued job removes it,
//! of the running job stops it within one denoising step. A version mismatch in `hello` is
//! answered with `failed` (job 0) and the engine exits. Unknown fields are ignored, so a newer
//! plugin can add optional ones without a version bump; a changed meaning bumps the version.
//!
//! This module is plain data (no candle), so the cdylib can link it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const PROTOCOL_VERSION: u32 = 1;

/// Which scheduler denoises.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// The one `scheduler/scheduler_config.json` names (Wan2.1: UniPC), as Diffusers does.
    #[default]
    ModelDefault,
    UniPc,
    FlowEuler,
}

/// Context windows for clips longer than the model's native length: windows of `frames` video
/// frames (4k+1) that overlap by `overlap` frames (a multiple of 4), denoised together at every
/// step with the overlaps blended.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextWindows {
    pub frames: usize,
    pub overlap: usize,
}

/// Where the engine puts the finished clip: the disk frame cache's root and the entry's key
/// (64 lowercase hex digits, see `cache::CacheKey::to_hex`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CacheTarget {
    pub root: PathBuf,
    pub key: String,
}

/// One clip to generate.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ClipRequest {
    /// The Diffusers model folder (the one holding `model_index.json`).
    pub model_folder: PathBuf,
    /// The distinct prompts; `weights` columns follow this order.
    pub prompts: Vec<String>,
    /// One row per latent frame of the clip (`(frames - 1) / 4 + 1` rows), one weight per
    /// prompt; every row sums to 1. A single prompt has rows `[1.0]`.
    pub weights: Vec<Vec<f64>>,
    pub negative_prompt: String,
    pub seed: u64,
    pub steps: usize,
    pub guidance_scale: f64,
    /// Flow shift; `None` keeps the model's `scheduler_config.json` value.
    pub shift: Option<f64>,
    pub sampler: Sampler,
    pub width: usize,
    pub height: usize,
    /// Video frames, 4k+1.
    pub frames: usize,
    /// `None`: the whole clip is one window.
    pub windows: Option<ContextWindows>,
    pub output: CacheTarget,
    /// Written beside the cache entry as `<key>.json` (see `docs/provenance.md`); the engine
    /// adds what only it knows (weight file hashes, device, dtype, timings).
    pub provenance: serde_json::Value,
}

/// Where a job is.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Loading,
    EncodingText,
    Denoising,
    Decoding,
    Writing,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToEngine {
    Hello { version: u32 },
    Generate { job: u64, request: Box<ClipRequest> },
    Abort { job: u64 },
    Shutdown,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromEngine {
    Ready {
        version: u32,
        pid: u32,
        /// "cpu", "cuda:0", … as the engine runs.
        device: String,
    },
    Progress {
        job: u64,
        stage: Stage,
        step: usize,
        of: usize,
    },
    Done {
        job: u64,
        seconds: f64,
        /// Text-encoder forward passes this engine process has run so far (the embedding
        /// cache's hit rate shows in it).
        text_encoder_runs: u64,
    },
    Failed {
        job: u64,
        /// The sentence to show the user (what went wrong and what to do).
        message: String,
    },
    Aborted {
        job: u64,
    },
}

/// One message as its line (without the `\n`).
pub fn encode<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).expect("protocol messages always serialize")
}

/// A line back into a message.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| format!("bad engine message {line:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ClipRequest {
        ClipRequest {
            model_folder: "/models/wan".into(),
            prompts: vec!["a harbour at dawn".into(), "the harbour at night".into()],
            weights: vec![vec![1.0, 0.0], vec![0.5, 0.5], vec![0.0, 1.0]],
            negative_prompt: String::new(),
            seed: 42,
            steps: 50,
            guidance_scale: 5.0,
            shift: Some(3.0),
            sampler: Sampler::ModelDefault,
            width: 832,
            height: 480,
            frames: 9,
            windows: None,
            output: CacheTarget {
                root: "/cache".into(),
                key: "ab".repeat(32),
            },
            provenance: serde_json::json!({"seed": 42}),
        }
    }

    #[test]
    fn messages_round_trip_as_single_lines() {
        let messages = [
            ToEngine::Hello {
                version: PROTOCOL_VERSION,
            },
            ToEngine::Generate {
                job: 7,
                request: Box::new(request()),
            },
            ToEngine::Abort { job: 7 },
            ToEngine::Shutdown,
        ];
        for m in messages {
            let line = encode(&m);
            assert!(!line.contains('\n'));
            assert_eq!(decode::<ToEngine>(&line).unwrap(), m);
        }
        let back = FromEngine::Progress {
            job: 7,
            stage: Stage::Denoising,
            step: 3,
            of: 50,
        };
        assert_eq!(
            encode(&back),
            r#"{"type":"progress","job":7,"stage":"denoising","step":3,"of":50}"#
        );
        assert_eq!(decode::<FromEngine>(&encode(&back)).unwrap(), back);
    }

    #[test]
    fn unknown_fields_are_ignored_and_garbage_is_an_error() {
        let m: FromEngine =
            decode(r#"{"type":"aborted","job":3,"added_in_a_later_version":true}"#).unwrap();
        assert_eq!(m, FromEngine::Aborted { job: 3 });
        assert!(decode::<FromEngine>("Segmentation fault").is_err());
    }
}
