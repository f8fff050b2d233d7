//! An image effect handle (descriptor or instance) and its clips, through the image effect
//! suite.

use super::bindings::*;
use super::image::Image;
use super::params::ParamSet;
use super::props::PropSet;
use super::suites::HostSuites;
use super::{c, OfxError, OfxResult};
use std::ffi::CString;
use std::ptr;
use std::sync::Arc;

/// An effect handle as an action receives it.
#[derive(Clone)]
pub struct Effect {
    handle: OfxImageEffectHandle,
    suites: Arc<HostSuites>,
}

fn missing(what: &str) -> OfxError {
    OfxError::new(
        kOfxStatErrMissingHostFeature,
        format!("image effect suite lacks {what}"),
    )
}

impl Effect {
    /// Wraps the `handle` argument of an action; null is a bad handle.
    pub fn from_action_handle(
        handle: *const std::ffi::c_void,
        suites: Arc<HostSuites>,
    ) -> OfxResult<Self> {
        if handle.is_null() {
            return Err(OfxError::new(
                kOfxStatErrBadHandle,
                "the action came with a null effect handle",
            ));
        }
        Ok(Effect {
            handle: handle as OfxImageEffectHandle,
            suites,
        })
    }

    pub fn suites(&self) -> &Arc<HostSuites> {
        &self.suites
    }

    pub fn handle(&self) -> OfxImageEffectHandle {
        self.handle
    }

    pub fn props(&self) -> OfxResult<PropSet> {
        let f = self
            .suites
            .image_effect
            .getPropertySet
            .ok_or_else(|| missing("getPropertySet"))?;
        let mut props = ptr::null_mut();
        // SAFETY: the host validates (or trusts) its own handle and writes a property handle.
        let st = unsafe { f(self.handle, &mut props) };
        if st != kOfxStatOK || props.is_null() {
            return Err(OfxError::new(
                if st == kOfxStatOK {
                    kOfxStatErrBadHandle
                } else {
                    st
                },
                "read the effect's properties",
            ));
        }
        Ok(PropSet::new(props, self.suites.property))
    }

    pub fn param_set(&self) -> OfxResult<ParamSet> {
        let f = self
            .suites
            .image_effect
            .getParamSet
            .ok_or_else(|| missing("getParamSet"))?;
        let mut set = ptr::null_mut();
        // SAFETY: as above, for the parameter set handle.
        let st = unsafe { f(self.handle, &mut set) };
        if st != kOfxStatOK || set.is_null() {
            return Err(OfxError::new(st, "read the effect's parameter set"));
        }
        Ok(ParamSet::new(set, self.suites.param, self.suites.property))
    }

    /// Declares a clip in a describe-in-context action.
    pub fn define_clip(&self, name: &'static [u8]) -> OfxResult<PropSet> {
        let f = self
            .suites
            .image_effect
            .clipDefine
            .ok_or_else(|| missing("clipDefine"))?;
        let mut props = ptr::null_mut();
        // SAFETY: the host copies the clip name and writes a property handle.
        let st = unsafe { f(self.handle, c(name), &mut props) };
        if st != kOfxStatOK || props.is_null() {
            return Err(OfxError::new(st, format!("define clip {}", super::s(name))));
        }
        Ok(PropSet::new(props, self.suites.property))
    }

    pub fn clip(&self, name: &str) -> OfxResult<Clip> {
        let f = self
            .suites
            .image_effect
            .clipGetHandle
            .ok_or_else(|| missing("clipGetHandle"))?;
        let cname = CString::new(name).map_err(|_| OfxError::failed("clip name has a NUL"))?;
        let mut clip = ptr::null_mut();
        let mut props = ptr::null_mut();
        // SAFETY: the host writes the clip handle and its property handle.
        let st = unsafe { f(self.handle, cname.as_ptr(), &mut clip, &mut props) };
        if st != kOfxStatOK || clip.is_null() {
            return Err(OfxError::new(st, format!("clip {name} is missing")));
        }
        Ok(Clip {
            handle: clip,
            props,
            suites: self.suites.clone(),
            name: name.to_string(),
        })
    }

    /// Whether the host wants the current action to stop (polled during long work).
    pub fn aborted(&self) -> bool {
        match self.suites.image_effect.abort {
            // SAFETY: abort takes the instance handle and returns an int.
            Some(f) => unsafe { f(self.handle) != 0 },
            None => false,
        }
    }
}

/// A clip of an instance.
pub struct Clip {
    handle: OfxImageClipHandle,
    props: OfxPropertySetHandle,
    suites: Arc<HostSuites>,
    name: String,
}

impl Clip {
    /// The clip's properties (frame range, frame rate, pixel aspect, …); null when the host
    /// gave none, which every read then reports as an error.
    pub fn props(&self) -> PropSet {
        PropSet::new(self.props, self.suites.property)
    }

    /// The clip's image at `time` (for the output clip: the buffer to render into). The image
    /// is released when the returned value is dropped.
    pub fn image(&self, time: f64) -> OfxResult<Image> {
        let f = self
            .suites
            .image_effect
            .clipGetImage
            .ok_or_else(|| missing("clipGetImage"))?;
        let mut props = ptr::null_mut();
        // SAFETY: a null region asks for the whole image; the host writes an image handle.
        let st = unsafe { f(self.handle, time, ptr::null(), &mut props) };
        if st != kOfxStatOK || props.is_null() {
            return Err(OfxError::new(
                if st == kOfxStatOK { kOfxStatFailed } else { st },
                format!("the host gave no {} image at frame {time}", self.name),
            ));
        }
        Image::from_host(
            PropSet::new(props, self.suites.property),
            self.suites.image_effect.clipReleaseImage,
        )
    }
}
