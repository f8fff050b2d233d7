//! The generation engine: a Wan2.1 text-to-video pipeline over the model components in
//! `crate::models`. (The engine process of the timeline issue wraps this.)

pub mod bench;
pub mod conditioning;
pub mod memory_plan;
pub mod pipeline;
pub mod prompt_encoder;
pub mod sampler;
pub mod server;
pub mod text_cache;
pub mod windows;

pub use pipeline::{GenerateError, Pipeline, Request, Stage, Video};
