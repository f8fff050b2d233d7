//! Parameters through the host's parameter suite: defining them (describe) and reading or
//! writing their values (instances).
//!
//! The value calls are C-variadic. The caller must pass exactly the pointer or value types
//! that the parameter's type demands, or the host writes through the wrong type: that is why
//! [`Param`] remembers the type the host reported and every accessor checks it first.

use super::bindings::*;
use super::props::PropSet;
use super::{c, copy_c_string, OfxError, OfxResult};
use std::ffi::{c_char, CString};
use std::ptr;

/// A parameter set (of a descriptor or of an instance).
#[derive(Clone, Copy)]
pub struct ParamSet {
    handle: OfxParamSetHandle,
    suite: &'static OfxParameterSuiteV1,
    props: &'static OfxPropertySuiteV1,
}

/// One parameter of an instance, with the type the host says it has.
#[derive(Clone)]
pub struct Param {
    handle: OfxParamHandle,
    suite: &'static OfxParameterSuiteV1,
    name: String,
    param_type: String,
}

// Parameter handles are stable for the instance's life and the suite is thread-safe by the
// specification (render threads read values concurrently).
unsafe impl Send for Param {}
unsafe impl Sync for Param {}

fn missing(what: &str) -> OfxError {
    OfxError::new(
        kOfxStatErrMissingHostFeature,
        format!("parameter suite lacks {what}"),
    )
}

impl ParamSet {
    pub fn new(
        handle: OfxParamSetHandle,
        suite: &'static OfxParameterSuiteV1,
        props: &'static OfxPropertySuiteV1,
    ) -> Self {
        ParamSet {
            handle,
            suite,
            props,
        }
    }

    /// Defines a parameter of `param_type` (a `kOfxParamType*` constant); returns its
    /// descriptor properties for the caller to fill in.
    pub fn define(&self, param_type: &'static [u8], name: &str) -> OfxResult<PropSet> {
        let f = self
            .suite
            .paramDefine
            .ok_or_else(|| missing("paramDefine"))?;
        let cname = CString::new(name).map_err(|_| OfxError::failed("parameter name has a NUL"))?;
        let mut props = ptr::null_mut();
        // SAFETY: the host copies the name and writes a property handle.
        let st = unsafe { f(self.handle, c(param_type), cname.as_ptr(), &mut props) };
        if st != kOfxStatOK || props.is_null() {
            return Err(OfxError::new(st, format!("define parameter {name}")));
        }
        Ok(PropSet::new(props, self.props))
    }

    /// Looks up an instance parameter and checks its type against `expected_type`.
    pub fn param(&self, name: &str, expected_type: &'static [u8]) -> OfxResult<(Param, PropSet)> {
        let f = self
            .suite
            .paramGetHandle
            .ok_or_else(|| missing("paramGetHandle"))?;
        let cname = CString::new(name).map_err(|_| OfxError::failed("parameter name has a NUL"))?;
        let mut handle = ptr::null_mut();
        let mut props = ptr::null_mut();
        // SAFETY: the host writes a parameter handle and its property handle.
        let st = unsafe { f(self.handle, cname.as_ptr(), &mut handle, &mut props) };
        if st != kOfxStatOK || handle.is_null() || props.is_null() {
            return Err(OfxError::new(st, format!("parameter {name} is missing")));
        }
        let props = PropSet::new(props, self.props);
        let param_type = props.string(kOfxParamPropType, 0)?;
        let expected = super::s(expected_type);
        if param_type != expected {
            return Err(OfxError::new(
                kOfxStatErrValue,
                format!("parameter {name} has type {param_type}, expected {expected}"),
            ));
        }
        let param = Param {
            handle,
            suite: self.suite,
            name: name.to_string(),
            param_type,
        };
        Ok((param, props))
    }
}

impl Param {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn expect(&self, types: &[&'static [u8]]) -> OfxResult<()> {
        if types.iter().any(|t| super::s(t) == self.param_type) {
            Ok(())
        } else {
            Err(OfxError::new(
                kOfxStatErrValue,
                format!(
                    "parameter {} is a {}, not the type asked for",
                    self.name, self.param_type
                ),
            ))
        }
    }

    fn result(&self, status: OfxStatus, verb: &str) -> OfxResult<()> {
        if status == kOfxStatOK {
            Ok(())
        } else {
            Err(OfxError::new(
                status,
                format!("{verb} parameter {}", self.name),
            ))
        }
    }

    /// Integer, boolean and choice parameters at `time`.
    pub fn int_at(&self, time: f64) -> OfxResult<i32> {
        self.expect(&[
            kOfxParamTypeInteger,
            kOfxParamTypeBoolean,
            kOfxParamTypeChoice,
        ])?;
        let f = self
            .suite
            .paramGetValueAtTime
            .ok_or_else(|| missing("paramGetValueAtTime"))?;
        let mut v: i32 = 0;
        // SAFETY: these parameter types take one `int *` after the time.
        let st = unsafe { f(self.handle, time, &mut v as *mut i32) };
        self.result(st, "read").map(|_| v)
    }

    pub fn bool_at(&self, time: f64) -> OfxResult<bool> {
        self.int_at(time).map(|v| v != 0)
    }

    /// Double parameters at `time`.
    pub fn double_at(&self, time: f64) -> OfxResult<f64> {
        self.expect(&[kOfxParamTypeDouble])?;
        let f = self
            .suite
            .paramGetValueAtTime
            .ok_or_else(|| missing("paramGetValueAtTime"))?;
        let mut v: f64 = 0.0;
        // SAFETY: a double parameter takes one `double *` after the time.
        let st = unsafe { f(self.handle, time, &mut v as *mut f64) };
        self.result(st, "read").map(|_| v)
    }

    /// String parameters at `time`; the host's string is copied at once.
    pub fn string_at(&self, time: f64) -> OfxResult<String> {
        self.expect(&[kOfxParamTypeString])?;
        let f = self
            .suite
            .paramGetValueAtTime
            .ok_or_else(|| missing("paramGetValueAtTime"))?;
        let mut v: *mut c_char = ptr::null_mut();
        // SAFETY: a string parameter takes one `char **` after the time.
        let st = unsafe { f(self.handle, time, &mut v as *mut *mut c_char) };
        self.result(st, "read")?;
        // SAFETY: on success the host points at a string it owns for now; we copy it.
        Ok(unsafe { copy_c_string(v) }.unwrap_or_default())
    }

    /// Sets an integer (or boolean/choice) parameter; only legal outside render actions.
    pub fn set_int(&self, value: i32) -> OfxResult<()> {
        self.expect(&[
            kOfxParamTypeInteger,
            kOfxParamTypeBoolean,
            kOfxParamTypeChoice,
        ])?;
        let f = self
            .suite
            .paramSetValue
            .ok_or_else(|| missing("paramSetValue"))?;
        // SAFETY: these parameter types take one `int` value.
        let st = unsafe { f(self.handle, value) };
        self.result(st, "set")
    }

    /// Sets a string parameter; only legal outside render actions.
    pub fn set_string(&self, value: &str) -> OfxResult<()> {
        self.expect(&[kOfxParamTypeString])?;
        let f = self
            .suite
            .paramSetValue
            .ok_or_else(|| missing("paramSetValue"))?;
        let value = CString::new(value.replace('\0', " ")).unwrap_or_default();
        // SAFETY: a string parameter takes one `const char *`; the host copies it.
        let st = unsafe { f(self.handle, value.as_ptr()) };
        self.result(st, "set")
    }
}
