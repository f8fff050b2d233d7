//! The Wan2.1 family (text-to-video): configs, the diffusion transformer and the VAE decoder.

pub mod config;
pub mod single_file;
pub mod transformer;
pub mod vae;
pub mod vae_encoder;
