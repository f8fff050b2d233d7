//! `AutoencoderKLWan` encoder: video [b, 3, 1 + 4·k, h, w] in [-1, 1] to the posterior mean
//! [b, z, 1 + k, h/8, w/8], as `vae.encode(video).latent_dist.mean` (what image-to-video
//! pipelines use: `retrieve_latents(..., sample_mode="argmax")`).
//!
//! Like the reference, the encoder is causal in time and runs on the first frame alone, then on
//! chunks of four frames, with the causal convolutions' [`FrameCache`] carried across chunks.
//! Each temporal downsampler halves the frames of a chunk with a stride-2 convolution over
//! [its previous chunk's last frame, this chunk] and skips the first chunk. It shares its
//! building blocks with the decoder (`super::vae`). Checkpoint keys are the Diffusers names
//! under `encoder.` and `quant_conv`.

use super::config::VaeConfig;
use super::vae::{
    latent_stats, CausalConv3d, ChannelRmsNorm, FrameAttention, FrameCache, ResidualBlock, Slot,
};
use candle_core::{DType, Error, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// Frames per encoder call after the first frame (fixed in Diffusers' `_encode`).
const CHUNK_FRAMES: usize = 4;

/// Halves height and width (zero padding on the right and bottom, 3x3 stride-2 convolution);
/// temporal mode also halves the frame count from the second chunk on.
#[derive(Debug, Clone)]
struct Downsampler {
    conv: Conv2d,
    time_conv: Option<CausalConv3d>,
}

impl Downsampler {
    fn new(dim: usize, temporal: bool, vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig {
            stride: 2,
            ..Default::default()
        };
        Ok(Downsampler {
            conv: candle_nn::conv2d(dim, dim, 3, cfg, vb.pp("resample.1"))?,
            time_conv: if temporal {
                Some(CausalConv3d::strided_in_time(
                    dim,
                    dim,
                    3,
                    2,
                    vb.pp("time_conv"),
                )?)
            } else {
                None
            },
        })
    }

    fn forward(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        let (b, c, t, h, w) = x.dims5()?;
        // `ZeroPad2d((0, 1, 0, 1))`: one zero column on the right, one zero row at the bottom.
        let frames = x
            .permute((0, 2, 1, 3, 4))?
            .reshape((b * t, c, h, w))?
            .pad_with_zeros(2, 0, 1)?
            .pad_with_zeros(3, 0, 1)?;
        let y = self.conv.forward(&frames)?;
        let (_, c_out, ho, wo) = y.dims4()?;
        let x = y
            .reshape((b, t, c_out, ho, wo))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()?;
        let Some(time_conv) = &self.time_conv else {
            return Ok(x);
        };
        // Only the last frame of the previous chunk is ever used again.
        let slot = cache.slot();
        let keep = x.narrow(2, t - 1, 1)?;
        let y = match slot {
            Slot::Frames(last) => {
                let frames: Vec<&Tensor> = last.iter().chain([&x]).collect();
                time_conv.forward(&Tensor::cat(&frames, 2)?, &[])?
            }
            // The first chunk passes through unchanged.
            _ => x,
        };
        *slot = Slot::Frames(vec![keep]);
        Ok(y)
    }
}

#[derive(Debug, Clone)]
enum DownLayer {
    Residual(ResidualBlock),
    Down(Downsampler),
}

#[derive(Debug, Clone)]
pub struct WanVaeEncoder {
    conv_in: CausalConv3d,
    /// `encoder.down_blocks`: per stage, its residual blocks, then (all but the last stage) a
    /// downsampler, numbered in one flat list as Diffusers does.
    down_blocks: Vec<DownLayer>,
    mid_resnets: [ResidualBlock; 2],
    mid_attention: FrameAttention,
    norm_out: ChannelRmsNorm,
    conv_out: CausalConv3d,
    quant_conv: CausalConv3d,
    in_channels: usize,
    z_dim: usize,
    latents_mean: Tensor,
    latents_std: Tensor,
}

impl WanVaeEncoder {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        let z2 = 2 * cfg.z_dim;
        // Channels per stage, narrowest first.
        let mut dims = vec![cfg.base_dim];
        dims.extend(cfg.dim_mult.iter().map(|m| cfg.base_dim * m));
        let e = vb.pp("encoder");
        let mut down_blocks = Vec::new();
        for i in 0..dims.len() - 1 {
            for j in 0..cfg.num_res_blocks {
                let c_in = if j == 0 { dims[i] } else { dims[i + 1] };
                let vb = e.pp(format!("down_blocks.{}", down_blocks.len()));
                down_blocks.push(DownLayer::Residual(ResidualBlock::new(
                    c_in,
                    dims[i + 1],
                    vb,
                )?));
            }
            if i != cfg.dim_mult.len() - 1 {
                let vb = e.pp(format!("down_blocks.{}", down_blocks.len()));
                down_blocks.push(DownLayer::Down(Downsampler::new(
                    dims[i + 1],
                    cfg.temperal_downsample[i],
                    vb,
                )?));
            }
        }
        let out_dim = *dims.last().expect("stages");
        let (latents_mean, latents_std) = latent_stats(cfg, vb.device())?;
        Ok(WanVaeEncoder {
            conv_in: CausalConv3d::new(cfg.in_channels, dims[0], (3, 3, 3), 1, e.pp("conv_in"))?,
            down_blocks,
            mid_resnets: [
                ResidualBlock::new(out_dim, out_dim, e.pp("mid_block.resnets.0"))?,
                ResidualBlock::new(out_dim, out_dim, e.pp("mid_block.resnets.1"))?,
            ],
            mid_attention: FrameAttention::new(out_dim, e.pp("mid_block.attentions.0"))?,
            norm_out: ChannelRmsNorm::new(out_dim, 3, e.pp("norm_out"))?,
            conv_out: CausalConv3d::new(out_dim, z2, (3, 3, 3), 1, e.pp("conv_out"))?,
            quant_conv: CausalConv3d::new(z2, z2, (1, 1, 1), 0, vb.pp("quant_conv"))?,
            in_channels: cfg.in_channels,
            z_dim: cfg.z_dim,
            latents_mean,
            latents_std,
        })
    }

    /// The posterior mean of `video` [b, 3, 1 + 4·k, h, w] in [-1, 1]: [b, z, 1 + k, h/8, w/8].
    /// Runs the first frame, then chunks of four frames; `on_chunk` hears about each chunk done
    /// (for progress and abort). Other frame counts are refused (Diffusers would silently drop
    /// the frames after the last full chunk).
    pub fn encode_mean(
        &self,
        video: &Tensor,
        mut on_chunk: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<Tensor> {
        let (_, c, frames, _, _) = video.dims5()?;
        if c != self.in_channels {
            return Err(Error::msg(format!(
                "VAE encoder: the video has {c} channels, the model takes {}",
                self.in_channels
            )));
        }
        if frames % CHUNK_FRAMES != 1 {
            return Err(Error::msg(format!(
                "VAE encoder: {frames} frames; it takes 1 + {CHUNK_FRAMES}·k frames"
            )));
        }
        let chunks = 1 + frames / CHUNK_FRAMES;
        let mut cache = FrameCache::default();
        let mut outputs = Vec::with_capacity(chunks);
        for i in 0..chunks {
            let x = if i == 0 {
                video.narrow(2, 0, 1)?
            } else {
                video.narrow(2, 1 + CHUNK_FRAMES * (i - 1), CHUNK_FRAMES)?
            };
            cache.start_chunk();
            outputs.push(self.encode_chunk(&x, &mut cache)?);
            on_chunk(i + 1, chunks)?;
        }
        // The posterior's parameters: mean, then log-variance.
        let moments = self.quant_conv.forward(&Tensor::cat(&outputs, 2)?, &[])?;
        moments.narrow(1, 0, self.z_dim)
    }

    fn encode_chunk(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        let mut x = self.conv_in.forward_cached(x, cache)?;
        for layer in &self.down_blocks {
            x = match layer {
                DownLayer::Residual(block) => block.forward(&x, cache)?,
                DownLayer::Down(down) => down.forward(&x, cache)?,
            };
        }
        x = self.mid_resnets[0].forward(&x, cache)?;
        x = self.mid_attention.forward(&x)?;
        x = self.mid_resnets[1].forward(&x, cache)?;
        let x = self.norm_out.forward(&x)?.silu()?;
        self.conv_out.forward_cached(&x, cache)
    }

    /// The image-to-video pipeline's normalisation of encoded latents,
    /// `(mean - latents_mean) · (1/latents_std)`, as `WanImageToVideoPipeline.prepare_latents`
    /// writes it (in f32).
    pub fn normalize(&self, mean: &Tensor) -> Result<Tensor> {
        let dtype = mean.dtype();
        let inv_std = self.latents_std.recip()?;
        mean.to_dtype(DType::F32)?
            .broadcast_sub(&self.latents_mean)?
            .broadcast_mul(&inv_std)?
            .to_dtype(dtype)
    }
}
