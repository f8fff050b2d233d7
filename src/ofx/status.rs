#![allow(non_upper_case_globals)] // the specification's constant names, matched in patterns

//! OpenFX status codes as a Rust error type.

use super::bindings::*;
use std::fmt;

/// A failed OpenFX call: the status the host (or we) returned, and what we were doing.
#[derive(Clone, Debug, PartialEq)]
pub struct OfxError {
    pub status: OfxStatus,
    pub context: String,
}

pub type OfxResult<T> = Result<T, OfxError>;

impl OfxError {
    pub fn new(status: OfxStatus, context: impl Into<String>) -> Self {
        OfxError {
            status,
            context: context.into(),
        }
    }

    /// An error of our own making (bad input, inconsistent host), reported as kOfxStatFailed.
    pub fn failed(context: impl Into<String>) -> Self {
        Self::new(kOfxStatFailed, context)
    }
}

impl fmt::Display for OfxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.context, status_name(self.status))
    }
}

impl std::error::Error for OfxError {}

/// Turns a status into a result, naming what was attempted.
pub fn check(status: OfxStatus, what: impl FnOnce() -> String) -> OfxResult<()> {
    if status == kOfxStatOK {
        Ok(())
    } else {
        Err(OfxError::new(status, what()))
    }
}

/// The specification's name of a status code, for messages a person reads.
pub fn status_name(status: OfxStatus) -> &'static str {
    match status {
        kOfxStatOK => "kOfxStatOK",
        kOfxStatFailed => "kOfxStatFailed",
        kOfxStatErrFatal => "kOfxStatErrFatal",
        kOfxStatErrUnknown => "kOfxStatErrUnknown",
        kOfxStatErrMissingHostFeature => "kOfxStatErrMissingHostFeature",
        kOfxStatErrUnsupported => "kOfxStatErrUnsupported",
        kOfxStatErrExists => "kOfxStatErrExists",
        kOfxStatErrFormat => "kOfxStatErrFormat",
        kOfxStatErrMemory => "kOfxStatErrMemory",
        kOfxStatErrBadHandle => "kOfxStatErrBadHandle",
        kOfxStatErrBadIndex => "kOfxStatErrBadIndex",
        kOfxStatErrValue => "kOfxStatErrValue",
        kOfxStatReplyYes => "kOfxStatReplyYes",
        kOfxStatReplyNo => "kOfxStatReplyNo",
        kOfxStatReplyDefault => "kOfxStatReplyDefault",
        kOfxStatUnlicensed => "kOfxStatUnlicensed",
        kOfxStatErrImageFormat => "kOfxStatErrImageFormat",
        kOfxStatGPUOutOfMemory => "kOfxStatGPUOutOfMemory",
        kOfxStatGPURenderFailed => "kOfxStatGPURenderFailed",
        _ => "unknown status",
    }
}
