//! Property sets: the typed store behind every `OfxPropertySetHandle`, and the property suite.
//!
//! Rules (deterministic, and as strict as a real host):
//! - getting an unknown property: `kOfxStatErrUnknown`; the wrong type: `kOfxStatErrValue`;
//!   an index past the end: `kOfxStatErrBadIndex`.
//! - setting an unknown property creates it on *open* sets (descriptors, which plugins
//!   decorate freely) and is `kOfxStatErrUnknown` on *strict* sets (host, instances, clips,
//!   images, action arguments); setting a read-only property is `kOfxStatErrValue`.
//! - a property has a fixed dimension unless it is *variable* (lists such as supported
//!   contexts, or anything a plugin created): one index past the end appends to a variable
//!   property and is `kOfxStatErrBadIndex` on a fixed one.
//! - a string from `propGetString` stays valid until that element is set to different text
//!   or the set is freed (setting the same text keeps the old pointer).

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

use parking_lot::RwLock;

use super::ffi::{c_str, cstring, guard, ofx, put};
use super::handles::{self, Obj};

/// One property's value, as the host API exposes it.
#[derive(Clone, Debug, PartialEq)]
pub enum PropValue {
    Str(Vec<String>),
    Int(Vec<i32>),
    Double(Vec<f64>),
    Pointer(Vec<usize>),
}

impl PropValue {
    /// The property's dimension.
    pub fn len(&self) -> usize {
        match self {
            PropValue::Str(v) => v.len(),
            PropValue::Int(v) => v.len(),
            PropValue::Double(v) => v.len(),
            PropValue::Pointer(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first element, when this is a string property.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PropValue::Str(v) => v.first().map(String::as_str),
            _ => None,
        }
    }

    /// The first element, when this is an int property.
    pub fn as_int(&self) -> Option<i32> {
        match self {
            PropValue::Int(v) => v.first().copied(),
            _ => None,
        }
    }

    /// The first element, when this is a double property.
    pub fn as_double(&self) -> Option<f64> {
        match self {
            PropValue::Double(v) => v.first().copied(),
            _ => None,
        }
    }

    /// The first element, when this is a pointer property.
    pub fn as_pointer(&self) -> Option<usize> {
        match self {
            PropValue::Pointer(v) => v.first().copied(),
            _ => None,
        }
    }

    /// All elements, when this is a string property.
    pub fn strs(&self) -> Option<&[String]> {
        match self {
            PropValue::Str(v) => Some(v),
            _ => None,
        }
    }

    /// All elements, when this is an int property.
    pub fn ints(&self) -> Option<&[i32]> {
        match self {
            PropValue::Int(v) => Some(v),
            _ => None,
        }
    }

    /// All elements, when this is a double property.
    pub fn doubles(&self) -> Option<&[f64]> {
        match self {
            PropValue::Double(v) => Some(v),
            _ => None,
        }
    }
}

/// A copy of a property set, for inspection.
pub type PropertySnapshot = BTreeMap<String, PropValue>;

/// Whether setting an unknown property creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Descriptors: the plugin may add properties.
    Open,
    /// Everything else: only the properties the host defined.
    Strict,
}

/// How the plugin may treat one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flags {
    pub read_only: bool,
    pub variable: bool,
}

/// Plugin may write, fixed dimension.
pub(crate) const RW: Flags = Flags {
    read_only: false,
    variable: false,
};
/// Plugin may only read, fixed dimension.
pub(crate) const RO: Flags = Flags {
    read_only: true,
    variable: false,
};
/// Plugin may write, any dimension.
pub(crate) const VAR: Flags = Flags {
    read_only: false,
    variable: true,
};

/// Stored values; strings are kept as C strings so `propGetString` can hand out pointers.
#[derive(Clone, Debug)]
enum Val {
    Str(Vec<CString>),
    Int(Vec<i32>),
    Double(Vec<f64>),
    Ptr(Vec<usize>),
}

impl Val {
    fn len(&self) -> usize {
        match self {
            Val::Str(v) => v.len(),
            Val::Int(v) => v.len(),
            Val::Double(v) => v.len(),
            Val::Ptr(v) => v.len(),
        }
    }

    fn same_type(&self, other: &Val) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    fn from_public(v: &PropValue) -> Val {
        match v {
            PropValue::Str(s) => Val::Str(s.iter().map(|s| cstring(s)).collect()),
            PropValue::Int(v) => Val::Int(v.clone()),
            PropValue::Double(v) => Val::Double(v.clone()),
            PropValue::Pointer(v) => Val::Ptr(v.clone()),
        }
    }

    fn to_public(&self) -> PropValue {
        match self {
            Val::Str(s) => {
                PropValue::Str(s.iter().map(|s| s.to_string_lossy().into_owned()).collect())
            }
            Val::Int(v) => PropValue::Int(v.clone()),
            Val::Double(v) => PropValue::Double(v.clone()),
            Val::Ptr(v) => PropValue::Pointer(v.clone()),
        }
    }

    /// Overwrites `self[start..start+other.len()]` (same type, checked by the caller), or
    /// replaces everything when `replace_all`; equal strings keep their old allocation.
    fn overwrite(&mut self, start: usize, other: Val, replace_all: bool) {
        fn merge<T: PartialEq>(dst: &mut Vec<T>, start: usize, src: Vec<T>, replace_all: bool) {
            if replace_all {
                dst.truncate(src.len());
            }
            for (i, v) in src.into_iter().enumerate() {
                let at = start + i;
                if at < dst.len() {
                    if dst[at] != v {
                        dst[at] = v;
                    }
                } else {
                    dst.push(v);
                }
            }
        }
        match (self, other) {
            (Val::Str(d), Val::Str(s)) => merge(d, start, s, replace_all),
            (Val::Int(d), Val::Int(s)) => merge(d, start, s, replace_all),
            (Val::Double(d), Val::Double(s)) => merge(d, start, s, replace_all),
            (Val::Ptr(d), Val::Ptr(s)) => merge(d, start, s, replace_all),
            _ => unreachable!("types are checked before overwrite"),
        }
    }
}

struct Prop {
    val: Val,
    default: Val,
    flags: Flags,
}

/// A property set: a locked map from names to typed values, registered as a handle.
pub(crate) struct PropertySet {
    pub handle: usize,
    /// What this set is, for diagnostics ("host", "clip instance", ...).
    pub what: &'static str,
    access: Access,
    map: RwLock<BTreeMap<String, Prop>>,
}

impl std::fmt::Debug for PropertySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PropertySet({}, {:#x})", self.what, self.handle)
    }
}

/// A property set that is freed when this guard goes (action arguments).
pub(crate) struct TempProps(pub Arc<PropertySet>);

impl Drop for TempProps {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl PropertySet {
    /// A new, empty, registered property set.
    pub fn new(what: &'static str, access: Access) -> Arc<PropertySet> {
        let set = Arc::new(Self::unregistered(what, access));
        handles::insert(set.handle, Obj::Props(set.clone()));
        set
    }

    /// A set with a reserved handle number that is not yet registered (image handles are
    /// registered as images by their owner).
    pub fn unregistered(what: &'static str, access: Access) -> PropertySet {
        PropertySet {
            handle: handles::reserve(),
            what,
            access,
            map: RwLock::new(BTreeMap::new()),
        }
    }

    /// A new set holding a snapshot's properties with the given flags.
    pub fn from_snapshot(
        what: &'static str,
        access: Access,
        snap: &PropertySnapshot,
        flags: Flags,
    ) -> Arc<PropertySet> {
        let set = Self::new(what, access);
        for (name, v) in snap {
            set.define(name, v.clone(), flags);
        }
        set
    }

    /// Forgets the handle; the plugin can no longer reach this set.
    pub fn release(&self) {
        handles::remove(self.handle);
    }

    pub fn as_handle(&self) -> ofx::OfxPropertySetHandle {
        self.handle as ofx::OfxPropertySetHandle
    }

    // ----- host side -----

    /// Defines (or redefines) a property with its value, which is also its reset default.
    pub fn define(&self, name: &str, value: PropValue, flags: Flags) {
        let val = Val::from_public(&value);
        let flags = Flags {
            variable: flags.variable || value.is_empty(),
            ..flags
        };
        self.map.write().insert(
            name.to_string(),
            Prop {
                default: val.clone(),
                val,
                flags,
            },
        );
    }

    /// The host changes a value, whatever the flags; defines it (writable) if missing.
    /// Equal strings keep their storage, so pointers the plugin holds stay valid.
    pub fn host_set(&self, name: &str, value: PropValue) {
        let val = Val::from_public(&value);
        let mut map = self.map.write();
        match map.get_mut(name) {
            Some(p) if p.val.same_type(&val) => p.val.overwrite(0, val, true),
            Some(p) => p.val = val,
            None => {
                let flags = Flags {
                    variable: value.is_empty(),
                    ..RW
                };
                map.insert(
                    name.to_string(),
                    Prop {
                        default: val.clone(),
                        val,
                        flags,
                    },
                );
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<PropValue> {
        self.map.read().get(name).map(|p| p.val.to_public())
    }

    pub fn str(&self, name: &str, index: usize) -> Option<String> {
        match self.get(name)? {
            PropValue::Str(v) => v.get(index).cloned(),
            _ => None,
        }
    }

    pub fn int(&self, name: &str, index: usize) -> Option<i32> {
        match self.get(name)? {
            PropValue::Int(v) => v.get(index).copied(),
            _ => None,
        }
    }

    pub fn double(&self, name: &str, index: usize) -> Option<f64> {
        match self.get(name)? {
            PropValue::Double(v) => v.get(index).copied(),
            _ => None,
        }
    }

    pub fn strs(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(PropValue::Str(v)) => v,
            _ => Vec::new(),
        }
    }

    pub fn snapshot(&self) -> PropertySnapshot {
        self.map
            .read()
            .iter()
            .map(|(k, p)| (k.clone(), p.val.to_public()))
            .collect()
    }

    /// Copies every property of `other` into this set with the given flags.
    pub fn copy_from(&self, other: &PropertySet, flags: Flags) {
        let src = other.map.read();
        let mut dst = self.map.write();
        for (name, p) in src.iter() {
            let flags = Flags {
                variable: flags.variable || p.flags.variable,
                ..flags
            };
            dst.insert(
                name.clone(),
                Prop {
                    val: p.val.clone(),
                    default: p.val.clone(),
                    flags,
                },
            );
        }
    }

    /// Changes the flags of existing properties.
    pub fn set_flags(&self, names: &[&str], read_only: bool) {
        let mut map = self.map.write();
        for n in names {
            if let Some(p) = map.get_mut(*n) {
                p.flags.read_only = read_only;
            }
        }
    }

    // ----- plugin side (the suite) -----

    fn set_values(&self, name: &str, start: c_int, vals: Val, whole: bool) -> i32 {
        if start < 0 {
            return ofx::kOfxStatErrBadIndex;
        }
        let start = start as usize;
        let mut map = self.map.write();
        let Some(p) = map.get_mut(name) else {
            if self.access == Access::Strict {
                return ofx::kOfxStatErrUnknown;
            }
            // A plugin-made property starts at index 0 and may grow.
            if start != 0 {
                return ofx::kOfxStatErrBadIndex;
            }
            map.insert(
                name.to_string(),
                Prop {
                    default: vals.clone(),
                    val: vals,
                    flags: VAR,
                },
            );
            return ofx::kOfxStatOK;
        };
        if p.flags.read_only {
            return ofx::kOfxStatErrValue;
        }
        if !p.val.same_type(&vals) {
            return ofx::kOfxStatErrValue;
        }
        let len = p.val.len();
        let end = start + vals.len();
        let fits = if p.flags.variable {
            start <= len
        } else {
            end <= len
        };
        if !fits {
            return ofx::kOfxStatErrBadIndex;
        }
        p.val.overwrite(start, vals, whole && p.flags.variable);
        ofx::kOfxStatOK
    }

    fn with_value<R>(&self, name: &str, f: impl FnOnce(&Val) -> Result<R, i32>) -> Result<R, i32> {
        let map = self.map.read();
        match map.get(name) {
            Some(p) => f(&p.val),
            None => Err(ofx::kOfxStatErrUnknown),
        }
    }

    fn reset(&self, name: &str) -> i32 {
        let mut map = self.map.write();
        match map.get_mut(name) {
            None => ofx::kOfxStatErrUnknown,
            Some(p) if p.flags.read_only => ofx::kOfxStatErrValue,
            Some(p) => {
                p.val = p.default.clone();
                ofx::kOfxStatOK
            }
        }
    }
}

/// Reads `count` (at most) elements of a typed property into `out`.
fn get_n<T: Copy>(items: &[T], index: c_int, count: c_int, out: *mut T) -> Result<(), i32> {
    if out.is_null() {
        return Err(ofx::kOfxStatErrValue);
    }
    if index < 0 || count < 0 {
        return Err(ofx::kOfxStatErrBadIndex);
    }
    let (start, n) = (index as usize, count as usize);
    if start + n > items.len() {
        return Err(ofx::kOfxStatErrBadIndex);
    }
    for (i, v) in items[start..start + n].iter().enumerate() {
        unsafe { put(out.add(i), *v) };
    }
    Ok(())
}

fn status(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => ofx::kOfxStatOK,
        Err(e) => e,
    }
}

/// Finds the set and property name of a suite call.
unsafe fn with_set(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    f: impl FnOnce(&PropertySet, &str) -> i32,
) -> i32 {
    let Some(set) = handles::props(h as usize) else {
        return ofx::kOfxStatErrBadHandle;
    };
    let Some(name) = (unsafe { c_str(name) }) else {
        return ofx::kOfxStatErrUnknown;
    };
    f(&set, &name.to_string_lossy())
}

/// Copies `count` C strings; `None` if any is null.
unsafe fn c_strings(values: *const *const c_char, count: c_int) -> Option<Vec<CString>> {
    if count > 0 && values.is_null() {
        return None;
    }
    (0..count.max(0) as usize)
        .map(|i| unsafe { c_str(*values.add(i)) }.map(|s| s.to_owned()))
        .collect()
}

unsafe fn slice<'a, T>(values: *const T, count: c_int) -> Option<&'a [T]> {
    match count {
        c if c < 0 => Some(&[]),
        0 => Some(&[]),
        _ if values.is_null() => None,
        c => Some(unsafe { std::slice::from_raw_parts(values, c as usize) }),
    }
}

unsafe extern "C" fn prop_set_pointer(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: *mut c_void,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| {
            s.set_values(n, index, Val::Ptr(vec![value as usize]), false)
        })
    })
}

unsafe extern "C" fn prop_set_string(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: *const c_char,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| match c_str(value) {
            Some(v) => s.set_values(n, index, Val::Str(vec![v.to_owned()]), false),
            None => ofx::kOfxStatErrValue,
        })
    })
}

unsafe extern "C" fn prop_set_double(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: f64,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| {
            s.set_values(n, index, Val::Double(vec![value]), false)
        })
    })
}

unsafe extern "C" fn prop_set_int(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: c_int,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| {
            s.set_values(n, index, Val::Int(vec![value]), false)
        })
    })
}

unsafe extern "C" fn prop_set_pointer_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    values: *const *mut c_void,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| match slice(values, count) {
            _ if count < 0 => ofx::kOfxStatErrBadIndex,
            Some(v) => s.set_values(
                n,
                0,
                Val::Ptr(v.iter().map(|p| *p as usize).collect()),
                true,
            ),
            None => ofx::kOfxStatErrValue,
        })
    })
}

unsafe extern "C" fn prop_set_string_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    values: *const *const c_char,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| match c_strings(values, count) {
            _ if count < 0 => ofx::kOfxStatErrBadIndex,
            Some(v) => s.set_values(n, 0, Val::Str(v), true),
            None => ofx::kOfxStatErrValue,
        })
    })
}

unsafe extern "C" fn prop_set_double_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    values: *const f64,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| match slice(values, count) {
            _ if count < 0 => ofx::kOfxStatErrBadIndex,
            Some(v) => s.set_values(n, 0, Val::Double(v.to_vec()), true),
            None => ofx::kOfxStatErrValue,
        })
    })
}

unsafe extern "C" fn prop_set_int_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    values: *const c_int,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| match slice(values, count) {
            _ if count < 0 => ofx::kOfxStatErrBadIndex,
            Some(v) => s.set_values(n, 0, Val::Int(v.to_vec()), true),
            None => ofx::kOfxStatErrValue,
        })
    })
}

fn get_ptrs(s: &PropertySet, n: &str, index: c_int, count: c_int, out: *mut *mut c_void) -> i32 {
    status(s.with_value(n, |v| match v {
        Val::Ptr(p) => {
            let p: Vec<*mut c_void> = p.iter().map(|x| *x as *mut c_void).collect();
            get_n(&p, index, count, out)
        }
        _ => Err(ofx::kOfxStatErrValue),
    }))
}

fn get_strings(s: &PropertySet, n: &str, index: c_int, count: c_int, out: *mut *mut c_char) -> i32 {
    status(s.with_value(n, |v| match v {
        // The pointers stay valid after the lock is released: CString buffers do not move.
        Val::Str(p) => {
            let p: Vec<*mut c_char> = p.iter().map(|x| x.as_ptr() as *mut c_char).collect();
            get_n(&p, index, count, out)
        }
        _ => Err(ofx::kOfxStatErrValue),
    }))
}

fn get_doubles(s: &PropertySet, n: &str, index: c_int, count: c_int, out: *mut f64) -> i32 {
    status(s.with_value(n, |v| match v {
        Val::Double(p) => get_n(p, index, count, out),
        _ => Err(ofx::kOfxStatErrValue),
    }))
}

fn get_ints(s: &PropertySet, n: &str, index: c_int, count: c_int, out: *mut c_int) -> i32 {
    status(s.with_value(n, |v| match v {
        Val::Int(p) => get_n(p, index, count, out),
        _ => Err(ofx::kOfxStatErrValue),
    }))
}

unsafe extern "C" fn prop_get_pointer(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: *mut *mut c_void,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_ptrs(s, n, index, 1, value)) })
}

unsafe extern "C" fn prop_get_string(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: *mut *mut c_char,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_strings(s, n, index, 1, value)) })
}

unsafe extern "C" fn prop_get_double(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: *mut f64,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_doubles(s, n, index, 1, value)) })
}

unsafe extern "C" fn prop_get_int(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    index: c_int,
    value: *mut c_int,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_ints(s, n, index, 1, value)) })
}

unsafe extern "C" fn prop_get_pointer_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    value: *mut *mut c_void,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_ptrs(s, n, 0, count, value)) })
}

unsafe extern "C" fn prop_get_string_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    value: *mut *mut c_char,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_strings(s, n, 0, count, value)) })
}

unsafe extern "C" fn prop_get_double_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    value: *mut f64,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_doubles(s, n, 0, count, value)) })
}

unsafe extern "C" fn prop_get_int_n(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: c_int,
    value: *mut c_int,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| get_ints(s, n, 0, count, value)) })
}

unsafe extern "C" fn prop_reset(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
) -> ofx::OfxStatus {
    guard(|| unsafe { with_set(h, name, |s, n| s.reset(n)) })
}

unsafe extern "C" fn prop_get_dimension(
    h: ofx::OfxPropertySetHandle,
    name: *const c_char,
    count: *mut c_int,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        with_set(h, name, |s, n| {
            if count.is_null() {
                return ofx::kOfxStatErrValue;
            }
            status(s.with_value(n, |v| {
                put(count, v.len() as c_int);
                Ok(())
            }))
        })
    })
}

/// The property suite, version 1.
pub(crate) static PROPERTY_SUITE_V1: ofx::OfxPropertySuiteV1 = ofx::OfxPropertySuiteV1 {
    propSetPointer: Some(prop_set_pointer),
    propSetString: Some(prop_set_string),
    propSetDouble: Some(prop_set_double),
    propSetInt: Some(prop_set_int),
    propSetPointerN: Some(prop_set_pointer_n),
    propSetStringN: Some(prop_set_string_n),
    propSetDoubleN: Some(prop_set_double_n),
    propSetIntN: Some(prop_set_int_n),
    propGetPointer: Some(prop_get_pointer),
    propGetString: Some(prop_get_string),
    propGetDouble: Some(prop_get_double),
    propGetInt: Some(prop_get_int),
    propGetPointerN: Some(prop_get_pointer_n),
    propGetStringN: Some(prop_get_string_n),
    propGetDoubleN: Some(prop_get_double_n),
    propGetIntN: Some(prop_get_int_n),
    propReset: Some(prop_reset),
    propGetDimension: Some(prop_get_dimension),
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::ptr;

    fn s() -> &'static ofx::OfxPropertySuiteV1 {
        &PROPERTY_SUITE_V1
    }

    fn h(set: &PropertySet) -> ofx::OfxPropertySetHandle {
        set.as_handle()
    }

    #[test]
    fn typed_get_and_set() {
        let set = PropertySet::new("test", Access::Strict);
        set.define("i", PropValue::Int(vec![1, 2]), RW);
        set.define("d", PropValue::Double(vec![0.5]), RW);
        set.define("s", PropValue::Str(vec!["a".into()]), RW);
        unsafe {
            let mut i = 0;
            assert_eq!(
                s().propGetInt.unwrap()(h(&set), c"i".as_ptr(), 1, &mut i),
                ofx::kOfxStatOK
            );
            assert_eq!(i, 2);
            assert_eq!(
                s().propSetInt.unwrap()(h(&set), c"i".as_ptr(), 0, 7),
                ofx::kOfxStatOK
            );
            let mut both = [0; 2];
            assert_eq!(
                s().propGetIntN.unwrap()(h(&set), c"i".as_ptr(), 2, both.as_mut_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(both, [7, 2]);
            let mut d = 0.0;
            assert_eq!(
                s().propGetDouble.unwrap()(h(&set), c"d".as_ptr(), 0, &mut d),
                ofx::kOfxStatOK
            );
            assert_eq!(d, 0.5);
            let mut p: *mut c_char = ptr::null_mut();
            assert_eq!(
                s().propGetString.unwrap()(h(&set), c"s".as_ptr(), 0, &mut p),
                ofx::kOfxStatOK
            );
            assert_eq!(CStr::from_ptr(p).to_str().unwrap(), "a");
            let mut dim = 0;
            assert_eq!(
                s().propGetDimension.unwrap()(h(&set), c"i".as_ptr(), &mut dim),
                ofx::kOfxStatOK
            );
            assert_eq!(dim, 2);
        }
        set.release();
    }

    #[test]
    fn errors_are_the_spec_codes() {
        let set = PropertySet::new("test", Access::Strict);
        set.define("i", PropValue::Int(vec![1]), RW);
        set.define("ro", PropValue::Int(vec![1]), RO);
        unsafe {
            let mut i = 0;
            let mut d = 0.0;
            let get_int = s().propGetInt.unwrap();
            assert_eq!(
                get_int(h(&set), c"nope".as_ptr(), 0, &mut i),
                ofx::kOfxStatErrUnknown
            );
            assert_eq!(
                s().propGetDouble.unwrap()(h(&set), c"i".as_ptr(), 0, &mut d),
                ofx::kOfxStatErrValue
            );
            assert_eq!(
                get_int(h(&set), c"i".as_ptr(), 1, &mut i),
                ofx::kOfxStatErrBadIndex
            );
            assert_eq!(
                get_int(h(&set), c"i".as_ptr(), -1, &mut i),
                ofx::kOfxStatErrBadIndex
            );
            assert_eq!(
                get_int(h(&set), c"i".as_ptr(), 0, ptr::null_mut()),
                ofx::kOfxStatErrValue
            );
            assert_eq!(
                get_int(h(&set), ptr::null(), 0, &mut i),
                ofx::kOfxStatErrUnknown
            );
            // Strict sets do not grow new properties, fixed ones do not grow new indices.
            assert_eq!(
                s().propSetInt.unwrap()(h(&set), c"new".as_ptr(), 0, 1),
                ofx::kOfxStatErrUnknown
            );
            assert_eq!(
                s().propSetInt.unwrap()(h(&set), c"i".as_ptr(), 1, 1),
                ofx::kOfxStatErrBadIndex
            );
            assert_eq!(
                s().propSetInt.unwrap()(h(&set), c"ro".as_ptr(), 0, 2),
                ofx::kOfxStatErrValue
            );
            assert_eq!(
                s().propSetDouble.unwrap()(h(&set), c"i".as_ptr(), 0, 2.0),
                ofx::kOfxStatErrValue
            );
            assert_eq!(
                s().propSetString.unwrap()(h(&set), c"i".as_ptr(), 0, ptr::null()),
                ofx::kOfxStatErrValue
            );
            assert_eq!(set.int("ro", 0), Some(1));
        }
        set.release();
    }

    #[test]
    fn bad_handles_are_refused() {
        let set = PropertySet::new("test", Access::Strict);
        set.define("i", PropValue::Int(vec![1]), RW);
        let handle = h(&set);
        set.release();
        unsafe {
            let mut i = 0;
            let get_int = s().propGetInt.unwrap();
            assert_eq!(
                get_int(handle, c"i".as_ptr(), 0, &mut i),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                get_int(ptr::null_mut(), c"i".as_ptr(), 0, &mut i),
                ofx::kOfxStatErrBadHandle
            );
            let garbage = 0x1234_5678usize as ofx::OfxPropertySetHandle;
            assert_eq!(
                get_int(garbage, c"i".as_ptr(), 0, &mut i),
                ofx::kOfxStatErrBadHandle
            );
            assert_eq!(
                s().propReset.unwrap()(garbage, c"i".as_ptr()),
                ofx::kOfxStatErrBadHandle
            );
        }
    }

    #[test]
    fn open_sets_grow_and_lists_append() {
        let set = PropertySet::new("descriptor", Access::Open);
        set.define("list", PropValue::Str(vec![]), VAR);
        unsafe {
            let set_str = s().propSetString.unwrap();
            assert_eq!(
                set_str(h(&set), c"list".as_ptr(), 0, c"a".as_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(
                set_str(h(&set), c"list".as_ptr(), 1, c"b".as_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(
                set_str(h(&set), c"list".as_ptr(), 3, c"d".as_ptr()),
                ofx::kOfxStatErrBadIndex
            );
            assert_eq!(set.strs("list"), vec!["a", "b"]);
            // SetN replaces the whole list.
            let one = [c"z".as_ptr()];
            assert_eq!(
                s().propSetStringN.unwrap()(h(&set), c"list".as_ptr(), 1, one.as_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(set.strs("list"), vec!["z"]);
            // Unknown properties are created by the first set, at index 0 only.
            assert_eq!(
                s().propSetDouble.unwrap()(h(&set), c"mine".as_ptr(), 1, 2.0),
                ofx::kOfxStatErrBadIndex
            );
            assert_eq!(
                s().propSetDouble.unwrap()(h(&set), c"mine".as_ptr(), 0, 2.0),
                ofx::kOfxStatOK
            );
            assert_eq!(
                s().propSetDouble.unwrap()(h(&set), c"mine".as_ptr(), 1, 3.0),
                ofx::kOfxStatOK
            );
            assert_eq!(set.get("mine"), Some(PropValue::Double(vec![2.0, 3.0])));
            let ints = [1, 2, 3];
            assert_eq!(
                s().propSetIntN.unwrap()(h(&set), c"n".as_ptr(), 3, ints.as_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(set.get("n"), Some(PropValue::Int(vec![1, 2, 3])));
        }
        set.release();
    }

    #[test]
    fn reset_restores_the_default() {
        let set = PropertySet::new("test", Access::Strict);
        set.define("d", PropValue::Double(vec![1.0, 2.0]), RW);
        unsafe {
            let vals = [5.0, 6.0];
            assert_eq!(
                s().propSetDoubleN.unwrap()(h(&set), c"d".as_ptr(), 2, vals.as_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(set.get("d"), Some(PropValue::Double(vec![5.0, 6.0])));
            assert_eq!(
                s().propReset.unwrap()(h(&set), c"d".as_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(set.get("d"), Some(PropValue::Double(vec![1.0, 2.0])));
            assert_eq!(
                s().propReset.unwrap()(h(&set), c"x".as_ptr()),
                ofx::kOfxStatErrUnknown
            );
        }
        set.release();
    }

    #[test]
    fn string_pointers_survive_unrelated_and_equal_sets() {
        let set = PropertySet::new("test", Access::Strict);
        set.define("s", PropValue::Str(vec!["one".into(), "two".into()]), RW);
        unsafe {
            let mut p: *mut c_char = ptr::null_mut();
            s().propGetString.unwrap()(h(&set), c"s".as_ptr(), 0, &mut p);
            s().propSetString.unwrap()(h(&set), c"s".as_ptr(), 1, c"three".as_ptr());
            set.host_set("s", PropValue::Str(vec!["one".into(), "four".into()]));
            let mut q: *mut c_char = ptr::null_mut();
            s().propGetString.unwrap()(h(&set), c"s".as_ptr(), 0, &mut q);
            assert_eq!(p, q);
            assert_eq!(CStr::from_ptr(p).to_str().unwrap(), "one");
            let mut both = [ptr::null_mut::<c_char>(); 2];
            assert_eq!(
                s().propGetStringN.unwrap()(h(&set), c"s".as_ptr(), 2, both.as_mut_ptr()),
                ofx::kOfxStatOK
            );
            assert_eq!(CStr::from_ptr(both[1]).to_str().unwrap(), "four");
        }
        set.release();
    }

    #[test]
    fn pointers_and_snapshots() {
        let set = PropertySet::new("test", Access::Open);
        let mut x = 5u8;
        unsafe {
            let px = &mut x as *mut u8 as *mut c_void;
            assert_eq!(
                s().propSetPointer.unwrap()(h(&set), c"p".as_ptr(), 0, px),
                ofx::kOfxStatOK
            );
            let mut back: *mut c_void = ptr::null_mut();
            assert_eq!(
                s().propGetPointer.unwrap()(h(&set), c"p".as_ptr(), 0, &mut back),
                ofx::kOfxStatOK
            );
            assert_eq!(back, px);
            let snap = set.snapshot();
            assert_eq!(snap["p"].as_pointer(), Some(px as usize));
        }
        let copy = PropertySet::from_snapshot("copy", Access::Strict, &set.snapshot(), RO);
        assert_eq!(copy.snapshot(), set.snapshot());
        set.release();
        copy.release();
    }

    #[test]
    fn concurrent_readers_and_writers() {
        let set = PropertySet::new("test", Access::Strict);
        set.define("i", PropValue::Int(vec![0]), RW);
        let handle = set.handle;
        std::thread::scope(|scope| {
            for t in 0..4 {
                scope.spawn(move || unsafe {
                    let h = handle as ofx::OfxPropertySetHandle;
                    for k in 0..500 {
                        assert_eq!(
                            s().propSetInt.unwrap()(h, c"i".as_ptr(), 0, t * 1000 + k),
                            ofx::kOfxStatOK
                        );
                        let mut v = 0;
                        assert_eq!(
                            s().propGetInt.unwrap()(h, c"i".as_ptr(), 0, &mut v),
                            ofx::kOfxStatOK
                        );
                    }
                });
            }
        });
        set.release();
    }
}
