//! The generation engine: a Wan2.1 text-to-video pipeline over the model components in
//! `crate::models`. (The engine process of the timeline issue wraps this.)

pub mod bench;
pub mod pipeline;
pub mod server;

pub use pipeline::{GenerateError, Pipeline, Request, Stage, Video};
