//! Model building blocks of the generation engine.

pub mod torch_rng;
