//! The frame-shaped actions: region of definition, clip preferences, time domain, render.

use super::actions::Args;
use super::instance::{status_text, ClipState, Instance};
use super::settings::{Settings, Transfer};
use super::slate::{Slate, SlateContent, Tone};
use crate::ofx::bindings::*;
use crate::ofx::image::Image;
use crate::ofx::image_effect::Effect;
use crate::ofx::{s, OfxError, OfxResult};
use std::sync::Arc;

/// How a render ended when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The host's abort flag stopped us; the image is incomplete.
    Aborted,
}

/// The frame in canonical coordinates: the chosen native size, or the host's project.
fn frame_rect(effect: &Effect, resolution: Option<(u32, u32)>) -> OfxResult<OfxRectD> {
    let props = effect.props()?;
    let par = props
        .double(kOfxImageEffectPropProjectPixelAspectRatio, 0)
        .ok()
        .filter(|p| p.is_finite() && *p > 0.0)
        .unwrap_or(1.0);
    let rect = match resolution {
        Some((w, h)) => OfxRectD {
            x1: 0.0,
            y1: 0.0,
            x2: w as f64 * par,
            y2: h as f64,
        },
        None => {
            let [w, h] = props.doubles::<2>(kOfxImageEffectPropProjectSize)?;
            let [x, y] = props
                .doubles::<2>(kOfxImageEffectPropProjectOffset)
                .unwrap_or([0.0, 0.0]);
            OfxRectD {
                x1: x,
                y1: y,
                x2: x + w,
                y2: y + h,
            }
        }
    };
    let (w, h) = (rect.x2 - rect.x1, rect.y2 - rect.y1);
    let sane = |v: f64| v.is_finite() && (1.0..=65536.0).contains(&v);
    if !(sane(w) && sane(h) && rect.x1.is_finite() && rect.y1.is_finite()) {
        return Err(OfxError::new(
            kOfxStatErrValue,
            format!("The project size {w} x {h} is not usable: set a project resolution between 1 and 65536 pixels, or pick a fixed Resolution."),
        ));
    }
    Ok(rect)
}

fn pixel_aspect_ratio(effect: &Effect) -> f64 {
    effect
        .props()
        .and_then(|p| p.double(kOfxImageEffectPropProjectPixelAspectRatio, 0))
        .ok()
        .filter(|p| p.is_finite() && *p > 0.0)
        .unwrap_or(1.0)
}

pub fn region_of_definition(effect: &Effect, inst: &Instance, args: &Args) -> OfxResult<()> {
    let time = args.input()?.double(kOfxPropTime, 0)?;
    let settings = Settings::read(inst, time)?;
    let r = frame_rect(effect, settings.resolution)?;
    args.output()?.set_doubles(
        kOfxImageEffectPropRegionOfDefinition,
        &[r.x1, r.y1, r.x2, r.y2],
    )
}

pub fn clip_preferences(args: &Args) -> OfxResult<()> {
    let out = args.output()?;
    // Every pixel is opaque (alpha 1), so premultiplied and straight are the same picture.
    out.set_string(kOfxImageEffectPropPreMultiplication, 0, s(kOfxImageOpaque))?;
    out.set_int(kOfxImageEffectFrameVarying, 0, 1)?;
    out.set_int(kOfxImageClipPropContinuousSamples, 0, 0)
}

pub fn time_domain(inst: &Instance, args: &Args) -> OfxResult<()> {
    let frames = inst
        .param(super::params::names::DURATION)
        .int_at(0.0)?
        .max(1);
    args.output()?
        .set_doubles(kOfxImageEffectPropFrameRange, &[0.0, f64::from(frames - 1)])
}

pub fn render(effect: &Effect, inst: &Arc<Instance>, args: &Args) -> OfxResult<Outcome> {
    let input = args.input()?;
    let time = input.double(kOfxPropTime, 0)?;
    if !time.is_finite() {
        return Err(OfxError::new(
            kOfxStatErrValue,
            format!("The host asked for frame {time}, which is not a time."),
        ));
    }
    let scale = input
        .doubles::<2>(kOfxImageEffectPropRenderScale)
        .unwrap_or([1.0, 1.0]);
    if !scale.iter().all(|s| s.is_finite() && *s > 0.0) {
        return Err(OfxError::new(
            kOfxStatErrValue,
            format!("The host's render scale {scale:?} is not usable."),
        ));
    }
    // An enum ("true"/"false") in OpenFX 1.5.1; some hosts may send an int.
    let thumbnail = input
        .string(kOfxImageEffectPropThumbnailRender, 0)
        .map(|v| v == "true")
        .unwrap_or(false)
        || input
            .int(kOfxImageEffectPropThumbnailRender, 0)
            .unwrap_or(0)
            != 0;
    let settings = Settings::read(inst, time)?;
    #[cfg(feature = "fault-injection")]
    if settings.prompts[0] == "genclip:fault:panic" {
        panic!("fault injection: panic in render");
    }

    let rect = frame_rect(effect, settings.resolution)?;
    let par = pixel_aspect_ratio(effect);
    let mut image = effect.clip(s(kOfxImageEffectOutputClipName))?.image(time)?;
    let content = slate_content(&inst.state(), &settings, time, thumbnail);
    // The frame in full-resolution pixels, and where it starts.
    let (width, height) = ((rect.x2 - rect.x1) / par, rect.y2 - rect.y1);
    let (origin_x, origin_y) = (rect.x1 / par, rect.y1);
    let slate = Slate::layout(width, height, &content);
    let transfer = settings.transfer;

    let (depth, components, x1) = (image.depth, image.components, image.bounds.x1);
    let pixel_bytes = image.pixel_bytes();
    for (y, row) in image.rows_mut() {
        if y % 16 == 0 && effect.aborted() {
            return Ok(Outcome::Aborted);
        }
        let v = (f64::from(y) + 0.5) / scale[1] - origin_y;
        let from_top = height - v;
        for (i, pixel) in row.chunks_exact_mut(pixel_bytes).enumerate() {
            let u = (f64::from(x1) + i as f64 + 0.5) / scale[0] - origin_x;
            let rgba = if u >= 0.0 && u < width && v >= 0.0 && v < height {
                let [r, g, b] = slate.colour_at(u, from_top).map(|c| encode(c, transfer));
                [r, g, b, 1.0]
            } else {
                [0.0; 4]
            };
            Image::store_pixel(depth, components, pixel, rgba);
        }
    }
    Ok(Outcome::Done)
}

/// A display-referred value in the transfer the user chose.
fn encode(display: f32, transfer: Transfer) -> f32 {
    match transfer {
        Transfer::Display => display,
        // The sRGB decoding curve (IEC 61966-2-1).
        Transfer::Linear if display <= 0.04045 => display / 12.92,
        Transfer::Linear => ((display + 0.055) / 1.055).powf(2.4),
    }
}

fn slate_content(state: &ClipState, settings: &Settings, time: f64, compact: bool) -> SlateContent {
    let (headline, tone, progress) = match state {
        ClipState::NotGenerated => ("NOT GENERATED".to_string(), Tone::Neutral, None),
        ClipState::Generating { fraction } => (
            format!("GENERATING {:.0}%", fraction * 100.0),
            Tone::Busy,
            Some(*fraction),
        ),
        ClipState::Error(_) => ("NEEDS ATTENTION".to_string(), Tone::Error, None),
    };
    let size = match settings.resolution {
        Some((w, h)) => format!("{w}x{h}"),
        None => "project size".to_string(),
    };
    SlateContent {
        headline,
        tone,
        detail: status_text(state),
        prompt: settings.leading_prompt().map(str::to_string),
        footer: format!(
            "frame {time}   {size}   seed {}   {} steps",
            settings.seed, settings.steps
        ),
        progress,
        compact,
    }
}
