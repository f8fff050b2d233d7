//! Thin, safe wrappers over the OpenFX C ABI, used by the plugin side (`crate::effect`).
//!
//! Everything here is plugin-side: the host's suites, reached through the pointers the host
//! hands us in `setHost`. The headless host (`crate::host`) is the other side of the same ABI
//! and only shares [`bindings`].

pub mod bindings;
pub mod entry;
pub mod image;
pub mod image_effect;
pub mod message;
pub mod params;
pub mod props;
pub mod status;
pub mod suites;

pub use status::{OfxError, OfxResult};

use std::ffi::{c_char, CStr};

/// A NUL-terminated constant from the bindings (e.g. `kOfxPropName`) as a C string pointer.
pub fn c(name: &'static [u8]) -> *const c_char {
    debug_assert_eq!(name.last(), Some(&0), "OpenFX constants are NUL-terminated");
    name.as_ptr().cast()
}

/// A NUL-terminated constant from the bindings as a Rust string (without the NUL).
pub fn s(name: &'static [u8]) -> &'static str {
    CStr::from_bytes_with_nul(name)
        .ok()
        .and_then(|c| c.to_str().ok())
        .unwrap_or("")
}

/// The value paired with the OpenFX string `name` in `table` (contexts, depths, layouts).
pub fn lookup<T: Copy>(table: &[(&'static [u8], T)], name: &str) -> Option<T> {
    table.iter().find(|(k, _)| s(k) == name).map(|&(_, v)| v)
}

/// Copies a host-owned C string at once: the host may free or reuse it after the call.
///
/// # Safety
/// `ptr` must be null or point at a NUL-terminated string that is valid for this call.
pub unsafe fn copy_c_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    Some(CStr::from_ptr(ptr).to_string_lossy().into_owned())
}
