//! The registry of live handles.
//!
//! Every handle the host gives a plugin is an opaque number from this registry, never the
//! address of a host object. A suite call looks its handle up here first, so a null, freed or
//! made-up handle is answered with `kOfxStatErrBadHandle` and nothing is dereferenced.
//! Numbers are never reused, so a stale handle stays invalid even after its memory is reused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

use super::effect::{Clip, Effect, ImageMemory, ImageObj};
use super::params::{Param, ParamSet};
use super::props::PropertySet;
use super::suites::HostMutex;

/// Where handle numbers start: well away from null and from small integers a plugin might
/// pass by mistake. Handles are 16 apart, so they look like aligned pointers.
const BASE: usize = 0x0000_6f66_7800_0000;
const STRIDE: usize = 16;

static NEXT: AtomicUsize = AtomicUsize::new(1);
static LIVE: LazyLock<RwLock<HashMap<usize, Obj>>> = LazyLock::new(Default::default);

/// One live host object, by kind.
#[derive(Clone)]
pub(crate) enum Obj {
    Props(Arc<PropertySet>),
    Image(Arc<ImageObj>),
    ParamSet(Arc<ParamSet>),
    Param(Arc<Param>),
    Effect(Arc<Effect>),
    Clip(Arc<Clip>),
    Mutex(Arc<HostMutex>),
    ImageMemory(Arc<ImageMemory>),
}

/// Reserves a fresh handle number (register the object under it with [`insert`]).
pub(crate) fn reserve() -> usize {
    BASE + NEXT.fetch_add(1, Ordering::Relaxed) * STRIDE
}

pub(crate) fn insert(handle: usize, obj: Obj) {
    LIVE.write().insert(handle, obj);
}

/// Forgets a handle; later calls with it get `kOfxStatErrBadHandle`.
pub(crate) fn remove(handle: usize) -> Option<Obj> {
    LIVE.write().remove(&handle)
}

pub(crate) fn get(handle: usize) -> Option<Obj> {
    if handle == 0 {
        return None;
    }
    LIVE.read().get(&handle).cloned()
}

#[cfg(test)]
pub(crate) fn is_live(handle: usize) -> bool {
    handle != 0 && LIVE.read().contains_key(&handle)
}

/// A property set handle: plain property sets and image handles (which are property sets).
pub(crate) fn props(handle: usize) -> Option<Arc<PropertySet>> {
    match get(handle)? {
        Obj::Props(p) => Some(p),
        Obj::Image(i) => Some(i.props.clone()),
        _ => None,
    }
}

pub(crate) fn image(handle: usize) -> Option<Arc<ImageObj>> {
    match get(handle)? {
        Obj::Image(i) => Some(i),
        _ => None,
    }
}

pub(crate) fn param_set(handle: usize) -> Option<Arc<ParamSet>> {
    match get(handle)? {
        Obj::ParamSet(p) => Some(p),
        _ => None,
    }
}

pub(crate) fn param(handle: usize) -> Option<Arc<Param>> {
    match get(handle)? {
        Obj::Param(p) => Some(p),
        _ => None,
    }
}

pub(crate) fn effect(handle: usize) -> Option<Arc<Effect>> {
    match get(handle)? {
        Obj::Effect(e) => Some(e),
        _ => None,
    }
}

pub(crate) fn clip(handle: usize) -> Option<Arc<Clip>> {
    match get(handle)? {
        Obj::Clip(c) => Some(c),
        _ => None,
    }
}

pub(crate) fn mutex(handle: usize) -> Option<Arc<HostMutex>> {
    match get(handle)? {
        Obj::Mutex(m) => Some(m),
        _ => None,
    }
}

pub(crate) fn image_memory(handle: usize) -> Option<Arc<ImageMemory>> {
    match get(handle)? {
        Obj::ImageMemory(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::props::Access;

    #[test]
    fn handles_are_unique_and_die_with_removal() {
        let a = reserve();
        let b = reserve();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(a % STRIDE, 0);

        let set = PropertySet::new("test", Access::Open);
        let h = set.handle;
        assert!(is_live(h));
        assert!(props(h).is_some());
        // A property set is not a parameter, an effect or a clip.
        assert!(param(h).is_none());
        assert!(effect(h).is_none());
        assert!(clip(h).is_none());
        set.release();
        assert!(!is_live(h));
        assert!(props(h).is_none());
    }

    #[test]
    fn null_and_garbage_are_not_live() {
        assert!(get(0).is_none());
        assert!(!is_live(0));
        assert!(props(0xdead_beef).is_none());
        assert!(props(usize::MAX).is_none());
        assert!(effect(BASE + STRIDE / 2).is_none());
    }
}
