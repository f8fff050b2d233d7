//! The Wan2.1 family (text-to-video): configs now; the transformer and the VAE follow.

pub mod config;
