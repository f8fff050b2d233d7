//! Image effects (plugin descriptor, context descriptors, instances), their clips and images,
//! and the image effect suite.

use std::alloc::{dealloc, Layout};
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

use super::app::{Host, HostMessage};
use super::ffi::{c_text, guard, guard_or, k, ofx, put, reply};
use super::handles::{self, Obj};
use super::image::RenderTarget;
use super::params::ParamSet;
use super::props::{Access, PropValue, PropertySet, RO, RW, VAR};
use super::suites::raw_alloc;
use super::threadctx;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EffectKind {
    /// The handle of kOfxActionDescribe.
    PluginDescriptor,
    /// The handle of kOfxImageEffectActionDescribeInContext.
    ContextDescriptor,
    Instance,
}

/// An image effect handle's object.
pub(crate) struct Effect {
    pub handle: usize,
    pub kind: EffectKind,
    pub props: Arc<PropertySet>,
    pub params: Arc<ParamSet>,
    clips: RwLock<Vec<Arc<Clip>>>,
    pub host: Weak<Host>,
    /// Renders in progress on this instance (any thread).
    pub renders: Mutex<Vec<Arc<RenderTarget>>>,
    /// The message set with setPersistentMessage, until cleared.
    pub persistent: Mutex<Option<HostMessage>>,
}

/// A clip handle's object.
pub(crate) struct Clip {
    pub handle: usize,
    pub name: String,
    pub props: Arc<PropertySet>,
    pub instance: bool,
    /// The handle of the effect the clip belongs to.
    pub effect: usize,
}

/// An image handle (a property set) and the render target it shows.
pub(crate) struct ImageObj {
    pub props: Arc<PropertySet>,
    pub target: Arc<RenderTarget>,
}

/// A block of image memory (imageMemoryAlloc).
pub(crate) struct ImageMemory {
    ptr: usize,
    layout: Layout,
    locks: Mutex<u32>,
}

impl Drop for ImageMemory {
    fn drop(&mut self) {
        unsafe { dealloc(self.ptr as *mut u8, self.layout) };
    }
}

fn s(v: &str) -> PropValue {
    PropValue::Str(vec![v.to_string()])
}

fn i(v: i32) -> PropValue {
    PropValue::Int(vec![v])
}

fn d(v: &[f64]) -> PropValue {
    PropValue::Double(v.to_vec())
}

const LABELS: [&[u8]; 3] = [
    ofx::kOfxPropLabel,
    ofx::kOfxPropShortLabel,
    ofx::kOfxPropLongLabel,
];

/// Instance properties a plugin may change.
const INSTANCE_WRITABLE: [&[u8]; 3] = [
    ofx::kOfxPropInstanceData,
    ofx::kOfxImageEffectInstancePropSequentialRender,
    ofx::kOfxImageEffectPropSupportsTiles,
];

impl Effect {
    fn register(self) -> Arc<Effect> {
        let e = Arc::new(self);
        handles::insert(e.handle, Obj::Effect(e.clone()));
        e
    }

    /// The descriptor kOfxActionDescribe fills in, with the spec's defaults.
    pub fn plugin_descriptor(host: &Arc<Host>, file_path: &str) -> Arc<Effect> {
        let p = PropertySet::new("plugin descriptor", Access::Open);
        let def = |n: &[u8], v: PropValue| p.define(k(n), v, RW);
        def(ofx::kOfxPropType, s(k(ofx::kOfxTypeImageEffect)));
        for label in LABELS {
            def(label, s(""));
        }
        p.define(k(ofx::kOfxPropVersion), PropValue::Int(vec![]), VAR);
        def(ofx::kOfxPropVersionLabel, s(""));
        def(ofx::kOfxPropPluginDescription, s(""));
        p.define(
            k(ofx::kOfxImageEffectPropSupportedContexts),
            PropValue::Str(vec![]),
            VAR,
        );
        p.define(
            k(ofx::kOfxImageEffectPropSupportedPixelDepths),
            PropValue::Str(vec![]),
            VAR,
        );
        p.define(
            k(ofx::kOfxImageEffectPropClipPreferencesSlaveParam),
            PropValue::Str(vec![]),
            VAR,
        );
        def(ofx::kOfxImageEffectPluginPropGrouping, s(""));
        def(ofx::kOfxImageEffectPluginPropSingleInstance, i(0));
        def(
            ofx::kOfxImageEffectPluginRenderThreadSafety,
            s(k(ofx::kOfxImageEffectRenderInstanceSafe)),
        );
        def(ofx::kOfxImageEffectPluginPropHostFrameThreading, i(1));
        def(
            ofx::kOfxImageEffectPluginPropOverlayInteractV1,
            PropValue::Pointer(vec![0]),
        );
        def(ofx::kOfxImageEffectPropSupportsMultiResolution, i(1));
        def(ofx::kOfxImageEffectPropSupportsTiles, i(1));
        def(ofx::kOfxImageEffectPropTemporalClipAccess, i(0));
        def(ofx::kOfxImageEffectPluginPropFieldRenderTwiceAlways, i(1));
        def(ofx::kOfxImageEffectPropSupportsMultipleClipDepths, i(0));
        def(ofx::kOfxImageEffectPropSupportsMultipleClipPARs, i(0));
        def(ofx::kOfxImageEffectInstancePropSequentialRender, i(0));
        let gpus: [&[u8]; 4] = [
            ofx::kOfxImageEffectPropOpenGLRenderSupported,
            ofx::kOfxImageEffectPropCudaRenderSupported,
            ofx::kOfxImageEffectPropMetalRenderSupported,
            ofx::kOfxImageEffectPropOpenCLRenderSupported,
        ];
        for gpu in gpus {
            def(gpu, s("false"));
        }
        p.define(k(ofx::kOfxPluginPropFilePath), s(file_path), RO);
        Self::new(
            EffectKind::PluginDescriptor,
            p,
            ParamSet::descriptor(Arc::downgrade(host)),
            Vec::new(),
            host,
        )
    }

    /// A fresh descriptor for DescribeInContext, starting from what Describe set.
    pub fn context_descriptor(host: &Arc<Host>, plugin: &Effect, context: &str) -> Arc<Effect> {
        let p = PropertySet::new("context descriptor", Access::Open);
        p.copy_from(&plugin.props, RW);
        p.set_flags(&[k(ofx::kOfxPluginPropFilePath)], true);
        p.define(k(ofx::kOfxImageEffectPropContext), s(context), RO);
        Self::new(
            EffectKind::ContextDescriptor,
            p,
            ParamSet::descriptor(Arc::downgrade(host)),
            Vec::new(),
            host,
        )
    }

    /// An instance built from a context descriptor: properties, clips and parameters.
    pub fn instance(
        host: &Arc<Host>,
        plugin: &Effect,
        desc: &Effect,
        context: &str,
    ) -> Arc<Effect> {
        let o = host.options();
        let p = PropertySet::new("effect instance", Access::Strict);
        p.copy_from(&desc.props, RO);
        let def = |n: &[u8], v: PropValue| p.define(k(n), v, RO);
        def(ofx::kOfxPropType, s(k(ofx::kOfxTypeImageEffectInstance)));
        def(ofx::kOfxImageEffectPropContext, s(context));
        def(ofx::kOfxPropInstanceData, PropValue::Pointer(vec![0]));
        def(ofx::kOfxPropIsInteractive, i(0));
        def(
            ofx::kOfxImageEffectPropProjectSize,
            d(&[o.project_size.0, o.project_size.1]),
        );
        def(
            ofx::kOfxImageEffectPropProjectOffset,
            d(&[o.project_offset.0, o.project_offset.1]),
        );
        let extent = o.project_extent();
        def(
            ofx::kOfxImageEffectPropProjectExtent,
            d(&[extent.0, extent.1]),
        );
        def(
            ofx::kOfxImageEffectPropProjectPixelAspectRatio,
            d(&[o.pixel_aspect_ratio]),
        );
        def(
            ofx::kOfxImageEffectInstancePropEffectDuration,
            d(&[o.frame_range.1 - o.frame_range.0 + 1.0]),
        );
        let sequential = desc
            .props
            .int(k(ofx::kOfxImageEffectInstancePropSequentialRender), 0)
            .unwrap_or(0);
        def(
            ofx::kOfxImageEffectInstancePropSequentialRender,
            i(sequential),
        );
        def(ofx::kOfxImageEffectPropFrameRate, d(&[o.frame_rate]));
        def(
            ofx::kOfxImageEffectPropPluginHandle,
            PropValue::Pointer(vec![plugin.handle]),
        );
        let writable: Vec<&str> = INSTANCE_WRITABLE.iter().map(|n| k(n)).collect();
        p.set_flags(&writable, false);

        let params = ParamSet::instantiate(&desc.params, Arc::downgrade(host));
        let e = Self::new(EffectKind::Instance, p, params, Vec::new(), host);
        let clips = desc
            .clips()
            .iter()
            .map(|c| Clip::instance(c, e.handle, host))
            .collect();
        *e.clips.write() = clips;
        e
    }

    fn new(
        kind: EffectKind,
        props: Arc<PropertySet>,
        params: Arc<ParamSet>,
        clips: Vec<Arc<Clip>>,
        host: &Arc<Host>,
    ) -> Arc<Effect> {
        Effect {
            handle: handles::reserve(),
            kind,
            props,
            params,
            clips: RwLock::new(clips),
            host: Arc::downgrade(host),
            renders: Mutex::new(Vec::new()),
            persistent: Mutex::new(None),
        }
        .register()
    }

    /// Frees the effect's handle and everything it owns.
    pub fn release(&self) {
        handles::remove(self.handle);
        self.props.release();
        self.params.release();
        for c in self.clips.read().iter() {
            handles::remove(c.handle);
            c.props.release();
        }
    }

    pub fn clips(&self) -> Vec<Arc<Clip>> {
        self.clips.read().clone()
    }

    pub fn clip(&self, name: &str) -> Option<Arc<Clip>> {
        self.clips.read().iter().find(|c| c.name == name).cloned()
    }

    /// The host's default region of definition: the project extent (we have no inputs).
    pub fn default_rod(&self) -> ofx::OfxRectD {
        let (x2, y2) = self
            .host
            .upgrade()
            .map(|h| h.options().project_extent())
            .unwrap_or((0.0, 0.0));
        ofx::OfxRectD {
            x1: 0.0,
            y1: 0.0,
            x2,
            y2,
        }
    }

    /// Whether the host wants work on this effect stopped (abort_after): for `abort()`, once
    /// that long has passed since the render in progress began (this thread's render, else
    /// the oldest on the instance); for progress updates (`any_action`), since the action in
    /// progress on this thread began, whatever it is, so long edits can be cancelled too.
    pub fn abort_requested(&self, any_action: bool) -> bool {
        let Some(limit) = self.host.upgrade().and_then(|h| h.options().abort_after) else {
            return false;
        };
        let this_thread = if any_action {
            threadctx::action_start(self.handle)
        } else {
            threadctx::render_of(self.handle).map(|r| r.started)
        };
        let started = this_thread.or_else(|| self.renders.lock().iter().map(|r| r.started).min());
        started.is_some_and(|t| t.elapsed() >= limit)
    }

    fn define_clip(&self, name: &str) -> Result<Arc<Clip>, i32> {
        let mut clips = self.clips.write();
        if clips.iter().any(|c| c.name == name) {
            return Err(ofx::kOfxStatErrExists);
        }
        let c = Clip::descriptor(name, self.handle);
        clips.push(c.clone());
        Ok(c)
    }
}

impl Clip {
    fn register(self) -> Arc<Clip> {
        let c = Arc::new(self);
        handles::insert(c.handle, Obj::Clip(c.clone()));
        c
    }

    fn descriptor(name: &str, effect: usize) -> Arc<Clip> {
        let p = PropertySet::new("clip descriptor", Access::Open);
        let def = |n: &[u8], v: PropValue| p.define(k(n), v, RW);
        def(ofx::kOfxPropType, s(k(ofx::kOfxTypeClip)));
        p.define(k(ofx::kOfxPropName), s(name), RO);
        for label in LABELS {
            def(label, s(name));
        }
        p.define(
            k(ofx::kOfxImageEffectPropSupportedComponents),
            PropValue::Str(vec![]),
            VAR,
        );
        def(ofx::kOfxImageEffectPropTemporalClipAccess, i(0));
        def(ofx::kOfxImageClipPropOptional, i(0));
        def(
            ofx::kOfxImageClipPropFieldExtraction,
            s(k(ofx::kOfxImageFieldDoubled)),
        );
        def(ofx::kOfxImageClipPropIsMask, i(0));
        def(ofx::kOfxImageEffectPropSupportsTiles, i(1));
        Clip {
            handle: handles::reserve(),
            name: name.to_string(),
            props: p,
            instance: false,
            effect,
        }
        .register()
    }

    /// A clip instance. Only the output is connected: this host has no footage to feed in.
    fn instance(desc: &Clip, effect: usize, host: &Arc<Host>) -> Arc<Clip> {
        let o = host.options();
        let p = PropertySet::new("clip instance", Access::Strict);
        p.copy_from(&desc.props, RO);
        let def = |n: &[u8], v: PropValue| p.define(k(n), v, RO);
        let output = desc.name == k(ofx::kOfxImageEffectOutputClipName);
        let rgba = s(k(ofx::kOfxImageComponentRGBA));
        let float = s(k(ofx::kOfxBitDepthFloat));
        let range = d(&[o.frame_range.0, o.frame_range.1]);
        def(ofx::kOfxImageEffectPropPixelDepth, float.clone());
        def(ofx::kOfxImageEffectPropComponents, rgba.clone());
        def(ofx::kOfxImageClipPropUnmappedPixelDepth, float);
        def(ofx::kOfxImageClipPropUnmappedComponents, rgba);
        def(
            ofx::kOfxImageEffectPropPreMultiplication,
            s(k(ofx::kOfxImagePreMultiplied)),
        );
        def(
            ofx::kOfxImagePropPixelAspectRatio,
            d(&[o.pixel_aspect_ratio]),
        );
        def(ofx::kOfxImageEffectPropFrameRate, d(&[o.frame_rate]));
        def(ofx::kOfxImageEffectPropFrameRange, range.clone());
        def(
            ofx::kOfxImageEffectPropUnmappedFrameRate,
            d(&[o.frame_rate]),
        );
        def(ofx::kOfxImageEffectPropUnmappedFrameRange, range);
        def(
            ofx::kOfxImageClipPropFieldOrder,
            s(k(ofx::kOfxImageFieldNone)),
        );
        def(ofx::kOfxImageClipPropConnected, i(output as i32));
        def(ofx::kOfxImageClipPropContinuousSamples, i(0));
        Clip {
            handle: handles::reserve(),
            name: desc.name.clone(),
            props: p,
            instance: true,
            effect,
        }
        .register()
    }

    pub fn is_output(&self) -> bool {
        self.name == k(ofx::kOfxImageEffectOutputClipName)
    }
}

/// The render of `effect` at `time` that clipGetImage means: this thread's, else any
/// thread's render of that instance at that time.
fn render_target(effect: &Effect, time: f64) -> Option<Arc<RenderTarget>> {
    let same = |t: f64| (t - time).abs() < 1e-6;
    if let Some(t) = threadctx::render_of(effect.handle) {
        return same(t.time).then_some(t);
    }
    effect.renders.lock().iter().find(|t| same(t.time)).cloned()
}

/// A new image handle on a render target.
fn image_handle(clip: &Clip, effect: &Effect, target: &Arc<RenderTarget>) -> usize {
    let props = Arc::new(PropertySet::unregistered("image", Access::Strict));
    let b = target.bounds;
    let premult = clip
        .props
        .str(k(ofx::kOfxImageEffectPropPreMultiplication), 0)
        .unwrap_or_default();
    let par = clip
        .props
        .double(k(ofx::kOfxImagePropPixelAspectRatio), 0)
        .unwrap_or(1.0);
    let def = |n: &[u8], v: PropValue| props.define(k(n), v, RO);
    def(ofx::kOfxPropType, s(k(ofx::kOfxTypeImage)));
    def(
        ofx::kOfxImagePropData,
        PropValue::Pointer(vec![target.data() as usize]),
    );
    def(
        ofx::kOfxImagePropBounds,
        PropValue::Int(vec![b.x1, b.y1, b.x2, b.y2]),
    );
    def(
        ofx::kOfxImagePropRegionOfDefinition,
        PropValue::Int(vec![b.x1, b.y1, b.x2, b.y2]),
    );
    def(ofx::kOfxImagePropRowBytes, i(target.row_bytes() as i32));
    def(
        ofx::kOfxImageEffectPropPixelDepth,
        s(target.depth.ofx_name()),
    );
    def(
        ofx::kOfxImageEffectPropComponents,
        s(target.components.ofx_name()),
    );
    def(ofx::kOfxImageEffectPropPreMultiplication, s(&premult));
    def(
        ofx::kOfxImageEffectPropRenderScale,
        d(&[target.render_scale.0, target.render_scale.1]),
    );
    def(ofx::kOfxImagePropPixelAspectRatio, d(&[par]));
    def(ofx::kOfxImagePropField, s(k(ofx::kOfxImageFieldNone)));
    def(
        ofx::kOfxImagePropUniqueIdentifier,
        s(&format!("genclip-{:x}-{}", effect.handle, target.id)),
    );
    let handle = props.handle;
    handles::insert(
        handle,
        Obj::Image(Arc::new(ImageObj {
            props,
            target: target.clone(),
        })),
    );
    target.images.lock().push(handle);
    target.fetched.fetch_add(1, Ordering::Relaxed);
    handle
}

// ----- the image effect suite -----

unsafe extern "C" fn get_property_set(
    e: ofx::OfxImageEffectHandle,
    out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    // SAFETY: `out` comes from the plugin, null or writable.
    guard(|| unsafe {
        reply(
            handles::effect(e as usize).map(|e| e.props.as_handle()),
            out,
        )
    })
}

unsafe extern "C" fn get_param_set(
    e: ofx::OfxImageEffectHandle,
    out: *mut ofx::OfxParamSetHandle,
) -> ofx::OfxStatus {
    // SAFETY: `out` comes from the plugin, null or writable.
    guard(|| unsafe {
        reply(
            handles::effect(e as usize).map(|e| e.params.handle as ofx::OfxParamSetHandle),
            out,
        )
    })
}

unsafe extern "C" fn clip_define(
    e: ofx::OfxImageEffectHandle,
    name: *const c_char,
    out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        let Some(e) = handles::effect(e as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        if e.kind == EffectKind::Instance {
            // Clips are defined while describing, never on instances.
            return ofx::kOfxStatErrUnsupported;
        }
        let Some(name) = c_text(name) else {
            return ofx::kOfxStatErrValue;
        };
        match e.define_clip(&name) {
            Ok(c) => {
                if !out.is_null() {
                    put(out, c.props.as_handle());
                }
                ofx::kOfxStatOK
            }
            Err(st) => st,
        }
    })
}

unsafe extern "C" fn clip_get_handle(
    e: ofx::OfxImageEffectHandle,
    name: *const c_char,
    clip: *mut ofx::OfxImageClipHandle,
    props: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        let Some(e) = handles::effect(e as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        let Some(name) = c_text(name) else {
            return ofx::kOfxStatErrUnknown;
        };
        let Some(c) = e.clip(&name) else {
            return ofx::kOfxStatErrUnknown;
        };
        if clip.is_null() {
            return ofx::kOfxStatErrValue;
        }
        put(clip, c.handle as ofx::OfxImageClipHandle);
        if !props.is_null() {
            put(props, c.props.as_handle());
        }
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn clip_get_property_set(
    c: ofx::OfxImageClipHandle,
    out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    // SAFETY: `out` comes from the plugin, null or writable.
    guard(|| unsafe { reply(handles::clip(c as usize).map(|c| c.props.as_handle()), out) })
}

unsafe extern "C" fn clip_get_image(
    c: ofx::OfxImageClipHandle,
    time: f64,
    _region: *const ofx::OfxRectD,
    out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    guard(|| {
        let Some(c) = handles::clip(c as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        if !c.instance {
            return ofx::kOfxStatErrBadHandle;
        }
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        let Some(e) = handles::effect(c.effect) else {
            return ofx::kOfxStatErrBadHandle;
        };
        // Inputs are never connected here; the output only exists during its render.
        if !c.is_output() {
            return ofx::kOfxStatFailed;
        }
        let Some(target) = render_target(&e, time) else {
            return ofx::kOfxStatFailed;
        };
        let h = image_handle(&c, &e, &target);
        unsafe { put(out, h as ofx::OfxPropertySetHandle) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn clip_release_image(h: ofx::OfxPropertySetHandle) -> ofx::OfxStatus {
    guard(|| {
        let Some(img) = handles::image(h as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        handles::remove(h as usize);
        img.target.images.lock().retain(|x| *x != h as usize);
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn clip_get_region_of_definition(
    c: ofx::OfxImageClipHandle,
    _time: f64,
    out: *mut ofx::OfxRectD,
) -> ofx::OfxStatus {
    guard(|| {
        let Some(c) = handles::clip(c as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        let Some(e) = handles::effect(c.effect) else {
            return ofx::kOfxStatErrBadHandle;
        };
        if !c.instance {
            return ofx::kOfxStatErrBadHandle;
        }
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        unsafe { put(out, e.default_rod()) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn abort(e: ofx::OfxImageEffectHandle) -> c_int {
    guard_or(0, || {
        handles::effect(e as usize).is_some_and(|e| e.abort_requested(false)) as c_int
    })
}

unsafe extern "C" fn image_memory_alloc(
    e: ofx::OfxImageEffectHandle,
    n: usize,
    out: *mut ofx::OfxImageMemoryHandle,
) -> ofx::OfxStatus {
    guard(|| {
        // The instance handle is optional.
        if !e.is_null() && handles::effect(e as usize).is_none() {
            return ofx::kOfxStatErrBadHandle;
        }
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        let Some((ptr, layout)) = raw_alloc(n) else {
            return ofx::kOfxStatErrMemory;
        };
        let mem = Arc::new(ImageMemory {
            ptr: ptr as usize,
            layout,
            locks: Mutex::new(0),
        });
        let h = handles::reserve();
        handles::insert(h, Obj::ImageMemory(mem));
        unsafe { put(out, h as ofx::OfxImageMemoryHandle) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn image_memory_free(m: ofx::OfxImageMemoryHandle) -> ofx::OfxStatus {
    guard(|| match handles::image_memory(m as usize) {
        Some(_) => {
            handles::remove(m as usize);
            ofx::kOfxStatOK
        }
        None => ofx::kOfxStatErrBadHandle,
    })
}

unsafe extern "C" fn image_memory_lock(
    m: ofx::OfxImageMemoryHandle,
    out: *mut *mut c_void,
) -> ofx::OfxStatus {
    guard(|| {
        let Some(m) = handles::image_memory(m as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        *m.locks.lock() += 1;
        unsafe { put(out, m.ptr as *mut c_void) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn image_memory_unlock(m: ofx::OfxImageMemoryHandle) -> ofx::OfxStatus {
    guard(|| {
        let Some(m) = handles::image_memory(m as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        let mut locks = m.locks.lock();
        *locks = locks.saturating_sub(1);
        ofx::kOfxStatOK
    })
}

/// The image effect suite, version 1.
pub(crate) static IMAGE_EFFECT_SUITE_V1: ofx::OfxImageEffectSuiteV1 = ofx::OfxImageEffectSuiteV1 {
    getPropertySet: Some(get_property_set),
    getParamSet: Some(get_param_set),
    clipDefine: Some(clip_define),
    clipGetHandle: Some(clip_get_handle),
    clipGetPropertySet: Some(clip_get_property_set),
    clipGetImage: Some(clip_get_image),
    clipReleaseImage: Some(clip_release_image),
    clipGetRegionOfDefinition: Some(clip_get_region_of_definition),
    abort: Some(abort),
    imageMemoryAlloc: Some(image_memory_alloc),
    imageMemoryFree: Some(image_memory_free),
    imageMemoryLock: Some(image_memory_lock),
    imageMemoryUnlock: Some(image_memory_unlock),
};
