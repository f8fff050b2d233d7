//! The Rust side of `shim.c`, which defines the suite functions that are C-variadic.
//!
//! The shim reaches Rust through a table of function pointers installed when the first host
//! is created, rather than through exported symbols: the plugin binary links this crate too,
//! and it should export nothing but the OpenFX entry points.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Once;

use super::ffi::ofx;
use super::{params, suites};

/// Values of a set call, gathered from `...` by the shim (layout shared with shim.c).
#[repr(C)]
pub(crate) struct ShimValues {
    pub ints: [c_int; 4],
    pub doubles: [f64; 4],
    pub string: *const c_char,
}

/// What the shim calls (layout shared with `genclip_shim_callbacks` in shim.c).
#[repr(C)]
struct Callbacks {
    param_kind: unsafe extern "C" fn(ofx::OfxParamHandle, *mut c_int) -> c_int,
    param_get: unsafe extern "C" fn(
        ofx::OfxParamHandle,
        c_int,
        f64,
        f64,
        *const *mut c_void,
        c_int,
    ) -> ofx::OfxStatus,
    param_set:
        unsafe extern "C" fn(ofx::OfxParamHandle, c_int, f64, *const ShimValues) -> ofx::OfxStatus,
    message: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *const c_char,
        *const c_char,
        c_int,
    ) -> ofx::OfxStatus,
}

static CALLBACKS: Callbacks = Callbacks {
    param_kind: params::shim_param_kind,
    param_get: params::shim_param_get,
    param_set: params::shim_param_set,
    message: suites::shim_message,
};

extern "C" {
    fn genclip_shim_install(callbacks: *const Callbacks);

    pub(crate) fn genclip_shim_param_get_value(h: ofx::OfxParamHandle, ...) -> ofx::OfxStatus;
    pub(crate) fn genclip_shim_param_get_value_at_time(
        h: ofx::OfxParamHandle,
        t: f64,
        ...
    ) -> ofx::OfxStatus;
    pub(crate) fn genclip_shim_param_get_derivative(
        h: ofx::OfxParamHandle,
        t: f64,
        ...
    ) -> ofx::OfxStatus;
    pub(crate) fn genclip_shim_param_get_integral(
        h: ofx::OfxParamHandle,
        t1: f64,
        t2: f64,
        ...
    ) -> ofx::OfxStatus;
    pub(crate) fn genclip_shim_param_set_value(h: ofx::OfxParamHandle, ...) -> ofx::OfxStatus;
    pub(crate) fn genclip_shim_param_set_value_at_time(
        h: ofx::OfxParamHandle,
        t: f64,
        ...
    ) -> ofx::OfxStatus;
    pub(crate) fn genclip_shim_message(
        h: *mut c_void,
        ty: *const c_char,
        id: *const c_char,
        format: *const c_char,
        ...
    ) -> ofx::OfxStatus;
    pub(crate) fn genclip_shim_set_persistent_message(
        h: *mut c_void,
        ty: *const c_char,
        id: *const c_char,
        format: *const c_char,
        ...
    ) -> ofx::OfxStatus;
}

/// Connects the shim to Rust (idempotent). Until then its functions answer
/// kOfxStatErrUnknown; no plugin can reach them before a host exists.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| unsafe { genclip_shim_install(&CALLBACKS) });
}
