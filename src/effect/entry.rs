//! The symbols the host looks up in our binary, and the main entry every action goes
//! through. Each of them is fenced against panics: the host never sees one.

use super::actions;
use super::{PLUGIN_IDENTIFIER, PLUGIN_VERSION};
use crate::ofx::bindings::*;
use crate::ofx::entry::guard;
use crate::ofx::{copy_c_string, suites};
use std::ffi::{c_char, c_void};

/// `OfxPlugin` holds raw pointers, so it is not `Sync` by itself; ours points only at
/// static, immutable data.
struct StaticPlugin(OfxPlugin);
unsafe impl Sync for StaticPlugin {}

const IDENTIFIER_C: &[u8] = concat!("org.genclip.GenClip", "\0").as_bytes();
const _: () = assert!(IDENTIFIER_C.len() == PLUGIN_IDENTIFIER.len() + 1);

static PLUGIN: StaticPlugin = StaticPlugin(OfxPlugin {
    pluginApi: kOfxImageEffectPluginApi.as_ptr() as *const c_char,
    apiVersion: kOfxImageEffectPluginApiVersion,
    pluginIdentifier: IDENTIFIER_C.as_ptr() as *const c_char,
    pluginVersionMajor: PLUGIN_VERSION.0,
    pluginVersionMinor: PLUGIN_VERSION.1,
    setHost: Some(set_host),
    mainEntry: Some(main_entry),
});

#[no_mangle]
pub extern "C" fn OfxGetNumberOfPlugins() -> i32 {
    1
}

#[no_mangle]
pub extern "C" fn OfxGetPlugin(nth: i32) -> *mut OfxPlugin {
    if nth == 0 {
        // Hosts take a mutable pointer by signature but never write through it.
        &PLUGIN.0 as *const OfxPlugin as *mut OfxPlugin
    } else {
        std::ptr::null_mut()
    }
}

/// The OpenFX 1.5 bootstrapper: the host may introduce itself before asking for plugins.
#[no_mangle]
pub extern "C" fn OfxSetHost(host: *const OfxHost) -> OfxStatus {
    guard(kOfxStatFailed, || {
        suites::set_host(host);
        kOfxStatOK
    })
}

unsafe extern "C" fn set_host(host: *mut OfxHost) {
    guard((), || suites::set_host(host));
}

unsafe extern "C" fn main_entry(
    action: *const c_char,
    handle: *const c_void,
    in_args: OfxPropertySetHandle,
    out_args: OfxPropertySetHandle,
) -> OfxStatus {
    guard(kOfxStatFailed, || {
        // SAFETY: the action is a NUL-terminated string from the host (or null).
        let Some(action) = (unsafe { copy_c_string(action) }) else {
            return kOfxStatErrBadHandle;
        };
        actions::dispatch(&action, handle, in_args, out_args)
    })
}
