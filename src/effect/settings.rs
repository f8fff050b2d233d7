//! An instance's settings at one frame, read with the *AtTime* calls only (render threads run
//! at many times at once; "the current time" means nothing to them), and the checks that
//! decide whether a clip can be generated from them.

use super::instance::Instance;
use super::params::{self, names::*, Kind, OUTPUT_TRANSFERS, RESOLUTIONS};
use crate::client::DeviceChoice;
use crate::ofx::OfxResult;
use crate::timeline::plan::RateMode;
use std::path::Path;

/// How frames leave the plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// sRGB / Rec.709 display-referred values, as the model makes them.
    Display,
    /// Scene-linear (the sRGB curve removed).
    Linear,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub prompts: [String; 4],
    pub weights: [f64; 4],
    pub schedule: String,
    pub negative_prompt: String,
    pub seed: i32,
    pub steps: i32,
    pub guidance: f64,
    pub shift: f64,
    pub sampler: i32,
    pub model_folder: String,
    /// `None`: the host's project size.
    pub resolution: Option<(u32, u32)>,
    pub duration: i32,
    /// The *Frame rate* choice: conform to the host's rate, or one model frame per host frame.
    pub rate_mode: RateMode,
    pub transfer: Transfer,
    pub preview: bool,
    pub auto_generate: bool,
    /// The *Device* choice (not part of the planned key: the engine that computes the clip
    /// decides its compute class, `client::Engines::compute_class`).
    pub device: DeviceChoice,
}

impl Settings {
    pub fn read(inst: &Instance, time: f64) -> OfxResult<Settings> {
        let text = |name| inst.param(name).string_at(time);
        let int = |name| inst.param(name).int_at(time);
        let double = |name| inst.param(name).double_at(time);
        let mut prompts: [String; 4] = Default::default();
        let mut weights = [0.0; 4];
        for i in 0..4 {
            prompts[i] = text(PROMPTS[i])?;
            weights[i] = legal_weight(double(WEIGHTS[i])?);
        }
        let resolution_index = int(RESOLUTION)?.clamp(0, RESOLUTIONS.len() as i32 - 1) as usize;
        let transfer_index = int(OUTPUT_TRANSFER)?.clamp(0, OUTPUT_TRANSFERS.len() as i32 - 1);
        Ok(Settings {
            prompts,
            weights,
            schedule: text(PROMPT_SCHEDULE)?,
            negative_prompt: text(NEGATIVE_PROMPT)?,
            seed: int(SEED)?,
            steps: int(STEPS)?,
            guidance: finite_or(double(GUIDANCE)?, 5.0),
            shift: finite_or(double(SHIFT)?, 3.0),
            sampler: int(SAMPLER)?,
            model_folder: text(MODEL_FOLDER)?,
            resolution: RESOLUTIONS[resolution_index].1,
            duration: int(DURATION)?,
            rate_mode: RateMode::from_choice(int(FRAME_RATE_MODE)?),
            transfer: if transfer_index == 1 {
                Transfer::Linear
            } else {
                Transfer::Display
            },
            preview: int(QUALITY)? == 1,
            auto_generate: inst.param(AUTO_GENERATE).bool_at(time)?,
            device: DeviceChoice::from_param(int(DEVICE)?),
        })
    }

    /// The prompt that leads at this frame: the heaviest slot with text, or the schedule.
    pub fn leading_prompt(&self) -> Option<&str> {
        if !self.schedule.trim().is_empty() {
            return Some(self.schedule.trim());
        }
        (0..4)
            .filter(|&i| !self.prompts[i].trim().is_empty() && self.weights[i] > 0.0)
            .max_by(|&a, &b| self.weights[a].total_cmp(&self.weights[b]).then(b.cmp(&a)))
            .map(|i| self.prompts[i].trim())
    }

    /// What stops a clip from being generated with these settings, as the sentence that
    /// tells the user what to do; `None` when nothing does.
    pub fn problem(&self) -> Option<String> {
        let has_text =
            self.prompts.iter().any(|p| !p.trim().is_empty()) || !self.schedule.trim().is_empty();
        if !has_text {
            return Some("No prompt yet: type what the clip should show in Prompt A.".into());
        }
        if self.schedule.trim().is_empty() && self.leading_prompt().is_none() {
            return Some("Every prompt with text has weight 0 here: raise Weight A (or the weight of another slot that has a prompt).".into());
        }
        model_folder_problem(&self.model_folder)
    }
}

/// What is wrong with a *Model folder* value, as the sentence that says what to do; `None`
/// for a folder that holds a Diffusers pipeline.
pub fn model_folder_problem(folder: &str) -> Option<String> {
    let folder = folder.trim();
    if folder.is_empty() {
        return Some("No model yet: point Model folder at a Wan2.1 text-to-video model in Diffusers layout (the folder holding model_index.json).".into());
    }
    let path = Path::new(folder);
    if !path.is_dir() {
        return Some(format!("Model folder {folder} does not exist or is not a folder: point Model folder at a Diffusers Wan2.1 directory."));
    }
    if crate::models::hub_cache::resolve(path).is_none() {
        return Some(format!("Model folder {folder} holds no model_index.json: point Model folder at a Diffusers Wan2.1 directory (the one with model_index.json, transformer/, vae/, text_encoder/), or at its Hugging Face cache entry (models--Wan-AI--…)."));
    }
    None
}

/// A weight as the blend uses it: a NaN or out-of-range value from a misbehaving curve
/// counts as its nearest legal value (NaN as 0), never as a poison for the blend.
pub fn legal_weight(w: f64) -> f64 {
    if w.is_nan() {
        0.0
    } else {
        w.clamp(0.0, 1.0)
    }
}

impl Default for Settings {
    /// Every parameter at its declared default (the table in `params.rs`), as a new instance
    /// starts.
    fn default() -> Settings {
        let text = |name| match params::spec(name).map(|p| p.kind) {
            Some(Kind::Text { default, .. }) => default.to_string(),
            _ => String::new(),
        };
        let int = |name| match params::spec(name).map(|p| p.kind) {
            Some(Kind::Int { default, .. }) | Some(Kind::Choice { default, .. }) => default,
            Some(Kind::Bool { default }) => i32::from(default),
            _ => 0,
        };
        let double = |name| match params::spec(name).map(|p| p.kind) {
            Some(Kind::Double { default, .. }) => default,
            _ => 0.0,
        };
        let resolution_index = int(RESOLUTION).clamp(0, RESOLUTIONS.len() as i32 - 1) as usize;
        Settings {
            prompts: PROMPTS.map(text),
            weights: WEIGHTS.map(double),
            schedule: text(PROMPT_SCHEDULE),
            negative_prompt: text(NEGATIVE_PROMPT),
            seed: int(SEED),
            steps: int(STEPS),
            guidance: double(GUIDANCE),
            shift: double(SHIFT),
            sampler: int(SAMPLER),
            model_folder: text(MODEL_FOLDER),
            resolution: RESOLUTIONS[resolution_index].1,
            duration: int(DURATION),
            rate_mode: RateMode::from_choice(int(FRAME_RATE_MODE)),
            transfer: if int(OUTPUT_TRANSFER) == 1 {
                Transfer::Linear
            } else {
                Transfer::Display
            },
            preview: int(QUALITY) == 1,
            auto_generate: int(AUTO_GENERATE) != 0,
            device: DeviceChoice::from_param(int(DEVICE)),
        }
    }
}

fn finite_or(value: f64, fallback: f64) -> f64 {
    if value.is_finite() {
        value
    } else {
        fallback
    }
}
