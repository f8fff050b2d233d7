//! Small helpers shared by the host's `extern "C"` functions.

use std::borrow::Cow;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub(crate) use crate::ofx::bindings as ofx;

/// A `kOfx*` string constant (NUL-terminated bytes) as a `&str`.
pub(crate) fn k(constant: &[u8]) -> &str {
    let bytes = constant.strip_suffix(&[0]).unwrap_or(constant);
    std::str::from_utf8(bytes).unwrap_or("")
}

/// Runs the body of a host C function: a panic must never unwind into the plugin, so it is
/// turned into `kOfxStatErrUnknown`.
pub(crate) fn guard<F: FnOnce() -> i32>(body: F) -> i32 {
    guard_or(ofx::kOfxStatErrUnknown, body)
}

/// [`guard`] for functions that do not return a status.
pub(crate) fn guard_or<T, F: FnOnce() -> T>(fallback: T, body: F) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// A C string argument; `None` for null.
///
/// # Safety
/// A non-null `p` must point at a NUL-terminated string (the plugin's promise).
pub(crate) unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a CStr> {
    if p.is_null() {
        None
    } else {
        Some(unsafe { CStr::from_ptr(p) })
    }
}

/// A C string argument as text, non-UTF-8 bytes replaced.
///
/// # Safety
/// As for [`c_str`].
pub(crate) unsafe fn c_text<'a>(p: *const c_char) -> Option<Cow<'a, str>> {
    unsafe { c_str(p) }.map(CStr::to_string_lossy)
}

/// A `CString` from Rust text, cut at the first NUL (C could not see past it anyway).
pub(crate) fn cstring(s: &str) -> CString {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).expect("no NUL before end")
}

/// Writes through a plugin-supplied out pointer, which may be misaligned.
///
/// # Safety
/// `p` must be non-null and point at writable memory for a `T`.
pub(crate) unsafe fn put<T>(p: *mut T, value: T) {
    unsafe { p.write_unaligned(value) }
}

/// The usual answer of a getter: `value` (from a handle that resolved) written through `out`;
/// a handle that did not resolve is a bad handle, a null `out` a bad value.
///
/// # Safety
/// `out` must be null or valid for one write of `T`.
pub(crate) unsafe fn reply<T>(value: Option<T>, out: *mut T) -> ofx::OfxStatus {
    match value {
        None => ofx::kOfxStatErrBadHandle,
        Some(_) if out.is_null() => ofx::kOfxStatErrValue,
        Some(v) => {
            unsafe { put(out, v) };
            ofx::kOfxStatOK
        }
    }
}

/// The name of an OfxStatus code, for error messages.
pub fn status_name(status: i32) -> String {
    let name = match status {
        0 => "kOfxStatOK",
        1 => "kOfxStatFailed",
        2 => "kOfxStatErrFatal",
        3 => "kOfxStatErrUnknown",
        4 => "kOfxStatErrMissingHostFeature",
        5 => "kOfxStatErrUnsupported",
        6 => "kOfxStatErrExists",
        7 => "kOfxStatErrFormat",
        8 => "kOfxStatErrMemory",
        9 => "kOfxStatErrBadHandle",
        10 => "kOfxStatErrBadIndex",
        11 => "kOfxStatErrValue",
        12 => "kOfxStatReplyYes",
        13 => "kOfxStatReplyNo",
        14 => "kOfxStatReplyDefault",
        15 => "kOfxStatUnlicensed",
        1000 => "kOfxStatErrImageFormat",
        1001 => "kOfxStatGPUOutOfMemory",
        1002 => "kOfxStatGPURenderFailed",
        -1 => "host error",
        other => return format!("unknown status {other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_lose_their_nul() {
        assert_eq!(k(ofx::kOfxActionLoad), "OfxActionLoad");
        assert_eq!(k(b"plain"), "plain");
    }

    #[test]
    fn guard_turns_panics_into_status() {
        assert_eq!(guard(|| 0), 0);
        assert_eq!(guard(|| panic!("boom")), ofx::kOfxStatErrUnknown);
        assert_eq!(guard_or(7u8, || panic!("boom")), 7);
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(ofx::kOfxStatFailed), "kOfxStatFailed");
        assert_eq!(
            status_name(ofx::kOfxStatErrImageFormat),
            "kOfxStatErrImageFormat"
        );
        assert_eq!(status_name(4242), "unknown status 4242");
    }

    #[test]
    fn cstring_cuts_at_nul() {
        assert_eq!(cstring("ab\0cd").as_bytes(), b"ab");
        assert_eq!(cstring("abc").as_bytes(), b"abc");
    }
}
