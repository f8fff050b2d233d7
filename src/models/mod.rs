//! Model building blocks of the generation engine.

pub mod attention;
mod cpu;
pub mod diffusers;
pub mod hub_cache;
pub mod prompt;
pub mod schedulers;
pub mod torch_rng;
pub mod umt5;
pub mod wan;
