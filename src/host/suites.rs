//! fetchSuite and the small suites: memory, multi-thread, message, progress, time line.

use std::alloc::{alloc, dealloc, Layout};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::{Arc, LazyLock};
use std::thread::ThreadId;

use parking_lot::{Condvar, Mutex};

use super::app::{Host, HostMessage, ProgressEvent};
use super::effect::{Effect, IMAGE_EFFECT_SUITE_V1};
use super::ffi::{c_str, c_text, guard, guard_or, k, ofx, put};
use super::handles::{self, Obj};
use super::params::PARAMETER_SUITE_V1;
use super::props::PROPERTY_SUITE_V1;
use super::shim;
use super::threadctx;

// ----- fetchSuite -----

fn suite<T>(s: &'static T) -> *const c_void {
    s as *const T as *const c_void
}

/// `OfxHost::fetchSuite`: the suites this host offers, by name and version; NULL otherwise.
pub(crate) unsafe extern "C" fn fetch_suite(
    host: ofx::OfxPropertySetHandle,
    name: *const c_char,
    version: c_int,
) -> *const c_void {
    guard_or(std::ptr::null(), || {
        let Some(h) = Host::from_props_handle(host as usize) else {
            return std::ptr::null();
        };
        let Some(name) = (unsafe { c_str(name) }) else {
            return std::ptr::null();
        };
        let name = name.to_bytes();
        let is = |c: &[u8]| k(c).as_bytes() == name;
        let o = h.options();
        match version {
            1 if is(ofx::kOfxPropertySuite) => suite(&PROPERTY_SUITE_V1),
            1 if is(ofx::kOfxImageEffectSuite) => suite(&IMAGE_EFFECT_SUITE_V1),
            1 if is(ofx::kOfxParameterSuite) => suite(&PARAMETER_SUITE_V1),
            1 if is(ofx::kOfxMemorySuite) => suite(&MEMORY_SUITE_V1),
            1 if is(ofx::kOfxMultiThreadSuite) => suite(&MULTI_THREAD_SUITE_V1),
            1 if is(ofx::kOfxTimeLineSuite) => suite(&TIME_LINE_SUITE_V1),
            1 if o.message_suite && is(ofx::kOfxMessageSuite) => suite(&MESSAGE_SUITE_V1),
            2 if o.message_suite && is(ofx::kOfxMessageSuite) => suite(&MESSAGE_SUITE_V2),
            1 if o.progress_suite && is(ofx::kOfxProgressSuite) => suite(&PROGRESS_SUITE_V1),
            2 if o.progress_suite && is(ofx::kOfxProgressSuite) => suite(&PROGRESS_SUITE_V2),
            _ => std::ptr::null(),
        }
    })
}

// ----- memory -----

const MEMORY_ALIGN: usize = 16;

/// Live memory-suite allocations, by address.
static ALLOCATIONS: LazyLock<Mutex<HashMap<usize, Layout>>> = LazyLock::new(Default::default);

/// A null handle or a live effect: what memory and progress calls accept as their handle.
fn effect_or_null(h: *mut c_void) -> Result<Option<Arc<Effect>>, i32> {
    if h.is_null() {
        return Ok(None);
    }
    handles::effect(h as usize)
        .map(Some)
        .ok_or(ofx::kOfxStatErrBadHandle)
}

/// Allocates `n` bytes (at least 1), 16-byte aligned; `None` when that is impossible.
pub(crate) fn raw_alloc(n: usize) -> Option<(*mut u8, Layout)> {
    let layout = Layout::from_size_align(n.max(1), MEMORY_ALIGN).ok()?;
    let p = unsafe { alloc(layout) };
    (!p.is_null()).then_some((p, layout))
}

unsafe extern "C" fn memory_alloc(
    handle: *mut c_void,
    n: usize,
    out: *mut *mut c_void,
) -> ofx::OfxStatus {
    guard(|| {
        if let Err(e) = effect_or_null(handle) {
            return e;
        }
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        let Some((p, layout)) = raw_alloc(n) else {
            return ofx::kOfxStatErrMemory;
        };
        ALLOCATIONS.lock().insert(p as usize, layout);
        unsafe { put(out, p as *mut c_void) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn memory_free(data: *mut c_void) -> ofx::OfxStatus {
    guard(|| match ALLOCATIONS.lock().remove(&(data as usize)) {
        Some(layout) => {
            unsafe { dealloc(data as *mut u8, layout) };
            ofx::kOfxStatOK
        }
        None => ofx::kOfxStatErrBadHandle,
    })
}

static MEMORY_SUITE_V1: ofx::OfxMemorySuiteV1 = ofx::OfxMemorySuiteV1 {
    memoryAlloc: Some(memory_alloc),
    memoryFree: Some(memory_free),
};

// ----- multi-thread -----

fn cpu_count() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Runs `func` once per index, each on its own thread, and waits for all. Called from a
/// thread this suite spawned, it runs the indices in turn on that thread instead (no
/// nested fan-out). nThreads 0 means one per CPU.
unsafe extern "C" fn multi_thread(
    func: ofx::OfxThreadFunctionV1,
    n: c_uint,
    arg: *mut c_void,
) -> ofx::OfxStatus {
    guard(|| {
        let Some(func) = func else {
            return ofx::kOfxStatErrValue;
        };
        let n = if n == 0 { cpu_count() } else { n };
        let arg = arg as usize;
        let run = move |i: u32| unsafe { func(i, n, arg as *mut c_void) };
        let inline = |i: u32| {
            let before = threadctx::set_spawned(Some(i));
            run(i);
            threadctx::set_spawned(before);
        };
        if threadctx::is_spawned() {
            (0..n).for_each(inline);
            return ofx::kOfxStatOK;
        }
        let inherited = threadctx::inherit();
        std::thread::scope(|scope| {
            let mut not_spawned = Vec::new();
            for i in 0..n {
                let inherited = inherited.clone();
                let worker = std::thread::Builder::new()
                    .name(format!("ofx-worker-{i}"))
                    .spawn_scoped(scope, move || {
                        threadctx::install(inherited, i);
                        run(i);
                    });
                if worker.is_err() {
                    not_spawned.push(i);
                }
            }
            // The OS would not give us a thread: run those indices here rather than skip them.
            not_spawned.into_iter().for_each(inline);
        });
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn multi_thread_num_cpus(out: *mut c_uint) -> ofx::OfxStatus {
    guard(|| {
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        unsafe { put(out, cpu_count()) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn multi_thread_index(out: *mut c_uint) -> ofx::OfxStatus {
    guard(|| {
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        unsafe { put(out, threadctx::thread_index()) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn multi_thread_is_spawned_thread() -> c_int {
    guard_or(0, || threadctx::is_spawned() as c_int)
}

/// A re-entrant mutex that knows its owner, so a wrong unlock is an error, not undefined.
pub(crate) struct HostMutex {
    state: Mutex<(Option<ThreadId>, u32)>,
    freed: Condvar,
}

impl HostMutex {
    fn lock(&self) {
        let me = std::thread::current().id();
        let mut st = self.state.lock();
        while st.0.is_some_and(|owner| owner != me) {
            self.freed.wait(&mut st);
        }
        st.0 = Some(me);
        st.1 += 1;
    }

    fn try_lock(&self) -> bool {
        let me = std::thread::current().id();
        let mut st = self.state.lock();
        if st.0.is_some_and(|owner| owner != me) {
            return false;
        }
        st.0 = Some(me);
        st.1 += 1;
        true
    }

    fn unlock(&self) -> bool {
        let me = std::thread::current().id();
        let mut st = self.state.lock();
        if st.0 != Some(me) {
            return false;
        }
        st.1 -= 1;
        if st.1 == 0 {
            st.0 = None;
            self.freed.notify_one();
        }
        true
    }
}

unsafe extern "C" fn mutex_create(
    out: *mut ofx::OfxMutexHandle,
    lock_count: c_int,
) -> ofx::OfxStatus {
    guard(|| {
        if out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        let m = Arc::new(HostMutex {
            state: Mutex::new((None, 0)),
            freed: Condvar::new(),
        });
        for _ in 0..lock_count.max(0) {
            m.lock();
        }
        let h = handles::reserve();
        handles::insert(h, Obj::Mutex(m));
        unsafe { put(out, h as ofx::OfxMutexHandle) };
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn mutex_destroy(m: ofx::OfxMutexHandle) -> ofx::OfxStatus {
    guard(|| match handles::mutex(m as usize) {
        Some(_) => {
            handles::remove(m as usize);
            ofx::kOfxStatOK
        }
        None => ofx::kOfxStatErrBadHandle,
    })
}

unsafe extern "C" fn mutex_lock(m: ofx::OfxMutexHandle) -> ofx::OfxStatus {
    guard(|| match handles::mutex(m as usize) {
        Some(m) => {
            m.lock();
            ofx::kOfxStatOK
        }
        None => ofx::kOfxStatErrBadHandle,
    })
}

unsafe extern "C" fn mutex_unlock(m: ofx::OfxMutexHandle) -> ofx::OfxStatus {
    guard(|| match handles::mutex(m as usize) {
        Some(m) if m.unlock() => ofx::kOfxStatOK,
        // Not locked by this thread.
        Some(_) => ofx::kOfxStatErrValue,
        None => ofx::kOfxStatErrBadHandle,
    })
}

unsafe extern "C" fn mutex_try_lock(m: ofx::OfxMutexHandle) -> ofx::OfxStatus {
    guard(|| match handles::mutex(m as usize) {
        Some(m) if m.try_lock() => ofx::kOfxStatOK,
        Some(_) => ofx::kOfxStatFailed,
        None => ofx::kOfxStatErrBadHandle,
    })
}

static MULTI_THREAD_SUITE_V1: ofx::OfxMultiThreadSuiteV1 = ofx::OfxMultiThreadSuiteV1 {
    multiThread: Some(multi_thread),
    multiThreadNumCPUs: Some(multi_thread_num_cpus),
    multiThreadIndex: Some(multi_thread_index),
    multiThreadIsSpawnedThread: Some(multi_thread_is_spawned_thread),
    mutexCreate: Some(mutex_create),
    mutexDestroy: Some(mutex_destroy),
    mutexLock: Some(mutex_lock),
    mutexUnLock: Some(mutex_unlock),
    mutexTryLock: Some(mutex_try_lock),
};

// ----- messages (the variadic functions are in shim.c, which formats and calls shim_message) -----

const MESSAGE_TYPES: [&[u8]; 6] = [
    ofx::kOfxMessageError,
    ofx::kOfxMessageFatal,
    ofx::kOfxMessageLog,
    ofx::kOfxMessageMessage,
    ofx::kOfxMessageQuestion,
    ofx::kOfxMessageWarning,
];

/// For the shim: records a formatted message. A null handle means "from the plugin, about
/// nothing in particular"; otherwise the handle must be a live effect.
///
/// # Safety
/// Non-null string arguments are NUL-terminated.
pub(crate) unsafe extern "C" fn shim_message(
    handle: *mut c_void,
    ty: *const c_char,
    id: *const c_char,
    text: *const c_char,
    persistent: c_int,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        let effect = match effect_or_null(handle) {
            Ok(e) => e,
            Err(e) => return e,
        };
        let host = match &effect {
            Some(e) => e.host.upgrade(),
            None => threadctx::current_host().or_else(Host::last),
        };
        let Some(host) = host else {
            return ofx::kOfxStatFailed;
        };
        let (Some(ty), Some(text)) = (c_text(ty), c_text(text)) else {
            return ofx::kOfxStatErrValue;
        };
        if !MESSAGE_TYPES.iter().any(|t| k(t) == ty) {
            return ofx::kOfxStatErrUnknown;
        }
        let persistent = persistent != 0;
        if persistent {
            let allowed: [&[u8]; 3] = [
                ofx::kOfxMessageError,
                ofx::kOfxMessageWarning,
                ofx::kOfxMessageMessage,
            ];
            if !allowed.iter().any(|t| k(t) == ty) {
                return ofx::kOfxStatErrValue;
            }
        }
        let msg = HostMessage {
            kind: ty.into_owned(),
            id: c_text(id).map(|s| s.into_owned()).unwrap_or_default(),
            text: text.into_owned(),
            persistent,
        };
        let question = msg.kind == k(ofx::kOfxMessageQuestion);
        if persistent {
            // The effect exists: a persistent message belongs to one.
            match &effect {
                Some(e) => *e.persistent.lock() = Some(msg.clone()),
                None => return ofx::kOfxStatErrBadHandle,
            }
        }
        host.post(msg, handle as usize);
        // Nobody is there to ask: a headless host answers yes.
        if question {
            ofx::kOfxStatReplyYes
        } else {
            ofx::kOfxStatOK
        }
    })
}

unsafe extern "C" fn clear_persistent_message(handle: *mut c_void) -> ofx::OfxStatus {
    guard(|| match handles::effect(handle as usize) {
        Some(e) => {
            *e.persistent.lock() = None;
            ofx::kOfxStatOK
        }
        None => ofx::kOfxStatErrBadHandle,
    })
}

static MESSAGE_SUITE_V1: ofx::OfxMessageSuiteV1 = ofx::OfxMessageSuiteV1 {
    message: Some(shim::genclip_shim_message),
};

static MESSAGE_SUITE_V2: ofx::OfxMessageSuiteV2 = ofx::OfxMessageSuiteV2 {
    message: Some(shim::genclip_shim_message),
    setPersistentMessage: Some(shim::genclip_shim_set_persistent_message),
    clearPersistentMessage: Some(clear_persistent_message),
};

// ----- progress -----

fn with_effect(h: *mut c_void, f: impl FnOnce(&Effect, &Host) -> i32) -> i32 {
    let Some(e) = handles::effect(h as usize) else {
        return ofx::kOfxStatErrBadHandle;
    };
    match e.host.upgrade() {
        Some(host) => f(&e, &host),
        None => ofx::kOfxStatErrBadHandle,
    }
}

unsafe extern "C" fn progress_start_v1(h: *mut c_void, label: *const c_char) -> ofx::OfxStatus {
    guard(|| {
        let label = unsafe { c_text(label) }
            .map(|s| s.into_owned())
            .unwrap_or_default();
        with_effect(h, |_, host| {
            host.progress_event(ProgressEvent::Start(label));
            ofx::kOfxStatOK
        })
    })
}

unsafe extern "C" fn progress_start_v2(
    h: *mut c_void,
    message: *const c_char,
    _id: *const c_char,
) -> ofx::OfxStatus {
    unsafe { progress_start_v1(h, message) }
}

unsafe extern "C" fn progress_update(h: *mut c_void, progress: f64) -> ofx::OfxStatus {
    guard(|| {
        with_effect(h, |e, host| {
            host.progress_event(ProgressEvent::Update(progress));
            // The host's way to say "stop" from a progress bar.
            if e.abort_requested(true) {
                ofx::kOfxStatReplyNo
            } else {
                ofx::kOfxStatOK
            }
        })
    })
}

unsafe extern "C" fn progress_end(h: *mut c_void) -> ofx::OfxStatus {
    guard(|| {
        with_effect(h, |_, host| {
            host.progress_event(ProgressEvent::End);
            ofx::kOfxStatOK
        })
    })
}

static PROGRESS_SUITE_V1: ofx::OfxProgressSuiteV1 = ofx::OfxProgressSuiteV1 {
    progressStart: Some(progress_start_v1),
    progressUpdate: Some(progress_update),
    progressEnd: Some(progress_end),
};

static PROGRESS_SUITE_V2: ofx::OfxProgressSuiteV2 = ofx::OfxProgressSuiteV2 {
    progressStart: Some(progress_start_v2),
    progressUpdate: Some(progress_update),
    progressEnd: Some(progress_end),
};

// ----- time line -----

unsafe extern "C" fn timeline_get_time(h: *mut c_void, out: *mut f64) -> ofx::OfxStatus {
    guard(|| {
        with_effect(h, |_, host| {
            if out.is_null() {
                return ofx::kOfxStatErrValue;
            }
            unsafe { put(out, host.time()) };
            ofx::kOfxStatOK
        })
    })
}

unsafe extern "C" fn timeline_goto_time(h: *mut c_void, t: f64) -> ofx::OfxStatus {
    guard(|| {
        with_effect(h, |_, host| {
            if !t.is_finite() {
                return ofx::kOfxStatErrValue;
            }
            host.set_time(t);
            ofx::kOfxStatOK
        })
    })
}

unsafe extern "C" fn timeline_get_time_bounds(
    h: *mut c_void,
    first: *mut f64,
    last: *mut f64,
) -> ofx::OfxStatus {
    guard(|| {
        with_effect(h, |_, host| {
            if first.is_null() || last.is_null() {
                return ofx::kOfxStatErrValue;
            }
            let (a, b) = host.options().frame_range;
            unsafe {
                put(first, a);
                put(last, b);
            }
            ofx::kOfxStatOK
        })
    })
}

static TIME_LINE_SUITE_V1: ofx::OfxTimeLineSuiteV1 = ofx::OfxTimeLineSuiteV1 {
    getTime: Some(timeline_get_time),
    gotoTime: Some(timeline_goto_time),
    getTimeBounds: Some(timeline_get_time_bounds),
};
