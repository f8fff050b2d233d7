//! The thin reader: host facts and settings from the OpenFX handles, then [`plan_clip`].
//! Everything is read with the *AtTime* calls (render threads run at many times at once).

use super::{plan_clip, ClipError, ClipInputs, HostFacts, ModelFacts, PlannedClip};
use crate::effect::instance::Instance;
use crate::effect::params::names::{DURATION, WEIGHTS};
use crate::effect::settings::{legal_weight, model_folder_problem, Settings};
use crate::effect::Context;
use crate::ofx::bindings::*;
use crate::ofx::image_effect::Effect;
use crate::ofx::props::PropSet;
use crate::ofx::{s, OfxError};
use std::path::Path;

/// Plans the whole clip of an instance, its output cached under `cache_root`.
pub fn plan_instance(
    effect: &Effect,
    inst: &Instance,
    cache_root: &Path,
) -> Result<PlannedClip, ClipError> {
    let host = host_facts(effect, inst)?;
    let settings = Settings::read(inst, host.start)?;
    if let Some(problem) = model_folder_problem(&settings.model_folder) {
        return Err(ClipError::Settings(problem));
    }
    // The engine process may run in another working directory: it gets absolute paths.
    let named = Path::new(settings.model_folder.trim());
    let diffusers = crate::models::hub_cache::resolve(named).unwrap_or(named.to_path_buf());
    let folder = std::path::absolute(&diffusers).map_err(|e| {
        ClipError::Settings(format!(
            "Model folder {} cannot be resolved ({e}): give its full path.",
            settings.model_folder.trim()
        ))
    })?;
    let model = ModelFacts::read(&folder)?;
    let inputs = ClipInputs {
        host,
        settings,
        model,
    };
    // A failed read is kept and reported after planning (the weight function cannot fail).
    let mut failure: Option<OfxError> = None;
    let mut weight_at = |slot: usize, time: f64| match inst.param(WEIGHTS[slot]).double_at(time) {
        Ok(w) => legal_weight(w),
        Err(e) => {
            failure.get_or_insert(e);
            0.0
        }
    };
    let planned = plan_clip(&inputs, &mut weight_at, cache_root);
    match failure {
        Some(e) => Err(ClipError::Host(e)),
        None => planned,
    }
}

/// What the host says about the clip: its rate, its frames, the project and the host.
pub fn host_facts(effect: &Effect, inst: &Instance) -> Result<HostFacts, ClipError> {
    let props = effect.props()?;
    let output = effect.clip(s(kOfxImageEffectOutputClipName)).ok();
    let output_props = output.as_ref().map(|c| c.props()).filter(|p| !p.is_null());
    let fps = props
        .double(kOfxImageEffectPropFrameRate, 0)
        .ok()
        .or_else(|| {
            output_props.and_then(|p| p.double(kOfxImageEffectPropFrameRate, 0).ok())
        })
        .ok_or_else(|| {
            ClipError::Settings(
                "The host does not say the timeline's frame rate: set the project's frame rate, or use Frame rate = Model native.".into(),
            )
        })?;
    let (start, frames) = clip_frames(&props, output_props.as_ref(), inst)?;
    let par = props
        .double(kOfxImageEffectPropProjectPixelAspectRatio, 0)
        .ok()
        .filter(|p| p.is_finite() && *p > 0.0)
        .unwrap_or(1.0);
    let [w, h] = props
        .doubles::<2>(kOfxImageEffectPropProjectSize)
        .unwrap_or([0.0, 0.0]);
    // The project size is canonical (square-pixel) coordinates; the plan wants pixels.
    let pixels = |v: f64| {
        if v.is_finite() && v >= 0.0 {
            v.round().min(f64::from(u32::MAX)) as u32
        } else {
            0
        }
    };
    let host_props = effect.suites().host_properties();
    let text = |name| host_props.string(name, 0).ok().filter(|s| !s.is_empty());
    Ok(HostFacts {
        fps,
        frames,
        start,
        project_size: (pixels(w / par), pixels(h)),
        pixel_aspect: par,
        host_name: text(kOfxPropName),
        host_version: text(kOfxPropVersionLabel),
    })
}

/// The clip's first host frame and its length: in the General context the effect chooses
/// (frames 0 .. Duration, as its time domain says); elsewhere the host's, from the Output
/// clip's frame range, else the effect's duration from frame 0.
fn clip_frames(
    props: &PropSet,
    output: Option<&PropSet>,
    inst: &Instance,
) -> Result<(f64, usize), ClipError> {
    if inst.context == Context::General {
        let frames = inst.param(DURATION).int_at(0.0)?.max(1);
        return Ok((0.0, frames as usize));
    }
    let whole = |v: f64| v.is_finite() && v.abs() < 1e12;
    if let Some(Ok([a, b])) = output.map(|p| p.doubles::<2>(kOfxImageEffectPropFrameRange)) {
        if whole(a) && whole(b) && b >= a {
            return Ok((a, (b - a).round() as usize + 1));
        }
    }
    if let Ok(duration) = props.double(kOfxImageEffectInstancePropEffectDuration, 0) {
        if whole(duration) && duration >= 1.0 {
            return Ok((0.0, duration.round() as usize));
        }
    }
    Err(ClipError::Settings(
        "The host does not say how long the clip is: give the clip a duration on the timeline (or use GenClip in a context where it sets its own Duration).".into(),
    ))
}
