//! The host and the suites it lends us, fetched once when the host introduces itself.

use super::bindings::*;
use super::props::PropSet;
use super::{c, OfxError, OfxResult};
use parking_lot::RwLock;
use std::sync::Arc;

/// The suites GenClip uses. The first three are required; the rest are optional in hosts and
/// every use checks for them.
pub struct HostSuites {
    pub host_props: OfxPropertySetHandle,
    pub property: &'static OfxPropertySuiteV1,
    pub image_effect: &'static OfxImageEffectSuiteV1,
    pub param: &'static OfxParameterSuiteV1,
    pub message_v2: Option<&'static OfxMessageSuiteV2>,
    pub message_v1: Option<&'static OfxMessageSuiteV1>,
    pub progress_v2: Option<&'static OfxProgressSuiteV2>,
    pub progress_v1: Option<&'static OfxProgressSuiteV1>,
    pub timeline: Option<&'static OfxTimeLineSuiteV1>,
}

// The suites are immutable tables of function pointers the host keeps alive while the plugin
// is loaded, and OpenFX requires them to be callable from any render thread.
unsafe impl Send for HostSuites {}
unsafe impl Sync for HostSuites {}

static HOST_POINTER: RwLock<Option<usize>> = RwLock::new(None);
static SUITES: RwLock<Option<Arc<HostSuites>>> = RwLock::new(None);

/// Remembers the host pointer from `setHost` / `OfxSetHost`; suites are fetched at load.
pub fn set_host(host: *const OfxHost) {
    *HOST_POINTER.write() = (!host.is_null()).then_some(host as usize);
}

/// Fetches the suites from the remembered host (the load action).
pub fn fetch_suites() -> OfxResult<()> {
    let host = HOST_POINTER.read().ok_or_else(|| {
        OfxError::new(
            kOfxStatErrMissingHostFeature,
            "the host never called setHost",
        )
    })? as *const OfxHost;
    // SAFETY: the host keeps its OfxHost alive while the plugin is loaded.
    let host = unsafe { &*host };
    let fetch = host.fetchSuite.ok_or_else(|| {
        OfxError::new(kOfxStatErrMissingHostFeature, "the host has no fetchSuite")
    })?;
    let get = |name: &'static [u8], version: i32| -> *const std::ffi::c_void {
        // SAFETY: fetchSuite takes the host property handle, a suite name and a version.
        unsafe { fetch(host.host, c(name), version) }
    };
    // SAFETY (all casts): a suite fetched by name and version has that version's layout.
    let required = |name: &'static [u8], what: &str| {
        let ptr = get(name, 1);
        if ptr.is_null() {
            Err(OfxError::new(
                kOfxStatErrMissingHostFeature,
                format!("the host lacks the {what} suite"),
            ))
        } else {
            Ok(ptr)
        }
    };
    let optional = |name: &'static [u8], version: i32| get(name, version);
    let suites = unsafe {
        HostSuites {
            host_props: host.host,
            property: &*(required(kOfxPropertySuite, "property")? as *const OfxPropertySuiteV1),
            image_effect: &*(required(kOfxImageEffectSuite, "image effect")?
                as *const OfxImageEffectSuiteV1),
            param: &*(required(kOfxParameterSuite, "parameter")? as *const OfxParameterSuiteV1),
            message_v2: (optional(kOfxMessageSuite, 2) as *const OfxMessageSuiteV2).as_ref(),
            message_v1: (optional(kOfxMessageSuite, 1) as *const OfxMessageSuiteV1).as_ref(),
            progress_v2: (optional(kOfxProgressSuite, 2) as *const OfxProgressSuiteV2).as_ref(),
            progress_v1: (optional(kOfxProgressSuite, 1) as *const OfxProgressSuiteV1).as_ref(),
            timeline: (optional(kOfxTimeLineSuite, 1) as *const OfxTimeLineSuiteV1).as_ref(),
        }
    };
    *SUITES.write() = Some(Arc::new(suites));
    Ok(())
}

/// Forgets the suites (the unload action): the host may free them afterwards.
pub fn release_suites() {
    *SUITES.write() = None;
}

/// The suites, or an error for actions that arrive before load (or after unload).
pub fn suites() -> OfxResult<Arc<HostSuites>> {
    SUITES
        .read()
        .clone()
        .ok_or_else(|| OfxError::new(kOfxStatErrMissingHostFeature, "the plugin was not loaded"))
}

impl HostSuites {
    /// The host's own property set (its name, capabilities).
    pub fn host_properties(&self) -> PropSet {
        PropSet::new(self.host_props, self.property)
    }
}
