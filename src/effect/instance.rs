//! Instances: their creation and destruction, the data we keep per instance, and the
//! instance-changed action (buttons, edits, the Status line).
//!
//! The instance data pointer the host stores for us is an `Arc<Instance>`. Every action takes
//! its own reference for its duration, and the pointer is checked against a registry of live
//! instances before use, so a stale or foreign pointer from a confused host is refused
//! instead of followed.

use super::actions::Args;
use super::clip::{self, ClipError, PlannedClip};
use super::describe::param_type;
use super::generation::{Generation, GenerationState, Generations};
use super::params::{self, names, Kind, PARAMS};
use super::settings::Settings;
use super::Context;
use crate::cache::CacheKey;
use crate::client::Engines;
use crate::ofx::bindings::*;
use crate::ofx::image_effect::Effect;
use crate::ofx::message::{self, Severity};
use crate::ofx::params::Param;
use crate::ofx::{s, OfxError, OfxResult};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::ffi::c_void;
use std::sync::Arc;

/// What the clip of an instance is at the moment; the slate and the Status line show it.
#[derive(Clone, Debug, PartialEq)]
pub enum ClipState {
    /// Nothing generated for the current settings.
    NotGenerated,
    /// A generation job is running.
    Generating { fraction: f64 },
    /// The clip for the current settings is generated.
    Ready,
    /// Something the user must fix, with the sentence that says how.
    Error(String),
}

impl ClipState {
    /// The state a generation shows as.
    pub fn of(generation: &GenerationState) -> ClipState {
        match generation {
            GenerationState::Waiting => ClipState::Generating { fraction: 0.0 },
            GenerationState::Running { fraction } => ClipState::Generating {
                fraction: *fraction,
            },
            GenerationState::Ready(_) => ClipState::Ready,
            GenerationState::Failed(text) => ClipState::Error(text.clone()),
            GenerationState::Aborted => ClipState::NotGenerated,
        }
    }
}

/// The generation this instance asked for last (the *Generate* button, auto-generate, or an
/// interactive render), which the next legal action shows once it is ready.
struct Requested {
    key: CacheKey,
    generation: Arc<Generation>,
}

pub struct Instance {
    pub context: Context,
    /// One handle per entry of [`PARAMS`], in the same order, type-checked at creation.
    params: Vec<Param>,
    state: Mutex<ClipState>,
    requested: Mutex<Option<Requested>>,
}

impl Instance {
    pub fn param(&self, name: &str) -> &Param {
        &self.params[params::index(name)]
    }

    pub fn state(&self) -> ClipState {
        self.state.lock().clone()
    }

    /// Whether the user asked for the clip under `key` (so renders may start it).
    pub fn requested(&self, key: &CacheKey) -> bool {
        self.requested
            .lock()
            .as_ref()
            .is_some_and(|r| r.key == *key)
    }

    /// The settings changed: the clip asked for before is not this instance's any more.
    pub fn forget_request(&self) {
        *self.requested.lock() = None;
    }

    /// Remembers `generation` as the one this instance wants; the one it wanted before is
    /// cancelled when nothing else waits for it (an edit made it obsolete).
    pub fn request(&self, key: CacheKey, generation: Arc<Generation>) {
        let mut requested = self.requested.lock();
        if let Some(old) = requested.as_ref() {
            if old.key == key {
                return;
            }
            old.generation.cancel_if_unwatched();
        }
        *requested = Some(Requested { key, generation });
    }
}

static LIVE: Lazy<Mutex<HashSet<usize>>> = Lazy::new(|| Mutex::new(HashSet::new()));

pub fn create(effect: &Effect) -> OfxResult<()> {
    let props = effect.props()?;
    let context_name = props.string(kOfxImageEffectPropContext, 0)?;
    let context = Context::from_ofx(&context_name).ok_or_else(|| {
        OfxError::new(
            kOfxStatErrUnsupported,
            format!("GenClip has no {context_name} context"),
        )
    })?;
    let set = effect.param_set()?;
    let mut handles = Vec::with_capacity(PARAMS.len());
    for spec in PARAMS {
        let (param, param_props) = set.param(spec.name, param_type(spec)).map_err(|e| {
            OfxError::new(
                e.status,
                format!("GenClip cannot start: {}. The host's copy of the effect does not match this GenClip version; remove the effect and add it again.", e.context),
            )
        })?;
        // Duration is the effect's to choose only in the General context; elsewhere the
        // host's clip length rules, so the control is hidden (on the instance, not declared
        // secret, so it can come back if the instance moves context).
        if spec.name == names::DURATION {
            let _ = param_props.set_int(
                kOfxParamPropSecret,
                0,
                i32::from(context != Context::General),
            );
        }
        handles.push(param);
    }
    let instance = Arc::new(Instance {
        context,
        params: handles,
        state: Mutex::new(ClipState::NotGenerated),
        requested: Mutex::new(None),
    });
    refresh_status(effect, &instance, 0.0);

    // Replace (and release) data a confused host left from an earlier create.
    let old = props
        .pointer(kOfxPropInstanceData, 0)
        .unwrap_or(std::ptr::null_mut());
    let raw = Arc::into_raw(instance) as *mut c_void;
    LIVE.lock().insert(raw as usize);
    if let Err(e) = props.set_pointer(kOfxPropInstanceData, 0, raw) {
        release(raw);
        return Err(e);
    }
    // A stale pointer whose address the allocator reused for the new instance is not old.
    if old != raw {
        release(old);
    }
    Ok(())
}

pub fn destroy(effect: &Effect) -> OfxResult<()> {
    let props = effect.props()?;
    let raw = props.pointer(kOfxPropInstanceData, 0)?;
    props.set_pointer(kOfxPropInstanceData, 0, std::ptr::null_mut())?;
    release(raw);
    Ok(())
}

/// Drops our reference behind an instance data pointer, if it is one of ours.
fn release(raw: *mut c_void) {
    if !raw.is_null() && LIVE.lock().remove(&(raw as usize)) {
        // SAFETY: the pointer came from Arc::into_raw in `create` and was live until now.
        drop(unsafe { Arc::from_raw(raw as *const Instance) });
    }
}

/// The instance behind an effect handle, kept alive for the caller.
pub fn get(effect: &Effect) -> OfxResult<Arc<Instance>> {
    let raw = effect.props()?.pointer(kOfxPropInstanceData, 0)?;
    let live = LIVE.lock();
    if raw.is_null() || !live.contains(&(raw as usize)) {
        return Err(OfxError::new(
            kOfxStatErrBadHandle,
            "the effect has no GenClip instance (was it created?)",
        ));
    }
    // SAFETY: the registry says the pointer is a live Arc<Instance>; the lock keeps a
    // concurrent destroy from releasing it until our count is taken.
    unsafe {
        Arc::increment_strong_count(raw as *const Instance);
        Ok(Arc::from_raw(raw as *const Instance))
    }
}

pub fn changed(effect: &Effect, inst: &Arc<Instance>, args: &Args) -> OfxResult<()> {
    let input = args.input()?;
    if input.string(kOfxPropType, 0)? != s(kOfxTypeParameter) {
        show_ready(inst);
        return Ok(());
    }
    let name = input.string(kOfxPropName, 0)?;
    let time = input.double(kOfxPropTime, 0).unwrap_or(0.0);
    match name.as_str() {
        names::RANDOMIZE_SEED => inst.param(names::SEED).set_int(random_seed()),
        names::GENERATE => {
            generate_now(effect, inst, time);
            Ok(())
        }
        // Our own writes come back as changes: nothing to do.
        names::STATUS | names::SHOWN_CLIP => Ok(()),
        _ if params::spec(&name).is_some_and(|p| !matches!(p.kind, Kind::Button)) => {
            // An edit makes what was generated out of date (a job under way still finishes
            // into the cache, where a later undo finds it).
            inst.forget_request();
            *inst.state.lock() = ClipState::NotGenerated;
            refresh_status(effect, inst, time);
            if inst.state() == ClipState::NotGenerated {
                let auto = inst
                    .param(names::AUTO_GENERATE)
                    .bool_at(time)
                    .unwrap_or(false);
                settings_edited(effect, inst, auto);
            }
            show_ready(inst);
            Ok(())
        }
        _ => {
            show_ready(inst);
            Ok(())
        }
    }
}

/// Plans the instance's clip and starts (or joins) its generation in the background; the
/// instance remembers it as the clip it wants.
fn start_generation(
    effect: &Effect,
    inst: &Instance,
    time: f64,
    retry_failed: bool,
) -> Result<Arc<Generation>, String> {
    if let Some(problem) = Settings::read(inst, time)
        .map(|s| s.problem())
        .unwrap_or_else(|e| Some(e.context))
    {
        return Err(problem);
    }
    let planned = plan(effect, inst)?;
    let generation =
        Generations::global().start(planned.key, planned.request, planned.device, retry_failed);
    inst.request(planned.key, generation.clone());
    Ok(generation)
}

/// The instance's whole clip, cached under the process's frame cache, or the sentence that
/// says why there is none.
pub fn plan(effect: &Effect, inst: &Instance) -> Result<PlannedClip, String> {
    let cache = Generations::global().cache()?;
    let mut planned =
        clip::host::plan_instance(effect, inst, cache.disk().root()).map_err(|e| match e {
            ClipError::Settings(text) => text,
            host => host.to_string(),
        })?;
    // A GPU-made clip is cached under its own key; the request keeps the plan's key, from
    // which the GPU engine derives it (docs/gpu.md).
    planned.key = Engines::global()
        .compute_class(planned.device)
        .key_for(&planned.key);
    Ok(planned)
}

/// After an edit: the clip of the new settings may be cached already (an undo, a setting
/// that came back); else auto-generate starts it.
fn settings_edited(effect: &Effect, inst: &Instance, auto_generate: bool) {
    let Ok(planned) = plan(effect, inst) else {
        return;
    };
    let generations = Generations::global();
    if generations.ready(&planned.key).is_some() || auto_generate {
        let generation = generations.start(planned.key, planned.request, planned.device, false);
        inst.request(planned.key, generation);
    }
}

/// The *Generate* button: start now (also after a failure), or show the clip if it is ready.
fn generate_now(effect: &Effect, inst: &Instance, time: f64) {
    match start_generation(effect, inst, time, true) {
        Ok(generation) => *inst.state.lock() = ClipState::of(&generation.state()),
        Err(text) => {
            message::post(
                effect.suites(),
                effect.handle().cast(),
                Severity::Warning,
                "GenClip.generate",
                &text,
            );
            *inst.state.lock() = ClipState::Error(text);
        }
    }
    write_status(inst);
    show_ready(inst);
}

/// Called in every action where parameter writes are legal (instance changed, sync private
/// data): when the clip this instance asked for has become ready (or failed), say so in
/// Status, and change the secret *shownClip* parameter so that the host renders the frames
/// again instead of serving the slate it cached (docs/rendering.md).
pub fn show_ready(inst: &Instance) {
    let (key, state, notice) = {
        let requested = inst.requested.lock();
        let Some(r) = requested.as_ref() else {
            return;
        };
        let g = &r.generation;
        let key = g.stored_under().unwrap_or(r.key).to_hex();
        (key, ClipState::of(&g.state()), g.notice())
    };
    if state == ClipState::Ready {
        let shown = inst.param(names::SHOWN_CLIP);
        if shown.string_at(0.0).ok().as_deref() != Some(key.as_str()) {
            let _ = shown.set_string(&key);
        }
    }
    let changed = {
        let mut current = inst.state.lock();
        let changed = *current != state;
        *current = state.clone();
        changed
    };
    if changed {
        let text = match notice {
            Some(notice) if state == ClipState::Ready => {
                format!("{} {notice}", status_text(&state))
            }
            _ => status_text(&state),
        };
        let _ = inst.param(names::STATUS).set_string(&text);
    }
}

/// Re-checks the settings at `time` and shows the result in the Status line (and as a
/// persistent message on hosts that have them).
fn refresh_status(effect: &Effect, inst: &Instance, time: f64) {
    let problem = Settings::read(inst, time)
        .map(|s| s.problem())
        .unwrap_or_else(|e| Some(e.context));
    let suites = effect.suites();
    let handle = effect.handle().cast();
    match &problem {
        Some(text) => {
            message::set_persistent(suites, handle, Severity::Warning, "GenClip.settings", text)
        }
        None => message::clear_persistent(suites, handle),
    }
    {
        let mut state = inst.state.lock();
        if !matches!(*state, ClipState::Generating { .. }) {
            *state = problem
                .map(ClipState::Error)
                .unwrap_or(ClipState::NotGenerated);
        }
    }
    write_status(inst);
}

fn write_status(inst: &Instance) {
    let _ = inst
        .param(names::STATUS)
        .set_string(&status_text(&inst.state()));
}

/// The one sentence the Status line and the slate show for a state.
pub fn status_text(state: &ClipState) -> String {
    match state {
        ClipState::NotGenerated => "Not generated: press Generate to make the clip.".to_string(),
        ClipState::Generating { fraction } => format!(
            "Generating: {:.0}%. The clip appears when it is done; if the viewer still shows this slate then, press Generate.",
            fraction * 100.0
        ),
        ClipState::Ready => "Ready: the clip is generated and cached.".to_string(),
        ClipState::Error(text) => text.clone(),
    }
}

fn random_seed() -> i32 {
    // Good enough for picking a seed: the clock's nanoseconds mixed with a counter, so
    // two presses in the same instant still differ.
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x & 0x7fff_ffff) as i32
}
