//! The describe and describe-in-context actions: what GenClip is, and its clips and
//! parameters per context.
//!
//! These actions never fail for a context we support: a host that rejects one property (an
//! unknown name, an older API) still gets everything else, and the failure is only logged.

use super::params::{Kind, Page, ParamSpec, TextMode, PARAMS};
use super::{Context, PLUGIN_DESCRIPTION};
use crate::ofx::bindings::*;
use crate::ofx::image_effect::Effect;
use crate::ofx::props::PropSet;
use crate::ofx::{s, OfxResult};

/// Keeps going after a property the host refused, noting it on stderr.
fn soft(result: OfxResult<()>) {
    if let Err(e) = result {
        eprintln!("GenClip: describe: {e}");
    }
}

pub fn describe(effect: &Effect) -> OfxResult<()> {
    let p = effect.props()?;
    soft(p.set_string(kOfxPropLabel, 0, "GenClip"));
    soft(p.set_string(kOfxPropShortLabel, 0, "GenClip"));
    soft(p.set_string(kOfxPropLongLabel, 0, "GenClip text-to-video"));
    soft(p.set_string(kOfxPropPluginDescription, 0, PLUGIN_DESCRIPTION));
    soft(p.set_string(kOfxPropVersionLabel, 0, env!("CARGO_PKG_VERSION")));
    // Nuke and Natron list generators (Constant, ColorBars, Noise) under "Image".
    soft(p.set_string(kOfxImageEffectPluginPropGrouping, 0, "Image"));
    soft(p.set_strings(
        kOfxImageEffectPropSupportedContexts,
        &[
            s(kOfxImageEffectContextGenerator),
            s(kOfxImageEffectContextGeneral),
            s(kOfxImageEffectContextFilter),
        ],
    ));
    // Float first: it is what Resolve renders in.
    soft(p.set_strings(
        kOfxImageEffectPropSupportedPixelDepths,
        &[
            s(kOfxBitDepthFloat),
            s(kOfxBitDepthShort),
            s(kOfxBitDepthByte),
        ],
    ));
    soft(p.set_int(kOfxImageEffectPluginPropSingleInstance, 0, 0));
    soft(p.set_int(kOfxImageEffectPluginPropHostFrameThreading, 0, 0));
    soft(p.set_int(kOfxImageEffectPropSupportsMultiResolution, 0, 1));
    soft(p.set_int(kOfxImageEffectPropSupportsTiles, 0, 0));
    soft(p.set_int(kOfxImageEffectPropTemporalClipAccess, 0, 0));
    soft(p.set_int(kOfxImageEffectPropSupportsMultipleClipPARs, 0, 0));
    soft(p.set_int(kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0));
    soft(p.set_int(kOfxImageEffectPluginPropFieldRenderTwiceAlways, 0, 0));
    // One instance's renders share its state (the clip it generates), so instance-safe: the
    // host may render different instances at once, and we lock within one.
    soft(p.set_string(
        kOfxImageEffectPluginRenderThreadSafety,
        0,
        s(kOfxImageEffectRenderInstanceSafe),
    ));
    // The output size follows the Resolution parameter: ask the host to re-run clip
    // preferences when it changes.
    soft(p.set_string(
        kOfxImageEffectPropClipPreferencesSlaveParam,
        0,
        super::params::names::RESOLUTION,
    ));
    Ok(())
}

pub fn describe_in_context(effect: &Effect, context: Context) -> OfxResult<()> {
    let output = effect.define_clip(kOfxImageEffectOutputClipName)?;
    define_clip_formats(&output);
    if context == Context::Filter {
        // Hosts that only load filters (MLT: Kdenlive, Shotcut) need a Source clip; it is not
        // read yet (image-to-video comes later), so it is optional.
        let source = effect.define_clip(kOfxImageEffectSimpleSourceClipName)?;
        define_clip_formats(&source);
        soft(source.set_int(kOfxImageClipPropOptional, 0, 1));
    }
    define_params(effect)
}

fn define_clip_formats(clip: &PropSet) {
    soft(clip.set_strings(
        kOfxImageEffectPropSupportedComponents,
        &[s(kOfxImageComponentRGBA), s(kOfxImageComponentRGB)],
    ));
    soft(clip.set_int(kOfxImageEffectPropSupportsTiles, 0, 0));
    soft(clip.set_int(kOfxImageClipPropIsMask, 0, 0));
}

fn define_params(effect: &Effect) -> OfxResult<()> {
    let set = effect.param_set()?;
    let host = effect.suites().host_properties();
    let strings_animate = host
        .int(kOfxParamHostPropSupportsStringAnimation, 0)
        .unwrap_or(0)
        != 0;
    let nuke_like = host
        .string(kOfxPropName, 0)
        .map(|n| n.contains("nuke"))
        .unwrap_or(false);

    for spec in PARAMS {
        let props = match set.define(param_type(spec), spec.name) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("GenClip: describe: {e}");
                continue;
            }
        };
        describe_param(&props, spec, strings_animate, nuke_like);
    }
    for page in Page::ALL {
        let Ok(props) = set.define(kOfxParamTypePage, page.name()) else {
            continue;
        };
        soft(props.set_string(kOfxPropLabel, 0, page.label()));
        let children: Vec<&str> = PARAMS
            .iter()
            .filter(|p| p.page == page)
            .filter(|p| {
                !matches!(
                    p.kind,
                    Kind::Text {
                        mode: TextMode::Hidden,
                        ..
                    }
                )
            })
            .map(|p| p.name)
            .collect();
        soft(props.set_strings(kOfxParamPropPageChild, &children));
    }
    Ok(())
}

pub fn param_type(spec: &ParamSpec) -> &'static [u8] {
    match spec.kind {
        Kind::Text { .. } => kOfxParamTypeString,
        Kind::Double { .. } => kOfxParamTypeDouble,
        Kind::Int { .. } => kOfxParamTypeInteger,
        Kind::Bool { .. } => kOfxParamTypeBoolean,
        Kind::Choice { .. } => kOfxParamTypeChoice,
        Kind::Button => kOfxParamTypePushButton,
    }
}

fn describe_param(p: &PropSet, spec: &ParamSpec, strings_animate: bool, nuke_like: bool) {
    soft(p.set_string(kOfxPropLabel, 0, spec.label));
    soft(p.set_string(kOfxParamPropHint, 0, spec.hint));
    soft(p.set_string(kOfxParamPropScriptName, 0, spec.name));
    match spec.kind {
        Kind::Text { mode, default } => {
            let mode_name: &'static [u8] = match mode {
                TextMode::SingleLine => kOfxParamStringIsSingleLine,
                TextMode::MultiLine => kOfxParamStringIsMultiLine,
                TextMode::DirectoryPath => kOfxParamStringIsDirectoryPath,
                TextMode::Label => kOfxParamStringIsLabel,
                TextMode::Hidden => kOfxParamStringIsSingleLine,
            };
            soft(p.set_string(kOfxParamPropStringMode, 0, s(mode_name)));
            soft(p.set_string(kOfxParamPropDefault, 0, default));
            // Prompts animate only where the host really keys strings; weights are the
            // portable way to change prompts over time.
            soft(p.set_int(
                kOfxParamPropAnimates,
                0,
                i32::from(strings_animate && mode == TextMode::MultiLine),
            ));
            if mode == TextMode::Label {
                soft(p.set_int(kOfxParamPropEvaluateOnChange, 0, 0));
                soft(p.set_int(kOfxParamPropPersistant, 0, 0));
                soft(p.set_int(kOfxParamPropCanUndo, 0, 0));
            }
            if mode == TextMode::Hidden {
                // A value change must reach the host's render hash (evaluate on change) and
                // survive saving; the user never sees or undoes it.
                soft(p.set_int(kOfxParamPropSecret, 0, 1));
                soft(p.set_int(kOfxParamPropEvaluateOnChange, 0, 1));
                soft(p.set_int(kOfxParamPropCanUndo, 0, 0));
            }
        }
        Kind::Double {
            default,
            min,
            max,
            display,
            animates,
        } => {
            soft(p.set_string(kOfxParamPropDoubleType, 0, s(kOfxParamDoubleTypePlain)));
            soft(p.set_double(kOfxParamPropDefault, 0, default));
            soft(p.set_double(kOfxParamPropMin, 0, min));
            soft(p.set_double(kOfxParamPropMax, 0, max));
            soft(p.set_double(kOfxParamPropDisplayMin, 0, display.0));
            soft(p.set_double(kOfxParamPropDisplayMax, 0, display.1));
            soft(p.set_double(
                kOfxParamPropIncrement,
                0,
                if max - min <= 1.0 { 0.01 } else { 0.1 },
            ));
            soft(p.set_int(kOfxParamPropDigits, 0, 2));
            soft(p.set_int(kOfxParamPropAnimates, 0, i32::from(animates)));
        }
        Kind::Int {
            default,
            min,
            max,
            display,
        } => {
            soft(p.set_int(kOfxParamPropDefault, 0, default));
            soft(p.set_int(kOfxParamPropMin, 0, min));
            soft(p.set_int(kOfxParamPropMax, 0, max));
            soft(p.set_int(kOfxParamPropDisplayMin, 0, display.0));
            soft(p.set_int(kOfxParamPropDisplayMax, 0, display.1));
            soft(p.set_int(kOfxParamPropAnimates, 0, 0));
        }
        Kind::Bool { default } => {
            soft(p.set_int(kOfxParamPropDefault, 0, i32::from(default)));
            soft(p.set_int(kOfxParamPropAnimates, 0, 0));
        }
        Kind::Choice { options, default } => {
            soft(p.set_strings(kOfxParamPropChoiceOption, options));
            let default = if spec.name == super::params::names::OUTPUT_TRANSFER && nuke_like {
                1 // Nuke works in scene-linear.
            } else {
                default
            };
            soft(p.set_int(kOfxParamPropDefault, 0, default));
            soft(p.set_int(kOfxParamPropAnimates, 0, 0));
        }
        Kind::Button => {}
    }
}
