//! Telling the user things: the message suite (v2 preferred, v1 accepted) and the progress
//! suite. Both are optional in hosts, so every call checks and quietly does nothing without
//! them; the plugin's *Status* parameter always carries the same news.

// The instance handles passed here go to the host untouched; we never dereference them.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::bindings::*;
use super::suites::HostSuites;
use super::{c, OfxResult};
use std::ffi::{c_void, CString};

/// How serious a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Message,
    Log,
}

impl Severity {
    fn ofx(self) -> &'static [u8] {
        match self {
            Severity::Error => kOfxMessageError,
            Severity::Warning => kOfxMessageWarning,
            Severity::Message => kOfxMessageMessage,
            Severity::Log => kOfxMessageLog,
        }
    }
}

fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Posts a one-off message about `handle` (an instance, or null for the plugin).
pub fn post(suites: &HostSuites, handle: *mut c_void, severity: Severity, id: &str, text: &str) {
    let (id, text) = (c_text(id), c_text(text));
    let fmt = b"%s\0";
    // SAFETY: printf-style call with one "%s" and one C string argument.
    unsafe {
        if let Some(f) = suites.message_v2.and_then(|m| m.message) {
            f(
                handle,
                c(severity.ofx()),
                id.as_ptr(),
                c(fmt),
                text.as_ptr(),
            );
        } else if let Some(f) = suites.message_v1.and_then(|m| m.message) {
            f(
                handle,
                c(severity.ofx()),
                id.as_ptr(),
                c(fmt),
                text.as_ptr(),
            );
        }
    }
}

/// Shows a message that stays on the instance until cleared (v2 hosts), or posts it once.
pub fn set_persistent(
    suites: &HostSuites,
    handle: *mut c_void,
    severity: Severity,
    id: &str,
    text: &str,
) {
    match suites.message_v2.and_then(|m| m.setPersistentMessage) {
        Some(f) => {
            let (id, text) = (c_text(id), c_text(text));
            // SAFETY: as in `post`.
            unsafe {
                f(
                    handle,
                    c(severity.ofx()),
                    id.as_ptr(),
                    c(b"%s\0"),
                    text.as_ptr(),
                )
            };
        }
        None => post(suites, handle, severity, id, text),
    }
}

pub fn clear_persistent(suites: &HostSuites, handle: *mut c_void) {
    if let Some(f) = suites.message_v2.and_then(|m| m.clearPersistentMessage) {
        // SAFETY: takes the instance handle only.
        unsafe { f(handle) };
    }
}

/// A progress bar for one long action; ended on drop.
pub struct Progress<'a> {
    suites: &'a HostSuites,
    handle: *mut c_void,
    started: bool,
}

impl<'a> Progress<'a> {
    pub fn start(
        suites: &'a HostSuites,
        handle: *mut c_void,
        label: &str,
        id: &str,
    ) -> Progress<'a> {
        let (label, id) = (c_text(label), c_text(id));
        // SAFETY: plain calls with C strings that outlive them.
        let started = unsafe {
            if let Some(f) = suites.progress_v2.and_then(|p| p.progressStart) {
                f(handle, label.as_ptr(), id.as_ptr()) == kOfxStatOK
            } else if let Some(f) = suites.progress_v1.and_then(|p| p.progressStart) {
                f(handle, label.as_ptr()) == kOfxStatOK
            } else {
                false
            }
        };
        Progress {
            suites,
            handle,
            started,
        }
    }

    /// Reports `fraction` done; `Ok(false)` when the user asked to stop.
    pub fn update(&self, fraction: f64) -> OfxResult<bool> {
        if !self.started {
            return Ok(true);
        }
        let update = self
            .suites
            .progress_v2
            .and_then(|p| p.progressUpdate)
            .or_else(|| self.suites.progress_v1.and_then(|p| p.progressUpdate));
        // SAFETY: plain value call.
        let st = update.map(|f| unsafe { f(self.handle, fraction.clamp(0.0, 1.0)) });
        Ok(st != Some(kOfxStatReplyNo))
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        let end = self
            .suites
            .progress_v2
            .and_then(|p| p.progressEnd)
            .or_else(|| self.suites.progress_v1.and_then(|p| p.progressEnd));
        if let Some(f) = end {
            // SAFETY: ends the progress this value started.
            unsafe { f(self.handle) };
        }
    }
}
