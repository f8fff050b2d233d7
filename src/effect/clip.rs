//! The clip an instance asks for: from what the host says about the clip and the instance's
//! parameters to the [`ClipPlan`] (time map, size, frame count), the engine's [`ClipRequest`]
//! for the whole clip, and the [`CacheKey`] it is stored under.
//!
//! [`plan_clip`] is pure over a [`ClipInputs`] (host facts, settings, model facts) and a
//! weight function, so tests build every case directly; [`host::plan_instance`] is the thin
//! reader from the OpenFX handles. docs/timeline.md explains the choices.

pub mod host;
pub mod model;

use super::settings::Settings;
use super::PLUGIN_VERSION;
use crate::cache::CacheKey;
use crate::client::protocol::{CacheTarget, ClipRequest, ContextWindows, Sampler};
use crate::client::DeviceChoice;
use crate::ofx::OfxError;
use crate::timeline::plan::{
    ClipPlan, HostClip, ModelSpec, PlanError, Rate, RateMode, SizeChoice, TimeMap, Window,
    NATIVE_WINDOW, WINDOW_OVERLAP,
};
use crate::timeline::schedule::{self, Conditioning, ScheduleError};
use serde_json::json;
use std::fmt;
use std::path::Path;

pub use model::ModelFacts;

/// Why no clip can be requested.
#[derive(Debug)]
pub enum ClipError {
    /// Something the user can fix (a setting, the model folder, the clip's length): the
    /// sentence that says what and how.
    Settings(String),
    /// The host did not answer a question about the clip or a parameter.
    Host(OfxError),
}

impl fmt::Display for ClipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClipError::Settings(s) => f.write_str(s),
            ClipError::Host(e) => write!(
                f,
                "The host did not answer GenClip ({e}); try rendering again, or re-create the effect if it persists."
            ),
        }
    }
}

impl std::error::Error for ClipError {}

impl From<PlanError> for ClipError {
    fn from(e: PlanError) -> Self {
        ClipError::Settings(e.0)
    }
}

impl From<ScheduleError> for ClipError {
    fn from(e: ScheduleError) -> Self {
        ClipError::Settings(e.0)
    }
}

impl From<OfxError> for ClipError {
    fn from(e: OfxError) -> Self {
        ClipError::Host(e)
    }
}

/// What the host says about the clip and itself.
#[derive(Clone, Debug, PartialEq)]
pub struct HostFacts {
    /// Frames per second of the effect (the timeline's rate).
    pub fps: f64,
    /// The clip's length in host frames.
    pub frames: usize,
    /// The host time of its first frame.
    pub start: f64,
    /// The project size in pixels and their aspect.
    pub project_size: (u32, u32),
    pub pixel_aspect: f64,
    /// kOfxPropName and kOfxPropVersionLabel of the host, for provenance.
    pub host_name: Option<String>,
    pub host_version: Option<String>,
}

/// Everything [`plan_clip`] needs except the prompt weights over time.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipInputs {
    pub host: HostFacts,
    /// The instance's settings at the clip's first frame (every parameter but the weights,
    /// which [`plan_clip`] samples at the times it needs).
    pub settings: Settings,
    pub model: ModelFacts,
}

/// A planned clip: how host time maps to its frames, what the engine must make, and where
/// the result is cached.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedClip {
    /// Time map and frame count; `plan.size` is the generated size (the preview's when
    /// `preview`).
    pub plan: ClipPlan,
    /// The request for the whole clip, `output` filled in.
    pub request: ClipRequest,
    /// The cache entry the engine writes and render reads (`request.output.key` in hex).
    pub key: CacheKey,
    /// Where the user wants it computed (the cache key of a GPU-made clip differs: see
    /// `client::ComputeClass`).
    pub device: DeviceChoice,
    pub preview: bool,
    /// Sentences worth showing beside the result (e.g. frames generated past the clip).
    pub notes: Vec<String>,
}

/// Clips longer than this many seconds of model frames are refused: a sentence is better
/// than hours of generation the user did not mean (a host's "infinite" generator range).
pub const MAX_CLIP_SECONDS: u64 = 600;

/// The cache key domain of whole clips.
pub const KEY_DOMAIN: &str = "genclip-clip";

/// The seed the engine gets for the *Seed* parameter: the same number for every seed the
/// parameter allows (0 ..= 2^31-1), so seed 42 here is seed 42 in Diffusers and in
/// `genclip-engine generate`. A negative value (from a host that ignores the minimum) is read
/// as its 32-bit two's complement (-1 → 4294967295), so every value is a distinct seed.
pub fn engine_seed(seed: i32) -> u64 {
    u64::from(seed as u32)
}

/// The *Sampler* choice (params.rs SAMPLERS): 0 the model's own scheduler (UniPC for Wan2.1),
/// 1 flow-match Euler; anything else the model's own.
pub fn sampler_of(choice: i32) -> Sampler {
    match choice {
        1 => Sampler::FlowEuler,
        _ => Sampler::ModelDefault,
    }
}

/// The shift to send: `None` (the model's own `scheduler_config.json` value, the engine's
/// plain path) when the parameter equals it exactly, as the default 3.0 equals Wan2.1's
/// `flow_shift` 3.0; otherwise the parameter's value.
pub fn request_shift(param: f64, model: Option<f64>) -> Option<f64> {
    match model {
        Some(m) if m == param => None,
        _ => Some(param),
    }
}

/// Steps of a Preview: a quarter of the Final's, at least 8, never more than the Final's.
pub fn preview_steps(steps: usize) -> usize {
    steps.div_ceil(4).max(8).min(steps)
}

/// Size of a Preview: half the Final's width and height, each rounded to the model's
/// multiple (16 for Wan) and at least one multiple.
pub fn preview_size(size: (u32, u32), multiple: u32) -> (u32, u32) {
    let m = multiple.max(1);
    let half = |v: u32| ((f64::from(v) / 2.0 / f64::from(m)).round() as u32).max(1) * m;
    (half(size.0), half(size.1))
}

/// The key of a request: the model fingerprint and every request field that changes the
/// pixels (all but `output` and `provenance`; the model folder's path neither, the
/// fingerprint stands for it), plus the plugin version. The host's frame rate, the output
/// transfer, the render scale and the frame being rendered are not in it: they change how
/// the clip is shown, not the clip.
pub fn clip_key(request: &ClipRequest, model_fingerprint: &[u8; 32]) -> CacheKey {
    // Destructured so that a new request field does not compile until it is keyed or excused.
    let ClipRequest {
        model_folder: _,
        prompts,
        weights,
        negative_prompt,
        seed,
        steps,
        guidance_scale,
        shift,
        sampler,
        width,
        height,
        frames,
        windows,
        output: _,
        provenance: _,
    } = request;
    let flat: Vec<f64> = weights.iter().flatten().copied().collect();
    let mut key = CacheKey::builder(KEY_DOMAIN)
        .bytes("model", model_fingerprint)
        .str_list("prompts", prompts)
        .u64("weight_rows", weights.len() as u64)
        .f64_list("weights", &flat)
        .str("negative_prompt", negative_prompt)
        .u64("seed", *seed)
        .u64("steps", *steps as u64)
        .f64("guidance_scale", *guidance_scale)
        .str(
            "sampler",
            &serde_json::to_string(sampler).expect("a plain enum"),
        )
        .u64("width", *width as u64)
        .u64("height", *height as u64)
        .u64("frames", *frames as u64)
        .u64_list(
            "windows",
            &windows.map_or(Vec::new(), |w| vec![w.frames as u64, w.overlap as u64]),
        )
        .plugin_version();
    key = match shift {
        Some(v) => key.f64("shift", *v),
        None => key.str("shift", "model"),
    };
    key.finish()
}

/// The time map of a clip (checked: a usable rate and start).
fn time_map(host: &HostFacts, mode: RateMode, model: &ModelSpec) -> Result<TimeMap, ClipError> {
    if !host.start.is_finite() {
        return Err(ClipError::Settings(format!(
            "The host says the clip starts at {}, which is not a frame: check the clip on the timeline.",
            host.start
        )));
    }
    Ok(TimeMap {
        mode,
        host_rate: Rate::from_fps(host.fps)?,
        model_rate: model.fps,
        start: host.start,
    })
}

/// Refuses clips longer than [`MAX_CLIP_SECONDS`] of model frames, before anything is
/// allocated for them.
fn check_length(host: &HostFacts, time: &TimeMap, model: &ModelSpec) -> Result<(), ClipError> {
    let needed = time.needed_model_frames(host.frames);
    let max = (MAX_CLIP_SECONDS as f64 * model.fps.fps()).floor() as usize;
    if needed > max {
        return Err(ClipError::Settings(format!(
            "The clip is {} frames long ({:.1} s at {} fps) and needs {needed} model frames; GenClip generates at most {} minutes ({max} frames at {} fps) per clip: shorten the clip (or its Duration) or split it into several GenClip clips.",
            host.frames,
            host.frames as f64 / host.fps,
            host.fps,
            MAX_CLIP_SECONDS / 60,
            model.fps.fps()
        )));
    }
    Ok(())
}

/// Plans the whole clip: the time map and size, the conditioning of every latent frame
/// (the prompt slots' weights sampled with `weight_at(slot, host_time)` at the host times of
/// each latent frame's video frames, or the schedule), the request and its cache key (the
/// entry `cache_root/<key>`).
pub fn plan_clip(
    inputs: &ClipInputs,
    weight_at: &mut dyn FnMut(usize, f64) -> f64,
    cache_root: &Path,
) -> Result<PlannedClip, ClipError> {
    let (host, settings, model) = (&inputs.host, &inputs.settings, &inputs.model);
    let spec = model.spec;
    let time = time_map(host, settings.rate_mode, spec)?;
    check_length(host, &time, spec)?;
    let size = match settings.resolution {
        Some((w, h)) => SizeChoice::Native(w, h),
        None => SizeChoice::Project,
    };
    let host_clip = HostClip {
        fps: host.fps,
        frames: host.frames,
        start: host.start,
        project_size: host.project_size,
        pixel_aspect: host.pixel_aspect,
    };
    let mut plan = ClipPlan::new(&host_clip, settings.rate_mode, size, spec)?;
    let final_size = plan.size;
    let final_steps = settings.steps.clamp(1, 1000) as usize;
    let (steps, size) = if settings.preview {
        (
            preview_steps(final_steps),
            preview_size(final_size, spec.size_multiple),
        )
    } else {
        (final_steps, final_size)
    };
    plan.size = size;

    let frames = plan.count.frames;
    let latent_times = schedule::latent_host_times(Window { start: 0, frames }, &plan.time);
    let conditioning = schedule::conditioning(
        &settings.schedule,
        &settings.prompts,
        &mut *weight_at,
        &latent_times,
    )?;
    let windows = (plan.count.needed > NATIVE_WINDOW).then_some(ContextWindows {
        frames: NATIVE_WINDOW,
        overlap: WINDOW_OVERLAP,
    });
    let shift = request_shift(settings.shift, model.flow_shift);
    let guidance = if settings.guidance.is_finite() {
        settings.guidance.max(0.0)
    } else {
        5.0
    };
    let mut request = ClipRequest {
        model_folder: model.folder.clone(),
        prompts: conditioning.prompts.clone(),
        weights: conditioning.weights.clone(),
        negative_prompt: settings.negative_prompt.trim().to_string(),
        seed: engine_seed(settings.seed),
        steps,
        guidance_scale: guidance,
        shift,
        sampler: sampler_of(settings.sampler),
        width: size.0 as usize,
        height: size.1 as usize,
        frames,
        windows,
        output: CacheTarget {
            root: cache_root.to_path_buf(),
            key: String::new(),
        },
        provenance: serde_json::Value::Null,
    };
    let key = clip_key(&request, &model.fingerprint);
    request.output.key = key.to_hex();
    request.provenance = provenance(inputs, &plan, &request, &conditioning);
    let notes = plan.rounding_note().into_iter().collect();
    Ok(PlannedClip {
        plan,
        request,
        key,
        device: settings.device,
        preview: settings.preview,
        notes,
    })
}

/// The record written beside the cached clip: what made it, in words a person can check.
fn provenance(
    inputs: &ClipInputs,
    plan: &ClipPlan,
    request: &ClipRequest,
    conditioning: &Conditioning,
) -> serde_json::Value {
    let (host, settings, model) = (&inputs.host, &inputs.settings, &inputs.model);
    let folder_name = model
        .folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| model.folder.display().to_string());
    json!({
        "generator": "GenClip",
        "plugin_version": env!("CARGO_PKG_VERSION"),
        "plugin_api_version": format!("{}.{}", PLUGIN_VERSION.0, PLUGIN_VERSION.1),
        "host": { "name": host.host_name, "version": host.host_version },
        "model": {
            "folder": folder_name,
            "spec": model.spec.name,
            "fingerprint": crate::cache::CacheKey(model.fingerprint).to_hex(),
        },
        "schedule": settings.schedule.trim(),
        "prompts": conditioning.prompts,
        "weights_per_latent_frame": conditioning.weights,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed,
        "steps": request.steps,
        "quality": if settings.preview { "preview" } else { "final" },
        "guidance_scale": request.guidance_scale,
        "shift": settings.shift,
        "shift_source": if request.shift.is_none() { "model scheduler_config.json" } else { "Shift parameter" },
        "sampler": request.sampler,
        "width": request.width,
        "height": request.height,
        "frames": request.frames,
        "model_frames_shown": plan.count.needed,
        "fps": { "host": host.fps, "model": plan.time.model_rate.fps() },
        "frame_rate_mode": match settings.rate_mode {
            RateMode::Host => "host (conform)",
            RateMode::ModelNative => "model native",
        },
        "clip": { "host_start": host.start, "host_frames": host.frames },
        "windows": request.windows.map(|w| json!({ "frames": w.frames, "overlap": w.overlap })),
    })
}
