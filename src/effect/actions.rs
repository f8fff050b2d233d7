//! Routes each OpenFX action to the code that handles it, and turns errors into statuses
//! (and, where a person should know, a message through the host).

use super::instance::{self, Instance};
use super::{describe, render, Context};
use crate::ofx::bindings::*;
use crate::ofx::image_effect::Effect;
use crate::ofx::message::{self, Severity};
use crate::ofx::props::PropSet;
use crate::ofx::{s, suites, OfxError, OfxResult};
use std::ffi::c_void;
use std::sync::Arc;

/// The property sets an action receives (either may be null, depending on the action).
pub struct Args {
    pub input: Option<PropSet>,
    pub output: Option<PropSet>,
}

impl Args {
    pub fn input(&self) -> OfxResult<&PropSet> {
        self.input.as_ref().ok_or_else(|| {
            OfxError::new(kOfxStatErrBadHandle, "the action came without its inArgs")
        })
    }

    pub fn output(&self) -> OfxResult<&PropSet> {
        self.output.as_ref().ok_or_else(|| {
            OfxError::new(kOfxStatErrBadHandle, "the action came without its outArgs")
        })
    }
}

pub fn dispatch(
    action: &str,
    handle: *const c_void,
    in_args: OfxPropertySetHandle,
    out_args: OfxPropertySetHandle,
) -> OfxStatus {
    let is = |name: &'static [u8]| action == s(name);

    if is(kOfxActionLoad) {
        return status_of(suites::fetch_suites());
    }
    if is(kOfxActionUnload) {
        suites::release_suites();
        return kOfxStatOK;
    }
    let suites = match suites::suites() {
        Ok(suites) => suites,
        Err(e) => return e.status,
    };
    let effect = match Effect::from_action_handle(handle, suites.clone()) {
        Ok(effect) => effect,
        Err(e) => return e.status,
    };
    let wrap = |h: OfxPropertySetHandle| (!h.is_null()).then(|| PropSet::new(h, suites.property));
    let args = Args {
        input: wrap(in_args),
        output: wrap(out_args),
    };

    if is(kOfxActionDescribe) {
        return status_of(describe::describe(&effect));
    }
    if is(kOfxImageEffectActionDescribeInContext) {
        return status_of(describe_in_context(&effect, &args));
    }
    if is(kOfxActionCreateInstance) {
        return reported(&effect, instance::create(&effect));
    }
    if is(kOfxActionDestroyInstance) {
        return status_of(instance::destroy(&effect));
    }

    // Every other action we handle needs a live instance.
    let known = [
        kOfxActionBeginInstanceChanged.as_slice(),
        kOfxActionEndInstanceChanged,
        kOfxActionInstanceChanged,
        kOfxImageEffectActionGetRegionOfDefinition,
        kOfxImageEffectActionGetClipPreferences,
        kOfxImageEffectActionGetTimeDomain,
        kOfxImageEffectActionIsIdentity,
        kOfxImageEffectActionRender,
        kOfxImageEffectActionBeginSequenceRender,
        kOfxImageEffectActionEndSequenceRender,
        kOfxActionPurgeCaches,
        kOfxActionSyncPrivateData,
    ];
    if !known.iter().any(|k| is(k)) {
        return kOfxStatReplyDefault;
    }
    let inst = match instance::get(&effect) {
        Ok(inst) => inst,
        Err(e) => return e.status,
    };

    if is(kOfxActionInstanceChanged) {
        reported(&effect, instance::changed(&effect, &inst, &args))
    } else if is(kOfxImageEffectActionGetRegionOfDefinition) {
        status_of(render::region_of_definition(&effect, &inst, &args))
    } else if is(kOfxImageEffectActionGetClipPreferences) {
        status_of(render::clip_preferences(&args))
    } else if is(kOfxImageEffectActionGetTimeDomain) {
        time_domain(&inst, &args)
    } else if is(kOfxImageEffectActionRender) {
        render_status(&effect, &inst, &args)
    } else if is(kOfxActionSyncPrivateData)
        || is(kOfxActionBeginInstanceChanged)
        || is(kOfxActionEndInstanceChanged)
    {
        // Parameter writes are legal here: show a clip that finished in the background.
        instance::show_ready(&inst);
        kOfxStatOK
    } else if is(kOfxImageEffectActionIsIdentity) {
        // A generator makes new pixels at every frame: never an identity.
        kOfxStatReplyDefault
    } else {
        // Begin/EndSequenceRender, PurgeCaches: every setting lives in parameters and
        // nothing is prepared per sequence, so there is nothing to do.
        kOfxStatOK
    }
}

fn status_of(result: OfxResult<()>) -> OfxStatus {
    match result {
        Ok(()) => kOfxStatOK,
        Err(e) => {
            eprintln!("GenClip: {e}");
            e.status
        }
    }
}

/// Like [`status_of`], and tells the user through the host's message suite.
fn reported(effect: &Effect, result: OfxResult<()>) -> OfxStatus {
    if let Err(e) = &result {
        message::post(
            effect.suites(),
            effect.handle().cast(),
            Severity::Error,
            "GenClip.error",
            &e.context,
        );
    }
    status_of(result)
}

fn describe_in_context(effect: &Effect, args: &Args) -> OfxResult<()> {
    let name = args.input()?.string(kOfxImageEffectPropContext, 0)?;
    let context = Context::from_ofx(&name).ok_or_else(|| {
        OfxError::new(
            kOfxStatErrUnsupported,
            format!("GenClip has no {name} context"),
        )
    })?;
    describe::describe_in_context(effect, context)
}

fn time_domain(inst: &Instance, args: &Args) -> OfxStatus {
    // Only the General context lets the effect choose its length; elsewhere it is the host's.
    if inst.context != Context::General {
        return kOfxStatReplyDefault;
    }
    status_of(render::time_domain(inst, args))
}

fn render_status(effect: &Effect, inst: &Arc<Instance>, args: &Args) -> OfxStatus {
    match render::render(effect, inst, args) {
        Ok(render::Outcome::Done) => kOfxStatOK,
        // The host asked us to stop and discards the frame. The specification names no
        // status for this; its guide's examples answer kOfxStatOK (an interrupted render is
        // not an error), and so do we, without a message.
        Ok(render::Outcome::Aborted) => kOfxStatOK,
        Err(e) => reported(effect, Err(e)),
    }
}
