//! Model building blocks of the generation engine.

pub mod attention;
pub mod diffusers;
pub mod prompt;
pub mod schedulers;
pub mod torch_rng;
pub mod umt5;
pub mod wan;
