//! The plugin's side of the engine process: starts `genclip-engine serve` on first need (one
//! per host process, shared by every instance), sends it clip requests, hears progress, aborts,
//! and notices when it dies. See [`protocol`] and `docs/engine-process.md`.
//!
//! This module links no candle (the cdylib must not): only std, libc, parking_lot, once_cell,
//! serde and the protocol.
//!
//! ```no_run
//! # fn request() -> genclip::client::protocol::ClipRequest { unimplemented!() }
//! use genclip::client::{Engine, JobState};
//! let job = Engine::global().submit(request());
//! let end = job.wait(&mut |state| {
//!     if let JobState::Running { fraction, .. } = state {
//!         eprintln!("{:.0} %", fraction * 100.0);
//!     }
//!     true // false aborts
//! });
//! assert_eq!(end, JobState::Done); // the clip is in the cache under job.key()
//! ```

mod engine;
mod job;
mod process;
mod program;
pub mod protocol;

pub use engine::{Engine, EngineConfig, Engines, CUDA_START_TIMEOUT, DEFAULT_START_TIMEOUT};
pub use job::{overall_fraction, Job, JobState, TICK};
pub use program::{
    cuda_engine_program, engine_program, plugin_binary, ComputeClass, DeviceChoice,
    TextEncoderDevice, CUDA_ENGINE_ENV, CUDA_ENGINE_FILE, ENGINE_ENV, ENGINE_FILE,
    TEXT_ENCODER_ENV,
};
pub use protocol::Stage;
