//! Typed access to an OpenFX property set through the host's property suite.

use super::bindings::*;
use super::{c, copy_c_string, s, OfxError, OfxResult};
use std::ffi::{c_char, c_void, CString};
use std::ptr;

/// A property set handle together with the suite that reads and writes it.
#[derive(Clone, Copy)]
pub struct PropSet {
    handle: OfxPropertySetHandle,
    suite: &'static OfxPropertySuiteV1,
}

macro_rules! suite_fn {
    ($self:ident . $f:ident) => {
        $self.suite.$f.ok_or_else(|| {
            OfxError::new(
                kOfxStatErrMissingHostFeature,
                format!("property suite lacks {}", stringify!($f)),
            )
        })?
    };
}

impl PropSet {
    pub fn new(handle: OfxPropertySetHandle, suite: &'static OfxPropertySuiteV1) -> Self {
        PropSet { handle, suite }
    }

    pub fn handle(&self) -> OfxPropertySetHandle {
        self.handle
    }

    pub fn is_null(&self) -> bool {
        self.handle.is_null()
    }

    fn result(&self, status: OfxStatus, verb: &str, name: &'static [u8]) -> OfxResult<()> {
        if status == kOfxStatOK {
            Ok(())
        } else {
            Err(OfxError::new(
                status,
                format!("{verb} property {}", s(name)),
            ))
        }
    }

    pub fn set_string(&self, name: &'static [u8], index: i32, value: &str) -> OfxResult<()> {
        let f = suite_fn!(self.propSetString);
        let value = CString::new(value.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the host copies the string during the call.
        let st = unsafe { f(self.handle, c(name), index, value.as_ptr()) };
        self.result(st, "set", name)
    }

    pub fn set_strings(&self, name: &'static [u8], values: &[&str]) -> OfxResult<()> {
        for (i, v) in values.iter().enumerate() {
            self.set_string(name, i as i32, v)?;
        }
        Ok(())
    }

    pub fn set_int(&self, name: &'static [u8], index: i32, value: i32) -> OfxResult<()> {
        let f = suite_fn!(self.propSetInt);
        // SAFETY: plain value call on a host handle.
        let st = unsafe { f(self.handle, c(name), index, value) };
        self.result(st, "set", name)
    }

    pub fn set_ints(&self, name: &'static [u8], values: &[i32]) -> OfxResult<()> {
        let f = suite_fn!(self.propSetIntN);
        // SAFETY: `values` outlives the call; the count matches.
        let st = unsafe { f(self.handle, c(name), values.len() as i32, values.as_ptr()) };
        self.result(st, "set", name)
    }

    pub fn set_double(&self, name: &'static [u8], index: i32, value: f64) -> OfxResult<()> {
        let f = suite_fn!(self.propSetDouble);
        // SAFETY: plain value call on a host handle.
        let st = unsafe { f(self.handle, c(name), index, value) };
        self.result(st, "set", name)
    }

    pub fn set_doubles(&self, name: &'static [u8], values: &[f64]) -> OfxResult<()> {
        let f = suite_fn!(self.propSetDoubleN);
        // SAFETY: `values` outlives the call; the count matches.
        let st = unsafe { f(self.handle, c(name), values.len() as i32, values.as_ptr()) };
        self.result(st, "set", name)
    }

    // The pointer is stored by the host as a value, never dereferenced.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn set_pointer(
        &self,
        name: &'static [u8],
        index: i32,
        value: *mut c_void,
    ) -> OfxResult<()> {
        let f = suite_fn!(self.propSetPointer);
        // SAFETY: the host stores the pointer value only.
        let st = unsafe { f(self.handle, c(name), index, value) };
        self.result(st, "set", name)
    }

    pub fn string(&self, name: &'static [u8], index: i32) -> OfxResult<String> {
        let f = suite_fn!(self.propGetString);
        let mut value: *mut c_char = ptr::null_mut();
        // SAFETY: the host writes a pointer to a string it owns; we copy it at once.
        let st = unsafe { f(self.handle, c(name), index, &mut value) };
        self.result(st, "get", name)?;
        // SAFETY: on success the host's pointer is a valid C string (or null).
        Ok(unsafe { copy_c_string(value) }.unwrap_or_default())
    }

    pub fn int(&self, name: &'static [u8], index: i32) -> OfxResult<i32> {
        let f = suite_fn!(self.propGetInt);
        let mut value = 0;
        // SAFETY: the host writes one int.
        let st = unsafe { f(self.handle, c(name), index, &mut value) };
        self.result(st, "get", name)?;
        Ok(value)
    }

    pub fn double(&self, name: &'static [u8], index: i32) -> OfxResult<f64> {
        let f = suite_fn!(self.propGetDouble);
        let mut value = 0.0;
        // SAFETY: the host writes one double.
        let st = unsafe { f(self.handle, c(name), index, &mut value) };
        self.result(st, "get", name)?;
        Ok(value)
    }

    pub fn doubles<const N: usize>(&self, name: &'static [u8]) -> OfxResult<[f64; N]> {
        let f = suite_fn!(self.propGetDoubleN);
        let mut values = [0.0; N];
        // SAFETY: the buffer holds exactly N doubles.
        let st = unsafe { f(self.handle, c(name), N as i32, values.as_mut_ptr()) };
        self.result(st, "get", name)?;
        Ok(values)
    }

    pub fn ints<const N: usize>(&self, name: &'static [u8]) -> OfxResult<[i32; N]> {
        let f = suite_fn!(self.propGetIntN);
        let mut values = [0; N];
        // SAFETY: the buffer holds exactly N ints.
        let st = unsafe { f(self.handle, c(name), N as i32, values.as_mut_ptr()) };
        self.result(st, "get", name)?;
        Ok(values)
    }

    pub fn pointer(&self, name: &'static [u8], index: i32) -> OfxResult<*mut c_void> {
        let f = suite_fn!(self.propGetPointer);
        let mut value = ptr::null_mut();
        // SAFETY: the host writes one pointer value.
        let st = unsafe { f(self.handle, c(name), index, &mut value) };
        self.result(st, "get", name)?;
        Ok(value)
    }

    pub fn dimension(&self, name: &'static [u8]) -> OfxResult<i32> {
        let f = suite_fn!(self.propGetDimension);
        let mut count = 0;
        // SAFETY: the host writes one int.
        let st = unsafe { f(self.handle, c(name), &mut count) };
        self.result(st, "get dimension of", name)?;
        Ok(count)
    }

    /// All values of a string property (e.g. a list of supported contexts).
    pub fn strings(&self, name: &'static [u8]) -> OfxResult<Vec<String>> {
        (0..self.dimension(name)?)
            .map(|i| self.string(name, i))
            .collect()
    }
}
