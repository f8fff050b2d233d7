//! Model building blocks of the generation engine.

pub mod diffusers;
pub mod torch_rng;
pub mod wan;
