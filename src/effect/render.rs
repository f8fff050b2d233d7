//! The frame-shaped actions: region of definition, clip preferences, time domain, render.

use super::actions::Args;
use super::clip::PlannedClip;
use super::deliver::{self, Delivery};
use super::generation::{Generation, GenerationState, Generations};
use super::instance::{self, status_text, ClipState, Instance};
use super::settings::{Settings, Transfer};
use super::slate::{Slate, SlateContent, Tone};
use crate::cache::Clip;
use crate::ofx::bindings::*;
use crate::ofx::image::Image;
use crate::ofx::image_effect::Effect;
use crate::ofx::message::Progress;
use crate::ofx::{s, OfxError, OfxResult};
use crate::timeline::plan::Rect;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// What the render action was asked for, from its inArgs.
struct RenderCall {
    time: f64,
    scale: [f64; 2],
    window: OfxRectI,
    thumbnail: bool,
    /// The host says a user is editing interactively (kOfxImageEffectPropInteractiveRenderStatus).
    interactive: bool,
    /// The host renders a sequence in order: playback or an export.
    sequential: bool,
}

impl RenderCall {
    fn read(args: &Args) -> OfxResult<RenderCall> {
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
        let window = input
            .ints::<4>(kOfxImageEffectPropRenderWindow)
            .map(|[x1, y1, x2, y2]| OfxRectI { x1, y1, x2, y2 })
            .unwrap_or(OfxRectI {
                x1: i32::MIN,
                y1: i32::MIN,
                x2: i32::MAX,
                y2: i32::MAX,
            });
        // An enum ("true"/"false") in OpenFX 1.5.1; some hosts may send an int.
        let thumbnail = input
            .string(kOfxImageEffectPropThumbnailRender, 0)
            .map(|v| v == "true")
            .unwrap_or(false)
            || input
                .int(kOfxImageEffectPropThumbnailRender, 0)
                .unwrap_or(0)
                != 0;
        let flag = |name| input.int(name, 0).unwrap_or(0) != 0;
        Ok(RenderCall {
            time,
            scale,
            window,
            thumbnail,
            interactive: flag(kOfxImageEffectPropInteractiveRenderStatus),
            sequential: flag(kOfxImageEffectPropSequentialRenderStatus),
        })
    }
}

/// What a render shows: the generated clip, or the slate in a state.
enum Shown {
    Clip(Arc<Clip>, Box<PlannedClip>),
    Slate(ClipState),
}

pub fn render(effect: &Effect, inst: &Arc<Instance>, args: &Args) -> OfxResult<Outcome> {
    let call = RenderCall::read(args)?;
    let settings = Settings::read(inst, call.time)?;
    #[cfg(feature = "fault-injection")]
    if settings.prompts[0] == "genclip:fault:panic" {
        panic!("fault injection: panic in render");
    }
    let shown = match what_to_show(effect, inst, &settings, &call)? {
        Some(shown) => shown,
        None => return Ok(Outcome::Aborted),
    };
    let rect = frame_rect(effect, settings.resolution)?;
    let par = pixel_aspect_ratio(effect);
    let mut image = effect
        .clip(s(kOfxImageEffectOutputClipName))?
        .image(call.time)?;
    match shown {
        Shown::Clip(clip, planned) => {
            let rod = Rect {
                x1: rect.x1,
                y1: rect.y1,
                x2: rect.x2,
                y2: rect.y2,
            };
            let cover = deliver::cover_for(planned.plan.size, rod, call.scale, par);
            let delivered = deliver::deliver(
                &clip,
                planned.plan.sample(call.time),
                &cover,
                call.window,
                settings.transfer,
                &mut image,
                &|| effect.aborted(),
            )
            .map_err(|e| OfxError::new(kOfxStatFailed, e.0))?;
            Ok(match delivered {
                Delivery::Complete => Outcome::Done,
                Delivery::Aborted => Outcome::Aborted,
            })
        }
        Shown::Slate(state) => draw_slate(effect, &mut image, &settings, &state, &call, rect, par),
    }
}

/// Decides between the clip and the slate, generating where this render must wait for the
/// clip (docs/rendering.md has the table). `None`: the host aborted while we waited.
fn what_to_show(
    effect: &Effect,
    inst: &Instance,
    settings: &Settings,
    call: &RenderCall,
) -> OfxResult<Option<Shown>> {
    if let Some(problem) = settings.problem() {
        return Ok(Some(Shown::Slate(ClipState::Error(problem))));
    }
    let planned = match instance::plan(effect, inst) {
        Ok(p) => p,
        Err(text) => return Ok(Some(Shown::Slate(ClipState::Error(text)))),
    };
    let generations = Generations::global();
    if let Some(clip) = generations.ready(&planned.key) {
        return Ok(Some(Shown::Clip(clip, Box::new(planned))));
    }
    if call.thumbnail {
        return Ok(Some(Shown::Slate(ClipState::NotGenerated)));
    }
    let wanted = settings.auto_generate || inst.requested(&planned.key);
    // Nobody edits this instance in a GUI: a background host (render farm, `genclip render`)
    // or an instance the host says is not interactive.
    let background_host = effect
        .suites()
        .host_properties()
        .int(kOfxImageEffectHostPropIsBackground, 0)
        .is_ok_and(|v| v != 0)
        || effect
            .props()
            .and_then(|p| p.int(kOfxPropIsInteractive, 0))
            .is_ok_and(|v| v == 0);
    let must_wait = !call.interactive && (background_host || call.sequential || wanted);
    if !must_wait {
        if !wanted {
            return Ok(Some(Shown::Slate(ClipState::NotGenerated)));
        }
        let generation =
            generations.start(planned.key, planned.request.clone(), planned.device, false);
        inst.request(planned.key, generation.clone());
        return Ok(Some(match generation.state() {
            GenerationState::Ready(clip) => Shown::Clip(clip, Box::new(planned)),
            other => Shown::Slate(ClipState::of(&other)),
        }));
    }
    let generation = generations.start(planned.key, planned.request.clone(), planned.device, true);
    inst.request(planned.key, generation.clone());
    match wait_with_progress(effect, &generation) {
        GenerationState::Ready(clip) => Ok(Some(Shown::Clip(clip, Box::new(planned)))),
        GenerationState::Aborted => Ok(None),
        GenerationState::Failed(text) => Err(OfxError::new(kOfxStatFailed, text)),
        other => Err(OfxError::new(
            kOfxStatFailed,
            format!("GenClip stopped waiting for the clip in state {other:?}; render again."),
        )),
    }
}

/// Waits for a generation with the host's progress bar, stopping when the host aborts the
/// render or the user cancels the progress.
fn wait_with_progress(effect: &Effect, generation: &Generation) -> GenerationState {
    let progress = Progress::start(
        effect.suites(),
        effect.handle().cast(),
        "GenClip: generating the clip",
        "GenClip.generate",
    );
    let started = Instant::now();
    generation.wait(&mut |state| {
        let fraction = match state {
            GenerationState::Running { fraction } => *fraction,
            _ => 0.0,
        };
        // Natron forwards progress to its main thread and may answer "stop" before the bar
        // it queued exists; a cancel is believed only once the bar had time to appear.
        let cancelled =
            !progress.update(fraction).unwrap_or(true) && started.elapsed() > PROGRESS_GRACE;
        !(cancelled || effect.aborted())
    })
}

/// How long a progress bar's "stop" answer is not taken as the user's.
const PROGRESS_GRACE: Duration = Duration::from_secs(1);

fn draw_slate(
    effect: &Effect,
    image: &mut Image,
    settings: &Settings,
    state: &ClipState,
    call: &RenderCall,
    rect: OfxRectD,
    par: f64,
) -> OfxResult<Outcome> {
    let content = slate_content(state, settings, call.time, call.thumbnail);
    // The frame in full-resolution pixels, and where it starts.
    let (width, height) = ((rect.x2 - rect.x1) / par, rect.y2 - rect.y1);
    let (origin_x, origin_y) = (rect.x1 / par, rect.y1);
    let slate = Slate::layout(width, height, &content);
    let transfer = settings.transfer;
    let scale = call.scale;

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
        ClipState::Ready => ("READY".to_string(), Tone::Neutral, None),
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
