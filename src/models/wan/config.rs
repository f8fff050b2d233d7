//! Configs of the Wan2.1 components as Diffusers writes them (`transformer/config.json`,
//! `vae/config.json`), read strictly: a field we do not implement is an error, not a guess.

use crate::models::diffusers::ModelFolder;
use candle_core::{Error, Result};
use serde::Deserialize;

/// `WanTransformer3DModel`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// (frames, height, width) of one patch.
    pub patch_size: [usize; 3],
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub in_channels: usize,
    pub out_channels: Option<usize>,
    /// Width of the text encoder's embeddings.
    pub text_dim: usize,
    /// Width of the sinusoidal timestep embedding.
    pub freq_dim: usize,
    pub ffn_dim: usize,
    pub num_layers: usize,
    pub cross_attn_norm: bool,
    pub qk_norm: Option<String>,
    pub eps: f64,
    /// Image conditioning (image-to-video models): not supported yet.
    #[serde(default)]
    pub image_dim: Option<usize>,
    #[serde(default)]
    pub added_kv_proj_dim: Option<usize>,
    pub rope_max_seq_len: usize,
    #[serde(default)]
    pub pos_embed_seq_len: Option<usize>,
}

impl TransformerConfig {
    pub fn load(folder: &ModelFolder) -> Result<TransformerConfig> {
        let config: TransformerConfig = folder.config("transformer", &[])?;
        config.check()?;
        Ok(config)
    }

    pub fn inner_dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels.unwrap_or(self.in_channels)
    }

    fn check(&self) -> Result<()> {
        if self.image_dim.is_some()
            || self.added_kv_proj_dim.is_some()
            || self.pos_embed_seq_len.is_some()
        {
            return Err(Error::msg(
                "transformer/config.json describes an image-to-video Wan model; GenClip generates from text only for now: use a Wan2.1 T2V model",
            ));
        }
        if self
            .qk_norm
            .as_deref()
            .is_some_and(|n| n != "rms_norm_across_heads")
        {
            return Err(Error::msg(format!(
                "transformer/config.json: qk_norm {:?} is not supported (Wan2.1 uses rms_norm_across_heads)",
                self.qk_norm
            )));
        }
        if self.patch_size.contains(&0)
            || self.num_attention_heads == 0
            || self.attention_head_dim == 0
        {
            return Err(Error::msg(
                "transformer/config.json: patch size, head count and head width must be positive",
            ));
        }
        // 3-D rotary embeddings split each head's width into (t, h, w) parts of even size.
        if self.attention_head_dim % 2 != 0 || self.attention_head_dim < 6 {
            return Err(Error::msg(format!(
                "transformer/config.json: attention_head_dim {} cannot be split into the three rotary parts",
                self.attention_head_dim
            )));
        }
        Ok(())
    }
}

/// `AutoencoderKLWan`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    pub base_dim: usize,
    #[serde(default)]
    pub decoder_base_dim: Option<usize>,
    pub z_dim: usize,
    pub dim_mult: Vec<usize>,
    pub num_res_blocks: usize,
    pub attn_scales: Vec<f64>,
    pub temperal_downsample: Vec<bool>,
    /// Training only.
    #[serde(default)]
    pub dropout: f64,
    pub latents_mean: Vec<f64>,
    pub latents_std: Vec<f64>,
    #[serde(default)]
    pub is_residual: bool,
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub out_channels: usize,
    #[serde(default)]
    pub patch_size: Option<usize>,
    #[serde(default)]
    pub scale_factor_temporal: Option<usize>,
    #[serde(default)]
    pub scale_factor_spatial: Option<usize>,
}

fn three() -> usize {
    3
}

impl VaeConfig {
    pub fn load(folder: &ModelFolder) -> Result<VaeConfig> {
        let config: VaeConfig = folder.config("vae", &[])?;
        config.check()?;
        Ok(config)
    }

    /// Pixels per latent pixel: each stage but the last halves the size.
    pub fn spatial_scale(&self) -> usize {
        1 << self.temperal_downsample.len()
    }

    /// Video frames per latent frame (after the first, which maps to one frame).
    pub fn temporal_scale(&self) -> usize {
        1 << self.temperal_downsample.iter().filter(|d| **d).count()
    }

    fn check(&self) -> Result<()> {
        let bad = |why: String| Err(Error::msg(format!("vae/config.json: {why}")));
        if self.latents_mean.len() != self.z_dim || self.latents_std.len() != self.z_dim {
            return bad(format!(
                "latents_mean and latents_std need z_dim = {} entries, not {} and {}",
                self.z_dim,
                self.latents_mean.len(),
                self.latents_std.len()
            ));
        }
        if self.latents_std.iter().any(|s| !s.is_finite() || *s == 0.0) {
            return bad("latents_std has a zero or non-finite entry".into());
        }
        if self.temperal_downsample.len() + 1 != self.dim_mult.len() {
            return bad(format!(
                "temperal_downsample needs one entry per stage change ({} for dim_mult {:?})",
                self.dim_mult.len().saturating_sub(1),
                self.dim_mult
            ));
        }
        if self.is_residual || self.patch_size.is_some() {
            return bad(
                "this is a Wan2.2 VAE (residual, patchified); GenClip reads the Wan2.1 VAE for now"
                    .into(),
            );
        }
        if !self.attn_scales.is_empty() {
            return bad("attn_scales is not supported (Wan2.1 uses none)".into());
        }
        if let Some(s) = self
            .scale_factor_spatial
            .filter(|s| *s != self.spatial_scale())
        {
            return bad(format!(
                "scale_factor_spatial {s} does not match the {} stages",
                self.dim_mult.len()
            ));
        }
        if let Some(s) = self
            .scale_factor_temporal
            .filter(|s| *s != self.temporal_scale())
        {
            return bad(format!(
                "scale_factor_temporal {s} does not match temperal_downsample"
            ));
        }
        Ok(())
    }
}
