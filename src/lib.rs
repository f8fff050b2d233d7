//! GenClip: local text-to-video generation as an OpenFX generator.
//!
//! One crate, two sides of the OpenFX ABI:
//! - the plugin ([`effect`], over the safe wrappers in [`ofx`]), exported from the cdylib as
//!   `OfxGetNumberOfPlugins` / `OfxGetPlugin` / `OfxSetHost`;
//! - the headless host ([`host`]) that the `genclip` command and the tests use to load a built
//!   bundle and drive it exactly as an editing host does.

pub mod bundle;
pub mod cache;
pub mod cli;
pub mod client;
pub mod effect;
pub mod engine;
pub mod frame_files;
pub mod host;
pub mod models;
pub mod ofx;
pub mod provenance;
pub mod timeline;
