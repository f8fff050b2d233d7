//! End-to-end tests of the host against a small fake plugin written here in Rust. The fake
//! reaches the host only through the `OfxHost` it is given, so these calls cross the same
//! C ABI (and the C shim's variadic functions) as a real plugin's.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::ptr::{self, null, null_mut};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use super::ffi::{k, ofx};
use super::*;

// ----- the fake plugin -----

const GENERATOR: &str = "OfxImageEffectContextGenerator";
const GENERAL: &str = "OfxImageEffectContextGeneral";
const ID: &str = "org.genclip.test.Fake";

/// One fake plugin per process, one host at a time (like a real plugin binary).
static SERIAL: Mutex<()> = Mutex::new(());
static HOST: AtomicPtr<ofx::OfxHost> = AtomicPtr::new(null_mut());
/// Every action the fake received, with the parameter name for InstanceChanged.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Image handles the fake saw during renders (to check clean-up afterwards).
static LAST_IMAGE: AtomicUsize = AtomicUsize::new(0);

struct SyncPlugin(ofx::OfxPlugin);
unsafe impl Sync for SyncPlugin {}

static PLUGIN: SyncPlugin = SyncPlugin(ofx::OfxPlugin {
    pluginApi: c"OfxImageEffectPluginAPI".as_ptr(),
    apiVersion: 1,
    pluginIdentifier: c"org.genclip.test.Fake".as_ptr(),
    pluginVersionMajor: 2,
    pluginVersionMinor: 3,
    setHost: Some(set_host),
    mainEntry: Some(main_entry),
});

static WRONG_API: SyncPlugin = SyncPlugin(ofx::OfxPlugin {
    pluginApi: c"OfxSomethingElse".as_ptr(),
    apiVersion: 1,
    pluginIdentifier: c"org.genclip.test.Wrong".as_ptr(),
    pluginVersionMajor: 1,
    pluginVersionMinor: 0,
    setHost: None,
    mainEntry: Some(main_entry),
});

unsafe extern "C" fn number_of_plugins() -> c_int {
    3
}

unsafe extern "C" fn get_plugin(i: c_int) -> *mut ofx::OfxPlugin {
    match i {
        0 => &PLUGIN.0 as *const _ as *mut _,
        1 => &WRONG_API.0 as *const _ as *mut _,
        _ => null_mut(),
    }
}

unsafe extern "C" fn set_host(h: *mut ofx::OfxHost) {
    HOST.store(h, Ordering::SeqCst);
}

fn fetch<T>(name: &[u8], version: c_int) -> Option<&'static T> {
    let h = HOST.load(Ordering::SeqCst);
    unsafe {
        let h = h.as_ref()?;
        let p = h.fetchSuite?(h.host, name.as_ptr() as *const c_char, version) as *const T;
        p.as_ref()
    }
}

fn props() -> &'static ofx::OfxPropertySuiteV1 {
    fetch(ofx::kOfxPropertySuite, 1).unwrap()
}
fn effects() -> &'static ofx::OfxImageEffectSuiteV1 {
    fetch(ofx::kOfxImageEffectSuite, 1).unwrap()
}
fn params() -> &'static ofx::OfxParameterSuiteV1 {
    fetch(ofx::kOfxParameterSuite, 1).unwrap()
}

fn c(b: &[u8]) -> *const c_char {
    b.as_ptr() as *const c_char
}

type Props = ofx::OfxPropertySetHandle;

unsafe fn get_str(p: Props, name: &[u8]) -> String {
    let mut v: *mut c_char = null_mut();
    if unsafe { props().propGetString.unwrap()(p, c(name), 0, &mut v) } != ofx::kOfxStatOK {
        return String::new();
    }
    unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()
}

unsafe fn get_double(p: Props, name: &[u8], i: c_int) -> f64 {
    let mut v = 0.0;
    unsafe { props().propGetDouble.unwrap()(p, c(name), i, &mut v) };
    v
}

unsafe fn get_int(p: Props, name: &[u8], i: c_int) -> c_int {
    let mut v = 0;
    unsafe { props().propGetInt.unwrap()(p, c(name), i, &mut v) };
    v
}

unsafe fn param(effect: ofx::OfxImageEffectHandle, name: &CStr) -> ofx::OfxParamHandle {
    let mut set: ofx::OfxParamSetHandle = null_mut();
    let mut p: ofx::OfxParamHandle = null_mut();
    unsafe {
        assert_eq!(effects().getParamSet.unwrap()(effect, &mut set), 0);
        assert_eq!(
            params().paramGetHandle.unwrap()(set, name.as_ptr(), &mut p, null_mut()),
            0
        );
    }
    p
}

unsafe fn define_param(set: ofx::OfxParamSetHandle, ty: &[u8], name: &CStr) -> Props {
    let mut p: Props = null_mut();
    assert_eq!(
        unsafe { params().paramDefine.unwrap()(set, c(ty), name.as_ptr(), &mut p) },
        0
    );
    p
}

unsafe extern "C" fn main_entry(
    action: *const c_char,
    handle: *const c_void,
    in_args: Props,
    out_args: Props,
) -> c_int {
    if action.is_null() {
        return ofx::kOfxStatErrValue;
    }
    let action = unsafe { CStr::from_ptr(action) }.to_bytes_with_nul();
    let effect = handle as ofx::OfxImageEffectHandle;
    let is = |a: &[u8]| a == action;
    unsafe {
        if is(ofx::kOfxActionInstanceChanged) {
            let name = get_str(in_args, ofx::kOfxPropName);
            let reason = get_str(in_args, ofx::kOfxPropChangeReason);
            LOG.lock().push(format!("{}:{name}:{reason}", k(action)));
            return instance_changed(effect, &name);
        }
        LOG.lock().push(k(action).to_string());
        if is(ofx::kOfxActionLoad) || is(ofx::kOfxActionUnload) {
            return if handle.is_null() {
                ofx::kOfxStatOK
            } else {
                ofx::kOfxStatErrBadHandle
            };
        }
        if is(ofx::kOfxActionDescribe) {
            return describe(effect);
        }
        if is(ofx::kOfxImageEffectActionDescribeInContext) {
            return describe_in_context(effect, &get_str(in_args, ofx::kOfxImageEffectPropContext));
        }
        if is(ofx::kOfxActionCreateInstance) {
            // Refuse to be created when the host says it is interactive (it never does).
            return if get_int(instance_props(effect), ofx::kOfxPropIsInteractive, 0) == 0 {
                ofx::kOfxStatOK
            } else {
                ofx::kOfxStatFailed
            };
        }
        if is(ofx::kOfxImageEffectActionRender) {
            return render(effect, in_args);
        }
        if is(ofx::kOfxImageEffectActionGetClipPreferences) {
            props().propSetString.unwrap()(
                out_args,
                c(ofx::kOfxImageEffectPropPreMultiplication),
                0,
                c(ofx::kOfxImageOpaque),
            );
            props().propSetInt.unwrap()(out_args, c(ofx::kOfxImageEffectFrameVarying), 0, 1);
            return ofx::kOfxStatOK;
        }
        if is(ofx::kOfxImageEffectActionGetTimeDomain) {
            let range = [0.0, 9.0];
            props().propSetDoubleN.unwrap()(
                out_args,
                c(ofx::kOfxImageEffectPropFrameRange),
                2,
                range.as_ptr(),
            );
            return ofx::kOfxStatOK;
        }
        if is(ofx::kOfxImageEffectActionGetRegionOfDefinition) {
            // Half the project when "count" is 1; the host's default otherwise.
            let mut count = 0;
            params().paramGetValue.unwrap()(param(effect, c"count"), &mut count as *mut c_int);
            if count != 1 {
                return ofx::kOfxStatReplyDefault;
            }
            let p = instance_props(effect);
            let rod = [
                0.0,
                0.0,
                get_double(p, ofx::kOfxImageEffectPropProjectSize, 0) / 2.0,
                10.0,
            ];
            props().propSetDoubleN.unwrap()(
                out_args,
                c(ofx::kOfxImageEffectPropRegionOfDefinition),
                4,
                rod.as_ptr(),
            );
            return ofx::kOfxStatOK;
        }
    }
    ofx::kOfxStatReplyDefault
}

unsafe fn instance_props(effect: ofx::OfxImageEffectHandle) -> Props {
    let mut p: Props = null_mut();
    unsafe { effects().getPropertySet.unwrap()(effect, &mut p) };
    p
}

unsafe fn describe(effect: ofx::OfxImageEffectHandle) -> c_int {
    unsafe {
        let p = instance_props(effect);
        let ps = props();
        ps.propSetString.unwrap()(p, c(ofx::kOfxPropLabel), 0, c"Fake".as_ptr());
        let contexts = [
            c(b"OfxImageEffectContextGenerator\0"),
            c(b"OfxImageEffectContextGeneral\0"),
        ];
        ps.propSetStringN.unwrap()(
            p,
            c(ofx::kOfxImageEffectPropSupportedContexts),
            2,
            contexts.as_ptr(),
        );
        ps.propSetString.unwrap()(
            p,
            c(ofx::kOfxImageEffectPropSupportedPixelDepths),
            0,
            c(ofx::kOfxBitDepthFloat),
        );
        ps.propSetString.unwrap()(
            p,
            c(ofx::kOfxImageEffectPropSupportedPixelDepths),
            1,
            c(ofx::kOfxBitDepthByte),
        );
        // A property of the plugin's own invention.
        ps.propSetInt.unwrap()(p, c"org.genclip.test.Custom".as_ptr(), 0, 7)
    }
}

unsafe fn describe_in_context(effect: ofx::OfxImageEffectHandle, context: &str) -> c_int {
    unsafe {
        let es = effects();
        let ps = props();
        let mut clip: Props = null_mut();
        assert_eq!(
            es.clipDefine.unwrap()(effect, c(ofx::kOfxImageEffectOutputClipName), &mut clip),
            0
        );
        ps.propSetString.unwrap()(
            clip,
            c(ofx::kOfxImageEffectPropSupportedComponents),
            0,
            c(ofx::kOfxImageComponentRGBA),
        );
        ps.propSetString.unwrap()(
            clip,
            c(ofx::kOfxImageEffectPropSupportedComponents),
            1,
            c(ofx::kOfxImageComponentRGB),
        );
        assert_eq!(
            es.clipDefine.unwrap()(effect, c(ofx::kOfxImageEffectOutputClipName), &mut clip),
            ofx::kOfxStatErrExists
        );
        if context == GENERAL {
            es.clipDefine.unwrap()(
                effect,
                c(ofx::kOfxImageEffectSimpleSourceClipName),
                &mut clip,
            );
            ps.propSetInt.unwrap()(clip, c(ofx::kOfxImageClipPropOptional), 0, 1);
        }
        let mut set: ofx::OfxParamSetHandle = null_mut();
        es.getParamSet.unwrap()(effect, &mut set);
        let gain = define_param(set, ofx::kOfxParamTypeDouble, c"gain");
        ps.propSetDouble.unwrap()(gain, c(ofx::kOfxParamPropDefault), 0, 0.5);
        ps.propSetString.unwrap()(gain, c(ofx::kOfxParamPropHint), 0, c"brightness".as_ptr());
        let count = define_param(set, ofx::kOfxParamTypeInteger, c"count");
        ps.propSetInt.unwrap()(count, c(ofx::kOfxParamPropDefault), 0, 3);
        let text = define_param(set, ofx::kOfxParamTypeString, c"text");
        ps.propSetString.unwrap()(text, c(ofx::kOfxParamPropDefault), 0, c"hello".as_ptr());
        let mode = define_param(set, ofx::kOfxParamTypeChoice, c"mode");
        ps.propSetString.unwrap()(mode, c(ofx::kOfxParamPropChoiceOption), 0, c"a".as_ptr());
        ps.propSetString.unwrap()(mode, c(ofx::kOfxParamPropChoiceOption), 1, c"b".as_ptr());
        ps.propSetInt.unwrap()(mode, c(ofx::kOfxParamPropDefault), 0, 1);
        let flag = define_param(set, ofx::kOfxParamTypeBoolean, c"flag");
        ps.propSetInt.unwrap()(flag, c(ofx::kOfxParamPropDefault), 0, 1);
        let colour = define_param(set, ofx::kOfxParamTypeRGBA, c"colour");
        let rgba = [0.1, 0.2, 0.3, 1.0];
        ps.propSetDoubleN.unwrap()(colour, c(ofx::kOfxParamPropDefault), 4, rgba.as_ptr());
        define_param(set, ofx::kOfxParamTypePushButton, c"go");
        let page = define_param(set, ofx::kOfxParamTypePage, c"page");
        let children = [c"gain".as_ptr(), c"count".as_ptr(), c"go".as_ptr()];
        ps.propSetStringN.unwrap()(page, c(ofx::kOfxParamPropPageChild), 3, children.as_ptr());
        // Mistakes the host must refuse.
        let mut p: Props = null_mut();
        assert_eq!(
            params().paramDefine.unwrap()(
                set,
                c(ofx::kOfxParamTypeDouble),
                c"gain".as_ptr(),
                &mut p
            ),
            ofx::kOfxStatErrExists
        );
        assert_eq!(
            params().paramDefine.unwrap()(set, c"NoSuchType".as_ptr(), c"x".as_ptr(), &mut p),
            ofx::kOfxStatErrUnknown
        );
        ofx::kOfxStatOK
    }
}

/// What abort() said during the last InstanceChanged, plus one.
static ABORT_IN_CHANGE: AtomicUsize = AtomicUsize::new(0);

unsafe fn instance_changed(effect: ofx::OfxImageEffectHandle, name: &str) -> c_int {
    let aborting = unsafe { effects().abort.unwrap()(effect) };
    ABORT_IN_CHANGE.store(aborting as usize + 1, Ordering::SeqCst);
    if name != "go" {
        return ofx::kOfxStatOK;
    }
    unsafe {
        // The plugin edits its own parameters (variadic set calls through the shim).
        let text = param(effect, c"text");
        assert_eq!(
            params().paramSetValue.unwrap()(text, c"pressed".as_ptr()),
            0
        );
        let count = param(effect, c"count");
        assert_eq!(params().paramSetValue.unwrap()(count, 41 as c_int), 0);
        let colour = param(effect, c"colour");
        assert_eq!(
            params().paramSetValue.unwrap()(colour, 1.0f64, 0.5f64, 0.25f64, 0.0f64),
            0
        );
        // A choice out of range is refused.
        let mode = param(effect, c"mode");
        assert_eq!(
            params().paramSetValue.unwrap()(mode, 5 as c_int),
            ofx::kOfxStatErrValue
        );
        let msg: &ofx::OfxMessageSuiteV2 = fetch(ofx::kOfxMessageSuite, 2).unwrap();
        let st = msg.message.unwrap()(
            effect as *mut c_void,
            c(ofx::kOfxMessageMessage),
            c"go".as_ptr(),
            c"pressed %d time(s), %s".as_ptr(),
            1 as c_int,
            c"ok".as_ptr(),
        );
        assert_eq!(st, 0);
    }
    ofx::kOfxStatOK
}

/// What a render worker needs (passed through multiThread's void*).
struct Fill {
    data: usize,
    bounds: [c_int; 4],
    row_bytes: isize,
    depth: String,
    comps: usize,
    value: f64,
    effect: usize,
    time: f64,
    fetched_in_worker: AtomicUsize,
}

unsafe extern "C" fn fill_rows(index: c_uint, max: c_uint, arg: *mut c_void) {
    let f = unsafe { &*(arg as *const Fill) };
    let height = (f.bounds[3] - f.bounds[1]) as usize;
    let width = (f.bounds[2] - f.bounds[0]) as usize;
    // Workers inherit the render: they can fetch the output image too.
    unsafe {
        let mut clip: ofx::OfxImageClipHandle = null_mut();
        effects().clipGetHandle.unwrap()(
            f.effect as _,
            c(ofx::kOfxImageEffectOutputClipName),
            &mut clip,
            null_mut(),
        );
        let mut img: Props = null_mut();
        if effects().clipGetImage.unwrap()(clip, f.time, null(), &mut img) == 0 {
            f.fetched_in_worker.fetch_add(1, Ordering::SeqCst);
            effects().clipReleaseImage.unwrap()(img);
        }
        let mut idx = 99;
        fetch::<ofx::OfxMultiThreadSuiteV1>(ofx::kOfxMultiThreadSuite, 1)
            .unwrap()
            .multiThreadIndex
            .unwrap()(&mut idx);
        assert_eq!(idx, index);
    }
    for y in (index as usize..height).step_by(max as usize) {
        let row = unsafe { (f.data as *mut u8).offset(y as isize * f.row_bytes) };
        for x in 0..width {
            for ch in 0..f.comps {
                let v = if ch == 3 { 1.0 } else { f.value };
                unsafe {
                    match f.depth.as_str() {
                        "OfxBitDepthFloat" => (row as *mut f32)
                            .add(x * f.comps + ch)
                            .write_unaligned(v as f32),
                        "OfxBitDepthShort" => (row as *mut u16)
                            .add(x * f.comps + ch)
                            .write_unaligned((v * 65535.0).round() as u16),
                        _ => row.add(x * f.comps + ch).write((v * 255.0).round() as u8),
                    }
                }
            }
        }
    }
}

unsafe fn render(effect: ofx::OfxImageEffectHandle, in_args: Props) -> c_int {
    unsafe {
        let es = effects();
        let ps = props();
        let t = get_double(in_args, ofx::kOfxPropTime, 0);
        let mut clip: ofx::OfxImageClipHandle = null_mut();
        assert_eq!(
            es.clipGetHandle.unwrap()(
                effect,
                c(ofx::kOfxImageEffectOutputClipName),
                &mut clip,
                null_mut()
            ),
            0
        );
        let mut img: Props = null_mut();
        // Another time's image does not exist.
        assert_eq!(
            es.clipGetImage.unwrap()(clip, t + 100.0, null(), &mut img),
            ofx::kOfxStatFailed
        );
        if es.clipGetImage.unwrap()(clip, t, null(), &mut img) != 0 {
            return ofx::kOfxStatFailed;
        }
        LAST_IMAGE.store(img as usize, Ordering::SeqCst);
        let mut data: *mut c_void = null_mut();
        ps.propGetPointer.unwrap()(img, c(ofx::kOfxImagePropData), 0, &mut data);
        let mut bounds = [0; 4];
        ps.propGetIntN.unwrap()(img, c(ofx::kOfxImagePropBounds), 4, bounds.as_mut_ptr());
        let row_bytes = get_int(img, ofx::kOfxImagePropRowBytes, 0) as isize;
        let depth = get_str(img, ofx::kOfxImageEffectPropPixelDepth);
        let comps =
            if get_str(img, ofx::kOfxImageEffectPropComponents) == k(ofx::kOfxImageComponentRGB) {
                3
            } else {
                4
            };
        let mut value = 0.0;
        params().paramGetValueAtTime.unwrap()(param(effect, c"gain"), t, &mut value as *mut f64);
        let mut count = 0;
        params().paramGetValueAtTime.unwrap()(param(effect, c"count"), t, &mut count as *mut c_int);
        let fill = Fill {
            data: data as usize,
            bounds,
            row_bytes,
            depth,
            comps,
            value,
            effect: effect as usize,
            time: t,
            fetched_in_worker: AtomicUsize::new(0),
        };
        let status = if value < 0.0 {
            let msg: &ofx::OfxMessageSuiteV1 = fetch(ofx::kOfxMessageSuite, 1).unwrap();
            msg.message.unwrap()(
                effect as *mut c_void,
                c(ofx::kOfxMessageError),
                c"fake.gain".as_ptr(),
                c"gain %g is negative".as_ptr(),
                value,
            );
            ofx::kOfxStatFailed
        } else if es.abort.unwrap()(effect) != 0 {
            ofx::kOfxStatFailed
        } else {
            let mt: &ofx::OfxMultiThreadSuiteV1 = fetch(ofx::kOfxMultiThreadSuite, 1).unwrap();
            let arg = &fill as *const Fill as *mut c_void;
            mt.multiThread.unwrap()(Some(fill_rows), count.max(1) as c_uint, arg);
            assert_eq!(
                fill.fetched_in_worker.load(Ordering::SeqCst),
                count.max(1) as usize
            );
            ofx::kOfxStatOK
        };
        // count 7 means "forget to release the image".
        if count != 7 {
            assert_eq!(es.clipReleaseImage.unwrap()(img), 0);
            assert_eq!(es.clipReleaseImage.unwrap()(img), ofx::kOfxStatErrBadHandle);
        }
        status
    }
}

// ----- test set-up -----

fn quiet() -> HostOptions {
    HostOptions {
        echo_messages: false,
        ..HostOptions::default()
    }
}

struct Fixture {
    host: Arc<Host>,
    plugin: Plugin,
    _serial: MutexGuard<'static, ()>,
}

fn load(options: HostOptions) -> Fixture {
    let serial = SERIAL.lock();
    LOG.lock().clear();
    let host = Host::new(options);
    let bundle = bundle::Bundle::fake(number_of_plugins, get_plugin);
    let plugin = host.load_plugin(&bundle, ID).unwrap();
    plugin.describe().unwrap();
    Fixture {
        host,
        plugin,
        _serial: serial,
    }
}

fn log() -> Vec<String> {
    LOG.lock().clone()
}

// ----- tests -----

#[test]
fn load_checks_the_plugin_api() {
    let _g = SERIAL.lock();
    let host = Host::new(quiet());
    let bundle = bundle::Bundle::fake(number_of_plugins, get_plugin);
    let infos = bundle.plugins();
    assert_eq!(infos.len(), 2, "the null third entry is skipped");
    assert_eq!(
        infos[0],
        PluginInfo {
            index: 0,
            identifier: ID.into(),
            api: "OfxImageEffectPluginAPI".into(),
            api_version: 1,
            version: (2, 3)
        }
    );
    let e = host
        .load_plugin(&bundle, "org.genclip.test.Wrong")
        .err()
        .unwrap();
    assert!(e.message.contains("OfxSomethingElse"), "{e}");
    let e = host.load_plugin(&bundle, "nope").err().unwrap();
    assert!(e.message.contains("has no plugin"), "{e}");
    let plugin = host.load_plugin(&bundle, ID).unwrap();
    assert_eq!(plugin.info().version, (2, 3));
    plugin.unload().unwrap();
}

#[test]
fn describe_fills_descriptors_over_the_spec_defaults() {
    let f = load(quiet());
    assert_eq!(f.plugin.supported_contexts(), vec![GENERATOR, GENERAL]);
    let d = f.plugin.descriptor_props();
    assert_eq!(d["OfxPropLabel"], PropValue::Str(vec!["Fake".into()]));
    assert_eq!(d["org.genclip.test.Custom"], PropValue::Int(vec![7]));
    assert_eq!(
        d["OfxImageEffectPluginRenderThreadSafety"].as_str(),
        Some("OfxImageEffectRenderInstanceSafe")
    );
    assert_eq!(
        d["OfxPluginPropFilePath"].as_str(),
        Some("/fake/Fake.ofx.bundle")
    );
    assert_eq!(
        d["OfxImageEffectPropSupportedPixelDepths"]
            .strs()
            .unwrap()
            .len(),
        2
    );

    let general = f.plugin.describe_in_context(GENERAL).unwrap();
    let clips: Vec<&str> = general.clips.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(clips, vec!["Output", "Source"]);
    assert_eq!(
        general.clips[1].1["OfxImageClipPropOptional"],
        PropValue::Int(vec![1])
    );
    let names: Vec<&str> = general.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["gain", "count", "text", "mode", "flag", "colour", "go", "page"]
    );
    let gain = &general.params[0];
    assert_eq!(gain.param_type, "OfxParamTypeDouble");
    assert_eq!(
        gain.props["OfxParamPropDefault"],
        PropValue::Double(vec![0.5])
    );
    assert_eq!(
        gain.props["OfxParamPropMin"],
        PropValue::Double(vec![-f64::MAX])
    );
    assert_eq!(gain.props["OfxParamPropAnimates"], PropValue::Int(vec![1]));
    assert_eq!(gain.props["OfxPropLabel"].as_str(), Some("gain"));
    assert_eq!(
        gain.props["OfxParamPropDoubleType"].as_str(),
        Some("OfxParamDoubleTypePlain")
    );
    let count = &general.params[1];
    assert_eq!(
        count.props["OfxParamPropMax"],
        PropValue::Int(vec![i32::MAX])
    );
    let text = &general.params[2];
    assert_eq!(
        text.props["OfxParamPropAnimates"],
        PropValue::Int(vec![0]),
        "no string animation by default"
    );
    assert_eq!(
        text.props["OfxParamPropStringMode"].as_str(),
        Some("OfxParamStringIsSingleLine")
    );
    assert_eq!(
        general.params[3].props["OfxParamPropChoiceOption"]
            .strs()
            .unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        general.params[5].props["OfxParamPropDefault"]
            .doubles()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        general.params[7].props["OfxParamPropPageChild"]
            .strs()
            .unwrap()
            .len(),
        3
    );

    let gen = f.plugin.describe_in_context(GENERATOR).unwrap();
    assert_eq!(gen.clips.len(), 1);
    let log = log();
    assert_eq!(&log[..2], ["OfxActionLoad", "OfxActionDescribe"]);
    assert_eq!(
        log.iter()
            .filter(|a| *a == "OfxImageEffectActionDescribeInContext")
            .count(),
        2
    );
}

#[test]
fn string_animation_follows_the_host_option() {
    let f = load(HostOptions {
        supports_string_animation: true,
        ..quiet()
    });
    let d = f.plugin.describe_in_context(GENERATOR).unwrap();
    let text = d.params.iter().find(|p| p.name == "text").unwrap();
    assert_eq!(text.props["OfxParamPropAnimates"], PropValue::Int(vec![1]));
    assert_eq!(
        f.host
            .props
            .int("OfxParamHostPropSupportsStringAnimation", 0),
        Some(1)
    );
}

#[test]
fn instances_get_host_props_clips_and_default_values() {
    let f = load(HostOptions {
        project_size: (640.0, 360.0),
        frame_range: (10.0, 19.0),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERAL).unwrap();
    assert_eq!(inst.context(), GENERAL);
    let p = inst.props();
    assert_eq!(
        p["OfxPropType"].as_str(),
        Some("OfxTypeImageEffectInstance")
    );
    assert_eq!(p["OfxImageEffectPropContext"].as_str(), Some(GENERAL));
    assert_eq!(
        p["OfxImageEffectPropProjectSize"],
        PropValue::Double(vec![640.0, 360.0])
    );
    assert_eq!(
        p["OfxImageEffectInstancePropEffectDuration"],
        PropValue::Double(vec![10.0])
    );
    assert_eq!(p["OfxPropIsInteractive"], PropValue::Int(vec![0]));
    let out = inst.clip_props("Output").unwrap();
    assert_eq!(out["OfxImageClipPropConnected"], PropValue::Int(vec![1]));
    assert_eq!(
        out["OfxImageEffectPropFrameRange"],
        PropValue::Double(vec![10.0, 19.0])
    );
    assert_eq!(
        inst.clip_props("Source").unwrap()["OfxImageClipPropConnected"],
        PropValue::Int(vec![0])
    );

    assert_eq!(
        inst.param_value("gain", 0.0).unwrap(),
        ParamValue::Double(0.5)
    );
    assert_eq!(inst.param_value("count", 0.0).unwrap(), ParamValue::Int(3));
    assert_eq!(
        inst.param_value("text", 0.0).unwrap(),
        ParamValue::Str("hello".into())
    );
    assert_eq!(
        inst.param_value("mode", 0.0).unwrap(),
        ParamValue::Choice(1)
    );
    assert_eq!(
        inst.param_value("flag", 0.0).unwrap(),
        ParamValue::Bool(true)
    );
    assert_eq!(
        inst.param_value("colour", 0.0).unwrap(),
        ParamValue::Rgba([0.1, 0.2, 0.3, 1.0])
    );
    assert!(inst.param_value("go", 0.0).is_err());
    assert!(inst.param_value("missing", 0.0).is_err());
    let gp = inst.param_props("gain").unwrap();
    assert_eq!(gp["OfxPropType"].as_str(), Some("OfxTypeParameterInstance"));
    assert_eq!(gp["OfxParamPropHint"].as_str(), Some("brightness"));
    assert_eq!(
        log().last().map(String::as_str),
        Some("OfxActionCreateInstance")
    );
}

#[test]
fn edits_run_the_instance_changed_sequence() {
    let f = load(quiet());
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    LOG.lock().clear();
    inst.set_param("gain", ParamValue::Double(0.75)).unwrap();
    assert_eq!(
        log(),
        vec![
            "OfxActionBeginInstanceChanged",
            "OfxActionInstanceChanged:gain:OfxChangeUserEdited",
            "OfxActionEndInstanceChanged"
        ]
    );
    assert_eq!(
        inst.param_value("gain", 3.0).unwrap(),
        ParamValue::Double(0.75)
    );
    // Wrong types and out-of-range choices are the caller's error, before any action.
    LOG.lock().clear();
    assert!(inst.set_param("gain", ParamValue::Int(1)).is_err());
    assert!(inst.set_param("mode", ParamValue::Choice(2)).is_err());
    assert!(
        inst.set_key("text", 1.0, ParamValue::Str("x".into()))
            .is_err(),
        "strings do not animate here"
    );
    assert!(inst.press_button("gain").is_err());
    assert!(log().is_empty());

    // The plugin edits parameters from InstanceChanged and posts a formatted message.
    inst.press_button("go").unwrap();
    assert_eq!(
        inst.param_value("text", 0.0).unwrap(),
        ParamValue::Str("pressed".into())
    );
    assert_eq!(inst.param_value("count", 0.0).unwrap(), ParamValue::Int(41));
    assert_eq!(
        inst.param_value("colour", 0.0).unwrap(),
        ParamValue::Rgba([1.0, 0.5, 0.25, 0.0])
    );
    assert_eq!(
        inst.param_value("mode", 0.0).unwrap(),
        ParamValue::Choice(1)
    );
    let m = f.host.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].kind.as_str(), m[0].id.as_str(), m[0].text.as_str()),
        ("OfxMessageMessage", "go", "pressed 1 time(s), ok")
    );
}

#[test]
fn keyframes_interpolate_and_reach_the_plugin() {
    let f = load(HostOptions {
        project_size: (8.0, 4.0),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    inst.set_key("gain", 0.0, ParamValue::Double(0.0)).unwrap();
    inst.set_key("gain", 10.0, ParamValue::Double(1.0)).unwrap();
    assert!(
        inst.set_param("gain", ParamValue::Double(0.3)).is_err(),
        "keyed parameters are edited by key"
    );
    assert_eq!(
        inst.param_value("gain", 2.5).unwrap(),
        ParamValue::Double(0.25)
    );
    assert_eq!(
        inst.param_value("gain", 20.0).unwrap(),
        ParamValue::Double(1.0)
    );
    assert_eq!(
        inst.param_props("gain").unwrap()["OfxParamPropIsAnimating"],
        PropValue::Int(vec![1])
    );
    let img = inst.render(&RenderRequest::new(5.0)).unwrap();
    assert_eq!(img.rgba_f32(0, 0), [0.5, 0.5, 0.5, 1.0]);

    // The suite's key functions and the derivative and integral, straight through the ABI.
    let h = inst.effect().params.find("gain").unwrap().handle as ofx::OfxParamHandle;
    let ps = &params::PARAMETER_SUITE_V1;
    unsafe {
        let mut n: c_uint = 0;
        assert_eq!(ps.paramGetNumKeys.unwrap()(h, &mut n), 0);
        assert_eq!(n, 2);
        let mut t = 0.0;
        assert_eq!(ps.paramGetKeyTime.unwrap()(h, 1, &mut t), 0);
        assert_eq!(t, 10.0);
        assert_eq!(
            ps.paramGetKeyTime.unwrap()(h, 2, &mut t),
            ofx::kOfxStatErrBadIndex
        );
        let mut i: c_int = -1;
        assert_eq!(ps.paramGetKeyIndex.unwrap()(h, 5.0, 1, &mut i), 0);
        assert_eq!(i, 1);
        assert_eq!(
            ps.paramGetKeyIndex.unwrap()(h, 5.0, 0, &mut i),
            ofx::kOfxStatFailed
        );
        let mut d = 0.0f64;
        assert_eq!(
            ps.paramGetDerivative.unwrap()(h, 5.0, &mut d as *mut f64),
            0
        );
        assert!((d - 0.1).abs() < 1e-12);
        assert_eq!(
            ps.paramGetIntegral.unwrap()(h, 0.0, 10.0, &mut d as *mut f64),
            0
        );
        assert!((d - 5.0).abs() < 1e-12);
        // Keys added by the plugin; a plain set on a keyed parameter keys the current time.
        assert_eq!(ps.paramSetValueAtTime.unwrap()(h, 20.0, 0.0f64), 0);
        f.host.set_time(15.0);
        assert_eq!(ps.paramSetValue.unwrap()(h, 2.0f64), 0);
        assert_eq!(
            inst.param_value("gain", 15.0).unwrap(),
            ParamValue::Double(2.0)
        );
        let mut cur = 0.0;
        assert_eq!(ps.paramGetValue.unwrap()(h, &mut cur as *mut f64), 0);
        assert_eq!(cur, 2.0);
        assert_eq!(ps.paramDeleteKey.unwrap()(h, 15.0), 0);
        assert_eq!(
            ps.paramDeleteKey.unwrap()(h, 15.0),
            ofx::kOfxStatErrBadIndex
        );
        // Copy the curve onto another double parameter? Only same kinds copy.
        let count = inst.effect().params.find("count").unwrap().handle as ofx::OfxParamHandle;
        assert_eq!(
            ps.paramCopy.unwrap()(count, h, 0.0, null()),
            ofx::kOfxStatErrValue
        );
        // Integers do not differentiate.
        assert_eq!(
            ps.paramGetDerivative.unwrap()(count, 1.0, &mut i as *mut c_int),
            ofx::kOfxStatErrUnsupported
        );
        assert_eq!(ps.paramDeleteAllKeys.unwrap()(h), 0);
    }
    assert_eq!(
        inst.param_value("gain", 5.0).unwrap(),
        ParamValue::Double(0.5),
        "back to the constant value"
    );
    assert_eq!(
        inst.param_props("gain").unwrap()["OfxParamPropIsAnimating"],
        PropValue::Int(vec![0])
    );
}

#[test]
fn render_layouts_fill_exactly_the_image() {
    let f = load(HostOptions {
        project_size: (9.0, 5.0),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    for depth in [BitDepth::Byte, BitDepth::Short, BitDepth::Float] {
        for components in [Components::Rgba, Components::Rgb] {
            for negative in [false, true] {
                let mut r = RenderRequest::new(1.0);
                r.depth = depth;
                r.components = components;
                r.negative_row_bytes = negative;
                r.row_padding = 8;
                let img = inst.render(&r).unwrap();
                assert!(img.guard_intact, "{r:?}");
                assert_eq!((img.width(), img.height()), (9, 5));
                assert_eq!(img.images_fetched, 1 + 3, "render and three workers");
                assert_eq!(img.images_unreleased, 0);
                for y in 0..5 {
                    for x in 0..9 {
                        let px = img.rgba_f32(x, y);
                        assert!(
                            (px[0] - 0.5).abs() < 0.003 && px[3] == 1.0,
                            "{r:?} ({x},{y}) {px:?}"
                        );
                    }
                }
            }
        }
    }
    // Output clip props follow the request.
    assert_eq!(
        inst.clip_props("Output").unwrap()["OfxImageEffectPropPixelDepth"].as_str(),
        Some("OfxBitDepthFloat")
    );
}

#[test]
fn render_scale_and_region_of_definition() {
    let f = load(HostOptions {
        project_size: (100.0, 50.0),
        pixel_aspect_ratio: 2.0,
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    let rod = inst.region_of_definition(0.0, (1.0, 1.0)).unwrap();
    assert_eq!(
        (rod.x1, rod.y1, rod.x2, rod.y2),
        (0.0, 0.0, 100.0, 50.0),
        "the host default"
    );
    let mut r = RenderRequest::new(0.0);
    r.render_scale = (0.5, 0.5);
    let img = inst.render(&r).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (25, 25),
        "x: 100 / PAR 2 * 0.5"
    );
    // count 1: the plugin answers its own region.
    inst.set_param("count", ParamValue::Int(1)).unwrap();
    let rod = inst.region_of_definition(0.0, (1.0, 1.0)).unwrap();
    assert_eq!((rod.x2, rod.y2), (50.0, 10.0));
    let img = inst.render(&RenderRequest::new(0.0)).unwrap();
    assert_eq!((img.bounds.x2, img.bounds.y2), (25, 10));
}

#[test]
fn failed_renders_quote_the_plugin_and_free_leaked_images() {
    let f = load(HostOptions {
        project_size: (4.0, 4.0),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    inst.set_param("gain", ParamValue::Double(-1.0)).unwrap();
    let e = inst.render(&RenderRequest::new(3.0)).unwrap_err();
    assert_eq!(e.status, ofx::kOfxStatFailed);
    assert!(
        e.message
            .starts_with("OfxImageEffectActionRender at t=3 returned kOfxStatFailed"),
        "{e}"
    );
    assert!(e.message.contains("gain -1 is negative"), "{e}");
    assert!(e.to_string().contains("fake.gain"));

    inst.set_param("gain", ParamValue::Double(0.5)).unwrap();
    inst.set_param("count", ParamValue::Int(7)).unwrap();
    let img = inst.render(&RenderRequest::new(0.0)).unwrap();
    assert_eq!(img.images_unreleased, 1);
    let leaked = LAST_IMAGE.load(Ordering::SeqCst);
    assert!(
        handles::props(leaked).is_none(),
        "the host freed the image the plugin kept"
    );
}

#[test]
fn concurrent_renders_of_one_instance() {
    let f = load(HostOptions {
        project_size: (32.0, 16.0),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    inst.set_key("gain", 0.0, ParamValue::Double(0.0)).unwrap();
    inst.set_key("gain", 7.0, ParamValue::Double(0.7)).unwrap();
    std::thread::scope(|s| {
        for th in 0..4 {
            let inst = &inst;
            s.spawn(move || {
                for round in 0..5 {
                    let t = ((th + round) % 8) as f64;
                    let img = inst.render(&RenderRequest::new(t)).unwrap();
                    assert!(img.guard_intact);
                    let expected = (t * 0.1).min(0.7) as f32;
                    assert!((img.rgba_f32(3, 3)[0] - expected).abs() < 1e-6, "t={t}");
                }
            });
        }
    });
}

#[test]
fn abort_after_stops_renders() {
    let f = load(HostOptions {
        project_size: (4.0, 4.0),
        abort_after: Some(Duration::ZERO),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    // The fake plugin gives up with kOfxStatFailed; whatever it answers, the host discards
    // a frame it asked to abort.
    let e = inst.render(&RenderRequest::new(0.0)).unwrap_err();
    assert!(e.message.contains("aborted by the host"), "{e}");
    // Outside renders nothing is being aborted.
    let abort = effect::IMAGE_EFFECT_SUITE_V1.abort.unwrap();
    assert_eq!(unsafe { abort(inst.handle() as _) }, 0);
    inst.set_param("gain", ParamValue::Double(0.1)).unwrap();
    assert_eq!(
        ABORT_IN_CHANGE.load(Ordering::SeqCst),
        1,
        "abort() is 0 in InstanceChanged"
    );
}

#[test]
fn layout_actions_and_their_defaults() {
    let f = load(quiet());
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    let prefs = inst.clip_preferences().unwrap();
    assert_eq!(
        prefs["OfxImageEffectPropPreMultiplication"].as_str(),
        Some("OfxImageOpaque")
    );
    assert_eq!(prefs["OfxImageEffectFrameVarying"], PropValue::Int(vec![1]));
    assert_eq!(
        prefs["OfxImageClipPropComponents_Output"].as_str(),
        Some("OfxImageComponentRGBA")
    );
    assert_eq!(
        inst.clip_props("Output").unwrap()["OfxImageEffectPropPreMultiplication"].as_str(),
        Some("OfxImageOpaque")
    );
    assert_eq!(inst.time_domain().unwrap(), Some((0.0, 9.0)));
    assert_eq!(inst.is_identity(0.0).unwrap(), None);
    inst.begin_sequence((0.0, 3.0), false, (1.0, 1.0)).unwrap();
    inst.end_sequence((0.0, 3.0), false, (1.0, 1.0)).unwrap();
    inst.purge_caches().unwrap();
    inst.sync_private_data().unwrap();

    // call_action: NULL in args when none are given, out args for actions that have them.
    let (st, out) = f.plugin.call_action(
        "OfxImageEffectActionGetRegionOfDefinition",
        inst.handle(),
        None,
    );
    assert_eq!(st, ofx::kOfxStatReplyDefault);
    assert_eq!(
        out["OfxImageEffectPropRegionOfDefinition"],
        PropValue::Double(vec![0.0, 0.0, 1920.0, 1080.0])
    );
    let mut args = PropertySnapshot::new();
    args.insert("OfxPropTime".into(), PropValue::Double(vec![0.0]));
    let (st, out) = f
        .plugin
        .call_action("OfxActionNoSuchThing", inst.handle(), Some(&args));
    assert_eq!((st, out.len()), (ofx::kOfxStatReplyDefault, 0));
    let (st, _) = f
        .plugin
        .call_action("OfxActionLoad", 0x1234 as *const c_void, None);
    assert_eq!(st, ofx::kOfxStatErrBadHandle);
}

#[test]
fn destroy_frees_every_handle() {
    let f = load(quiet());
    let inst = f.plugin.create_instance(GENERAL).unwrap();
    let e = inst.effect().clone();
    let handles_before: Vec<usize> = std::iter::once(e.handle)
        .chain([e.props.handle, e.params.handle, e.params.props.handle])
        .chain(
            e.params
                .params()
                .iter()
                .flat_map(|p| [p.handle, p.props.handle]),
        )
        .chain(e.clips().iter().flat_map(|c| [c.handle, c.props.handle]))
        .collect();
    assert!(handles_before.iter().all(|h| handles::is_live(*h)));
    inst.destroy().unwrap();
    assert!(handles_before.iter().all(|h| !handles::is_live(*h)));
    assert_eq!(
        log().last().map(String::as_str),
        Some("OfxActionDestroyInstance")
    );
    // Dropping an instance destroys it too.
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    LOG.lock().clear();
    drop(inst);
    assert_eq!(log(), vec!["OfxActionDestroyInstance"]);
    // Suites refuse the dead handles.
    let mut p: Props = null_mut();
    assert_eq!(
        unsafe { effect::IMAGE_EFFECT_SUITE_V1.getPropertySet.unwrap()(e.handle as _, &mut p) },
        ofx::kOfxStatErrBadHandle
    );
}

#[test]
fn fetch_suite_offers_exactly_the_suites() {
    let f = load(HostOptions {
        message_suite: false,
        ..quiet()
    });
    let h = f.host.ofx_host();
    let fetch_raw =
        |name: &CStr, v: c_int| unsafe { (*h).fetchSuite.unwrap()((*h).host, name.as_ptr(), v) };
    assert!(!fetch_raw(c"OfxPropertySuite", 1).is_null());
    assert!(fetch_raw(c"OfxPropertySuite", 2).is_null());
    assert!(!fetch_raw(c"OfxProgressSuite", 2).is_null());
    assert!(!fetch_raw(c"OfxTimeLineSuite", 1).is_null());
    assert!(fetch_raw(c"OfxMessageSuite", 1).is_null(), "switched off");
    assert!(fetch_raw(c"OfxInteractSuite", 1).is_null());
    assert!(
        unsafe { (*h).fetchSuite.unwrap()(0xbad as _, c"OfxPropertySuite".as_ptr(), 1) }.is_null()
    );
    assert!(unsafe { (*h).fetchSuite.unwrap()((*h).host, null(), 1) }.is_null());
    // The host property set is read-only.
    let ps = props();
    unsafe {
        assert_eq!(
            get_str((*h).host, ofx::kOfxPropName),
            "org.genclip.headless"
        );
        assert_eq!(
            ps.propSetInt.unwrap()((*h).host, c(ofx::kOfxImageEffectHostPropIsBackground), 0, 0),
            ofx::kOfxStatErrValue
        );
        assert_eq!(
            ps.propSetInt.unwrap()((*h).host, c"NewThing".as_ptr(), 0, 0),
            ofx::kOfxStatErrUnknown
        );
    }
}

#[test]
fn bad_handles_everywhere() {
    let _f = load(quiet());
    let garbage = 0x7777_0000usize;
    let es = &effect::IMAGE_EFFECT_SUITE_V1;
    let ps = &params::PARAMETER_SUITE_V1;
    unsafe {
        let mut p: Props = null_mut();
        let mut set: ofx::OfxParamSetHandle = null_mut();
        let mut clip: ofx::OfxImageClipHandle = null_mut();
        let mut param: ofx::OfxParamHandle = null_mut();
        for h in [0usize, garbage] {
            assert_eq!(
                es.getPropertySet.unwrap()(h as _, &mut p),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                es.getParamSet.unwrap()(h as _, &mut set),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                es.clipGetHandle.unwrap()(h as _, c"Output".as_ptr(), &mut clip, null_mut()),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                es.clipGetImage.unwrap()(h as _, 0.0, null(), &mut p),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                es.clipReleaseImage.unwrap()(h as _),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(es.abort.unwrap()(h as _), 0);
            assert_eq!(
                ps.paramGetHandle.unwrap()(h as _, c"gain".as_ptr(), &mut param, null_mut()),
                ofx::kOfxStatErrBadHandle
            );
            let mut v = 0.0;
            assert_eq!(
                ps.paramGetValue.unwrap()(h as _, &mut v as *mut f64),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                ps.paramSetValue.unwrap()(h as _, 1.0f64),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                ps.paramGetNumKeys.unwrap()(h as _, &mut 0u32),
                ofx::kOfxStatErrBadHandle
            );
        }
        // A property set is not an image.
        let host_props = HOST.load(Ordering::SeqCst).as_ref().unwrap().host;
        assert_eq!(
            es.clipReleaseImage.unwrap()(host_props),
            ofx::kOfxStatErrBadHandle
        );
    }
}

#[test]
fn descriptors_and_instances_keep_their_roles() {
    let f = load(quiet());
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    let es = &effect::IMAGE_EFFECT_SUITE_V1;
    let ps = &params::PARAMETER_SUITE_V1;
    let e = inst.effect();
    unsafe {
        let mut p: Props = null_mut();
        assert_eq!(
            es.clipDefine.unwrap()(e.handle as _, c"More".as_ptr(), &mut p),
            ofx::kOfxStatErrUnsupported
        );
        assert_eq!(
            ps.paramDefine.unwrap()(
                e.params.handle as _,
                c(ofx::kOfxParamTypeDouble),
                c"more".as_ptr(),
                &mut p
            ),
            ofx::kOfxStatErrUnsupported
        );
        let mut clip: ofx::OfxImageClipHandle = null_mut();
        assert_eq!(
            es.clipGetHandle.unwrap()(e.handle as _, c"Nope".as_ptr(), &mut clip, null_mut()),
            ofx::kOfxStatErrUnknown
        );
        let mut param: ofx::OfxParamHandle = null_mut();
        assert_eq!(
            ps.paramGetHandle.unwrap()(
                e.params.handle as _,
                c"nope".as_ptr(),
                &mut param,
                null_mut()
            ),
            ofx::kOfxStatErrUnknown
        );
        // The output exists only during its render.
        assert_eq!(
            es.clipGetHandle.unwrap()(e.handle as _, c"Output".as_ptr(), &mut clip, null_mut()),
            0
        );
        assert_eq!(
            es.clipGetImage.unwrap()(clip, 0.0, null(), &mut p),
            ofx::kOfxStatFailed
        );
        let mut rod = ofx::OfxRectD::default();
        assert_eq!(
            es.clipGetRegionOfDefinition.unwrap()(clip, 0.0, &mut rod),
            0
        );
        assert_eq!(rod.x2, 1920.0);
        // Instance properties the host owns are read-only; instance data is the plugin's.
        let ip = e.props.as_handle();
        assert_eq!(
            props().propSetDouble.unwrap()(ip, c(ofx::kOfxImageEffectPropFrameRate), 0, 1.0),
            ofx::kOfxStatErrValue
        );
        assert_eq!(
            props().propSetPointer.unwrap()(
                ip,
                c(ofx::kOfxPropInstanceData),
                0,
                0x10 as *mut c_void
            ),
            0
        );
        assert_eq!(
            props().propSetInt.unwrap()(ip, c"Invented".as_ptr(), 0, 1),
            ofx::kOfxStatErrUnknown
        );
        // Instance parameters: visibility is writable, the type is not.
        let gp = e.params.find("gain").unwrap().props.as_handle();
        assert_eq!(
            props().propSetInt.unwrap()(gp, c(ofx::kOfxParamPropSecret), 0, 1),
            0
        );
        assert_eq!(
            props().propSetString.unwrap()(gp, c(ofx::kOfxParamPropType), 0, c"x".as_ptr()),
            ofx::kOfxStatErrValue
        );
    }
    assert_eq!(
        inst.param_props("gain").unwrap()["OfxParamPropSecret"],
        PropValue::Int(vec![1])
    );
}

#[test]
fn messages_progress_and_time_line() {
    let f = load(HostOptions {
        frame_range: (5.0, 9.0),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    let h = inst.handle() as *mut c_void;
    let msg: &ofx::OfxMessageSuiteV2 = fetch(ofx::kOfxMessageSuite, 2).unwrap();
    let prog: &ofx::OfxProgressSuiteV2 = fetch(ofx::kOfxProgressSuite, 2).unwrap();
    let prog1: &ofx::OfxProgressSuiteV1 = fetch(ofx::kOfxProgressSuite, 1).unwrap();
    let tl: &ofx::OfxTimeLineSuiteV1 = fetch(ofx::kOfxTimeLineSuite, 1).unwrap();
    unsafe {
        let q = msg.message.unwrap()(
            h,
            c(ofx::kOfxMessageQuestion),
            c"q".as_ptr(),
            c"sure?".as_ptr(),
        );
        assert_eq!(q, ofx::kOfxStatReplyYes);
        {
            // Handle-less messages go to the host of the action in progress.
            let _frame = threadctx::push_frame(threadctx::Frame {
                host: Arc::downgrade(&f.host),
                effect: 0,
                started: std::time::Instant::now(),
            });
            assert_eq!(
                msg.message.unwrap()(
                    null_mut(),
                    c(ofx::kOfxMessageLog),
                    null(),
                    c"%s".as_ptr(),
                    c"global".as_ptr()
                ),
                0
            );
        }
        assert_eq!(
            msg.message.unwrap()(h, c"NotAType".as_ptr(), null(), c"x".as_ptr()),
            ofx::kOfxStatErrUnknown
        );
        assert_eq!(
            msg.message.unwrap()(0x99 as _, c(ofx::kOfxMessageLog), null(), c"x".as_ptr()),
            ofx::kOfxStatErrBadHandle
        );
        assert_eq!(
            msg.message.unwrap()(h, c(ofx::kOfxMessageLog), null(), null()),
            ofx::kOfxStatErrValue
        );
        let long = "y".repeat(1000);
        let long_c = std::ffi::CString::new(long.clone()).unwrap();
        assert_eq!(
            msg.message.unwrap()(
                h,
                c(ofx::kOfxMessageWarning),
                c"long".as_ptr(),
                c"%s!".as_ptr(),
                long_c.as_ptr()
            ),
            0
        );
        assert_eq!(
            msg.setPersistentMessage.unwrap()(
                h,
                c(ofx::kOfxMessageError),
                c"p".as_ptr(),
                c"stuck %d".as_ptr(),
                3 as c_int
            ),
            0
        );
        assert_eq!(
            msg.setPersistentMessage.unwrap()(
                h,
                c(ofx::kOfxMessageLog),
                c"p".as_ptr(),
                c"no".as_ptr()
            ),
            ofx::kOfxStatErrValue
        );
        assert_eq!(
            inst.persistent_message().map(|m| m.text),
            Some("stuck 3".into())
        );
        assert_eq!(msg.clearPersistentMessage.unwrap()(h), 0);
        assert!(inst.persistent_message().is_none());
        let texts: Vec<String> = f.host.messages().into_iter().map(|m| m.text).collect();
        assert_eq!(
            texts,
            vec![
                "sure?".to_string(),
                "global".into(),
                format!("{long}!"),
                "stuck 3".into()
            ]
        );

        assert_eq!(
            prog.progressStart.unwrap()(h, c"Working".as_ptr(), c"id".as_ptr()),
            0
        );
        assert_eq!(prog1.progressUpdate.unwrap()(h, 0.5), 0);
        assert_eq!(prog.progressEnd.unwrap()(h), 0);
        assert_eq!(
            prog.progressEnd.unwrap()(null_mut()),
            ofx::kOfxStatErrBadHandle
        );
        assert_eq!(
            f.host.progress_events(),
            vec![
                ProgressEvent::Start("Working".into()),
                ProgressEvent::Update(0.5),
                ProgressEvent::End
            ]
        );

        let mut t = 0.0;
        assert_eq!(tl.getTime.unwrap()(h, &mut t), 0);
        assert_eq!(t, 5.0);
        assert_eq!(tl.gotoTime.unwrap()(h, 7.0), 0);
        assert_eq!(f.host.time(), 7.0);
        let (mut a, mut b) = (0.0, 0.0);
        assert_eq!(tl.getTimeBounds.unwrap()(h, &mut a, &mut b), 0);
        assert_eq!((a, b), (5.0, 9.0));
        assert_eq!(
            tl.getTime.unwrap()(null_mut(), &mut t),
            ofx::kOfxStatErrBadHandle
        );
    }
}

#[test]
fn progress_says_no_once_aborted() {
    let f = load(HostOptions {
        abort_after: Some(Duration::ZERO),
        ..quiet()
    });
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    let prog: &ofx::OfxProgressSuiteV1 = fetch(ofx::kOfxProgressSuite, 1).unwrap();
    // Inside a render on this instance, a zero budget is spent at once.
    let target = Arc::new(
        image::RenderTarget::new(
            OfxRectI {
                x1: 0,
                y1: 0,
                x2: 1,
                y2: 1,
            },
            BitDepth::Byte,
            Components::Rgba,
            false,
            0,
            0,
            0.0,
            (1.0, 1.0),
        )
        .unwrap(),
    );
    inst.effect().renders.lock().push(target);
    assert_eq!(
        unsafe { prog.progressUpdate.unwrap()(inst.handle() as _, 0.1) },
        ofx::kOfxStatReplyNo
    );
    inst.effect().renders.lock().clear();
    assert_eq!(
        unsafe { prog.progressUpdate.unwrap()(inst.handle() as _, 0.1) },
        ofx::kOfxStatOK
    );
}

#[test]
fn memory_suites() {
    let f = load(quiet());
    let inst = f.plugin.create_instance(GENERATOR).unwrap();
    let mem: &ofx::OfxMemorySuiteV1 = fetch(ofx::kOfxMemorySuite, 1).unwrap();
    let es = effects();
    unsafe {
        let mut p: *mut c_void = null_mut();
        assert_eq!(
            mem.memoryAlloc.unwrap()(inst.handle() as _, 1000, &mut p),
            0
        );
        assert_eq!(p as usize % 16, 0);
        ptr::write_bytes(p as *mut u8, 7, 1000);
        assert_eq!(mem.memoryFree.unwrap()(p), 0);
        assert_eq!(mem.memoryFree.unwrap()(p), ofx::kOfxStatErrBadHandle);
        assert_eq!(
            mem.memoryAlloc.unwrap()(0x42 as _, 10, &mut p),
            ofx::kOfxStatErrBadHandle
        );
        assert_eq!(
            mem.memoryAlloc.unwrap()(null_mut(), usize::MAX, &mut p),
            ofx::kOfxStatErrMemory
        );

        let mut m: ofx::OfxImageMemoryHandle = null_mut();
        assert_eq!(es.imageMemoryAlloc.unwrap()(null_mut(), 64, &mut m), 0);
        assert_eq!(es.imageMemoryLock.unwrap()(m, &mut p), 0);
        ptr::write_bytes(p as *mut u8, 1, 64);
        assert_eq!(es.imageMemoryUnlock.unwrap()(m), 0);
        assert_eq!(es.imageMemoryFree.unwrap()(m), 0);
        assert_eq!(
            es.imageMemoryLock.unwrap()(m, &mut p),
            ofx::kOfxStatErrBadHandle
        );
        assert_eq!(es.imageMemoryFree.unwrap()(m), ofx::kOfxStatErrBadHandle);
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_worker(index: c_uint, max: c_uint, arg: *mut c_void) {
    let mt: &ofx::OfxMultiThreadSuiteV1 = fetch(ofx::kOfxMultiThreadSuite, 1).unwrap();
    unsafe {
        assert_eq!(mt.multiThreadIsSpawnedThread.unwrap()(), 1);
        let mut idx = 0;
        mt.multiThreadIndex.unwrap()(&mut idx);
        assert_eq!(idx, index);
        assert!(index < max);
        let m = arg as ofx::OfxMutexHandle;
        assert_eq!(mt.mutexLock.unwrap()(m), 0);
        assert_eq!(mt.mutexLock.unwrap()(m), 0, "re-entrant");
        let before = COUNTER.load(Ordering::SeqCst);
        std::thread::yield_now();
        COUNTER.store(before + 1, Ordering::SeqCst);
        assert_eq!(mt.mutexUnLock.unwrap()(m), 0);
        assert_eq!(mt.mutexUnLock.unwrap()(m), 0);
        assert_eq!(
            mt.mutexUnLock.unwrap()(m),
            ofx::kOfxStatErrValue,
            "not locked any more"
        );
    }
}

#[test]
fn multi_thread_suite() {
    let _f = load(quiet());
    let mt: &ofx::OfxMultiThreadSuiteV1 = fetch(ofx::kOfxMultiThreadSuite, 1).unwrap();
    unsafe {
        assert_eq!(mt.multiThreadIsSpawnedThread.unwrap()(), 0);
        let mut idx = 9;
        assert_eq!(mt.multiThreadIndex.unwrap()(&mut idx), 0);
        assert_eq!(idx, 0);
        let mut n = 0;
        assert_eq!(mt.multiThreadNumCPUs.unwrap()(&mut n), 0);
        assert!(n >= 1);
        let mut m: ofx::OfxMutexHandle = null_mut();
        assert_eq!(mt.mutexCreate.unwrap()(&mut m, 1), 0);
        // Held by this thread: another thread cannot take it.
        let mh = m as usize;
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(mt.mutexTryLock.unwrap()(mh as _), ofx::kOfxStatFailed));
        });
        assert_eq!(mt.mutexUnLock.unwrap()(m), 0);
        COUNTER.store(0, Ordering::SeqCst);
        assert_eq!(
            mt.multiThread.unwrap()(Some(count_worker), 8, m as *mut c_void),
            0
        );
        assert_eq!(COUNTER.load(Ordering::SeqCst), 8);
        assert_eq!(
            mt.multiThread.unwrap()(None, 2, null_mut()),
            ofx::kOfxStatErrValue
        );
        assert_eq!(mt.mutexDestroy.unwrap()(m), 0);
        assert_eq!(mt.mutexLock.unwrap()(m), ofx::kOfxStatErrBadHandle);
        assert_eq!(mt.mutexDestroy.unwrap()(m), ofx::kOfxStatErrBadHandle);
    }
}

#[test]
fn parameter_descriptor_handles_have_no_values() {
    let f = load(quiet());
    f.plugin.describe_in_context(GENERATOR).unwrap();
    let desc = f.plugin.inner.descriptor().unwrap();
    let ctx = f
        .plugin
        .inner
        .descriptors_for_tests()
        .into_iter()
        .find(|d| d.params.find("gain").is_some())
        .unwrap();
    assert!(desc.params.params().is_empty());
    let gain = ctx.params.find("gain").unwrap();
    let ps = &params::PARAMETER_SUITE_V1;
    unsafe {
        let mut v = 0.0;
        assert_eq!(
            ps.paramGetValue.unwrap()(gain.handle as _, &mut v as *mut f64),
            ofx::kOfxStatErrBadHandle
        );
        let go = ctx.params.find("go").unwrap();
        let inst = f.plugin.create_instance(GENERATOR).unwrap();
        let go_inst = inst.effect().params.find("go").unwrap();
        assert_eq!(
            ps.paramGetValue.unwrap()(go_inst.handle as _, &mut v as *mut f64),
            ofx::kOfxStatErrUnsupported
        );
        assert_eq!(
            ps.paramGetNumKeys.unwrap()(go.handle as _, &mut 0u32),
            ofx::kOfxStatErrBadHandle
        );
        // Strings: null is refused, bytes that are not UTF-8 are kept (lossily).
        let text = inst.effect().params.find("text").unwrap();
        assert_eq!(
            ps.paramSetValue.unwrap()(text.handle as _, null::<c_char>()),
            ofx::kOfxStatErrValue
        );
        assert_eq!(
            ps.paramSetValue.unwrap()(text.handle as _, c"caf\xe9".as_ptr()),
            0
        );
        assert_eq!(
            inst.param_value("text", 0.0).unwrap(),
            ParamValue::Str("caf\u{fffd}".into())
        );
        let mut s: *const c_char = null();
        assert_eq!(
            ps.paramGetValue.unwrap()(text.handle as _, &mut s as *mut *const c_char),
            0
        );
        let first = s;
        assert_eq!(
            ps.paramGetValueAtTime.unwrap()(text.handle as _, 3.0, &mut s as *mut *const c_char),
            0
        );
        assert_eq!(first, s, "the same text is the same pointer");
        assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "caf\u{fffd}");
    }
}

#[test]
fn the_driver_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<bundle::Bundle>();
    check::<Host>();
    check::<Plugin>();
    check::<Instance>();
    check::<HostError>();
}
