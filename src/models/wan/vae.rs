//! `AutoencoderKLWan` decoder: latents [b, z, frames, h, w] to video [b, 3, 1 + 4·(frames-1),
//! 8·h, 8·w] in [-1, 1]; and the building blocks it shares with the encoder
//! (`super::vae_encoder`).
//!
//! The decoder is causal in time and runs one latent frame at a time, as the reference does:
//! every temporal convolution keeps the last two frames of its input from the previous call
//! ([`FrameCache`]), so memory does not grow with the clip's length. The first latent frame
//! yields one video frame, each later one four (two temporal upsamplings, skipped on the
//! first frame). The stages after the last temporal upsampling, where the activations are
//! largest, run on one video frame at a time ([`WanVaeDecoder::finish_frames`]): they mix
//! frames only through the cache, so this gives the same result bit for bit while only one
//! frame's full-resolution activations exist at once. candle has no 3-D convolution: on the
//! CPU [`CausalConv3d`] is one matrix product over all its taps, reading the cached and the new
//! frames where they lie (`models::cpu::conv3d_in_parts`), elsewhere a sum of 2-D convolutions
//! over its temporal taps, each in bands of output rows where candle's im2col would be large
//! ([`conv2d_in_bands`], also for the upsamplers' 3 × 3 convolutions). Checkpoint keys are
//! the Diffusers names under `decoder.` and `post_quant_conv`.

use super::config::VaeConfig;
use crate::models::attention::attention;
use crate::models::cpu;
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// Frames a causal convolution keeps from its previous input.
const CACHED_FRAMES: usize = 2;

/// The most bytes of im2col columns one candle `conv2d` call may build, off the CPU kernels
/// (where candle materialises them whole: on CUDA, Wan's last upsampler at 480 × 832 would
/// take 5.5 GB in bf16). 256 MiB stays below one full-resolution activation of the decoder's
/// last stage there (4 frames × 480 × 832 × 96 channels in bf16, 307 MB), so the columns are
/// no longer the largest buffer, while each band's matrix product still has tens of thousands
/// of rows (23 output rows of 4 × 832 pixels for that convolution) to fill a GPU; 21 bands
/// add a few kernel launches each.
const CONV2D_COLUMN_BYTES: usize = 256 << 20;

/// `x` [n, c, h, w] convolved with `kernel` [c_out, c, kh, kw] by candle's `conv2d` (stride
/// 1, `padding` zeros on each side of height and width, no bias), in bands of output rows
/// when its im2col columns (n · h_out · w_out · c · kh · kw elements) would take more than
/// `column_bytes`. Each band reads the input rows it needs, with the padding written out as
/// zeros, and is convolved unpadded: every output element gets the same columns and the same
/// weights as in one call; the bands are joined along the height.
fn conv2d_in_bands(
    x: &Tensor,
    kernel: &Tensor,
    padding: usize,
    column_bytes: usize,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (_, _, kh, kw) = kernel.dims4()?;
    let p = padding;
    let (Some(h_out), Some(w_out)) = (
        (h + 2 * p + 1).checked_sub(kh),
        (w + 2 * p + 1).checked_sub(kw),
    ) else {
        // Smaller than the kernel: candle says so.
        return x.conv2d(kernel, p, 1, 1, 1);
    };
    let row_bytes = n * w_out * c * kh * kw * x.dtype().size_in_bytes();
    if h_out * row_bytes <= column_bytes {
        return x.conv2d(kernel, p, 1, 1, 1);
    }
    let band_rows = (column_bytes / row_bytes).max(1);
    let bands = (0..h_out)
        .step_by(band_rows)
        .map(|first| {
            let rows = band_rows.min(h_out - first);
            // Rows first .. first + span of the padded input: `top` zero rows, input rows
            // lo .. hi, then zero rows.
            let span = rows + kh - 1;
            let top = p.saturating_sub(first).min(span);
            let lo = first.saturating_sub(p).min(h);
            let hi = (first + span).saturating_sub(p).clamp(lo, h);
            let bottom = span - top - (hi - lo);
            let band = if hi > lo {
                x.narrow(2, lo, hi - lo)?.pad_with_zeros(2, top, bottom)?
            } else {
                Tensor::zeros((n, c, span, w), x.dtype(), x.device())?
            };
            band.pad_with_zeros(3, p, p)?.conv2d(kernel, 0, 1, 1, 1)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&bands, 2)
}

/// What one temporal-convolution slot remembers between calls.
#[derive(Debug, Clone)]
pub(super) enum Slot {
    /// Nothing yet: this is the first frame.
    Empty,
    /// The first frame passed a temporal upsampler, which skips its convolution then.
    SkippedFirst,
    /// The last input frames, oldest first, one [b, c, 1, h, w] tensor each.
    Frames(Vec<Tensor>),
}

/// The per-clip state of the causal convolutions of the decoder (or the encoder), one slot
/// per convolution in the order the model runs them.
#[derive(Debug, Clone, Default)]
pub struct FrameCache {
    slots: Vec<Slot>,
    cursor: usize,
}

impl FrameCache {
    /// Rewinds to the first slot before each call: one latent frame of the decoder, one chunk
    /// of frames of the encoder.
    pub(super) fn start_chunk(&mut self) {
        self.cursor = 0;
    }

    /// Where the cursor stands: the slot the next convolution will take.
    fn position(&self) -> usize {
        self.cursor
    }

    /// Moves the cursor back to `position` (from [`FrameCache::position`]), so that the same
    /// convolutions run again with their slots: the decoder's per-frame stages, once per
    /// video frame.
    fn rewind_to(&mut self, position: usize) {
        debug_assert!(
            position <= self.cursor,
            "the cache rewinds, never skips ahead"
        );
        self.cursor = position;
    }

    /// The next convolution's slot.
    pub(super) fn slot(&mut self) -> &mut Slot {
        if self.cursor == self.slots.len() {
            self.slots.push(Slot::Empty);
        }
        self.cursor += 1;
        &mut self.slots[self.cursor - 1]
    }
}

/// The last two frames of `x` (with the previous input's last frame in front when `x` has
/// only one), one tensor each, which the next call will see before its own frames.
///
/// A frame of `x` is always a copy of just that frame: a narrowed view would keep all of `x`
/// (the decoder's four frames at full resolution) alive until the next latent frame.
/// `force_contiguous` copies even where the frame happens to be laid out contiguously;
/// `contiguous` would then return the view, and `copy` clones the whole storage. A previous
/// frame is already such a copy, and is shared.
fn frames_to_keep(x: &Tensor, previous: &Slot) -> Result<Vec<Tensor>> {
    let t = x.dim(2)?;
    let mut kept = match previous {
        Slot::Frames(prev) if t < CACHED_FRAMES => {
            prev[prev.len().saturating_sub(CACHED_FRAMES - t)..].to_vec()
        }
        _ => Vec::new(),
    };
    for f in t.saturating_sub(CACHED_FRAMES)..t {
        kept.push(x.narrow(2, f, 1)?.force_contiguous()?);
    }
    Ok(kept)
}

/// A 3-D convolution, causal in time (all temporal padding in front), symmetric in space.
#[derive(Debug, Clone)]
pub(super) struct CausalConv3d {
    /// [out, in, kt, kh, kw]
    weight: Tensor,
    bias: Tensor,
    spatial_padding: usize,
    /// Frames in front (history, else zeros): taps - 1, or 0 for the strided time convolution.
    front: usize,
    temporal_stride: usize,
    /// Off the CPU kernel: the bound on one `conv2d`'s columns ([`conv2d_in_bands`]).
    column_bytes: usize,
}

impl CausalConv3d {
    pub(super) fn new(
        c_in: usize,
        c_out: usize,
        kernel: (usize, usize, usize),
        spatial_padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (kt, kh, kw) = kernel;
        Ok(CausalConv3d {
            weight: vb.get((c_out, c_in, kt, kh, kw), "weight")?,
            bias: vb.get(c_out, "bias")?,
            spatial_padding,
            front: kt - 1,
            temporal_stride: 1,
            column_bytes: CONV2D_COLUMN_BYTES,
        })
    }

    /// A convolution over time only (kernel (kt, 1, 1)) with a stride and no padding: the
    /// encoder's temporal downsampler, which puts the history in front itself.
    pub(super) fn strided_in_time(
        c_in: usize,
        c_out: usize,
        kt: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut conv = CausalConv3d::new(c_in, c_out, (kt, 1, 1), 0, vb)?;
        conv.front = 0;
        conv.temporal_stride = stride;
        Ok(conv)
    }

    /// `x` [b, c, t, h, w]; `history`: earlier frames, oldest first, whose last `front` stand
    /// in front of `x` (zero frames for any missing).
    pub(super) fn forward(&self, x: &Tensor, history: &[Tensor]) -> Result<Tensor> {
        // The input in parts, taken from the history's end: what stands in front of `x`.
        let mut zeros = self.front;
        let mut parts = vec![x.clone()];
        for h in history.iter().rev() {
            if zeros == 0 {
                break;
            }
            let t = h.dim(2)?;
            let take = t.min(zeros);
            parts.insert(0, h.narrow(2, t - take, take)?);
            zeros -= take;
        }
        let parts: Vec<&Tensor> = parts.iter().collect();
        let (kt, stride) = (self.weight.dim(2)?, self.temporal_stride);
        let t_padded = zeros + parts.iter().map(|p| p.dim(2)).sum::<Result<usize>>()?;
        if t_padded < kt {
            return Err(candle_core::Error::msg(format!(
                "temporal convolution of {kt} taps got only {t_padded} frames"
            )));
        }
        if cpu::is_cpu_f32(&[x, &self.weight, &self.bias]) {
            // Each frame read where it lies: no joined copy.
            return cpu::conv3d_in_parts(
                zeros,
                &parts,
                &self.weight,
                &self.bias,
                self.spatial_padding,
                stride,
            );
        }
        let x = Tensor::cat(&parts, 2)?;
        let x = if zeros > 0 {
            x.pad_with_zeros(2, zeros, 0)?
        } else {
            x
        };
        let (b, c, _, h, w) = x.dims5()?;
        // Elsewhere: one 2-D convolution per temporal tap, summed.
        let t_out = (t_padded - kt) / stride + 1;
        let mut out: Option<Tensor> = None;
        for i in 0..kt {
            let tap = self.weight.narrow(2, i, 1)?.squeeze(2)?.contiguous()?;
            // Frames i, i + stride, .. (t_out of them), folded into the batch for a 2-D
            // convolution.
            let frames = if stride == 1 {
                x.narrow(2, i, t_out)?
            } else {
                let index: Vec<u32> = (0..t_out).map(|j| (i + j * stride) as u32).collect();
                x.index_select(&Tensor::new(index.as_slice(), x.device())?, 2)?
            };
            let frames = frames
                .permute((0, 2, 1, 3, 4))?
                .reshape((b * t_out, c, h, w))?;
            let y = conv2d_in_bands(&frames, &tap, self.spatial_padding, self.column_bytes)?;
            out = Some(match out {
                Some(acc) => (acc + y)?,
                None => y,
            });
        }
        let y = out.expect("at least one temporal tap");
        let (_, c_out, ho, wo) = y.dims4()?;
        y.broadcast_add(&self.bias.reshape((1, c_out, 1, 1))?)?
            .reshape((b, t_out, c_out, ho, wo))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()
    }

    /// The forward pass with this convolution's slot of the frame cache.
    pub(super) fn forward_cached(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        let slot = cache.slot();
        let y = match slot {
            Slot::Frames(history) => self.forward(x, history)?,
            _ => self.forward(x, &[])?,
        };
        *slot = Slot::Frames(frames_to_keep(x, slot)?);
        Ok(y)
    }
}

/// RMS norm over channels: x / ‖x‖ · sqrt(channels) · gamma (`F.normalize` semantics).
#[derive(Debug, Clone)]
pub(super) struct ChannelRmsNorm {
    gamma: Tensor,
    scale: f64,
}

impl ChannelRmsNorm {
    /// `spatial_rank`: 3 for [b, c, t, h, w] inputs, 2 for [b, c, h, w].
    pub(super) fn new(dim: usize, spatial_rank: usize, vb: VarBuilder) -> Result<Self> {
        let shape: Vec<usize> = std::iter::once(dim)
            .chain(std::iter::repeat_n(1, spatial_rank))
            .collect();
        Ok(ChannelRmsNorm {
            gamma: vb.get(shape, "gamma")?,
            scale: (dim as f64).sqrt(),
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
        (x.broadcast_div(&norm)? * self.scale)?.broadcast_mul(&self.gamma.unsqueeze(0)?)
    }
}

#[derive(Debug, Clone)]
pub(super) struct ResidualBlock {
    norm1: ChannelRmsNorm,
    conv1: CausalConv3d,
    norm2: ChannelRmsNorm,
    conv2: CausalConv3d,
    shortcut: Option<CausalConv3d>,
}

impl ResidualBlock {
    pub(super) fn new(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        Ok(ResidualBlock {
            norm1: ChannelRmsNorm::new(c_in, 3, vb.pp("norm1"))?,
            conv1: CausalConv3d::new(c_in, c_out, (3, 3, 3), 1, vb.pp("conv1"))?,
            norm2: ChannelRmsNorm::new(c_out, 3, vb.pp("norm2"))?,
            conv2: CausalConv3d::new(c_out, c_out, (3, 3, 3), 1, vb.pp("conv2"))?,
            shortcut: if c_in != c_out {
                Some(CausalConv3d::new(
                    c_in,
                    c_out,
                    (1, 1, 1),
                    0,
                    vb.pp("conv_shortcut"),
                )?)
            } else {
                None
            },
        })
    }

    pub(super) fn forward(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        // Each intermediate goes as soon as the next is made (a temporary in a longer
        // expression, or a shadowed binding, would live on): in the decoder's last stages
        // these are its largest buffers.
        let y = {
            let a = self.norm1.forward(x)?.silu()?;
            self.conv1.forward_cached(&a, cache)?
        };
        let y = {
            let a = self.norm2.forward(&y)?.silu()?;
            drop(y);
            self.conv2.forward_cached(&a, cache)?
        };
        let h = match &self.shortcut {
            Some(conv) => conv.forward(x, &[])?,
            None => x.clone(),
        };
        y + h
    }
}

/// Single-head self-attention within each frame (the middle block of decoder and encoder).
#[derive(Debug, Clone)]
pub(super) struct FrameAttention {
    norm: ChannelRmsNorm,
    to_qkv: Conv2d,
    proj: Conv2d,
}

impl FrameAttention {
    pub(super) fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig::default();
        Ok(FrameAttention {
            norm: ChannelRmsNorm::new(dim, 2, vb.pp("norm"))?,
            to_qkv: candle_nn::conv2d(dim, 3 * dim, 1, cfg, vb.pp("to_qkv"))?,
            proj: candle_nn::conv2d(dim, dim, 1, cfg, vb.pp("proj"))?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, t, h, w) = x.dims5()?;
        let frames = x.permute((0, 2, 1, 3, 4))?.reshape((b * t, c, h, w))?;
        let qkv = self.to_qkv.forward(&self.norm.forward(&frames)?)?; // [bt, 3c, h, w]
        let qkv = qkv
            .reshape((b * t, 3 * c, h * w))?
            .transpose(1, 2)?
            .unsqueeze(1)?; // [bt, 1, hw, 3c]
        let part = |i: usize| qkv.narrow(D::Minus1, i * c, c)?.contiguous();
        let out = attention(&part(0)?, &part(1)?, &part(2)?, 1.0 / (c as f64).sqrt())?; // [bt, 1, hw, c]
        let out = out.squeeze(1)?.transpose(1, 2)?.reshape((b * t, c, h, w))?;
        let out = self
            .proj
            .forward(&out)?
            .reshape((b, t, c, h, w))?
            .permute((0, 2, 1, 3, 4))?;
        out + x
    }
}

/// Doubles height and width (nearest) and halves channels; temporal mode also doubles the
/// frame count from the second latent frame on.
#[derive(Debug, Clone)]
struct Upsampler {
    conv: Conv2d,
    time_conv: Option<CausalConv3d>,
    /// Off the CPU kernel: the bound on the 3 × 3 convolution's columns ([`conv2d_in_bands`]).
    column_bytes: usize,
}

impl Upsampler {
    fn new(dim: usize, temporal: bool, vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Upsampler {
            conv: candle_nn::conv2d(dim, dim / 2, 3, cfg, vb.pp("resample.1"))?,
            time_conv: if temporal {
                Some(CausalConv3d::new(
                    dim,
                    2 * dim,
                    (3, 1, 1),
                    0,
                    vb.pp("time_conv"),
                )?)
            } else {
                None
            },
            column_bytes: CONV2D_COLUMN_BYTES,
        })
    }

    fn forward(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        let mut x = x.clone();
        if let Some(time_conv) = &self.time_conv {
            let slot = cache.slot();
            match slot {
                Slot::Empty => *slot = Slot::SkippedFirst,
                _ => {
                    // After a skipped first frame the history is a zero frame.
                    let keep = match slot {
                        Slot::SkippedFirst if x.dim(2)? < CACHED_FRAMES => {
                            let previous = Slot::Frames(vec![x.zeros_like()?]);
                            frames_to_keep(&x, &previous)?
                        }
                        _ => frames_to_keep(&x, slot)?,
                    };
                    let y = match slot {
                        Slot::Frames(history) => time_conv.forward(&x, history)?,
                        _ => time_conv.forward(&x, &[])?,
                    };
                    *slot = Slot::Frames(keep);
                    // [b, 2c, t, h, w] -> [b, c, 2t, h, w], interleaving the two halves in time.
                    let (b, c2, t, h, w) = y.dims5()?;
                    let c = c2 / 2;
                    x = y
                        .reshape((b, 2, c, t, h, w))?
                        .permute((0, 2, 3, 1, 4, 5))?
                        .reshape((b, c, 2 * t, h, w))?;
                }
            }
        }
        let (b, c, t, h, w) = x.dims5()?;
        let padding = self.conv.config().padding;
        let Some(bias) = self.conv.bias() else {
            candle_core::bail!("the upsampler's convolution has a bias");
        };
        if cpu::is_cpu_f32(&[&x, self.conv.weight()]) {
            // Frames stay in place: upsample every (channel, frame) plane, then convolve with
            // the 2-D kernel as a 3-D one of one temporal tap.
            let up = x
                .reshape((b, c * t, h, w))?
                .upsample_nearest2d(2 * h, 2 * w)?
                .reshape((b, c, t, 2 * h, 2 * w))?;
            let weight = self.conv.weight().unsqueeze(2)?;
            return cpu::conv3d(&up, &weight, bias, padding, 1);
        }
        let frames = x.permute((0, 2, 1, 3, 4))?.reshape((b * t, c, h, w))?;
        let up = frames.upsample_nearest2d(2 * h, 2 * w)?;
        // As `Conv2d::forward`, with the columns bounded.
        let y = conv2d_in_bands(&up, self.conv.weight(), padding, self.column_bytes)?;
        let (_, c_out, ho, wo) = y.dims4()?;
        let y = y.broadcast_add(&bias.reshape((1, c_out, 1, 1))?)?;
        y.reshape((b, t, c_out, ho, wo))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()
    }
}

#[derive(Debug, Clone)]
struct UpBlock {
    resnets: Vec<ResidualBlock>,
    upsampler: Option<Upsampler>,
}

impl UpBlock {
    fn forward(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        let mut x = x.clone();
        for resnet in &self.resnets {
            x = resnet.forward(&x, cache)?;
        }
        match &self.upsampler {
            Some(up) => up.forward(&x, cache),
            None => Ok(x),
        }
    }
}

/// The config's `latents_mean` and `latents_std` as f32 [1, z, 1, 1, 1] tensors.
pub(super) fn latent_stats(cfg: &VaeConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let stats = |v: &[f64]| {
        Tensor::from_vec(
            v.iter().map(|x| *x as f32).collect::<Vec<f32>>(),
            (1, cfg.z_dim, 1, 1, 1),
            device,
        )
    };
    Ok((stats(&cfg.latents_mean)?, stats(&cfg.latents_std)?))
}

#[derive(Debug, Clone)]
pub struct WanVaeDecoder {
    post_quant_conv: CausalConv3d,
    conv_in: CausalConv3d,
    mid_resnets: [ResidualBlock; 2],
    mid_attention: FrameAttention,
    /// The up-blocks up to the one whose upsampler is the last to double the frames (none if
    /// no stage upsamples in time): they turn a latent frame into its video frames.
    up_blocks_in_time: Vec<UpBlock>,
    /// The up-blocks after it, which keep the frame count; with the head, they run on one
    /// video frame at a time.
    up_blocks_per_frame: Vec<UpBlock>,
    norm_out: ChannelRmsNorm,
    conv_out: CausalConv3d,
    latents_mean: Tensor,
    latents_std: Tensor,
}

impl WanVaeDecoder {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        let z = cfg.z_dim;
        let base = cfg.decoder_base_dim.unwrap_or(cfg.base_dim);
        // Channels per stage, widest first.
        let mut dims: Vec<usize> = vec![base * cfg.dim_mult[cfg.dim_mult.len() - 1]];
        dims.extend(cfg.dim_mult.iter().rev().map(|m| base * m));
        let temporal_up: Vec<bool> = cfg.temperal_downsample.iter().rev().copied().collect();
        let d = vb.pp("decoder");
        let mut up_blocks = Vec::new();
        for i in 0..dims.len() - 1 {
            // After an upsampler halved them, each stage starts from half the channels.
            let c_in = if i > 0 { dims[i] / 2 } else { dims[i] };
            let c_out = dims[i + 1];
            let ub = d.pp(format!("up_blocks.{i}"));
            let resnets = (0..=cfg.num_res_blocks)
                .map(|j| {
                    ResidualBlock::new(
                        if j == 0 { c_in } else { c_out },
                        c_out,
                        ub.pp(format!("resnets.{j}")),
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let upsampler = if i != cfg.dim_mult.len() - 1 {
                Some(Upsampler::new(
                    c_out,
                    temporal_up[i],
                    ub.pp("upsamplers.0"),
                )?)
            } else {
                None
            };
            up_blocks.push(UpBlock { resnets, upsampler });
        }
        // Blocks from the one after the last temporal upsampler on keep the frame count.
        let per_frame_from = temporal_up.iter().rposition(|t| *t).map_or(0, |i| i + 1);
        let up_blocks_per_frame = up_blocks.split_off(per_frame_from);
        let out_dim = *dims.last().expect("stages");
        let (latents_mean, latents_std) = latent_stats(cfg, vb.device())?;
        Ok(WanVaeDecoder {
            post_quant_conv: CausalConv3d::new(z, z, (1, 1, 1), 0, vb.pp("post_quant_conv"))?,
            conv_in: CausalConv3d::new(z, dims[0], (3, 3, 3), 1, d.pp("conv_in"))?,
            mid_resnets: [
                ResidualBlock::new(dims[0], dims[0], d.pp("mid_block.resnets.0"))?,
                ResidualBlock::new(dims[0], dims[0], d.pp("mid_block.resnets.1"))?,
            ],
            mid_attention: FrameAttention::new(dims[0], d.pp("mid_block.attentions.0"))?,
            up_blocks_in_time: up_blocks,
            up_blocks_per_frame,
            norm_out: ChannelRmsNorm::new(out_dim, 3, d.pp("norm_out"))?,
            conv_out: CausalConv3d::new(out_dim, cfg.out_channels, (3, 3, 3), 1, d.pp("conv_out"))?,
            latents_mean,
            latents_std,
        })
    }

    /// The pipeline's de-normalisation of the denoised latents, `latents / (1/std) + mean`
    /// (written as the reference writes it: it rounds differently from `latents·std + mean`).
    pub fn denormalize(&self, latents: &Tensor) -> Result<Tensor> {
        let dtype = latents.dtype();
        let inv_std = self.latents_std.recip()?;
        latents
            .to_dtype(DType::F32)?
            .broadcast_div(&inv_std)?
            .broadcast_add(&self.latents_mean)?
            .to_dtype(dtype)
    }

    /// The 1x1x1 convolution applied to all latent frames before decoding.
    pub fn post_quant_conv(&self, z: &Tensor) -> Result<Tensor> {
        self.post_quant_conv.forward(z, &[])
    }

    /// Decodes de-normalised latents [b, z, f, h, w] to video in [-1, 1], one latent frame
    /// at a time; `on_frame` hears about each latent frame done (for progress and abort).
    pub fn decode(
        &self,
        z: &Tensor,
        mut on_frame: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<Tensor> {
        let x = self.post_quant_conv(z)?;
        let frames = x.dim(2)?;
        let mut cache = FrameCache::default();
        let mut video = Vec::new();
        for i in 0..frames {
            cache.start_chunk();
            self.decode_frame(&x.narrow(2, i, 1)?, &mut cache, &mut video)?;
            on_frame(i + 1, frames)?;
        }
        Tensor::cat(&video, 2)?.clamp(-1f32, 1f32)
    }

    /// Decodes one latent frame [b, z, 1, h, w], appending its video frames (one for the
    /// first latent frame, else the temporal scale) to `video`, one [b, 3, 1, H, W] each.
    ///
    /// The per-frame stages run once per video frame with the cache rewound to their first
    /// slot: a causal convolution over frames f0, f1, .. with history h is the convolution of
    /// f0 with history h, then of f1 with history (h's last frame, f0), and so on, which is
    /// what each slot holds after the previous frame ([`frames_to_keep`]).
    fn decode_frame(
        &self,
        x: &Tensor,
        cache: &mut FrameCache,
        video: &mut Vec<Tensor>,
    ) -> Result<()> {
        let x = self.upsample_in_time(x, cache)?;
        let first_per_frame_slot = cache.position();
        for f in 0..x.dim(2)? {
            cache.rewind_to(first_per_frame_slot);
            video.push(self.finish_frames(&x.narrow(2, f, 1)?, cache)?);
        }
        Ok(())
    }

    /// The stages up to the last temporal upsampler: one latent frame [b, z, 1, h, w] to its
    /// video frames, at that stage's channels and size.
    fn upsample_in_time(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        let mut x = self.conv_in.forward_cached(x, cache)?;
        x = self.mid_resnets[0].forward(&x, cache)?;
        x = self.mid_attention.forward(&x)?;
        x = self.mid_resnets[1].forward(&x, cache)?;
        for block in &self.up_blocks_in_time {
            x = block.forward(&x, cache)?;
        }
        Ok(x)
    }

    /// The stages after the last temporal upsampler, to RGB: they keep the frame count and
    /// treat frames independently but for the causal convolutions' history, so they may run
    /// on any number of consecutive frames at a time; the decoder gives them one.
    fn finish_frames(&self, x: &Tensor, cache: &mut FrameCache) -> Result<Tensor> {
        let mut x = x.clone();
        for block in &self.up_blocks_per_frame {
            x = block.forward(&x, cache)?;
        }
        let x = self.norm_out.forward(&x)?.silu()?;
        self.conv_out.forward_cached(&x, cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::torch_rng::TorchGenerator;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        TorchGenerator::manual_seed(seed)
            .randn_tensor(shape, &Device::Cpu)
            .unwrap()
    }

    fn conv(
        kernel: (usize, usize, usize),
        c_in: usize,
        c_out: usize,
    ) -> (CausalConv3d, Tensor, Tensor) {
        let w = random(&[c_out, c_in, kernel.0, kernel.1, kernel.2], 1);
        let b = random(&[c_out], 2);
        let vb = VarBuilder::from_tensors(
            HashMap::from([
                ("weight".to_string(), w.clone()),
                ("bias".to_string(), b.clone()),
            ]),
            DType::F32,
            &Device::Cpu,
        );
        (
            CausalConv3d::new(c_in, c_out, kernel, kernel.1 / 2, vb).unwrap(),
            w,
            b,
        )
    }

    /// The textbook 3-D convolution over `x` already padded in time, with `pad` zeros in
    /// height and width, temporal stride `stride`.
    fn direct(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize, stride: usize) -> Vec<f32> {
        let [bs, c, t, h, wd]: [usize; 5] = x.dims().try_into().unwrap();
        let [o, _, kt, kh, kw]: [usize; 5] = w.dims().try_into().unwrap();
        let xv = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let wv = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let bv = b.to_vec1::<f32>().unwrap();
        let t_out = (t - kt) / stride + 1;
        let mut out = Vec::new();
        for n in 0..bs {
            for (oc, bias) in bv.iter().enumerate().take(o) {
                for to in 0..t_out {
                    for y in 0..h {
                        for xx in 0..wd {
                            let mut acc = *bias as f64;
                            for ic in 0..c {
                                for i in 0..kt {
                                    for j in 0..kh {
                                        for k in 0..kw {
                                            let (yy, xs) = (y + j, xx + k);
                                            if yy < pad
                                                || xs < pad
                                                || yy - pad >= h
                                                || xs - pad >= wd
                                            {
                                                continue;
                                            }
                                            let xi = (((n * c + ic) * t + to * stride + i) * h
                                                + yy
                                                - pad)
                                                * wd
                                                + xs
                                                - pad;
                                            let wi = (((oc * c + ic) * kt + i) * kh + j) * kw + k;
                                            acc += xv[xi] as f64 * wv[wi] as f64;
                                        }
                                    }
                                }
                            }
                            out.push(acc as f32);
                        }
                    }
                }
            }
        }
        out
    }

    fn max_diff(a: &Tensor, b: &[f32]) -> f32 {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn causal_conv3d_equals_a_direct_3d_convolution() {
        let (conv, w, b) = conv((3, 3, 3), 2, 3);
        let x = random(&[1, 2, 5, 4, 6], 3);
        let y = conv.forward(&x, &[]).unwrap();
        assert_eq!(y.dims(), &[1, 3, 5, 4, 6]);
        // Causal: two zero frames in front, none behind.
        let expected = direct(&x.pad_with_zeros(2, 2, 0).unwrap(), &w, &b, 1, 1);
        assert!(max_diff(&y, &expected) < 1e-5);
    }

    #[test]
    fn history_continues_the_convolution_across_calls() {
        let (conv, _, _) = conv((3, 3, 3), 2, 2);
        let x = random(&[1, 2, 6, 3, 3], 4);
        let whole = conv.forward(&x, &[]).unwrap();
        let frame = |i| x.narrow(2, i, 1).unwrap();
        // First 4 frames, then 2 more with earlier input frames as history, of which the last
        // two count: in one tensor, or one tensor a frame.
        let first = conv.forward(&x.narrow(2, 0, 4).unwrap(), &[]).unwrap();
        let expected = whole.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for history in [
            vec![x.narrow(2, 2, 2).unwrap()],
            vec![frame(1), frame(2), frame(3)],
        ] {
            let second = conv.forward(&x.narrow(2, 4, 2).unwrap(), &history);
            let joined = Tensor::cat(&[&first, &second.unwrap()], 2).unwrap();
            assert!(max_diff(&joined, &expected) < 1e-6);
        }
        // One frame of history (after a one-frame call) is topped up with one zero frame.
        let short = conv.forward(&frame(1), &[frame(0)]).unwrap();
        let expected = whole
            .narrow(2, 1, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(max_diff(&short, &expected) < 1e-6);
    }

    #[test]
    fn strided_temporal_convolution_equals_a_direct_one() {
        let w = random(&[2, 2, 3, 1, 1], 5);
        let b = random(&[2], 6);
        let vb = VarBuilder::from_tensors(
            HashMap::from([
                ("weight".to_string(), w.clone()),
                ("bias".to_string(), b.clone()),
            ]),
            DType::F32,
            &Device::Cpu,
        );
        let conv = CausalConv3d::strided_in_time(2, 2, 3, 2, vb).unwrap();
        let x = random(&[1, 2, 7, 2, 3], 7);
        let y = conv.forward(&x, &[]).unwrap();
        assert_eq!(y.dim(2).unwrap(), 3);
        assert!(max_diff(&y, &direct(&x, &w, &b, 0, 2)) < 1e-5);
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The values of kept frames, oldest first, each one frame.
    fn kept_values(kept: &[Tensor]) -> Vec<f32> {
        kept.iter()
            .flat_map(|frame| {
                assert_eq!(frame.dim(2).unwrap(), 1);
                values(frame)
            })
            .collect()
    }

    #[test]
    fn the_frame_cache_keeps_the_last_two_input_frames() {
        let x = random(&[1, 1, 3, 1, 1], 8);
        let frame = |i| x.narrow(2, i, 1).unwrap();
        let last_two = values(&x.narrow(2, 1, 2).unwrap());
        let kept = frames_to_keep(&x, &Slot::Empty).unwrap();
        assert_eq!(kept_values(&kept), last_two);
        // One frame: the previous input's last frame in front, if any.
        let previous = Slot::Frames(vec![frame(0), frame(1)]);
        let kept = frames_to_keep(&frame(2), &previous).unwrap();
        assert_eq!(kept_values(&kept), last_two);
        let Slot::Frames(prev) = &previous else {
            unreachable!()
        };
        assert_eq!(
            storage_of(&kept[0]),
            storage_of(&prev[1]),
            "shared, not copied"
        );
        let kept = frames_to_keep(&frame(0), &Slot::Empty).unwrap();
        assert_eq!(kept_values(&kept), values(&frame(0)));
    }

    /// The storage behind `t` (a CPU tensor), which a view shares with its source: its
    /// elements and where they are.
    fn storage_of(t: &Tensor) -> (usize, *const f32) {
        match &*t.storage_and_layout().0 {
            candle_core::Storage::Cpu(s) => {
                let data = s.as_slice::<f32>().unwrap();
                (data.len(), data.as_ptr())
            }
            _ => unreachable!("CPU tensors only"),
        }
    }

    #[test]
    fn the_frame_cache_holds_copies_of_only_the_kept_frames() {
        // Four frames of two channels: the last two are not contiguous in memory.
        let x = random(&[1, 2, 4, 3, 5], 9);
        for frame in frames_to_keep(&x, &Slot::Empty).unwrap() {
            assert_eq!(storage_of(&frame).0, 2 * 3 * 5);
        }
        // One channel: each frame lies contiguously, and is copied all the same.
        let x = random(&[1, 1, 4, 3, 5], 10);
        let kept = frames_to_keep(&x, &Slot::Empty).unwrap();
        for frame in &kept {
            assert_eq!(storage_of(frame).0, 3 * 5);
        }
        assert_eq!(kept_values(&kept), values(&x.narrow(2, 2, 2).unwrap()));
        // A one-frame view of a longer clip (the decoder's input frame) is not kept whole.
        let clip = random(&[1, 2, 5, 3, 5], 11);
        let kept = frames_to_keep(&clip.narrow(2, 1, 1).unwrap(), &Slot::Empty).unwrap();
        assert_eq!(storage_of(&kept[0]).0, 2 * 3 * 5);
    }

    fn in_dtype(t: &Tensor, dtype: DType) -> Tensor {
        t.to_dtype(dtype).unwrap()
    }

    fn values_f64(t: &Tensor) -> Vec<f64> {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    }

    #[test]
    fn banded_conv2d_equals_one_conv2d_and_a_direct_one() {
        // (input, kernel, padding): 3 x 3 padded, unpadded and non-square, 1 x 1, and a
        // padding of 2 (bands made of padding rows only).
        let cases: [([usize; 4], [usize; 4], usize); 4] = [
            ([3, 2, 7, 5], [4, 2, 3, 3], 1),
            ([2, 3, 6, 4], [2, 3, 3, 2], 0),
            ([2, 3, 5, 4], [2, 3, 1, 1], 0),
            ([1, 2, 4, 3], [3, 2, 3, 3], 2),
        ];
        for (i, (xs, ks, pad)) in cases.into_iter().enumerate() {
            let (x, k) = (random(&xs, 20 + i as u64), random(&ks, 30 + i as u64));
            let w_out = xs[3] + 2 * pad + 1 - ks[3];
            // candle's own conv2d, as off the CPU kernels; in f64 and in f16 (its CPU matrix
            // product has no bf16).
            for dtype in [DType::F64, DType::F16] {
                let (xd, kd) = (in_dtype(&x, dtype), in_dtype(&k, dtype));
                let whole = xd.conv2d(&kd, pad, 1, 1, 1).unwrap();
                let row_bytes = xs[0] * w_out * ks[1] * ks[2] * ks[3] * dtype.size_in_bytes();
                // One row a band, two, three (a short last band), and all in one.
                for column_bytes in [1, 2 * row_bytes, 3 * row_bytes + 1, usize::MAX] {
                    let banded = conv2d_in_bands(&xd, &kd, pad, column_bytes).unwrap();
                    assert_eq!(banded.dims(), whole.dims());
                    assert_eq!(
                        values_f64(&banded),
                        values_f64(&whole),
                        "case {i}, {dtype:?}, {column_bytes} bytes"
                    );
                }
            }
            // And the sums are a convolution's.
            let x64 = in_dtype(&x, DType::F64);
            let banded = conv2d_in_bands(&x64, &in_dtype(&k, DType::F64), pad, 1).unwrap();
            let expected = direct_2d(&x, &k, pad);
            assert!(max_diff(&in_dtype(&banded, DType::F32), &expected) < 1e-5);
        }
    }

    /// The textbook 2-D convolution, stride 1, `pad` zeros around, no bias.
    fn direct_2d(x: &Tensor, k: &Tensor, pad: usize) -> Vec<f32> {
        let (n, c, h, w) = x.dims4().unwrap();
        let (o, _, kh, kw) = k.dims4().unwrap();
        let (x, k) = (values_f64(x), values_f64(k));
        let mut out = Vec::new();
        for (b, oc) in (0..n).flat_map(|b| (0..o).map(move |oc| (b, oc))) {
            for y in 0..h + 2 * pad + 1 - kh {
                for xo in 0..w + 2 * pad + 1 - kw {
                    let mut acc = 0.0;
                    for (ic, dy, dx) in (0..c).flat_map(|ic| {
                        (0..kh).flat_map(move |dy| (0..kw).map(move |dx| (ic, dy, dx)))
                    }) {
                        // Input row and column, where inside.
                        let (Some(sy), Some(sx)) =
                            ((y + dy).checked_sub(pad), (xo + dx).checked_sub(pad))
                        else {
                            continue;
                        };
                        if sy < h && sx < w {
                            acc += x[((b * c + ic) * h + sy) * w + sx]
                                * k[((oc * c + ic) * kh + dy) * kw + dx];
                        }
                    }
                    out.push(acc as f32);
                }
            }
        }
        out
    }

    #[test]
    fn causal_conv3d_off_the_f32_kernel_convolves_in_bands() {
        let (_, w, b) = conv((3, 3, 3), 2, 3);
        let vb = VarBuilder::from_tensors(
            HashMap::from([
                ("weight".to_string(), w.clone()),
                ("bias".to_string(), b.clone()),
            ]),
            DType::F64,
            &Device::Cpu,
        );
        let mut conv = CausalConv3d::new(2, 3, (3, 3, 3), 1, vb).unwrap();
        let x = random(&[1, 2, 5, 4, 6], 3);
        let x64 = in_dtype(&x, DType::F64);
        let whole = conv.forward(&x64, &[]).unwrap();
        conv.column_bytes = 1;
        let banded = conv.forward(&x64, &[]).unwrap();
        assert_eq!(values_f64(&banded), values_f64(&whole));
        let expected = direct(&x.pad_with_zeros(2, 2, 0).unwrap(), &w, &b, 1, 1);
        assert!(max_diff(&in_dtype(&banded, DType::F32), &expected) < 1e-5);
    }

    /// Weights drawn at random, the same for the same name: a decoder of any config without
    /// a checkpoint. Scaled by 1 / sqrt(fan-in) so that activations stay of order one and the
    /// clamped output is not all ±1.
    struct RandomWeights;

    impl candle_nn::var_builder::SimpleBackend for RandomWeights {
        fn get(
            &self,
            s: candle_core::Shape,
            name: &str,
            _: candle_nn::Init,
            dtype: DType,
            dev: &Device,
        ) -> Result<Tensor> {
            // FNV-1a of the name.
            let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            let dims = s.dims();
            let fan_in = dims.iter().skip(1).product::<usize>().max(1);
            let scale = if dims.len() == 1 {
                0.1
            } else {
                1.0 / (fan_in as f64).sqrt()
            };
            (TorchGenerator::manual_seed(seed).randn_tensor(dims, dev)? * scale)?.to_dtype(dtype)
        }

        fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
            candle_core::bail!("{name}: random weights need a shape")
        }

        fn contains_tensor(&self, _: &str) -> bool {
            true
        }
    }

    fn random_decoder(temperal_downsample: &[bool], num_res_blocks: usize) -> WanVaeDecoder {
        let z_dim = 4;
        let cfg = VaeConfig {
            base_dim: 4,
            decoder_base_dim: None,
            z_dim,
            dim_mult: vec![1, 2, 2, 2],
            num_res_blocks,
            attn_scales: vec![],
            temperal_downsample: temperal_downsample.to_vec(),
            dropout: 0.0,
            latents_mean: vec![0.0; z_dim],
            latents_std: vec![1.0; z_dim],
            is_residual: false,
            in_channels: 3,
            out_channels: 3,
            patch_size: None,
            scale_factor_temporal: None,
            scale_factor_spatial: None,
        };
        let vb = VarBuilder::from_backend(Box::new(RandomWeights), DType::F32, Device::Cpu);
        WanVaeDecoder::new(&cfg, vb).unwrap()
    }

    #[test]
    fn the_per_frame_stages_start_after_the_last_temporal_upsampler() {
        // Blocks are in decoding order, the config's downsampling flags reversed.
        for (temporal, in_time) in [
            ([false, true, true], 2),
            ([true, false, true], 3),
            ([false, false, true], 1),
            ([false, false, false], 0),
        ] {
            let vae = random_decoder(&temporal, 1);
            assert_eq!(vae.up_blocks_in_time.len(), in_time, "{temporal:?}");
            assert_eq!(vae.up_blocks_per_frame.len(), 4 - in_time, "{temporal:?}");
        }
    }

    /// The decoder before it ran its last stages frame by frame: each latent frame's video
    /// frames through them together.
    fn decode_latent_frames_whole(vae: &WanVaeDecoder, z: &Tensor) -> Tensor {
        let x = vae.post_quant_conv(z).unwrap();
        let mut cache = FrameCache::default();
        let mut outputs = Vec::new();
        for i in 0..x.dim(2).unwrap() {
            cache.start_chunk();
            let frames = vae
                .upsample_in_time(&x.narrow(2, i, 1).unwrap(), &mut cache)
                .unwrap();
            outputs.push(vae.finish_frames(&frames, &mut cache).unwrap());
        }
        Tensor::cat(&outputs, 2)
            .unwrap()
            .clamp(-1f32, 1f32)
            .unwrap()
    }

    #[test]
    fn decoding_frame_by_frame_equals_decoding_latent_frames_whole() {
        // Wan's layout, one with a spatial upsampling between the temporal ones, one with two
        // spatial ones after its only temporal one, and one with no temporal upsampling.
        for (temporal, scale) in [
            ([false, true, true], 4),
            ([true, false, true], 4),
            ([false, false, true], 2),
            ([false, false, false], 1),
        ] {
            let vae = random_decoder(&temporal, 2);
            let z = random(&[1, 4, 3, 3, 2], 50);
            let video = vae.decode(&z, |_, _| Ok(())).unwrap();
            assert_eq!(video.dims(), &[1, 3, 1 + 2 * scale, 24, 16], "{temporal:?}");
            let values = video.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let inside = values.iter().filter(|v| v.abs() < 1.0).count();
            assert!(inside > values.len() / 2, "{temporal:?}: mostly clamped");
            // Bit for bit: the same sums in the same order.
            let whole = decode_latent_frames_whole(&vae, &z);
            assert_eq!(
                values,
                whole.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "{temporal:?}"
            );
        }
    }

    #[test]
    fn upsampler_off_the_f32_kernel_convolves_in_bands() {
        let tensors = HashMap::from([
            ("resample.1.weight".to_string(), random(&[2, 4, 3, 3], 40)),
            ("resample.1.bias".to_string(), random(&[2], 41)),
        ]);
        let vb = |dtype| VarBuilder::from_tensors(tensors.clone(), dtype, &Device::Cpu);
        let on_f32_kernel = Upsampler::new(4, false, vb(DType::F32)).unwrap();
        let mut generic = Upsampler::new(4, false, vb(DType::F64)).unwrap();
        let x = random(&[1, 4, 2, 3, 5], 42);
        let mut cache = FrameCache::default();
        let want = on_f32_kernel.forward(&x, &mut cache).unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let x64 = in_dtype(&x, DType::F64);
        let whole = generic.forward(&x64, &mut cache).unwrap();
        generic.column_bytes = 1;
        let banded = generic.forward(&x64, &mut cache).unwrap();
        assert_eq!(banded.dims(), &[1, 2, 2, 6, 10]);
        assert_eq!(values_f64(&banded), values_f64(&whole));
        assert!(max_diff(&in_dtype(&banded, DType::F32), &want) < 1e-5);
    }
}
