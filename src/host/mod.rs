//! A headless OpenFX host: loads a plugin binary with dlopen and drives it the way an
//! editing or compositing application (DaVinci Resolve, Nuke) does, strictly.
//!
//! ```no_run
//! use genclip::host::{Bundle, Host, HostOptions, RenderRequest};
//! # fn main() -> Result<(), genclip::host::HostError> {
//! let bundle = Bundle::open(std::path::Path::new("GenClip.ofx.bundle"))?;
//! let host = Host::new(HostOptions::default());
//! let plugin = host.load_plugin(&bundle, "org.genclip.GenClip")?;
//! plugin.describe()?;
//! let instance = plugin.create_instance("OfxImageEffectContextGenerator")?;
//! let frame = instance.render(&RenderRequest::new(0.0))?;
//! assert!(frame.guard_intact);
//! instance.destroy()?;
//! plugin.unload()?;
//! # Ok(()) }
//! ```
//!
//! The host only ever reaches plugin code through the symbols it dlopens. Every handle it
//! gives out is an opaque number checked against a registry of live objects on each suite
//! call (see `handles`), and no Rust panic crosses back into the plugin.
//!
//! Layout:
//! - `props`: property sets and the property suite;
//! - `params`, `curve`: parameters, keyframes and the parameter suite (its variadic
//!   functions are in `shim.c`, connected to Rust by `shim`);
//! - `effect`: effects, clips, images and the image effect suite;
//! - `image`: guarded render targets;
//! - `suites`: fetchSuite, memory, multi-thread, message, progress and time line suites;
//! - `bundle`: dlopen and the plugin search path; `app`: the host itself;
//! - `plugin`, `instance`: the driver API; `threadctx`: per-thread action and render context;
//! - `handles`: the live-handle registry; `ffi`: panic guards and C string helpers.

mod app;
mod bundle;
mod curve;
mod effect;
mod ffi;
mod handles;
mod image;
mod instance;
mod params;
mod plugin;
mod props;
mod shim;
mod suites;
mod threadctx;

#[cfg(test)]
mod tests;

pub use crate::ofx::bindings::{OfxRectD, OfxRectI};
pub use app::{Host, HostMessage, HostOptions, ProgressEvent};
pub use bundle::{Bundle, PluginInfo};
pub use ffi::status_name;
pub use image::{BitDepth, Components, RenderedImage};
pub use instance::{Instance, RenderRequest};
pub use params::ParamValue;
pub use plugin::{ContextDescription, MainEntry, ParamDescription, Plugin};
pub use props::{PropValue, PropertySnapshot};

/// Why the host could not do what was asked.
#[derive(Debug, Clone)]
pub struct HostError {
    /// The OfxStatus the plugin answered, or -1 for errors on the host's side.
    pub status: i32,
    /// What failed, with the status name and whatever the plugin posted meanwhile.
    pub message: String,
}

impl HostError {
    pub(crate) fn host(message: impl Into<String>) -> HostError {
        HostError {
            status: -1,
            message: message.into(),
        }
    }

    pub(crate) fn status(status: i32, what: impl std::fmt::Display) -> HostError {
        HostError {
            status,
            message: format!("{what} returned {}", status_name(status)),
        }
    }

    /// "<action> [at t=<time>] returned <status>", then the messages the plugin posted.
    pub(crate) fn action(
        action: &str,
        time: Option<f64>,
        status: i32,
        posted: &[HostMessage],
    ) -> HostError {
        let at = time.map(|t| format!(" at t={t}")).unwrap_or_default();
        let mut message = format!("{action}{at} returned {}", status_name(status));
        if !posted.is_empty() {
            let quoted: Vec<String> = posted
                .iter()
                .map(|m| format!("[{}] {}: {}", m.kind, m.id, m.text))
                .collect();
            message.push_str("; the plugin posted: ");
            message.push_str(&quoted.join(" | "));
        }
        HostError { status, message }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}
