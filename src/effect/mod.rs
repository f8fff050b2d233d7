//! The GenClip generator: its identity, the OpenFX entry points, and the action dispatch.

mod actions;
pub mod clip;
pub mod deliver;
pub mod describe;
mod entry;
pub mod generation;
mod instance;
pub mod params;
mod render;
pub mod settings;
pub mod slate;

pub use entry::{OfxGetNumberOfPlugins, OfxGetPlugin, OfxSetHost};

use crate::ofx::bindings::*;
use crate::ofx::lookup;

/// Reverse-domain identifier hosts store in projects: never change it.
pub const PLUGIN_IDENTIFIER: &str = "org.genclip.GenClip";
pub const PLUGIN_VERSION: (u32, u32) = (1, 0);

pub const PLUGIN_DESCRIPTION: &str = "Generates video from text prompts with a local open-weights \
diffusion model (Wan2.1 in Diffusers layout) on this machine's GPU or CPU. Keyframe the prompt \
weights to change what the clip shows over time. Nothing leaves the machine.";

/// The OpenFX contexts GenClip can be used in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// A clip of its own on the timeline (Resolve's Generators, Nuke's Image menu).
    Generator,
    /// Output clip only, but the effect may set its own time domain (Duration).
    General,
    /// For hosts that load only filters (MLT: Kdenlive, Shotcut); the Source clip is ignored.
    Filter,
}

impl Context {
    pub fn from_ofx(name: &str) -> Option<Context> {
        lookup(
            &[
                (kOfxImageEffectContextGenerator, Context::Generator),
                (kOfxImageEffectContextGeneral, Context::General),
                (kOfxImageEffectContextFilter, Context::Filter),
            ],
            name,
        )
    }
}
