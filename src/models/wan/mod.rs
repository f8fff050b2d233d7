//! The Wan2.1 family (text-to-video): configs, the diffusion transformer (Diffusers folders
//! and original/ComfyUI single files) and the VAE decoder and encoder.

pub mod config;
pub mod single_file;
pub mod transformer;
pub mod vae;
pub mod vae_encoder;
