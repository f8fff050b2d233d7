//! The host itself: its options, its property set (what plugins learn about us), the
//! `OfxHost` struct plugins keep, and the record of messages and progress they posted.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::Mutex;

use super::ffi::{k, ofx};
use super::props::{Access, PropValue, PropertySet, RO};
use super::{shim, suites};

/// How the headless host presents itself and behaves.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// kOfxPropName of the host; tests set e.g. "uk.co.thefoundry.nuke" or "DaVinciResolve".
    pub host_name: String,
    /// kOfxPropLabel of the host.
    pub host_label: String,
    /// kOfxParamHostPropSupportsStringAnimation.
    pub supports_string_animation: bool,
    /// Whether fetchSuite offers OfxMessageSuite (v1 and v2).
    pub message_suite: bool,
    /// Whether fetchSuite offers OfxProgressSuite (v1 and v2).
    pub progress_suite: bool,
    /// Project size in canonical coordinates (with the offset, also the project extent).
    pub project_size: (f64, f64),
    pub project_offset: (f64, f64),
    pub pixel_aspect_ratio: f64,
    pub frame_rate: f64,
    /// Output clip frame range; the effect duration is max - min + 1.
    pub frame_range: (f64, f64),
    /// abort() answers 1 once this long has passed since the current render action began.
    pub abort_after: Option<Duration>,
    /// Print posted messages to stderr.
    pub echo_messages: bool,
    /// (parameter name, parameter type) pairs: the host defines that parameter with this
    /// type whatever the plugin asked for, as a broken host might. For testing plugins.
    pub param_type_overrides: Vec<(String, String)>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            host_name: "org.genclip.headless".into(),
            host_label: "GenClip headless host".into(),
            supports_string_animation: false,
            message_suite: true,
            progress_suite: true,
            project_size: (1920.0, 1080.0),
            project_offset: (0.0, 0.0),
            pixel_aspect_ratio: 1.0,
            frame_rate: 24.0,
            frame_range: (0.0, 47.0),
            abort_after: None,
            echo_messages: true,
            param_type_overrides: Vec::new(),
        }
    }
}

impl HostOptions {
    /// kOfxImageEffectPropProjectExtent: the project size placed at its offset.
    pub fn project_extent(&self) -> (f64, f64) {
        (
            self.project_offset.0 + self.project_size.0,
            self.project_offset.1 + self.project_size.1,
        )
    }
}

/// A message a plugin posted through the message suite.
#[derive(Clone, Debug)]
pub struct HostMessage {
    /// e.g. "OfxMessageError".
    pub kind: String,
    pub id: String,
    pub text: String,
    pub persistent: bool,
}

/// A call the plugin made to the progress suite.
#[derive(Clone, Debug, PartialEq)]
pub enum ProgressEvent {
    Start(String),
    Update(f64),
    End,
}

/// A message with where it came from, so errors can quote what a failing action posted.
struct Posted {
    msg: HostMessage,
    effect: usize,
    thread: ThreadId,
}

/// The host property set handle of every live host.
static HOSTS: LazyLock<Mutex<HashMap<usize, Weak<Host>>>> = LazyLock::new(Default::default);
/// The host most recently created; gets messages posted with no handle outside any action.
static LAST: LazyLock<Mutex<Weak<Host>>> = LazyLock::new(Default::default);

/// A headless OpenFX host.
pub struct Host {
    options: HostOptions,
    pub(crate) props: Arc<PropertySet>,
    /// The `OfxHost` plugins receive. Leaked on purpose: plugins keep the pointer for as long
    /// as they stay loaded, which (binaries are never unloaded) may outlive this host.
    ofx_host: usize,
    messages: Mutex<Vec<Posted>>,
    progress: Mutex<Vec<ProgressEvent>>,
    time: Mutex<f64>,
}

impl Host {
    pub fn new(options: HostOptions) -> Arc<Host> {
        shim::install();
        let props = PropertySet::new("host", Access::Strict);
        define_host_props(&props, &options);
        let ofx_host = Box::leak(Box::new(ofx::OfxHost {
            host: props.as_handle(),
            fetchSuite: Some(suites::fetch_suite),
        })) as *mut ofx::OfxHost as usize;
        let time = options.frame_range.0;
        let host = Arc::new(Host {
            options,
            props,
            ofx_host,
            messages: Mutex::new(Vec::new()),
            progress: Mutex::new(Vec::new()),
            time: Mutex::new(time),
        });
        HOSTS
            .lock()
            .insert(host.props.handle, Arc::downgrade(&host));
        *LAST.lock() = Arc::downgrade(&host);
        host
    }

    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// Every message posted so far (persistent and not).
    pub fn messages(&self) -> Vec<HostMessage> {
        self.messages.lock().iter().map(|p| p.msg.clone()).collect()
    }

    pub fn progress_events(&self) -> Vec<ProgressEvent> {
        self.progress.lock().clone()
    }

    /// The time line's current time (what paramGetValue reads at); starts at frame_range.0.
    pub fn time(&self) -> f64 {
        *self.time.lock()
    }

    /// Moves the time line (as the time line suite's gotoTime does).
    pub fn set_time(&self, t: f64) {
        *self.time.lock() = t;
    }

    pub(crate) fn ofx_host(&self) -> *mut ofx::OfxHost {
        self.ofx_host as *mut ofx::OfxHost
    }

    /// The host whose property set has this handle.
    pub(crate) fn from_props_handle(h: usize) -> Option<Arc<Host>> {
        HOSTS.lock().get(&h).and_then(Weak::upgrade)
    }

    pub(crate) fn last() -> Option<Arc<Host>> {
        LAST.lock().upgrade()
    }

    pub(crate) fn post(&self, msg: HostMessage, effect: usize) {
        if self.options.echo_messages {
            let tag = msg.kind.strip_prefix("OfxMessage").unwrap_or(&msg.kind);
            let sticky = if msg.persistent { " (persistent)" } else { "" };
            eprintln!("[ofx {tag}{sticky}] {}: {}", msg.id, msg.text);
        }
        let thread = std::thread::current().id();
        self.messages.lock().push(Posted {
            msg,
            effect,
            thread,
        });
    }

    pub(crate) fn message_count(&self) -> usize {
        self.messages.lock().len()
    }

    /// Messages posted since `since` to `effect` or from this thread.
    pub(crate) fn messages_since(&self, since: usize, effect: usize) -> Vec<HostMessage> {
        let me = std::thread::current().id();
        let all = self.messages.lock();
        all.iter()
            .skip(since)
            .filter(|p| (effect != 0 && p.effect == effect) || p.thread == me)
            .map(|p| p.msg.clone())
            .collect()
    }

    pub(crate) fn progress_event(&self, e: ProgressEvent) {
        self.progress.lock().push(e);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        HOSTS.lock().remove(&self.props.handle);
        self.props.release();
    }
}

/// The spec's host properties, all read-only to plugins.
fn define_host_props(p: &PropertySet, o: &HostOptions) {
    let s = |v: &str| PropValue::Str(vec![v.to_string()]);
    let ss = |v: &[&[u8]]| PropValue::Str(v.iter().map(|c| k(c).to_string()).collect());
    let i = |v: i32| PropValue::Int(vec![v]);
    let def = |name: &[u8], v: PropValue| p.define(k(name), v, RO);
    let version: Vec<i32> = env!("CARGO_PKG_VERSION")
        .split('.')
        .filter_map(|x| x.parse().ok())
        .collect();

    def(ofx::kOfxPropAPIVersion, PropValue::Int(vec![1, 4]));
    def(ofx::kOfxPropType, s(k(ofx::kOfxTypeImageEffectHost)));
    def(ofx::kOfxPropName, s(&o.host_name));
    def(ofx::kOfxPropLabel, s(&o.host_label));
    def(ofx::kOfxPropVersion, PropValue::Int(version));
    def(ofx::kOfxPropVersionLabel, s(env!("CARGO_PKG_VERSION")));
    def(ofx::kOfxPropHostOSHandle, PropValue::Pointer(vec![0]));
    // A headless renderer is a background host: no user, no viewer, no interacts.
    def(ofx::kOfxImageEffectHostPropIsBackground, i(1));
    def(
        ofx::kOfxImageEffectHostPropNativeOrigin,
        s(k(ofx::kOfxHostNativeOriginBottomLeft)),
    );
    def(ofx::kOfxImageEffectPropSupportsOverlays, i(0));
    def(ofx::kOfxImageEffectPropSupportsMultiResolution, i(1));
    def(ofx::kOfxImageEffectPropSupportsTiles, i(1));
    def(ofx::kOfxImageEffectPropTemporalClipAccess, i(1));
    def(
        ofx::kOfxImageEffectPropSupportedComponents,
        ss(&[
            ofx::kOfxImageComponentRGBA,
            ofx::kOfxImageComponentRGB,
            ofx::kOfxImageComponentAlpha,
        ]),
    );
    def(
        ofx::kOfxImageEffectPropSupportedContexts,
        ss(&[
            ofx::kOfxImageEffectContextGenerator,
            ofx::kOfxImageEffectContextGeneral,
            ofx::kOfxImageEffectContextFilter,
        ]),
    );
    def(
        ofx::kOfxImageEffectPropSupportedPixelDepths,
        ss(&[
            ofx::kOfxBitDepthByte,
            ofx::kOfxBitDepthShort,
            ofx::kOfxBitDepthFloat,
        ]),
    );
    def(ofx::kOfxImageEffectPropSupportsMultipleClipDepths, i(0));
    def(ofx::kOfxImageEffectPropSupportsMultipleClipPARs, i(0));
    def(ofx::kOfxImageEffectPropSetableFrameRate, i(0));
    def(ofx::kOfxImageEffectPropSetableFielding, i(0));
    def(ofx::kOfxImageEffectPropRenderQualityDraft, i(1));
    def(ofx::kOfxParamHostPropSupportsCustomInteract, i(0));
    def(
        ofx::kOfxParamHostPropSupportsStringAnimation,
        i(o.supports_string_animation as i32),
    );
    def(ofx::kOfxParamHostPropSupportsChoiceAnimation, i(0));
    def(ofx::kOfxParamHostPropSupportsBooleanAnimation, i(0));
    def(ofx::kOfxParamHostPropSupportsCustomAnimation, i(0));
    def(ofx::kOfxParamHostPropSupportsStrChoice, i(1));
    def(ofx::kOfxParamHostPropSupportsStrChoiceAnimation, i(0));
    // Parametric parameters are not in our headers; say so explicitly.
    p.define("OfxParamHostPropSupportsParametricAnimation", i(0), RO);
    def(ofx::kOfxParamHostPropMaxParameters, i(-1));
    def(ofx::kOfxParamHostPropMaxPages, i(10));
    def(
        ofx::kOfxParamHostPropPageRowColumnCount,
        PropValue::Int(vec![10, 10]),
    );
    // CPU only: no GPU render paths are offered.
    let gpus: [&[u8]; 5] = [
        ofx::kOfxImageEffectPropOpenGLRenderSupported,
        ofx::kOfxImageEffectPropCudaRenderSupported,
        ofx::kOfxImageEffectPropCudaStreamSupported,
        ofx::kOfxImageEffectPropMetalRenderSupported,
        ofx::kOfxImageEffectPropOpenCLRenderSupported,
    ];
    for gpu in gpus {
        def(gpu, s("false"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_props_follow_the_options() {
        let host = Host::new(HostOptions {
            host_name: "DaVinciResolve".into(),
            echo_messages: false,
            ..Default::default()
        });
        let p = &host.props;
        assert_eq!(
            p.str(k(ofx::kOfxPropName), 0).as_deref(),
            Some("DaVinciResolve")
        );
        assert_eq!(
            p.get(k(ofx::kOfxPropAPIVersion)),
            Some(PropValue::Int(vec![1, 4]))
        );
        assert_eq!(
            p.int(k(ofx::kOfxParamHostPropSupportsStringAnimation), 0),
            Some(0)
        );
        assert_eq!(
            p.strs(k(ofx::kOfxImageEffectPropSupportedContexts)).len(),
            3
        );
        assert_eq!(
            Host::from_props_handle(p.handle).map(|h| Arc::ptr_eq(&h, &host)),
            Some(true)
        );
        assert_eq!(host.time(), 0.0);
        host.set_time(5.0);
        assert_eq!(host.time(), 5.0);
        let handle = p.handle;
        drop(host);
        assert!(Host::from_props_handle(handle).is_none());
        assert!(!super::super::handles::is_live(handle));
    }

    #[test]
    fn messages_are_attributed() {
        let host = Host::new(HostOptions {
            echo_messages: false,
            ..Default::default()
        });
        let m = |t: &str| HostMessage {
            kind: "OfxMessageError".into(),
            id: "x".into(),
            text: t.into(),
            persistent: false,
        };
        host.post(m("before"), 0);
        let since = host.message_count();
        host.post(m("mine"), 0);
        std::thread::scope(|s| {
            s.spawn(|| host.post(m("other thread, other effect"), 42));
            s.spawn(|| host.post(m("other thread, my effect"), 7));
        });
        let texts: Vec<String> = host
            .messages_since(since, 7)
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts.len(), 2);
        assert!(texts.contains(&"mine".to_string()));
        assert!(texts.contains(&"other thread, my effect".to_string()));
        assert_eq!(host.messages().len(), 4);
    }
}
