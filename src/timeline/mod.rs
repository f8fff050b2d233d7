//! The clip plan: host time ↔ model frames (frame-rate conform), the generated size and its
//! cover transform onto the frame, windows for long clips, and the prompt schedule per latent
//! frame. Pure logic; docs/timeline.md says what it computes and why.

pub mod plan;
pub mod schedule;
