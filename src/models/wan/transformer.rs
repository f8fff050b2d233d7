//! `WanTransformer3DModel`: the diffusion transformer of Wan2.1.
//!
//! Latents [batch, channels, frames, height, width] are cut into patches (one token each),
//! modulated by the timestep (a 6-way shift/scale/gate per block), attend to themselves with
//! 3-D rotary position embeddings and q/k RMS norm, attend to the text embeddings, and pass a
//! feed-forward; the head modulates once more and unpatchifies to the predicted flow.
//! Norms, modulation and residual adds run in f32 as in the reference. Checkpoint keys
//! (Diffusers names) are visible in each `new`.
//!
//! Besides the reference's one text per sample ([`TextConditioning::Shared`]), the text can
//! change along the clip ([`TextConditioning::PerFrame`]): every prompt gets its own
//! cross-attention and each token takes its frame's weighted sum of them (see
//! `docs/conditioning.md` for why the outputs are blended rather than the embeddings).

use super::config::TransformerConfig;
use crate::models::attention::attention;
use crate::models::cpu;
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

/// Layer norm over the last dimension in f32, optionally affine.
#[derive(Debug, Clone)]
struct Fp32LayerNorm {
    affine: Option<(Tensor, Tensor)>,
    eps: f64,
}

impl Fp32LayerNorm {
    fn plain(eps: f64) -> Self {
        Fp32LayerNorm { affine: None, eps }
    }

    fn affine(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get(dim, "weight")?.to_dtype(DType::F32)?;
        let bias = vb.get(dim, "bias")?.to_dtype(DType::F32)?;
        Ok(Fp32LayerNorm {
            affine: Some((weight, bias)),
            eps,
        })
    }

    /// Returns f32 whatever comes in.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?;
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        match &self.affine {
            Some((w, b)) => normed.broadcast_mul(w)?.broadcast_add(b),
            None => Ok(normed),
        }
    }
}

/// RMS norm over the whole projected width (all heads together), in f32.
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(RmsNorm {
            weight: vb.get(dim, "weight")?.to_dtype(DType::F32)?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let rms = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?.sqrt()?;
        x.broadcast_div(&rms)?
            .broadcast_mul(&self.weight)?
            .to_dtype(dtype)
    }
}

/// Cosines and sines of the 3-D rotary embedding, one row per token, half a head wide
/// (the rotation pairs adjacent channels).
#[derive(Debug, Clone)]
pub struct Rope {
    /// Per axis (frames, height, width): [max_len, part/2] tables in f64.
    axes: [(Vec<f64>, usize); 3],
    max_len: usize,
}

impl Rope {
    pub fn new(head_dim: usize, max_len: usize) -> Self {
        // Head width split: height and width get 2·(d/6) channels each, frames the rest.
        let h = 2 * (head_dim / 6);
        let t = head_dim - 2 * h;
        let table = |dim: usize| {
            let half = dim / 2;
            let mut angles = Vec::with_capacity(max_len * half);
            for pos in 0..max_len {
                for i in 0..half {
                    let inv_freq = 1.0 / 10000f64.powf((2 * i) as f64 / dim as f64);
                    angles.push(pos as f64 * inv_freq);
                }
            }
            (angles, half)
        };
        Rope {
            axes: [table(t), table(h), table(h)],
            max_len,
        }
    }

    /// (cos, sin), each [frames·height·width, head_dim/2] in f32, for a token grid.
    pub fn tables(&self, grid: (usize, usize, usize), device: &Device) -> Result<(Tensor, Tensor)> {
        let (f, h, w) = grid;
        if f.max(h).max(w) > self.max_len {
            candle_core::bail!(
                "the latent grid {grid:?} exceeds the model's rotary table ({} positions)",
                self.max_len
            );
        }
        let width: usize = self.axes.iter().map(|(_, half)| half).sum();
        let (mut cos, mut sin) = (
            Vec::with_capacity(f * h * w * width),
            Vec::with_capacity(f * h * w * width),
        );
        for fi in 0..f {
            for hi in 0..h {
                for wi in 0..w {
                    for ((angles, half), pos) in self.axes.iter().zip([fi, hi, wi]) {
                        for a in &angles[pos * half..(pos + 1) * half] {
                            // The reference takes cos/sin in f64, then rounds to f32.
                            cos.push(a.cos() as f32);
                            sin.push(a.sin() as f32);
                        }
                    }
                }
            }
        }
        let shape = (f * h * w, width);
        Ok((
            Tensor::from_vec(cos, shape, device)?,
            Tensor::from_vec(sin, shape, device)?,
        ))
    }
}

#[derive(Debug, Clone)]
struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    norm_q: RmsNorm,
    norm_k: RmsNorm,
    heads: usize,
}

impl Attention {
    fn new(dim: usize, heads: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Attention {
            to_q: linear(dim, dim, vb.pp("to_q"))?,
            to_k: linear(dim, dim, vb.pp("to_k"))?,
            to_v: linear(dim, dim, vb.pp("to_v"))?,
            to_out: linear(dim, dim, vb.pp("to_out.0"))?,
            norm_q: RmsNorm::new(dim, eps, vb.pp("norm_q"))?,
            norm_k: RmsNorm::new(dim, eps, vb.pp("norm_k"))?,
            heads,
        })
    }

    /// [batch, len, dim] -> [batch, heads, len, head_dim], a transposed view (`attention`
    /// reads it in place).
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, len, dim) = x.dims3()?;
        x.reshape((b, len, self.heads, dim / self.heads))?
            .transpose(1, 2)
    }

    /// Self-attention (`context` None, with rotary embeddings) or cross-attention.
    fn forward(
        &self,
        x: &Tensor,
        context: Option<&Tensor>,
        rope: Option<&(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let context = context.unwrap_or(x);
        let mut q = self.split_heads(&self.norm_q.forward(&self.to_q.forward(x)?)?)?;
        let mut k = self.split_heads(&self.norm_k.forward(&self.to_k.forward(context)?)?)?;
        let v = self.split_heads(&self.to_v.forward(context)?)?;
        if let Some((cos, sin)) = rope {
            let dtype = q.dtype();
            // Rotate pairs (2i, 2i+1) in f32, as the reference does for f32 models.
            let rotate = |t: &Tensor| -> Result<Tensor> {
                let t = t.to_dtype(DType::F32)?.contiguous()?;
                candle_nn::rotary_emb::rope_i(&t, cos, sin)?.to_dtype(dtype)
            };
            q = rotate(&q)?;
            k = rotate(&k)?;
        }
        let head_dim = q.dim(D::Minus1)?;
        let out = attention(&q, &k, &v, 1.0 / (head_dim as f64).sqrt())?;
        self.to_out.forward(&merge_heads(&out)?)
    }

    /// Cross-attention to several prompts at once: `contexts` [prompts·b, len, dim]
    /// (prompt-major: prompt p of batch element i is row p·b + i) and one weight per prompt
    /// and token (`token_weights[p]`: [b, tokens, 1] f32). Each prompt's attention is a softmax
    /// over its own keys; the outputs are blended before `to_out` (affine, and the weights sum
    /// to 1, so blending after it would give the same at more cost).
    fn forward_blended(
        &self,
        x: &Tensor,
        contexts: &Tensor,
        token_weights: &[Tensor],
    ) -> Result<Tensor> {
        let dtype = x.dtype();
        let b = x.dim(0)?;
        let q = self.split_heads(&self.norm_q.forward(&self.to_q.forward(x)?)?)?;
        let k = self.split_heads(&self.norm_k.forward(&self.to_k.forward(contexts)?)?)?;
        let v = self.split_heads(&self.to_v.forward(contexts)?)?;
        let scale = 1.0 / (q.dim(D::Minus1)? as f64).sqrt();
        let mut blended: Option<Tensor> = None;
        for (p, weight) in token_weights.iter().enumerate() {
            let (k, v) = (k.narrow(0, p * b, b)?, v.narrow(0, p * b, b)?);
            let out = merge_heads(&attention(&q, &k, &v, scale)?)?;
            // w·out summed in f32, first term alone: with weights (1, 0) the sum is 1·x + 0·y,
            // which is x exactly (for finite y), so a one-hot row reproduces that prompt.
            let term = out.to_dtype(DType::F32)?.broadcast_mul(weight)?;
            blended = Some(match blended {
                None => term,
                Some(sum) => (sum + term)?,
            });
        }
        let Some(blended) = blended else {
            candle_core::bail!("per-frame conditioning needs at least one prompt");
        };
        self.to_out.forward(&blended.to_dtype(dtype)?)
    }
}

/// [batch, heads, len, head_dim] -> [batch, len, heads·head_dim]
fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, heads, len, d) = x.dims4()?;
    x.transpose(1, 2)?.reshape((b, len, heads * d))
}

#[derive(Debug, Clone)]
struct FeedForward {
    proj_in: Linear,
    proj_out: Linear,
}

impl FeedForward {
    fn new(dim: usize, ffn_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(FeedForward {
            proj_in: linear(dim, ffn_dim, vb.pp("net.0.proj"))?,
            proj_out: linear(ffn_dim, dim, vb.pp("net.2"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // GELU, tanh approximation (Diffusers' "gelu-approximate").
        self.proj_out
            .forward(&cpu::gelu_tanh(&self.proj_in.forward(x)?)?)
    }
}

#[derive(Debug, Clone)]
struct Block {
    norm1: Fp32LayerNorm,
    attn1: Attention,
    norm2: Option<Fp32LayerNorm>,
    attn2: Attention,
    norm3: Fp32LayerNorm,
    ffn: FeedForward,
    /// [1, 6, dim]: shift, scale, gate for attention; shift, scale, gate for the FFN.
    scale_shift_table: Tensor,
}

impl Block {
    fn new(cfg: &TransformerConfig, vb: VarBuilder) -> Result<Self> {
        let dim = cfg.inner_dim();
        let heads = cfg.num_attention_heads;
        Ok(Block {
            norm1: Fp32LayerNorm::plain(cfg.eps),
            attn1: Attention::new(dim, heads, cfg.eps, vb.pp("attn1"))?,
            norm2: if cfg.cross_attn_norm {
                Some(Fp32LayerNorm::affine(dim, cfg.eps, vb.pp("norm2"))?)
            } else {
                None
            },
            attn2: Attention::new(dim, heads, cfg.eps, vb.pp("attn2"))?,
            norm3: Fp32LayerNorm::plain(cfg.eps),
            ffn: FeedForward::new(dim, cfg.ffn_dim, vb.pp("ffn"))?,
            scale_shift_table: vb
                .get((1, 6, dim), "scale_shift_table")?
                .to_dtype(DType::F32)?,
        })
    }

    /// `temb`: [batch, 6, dim] f32 (the projected timestep).
    fn forward(
        &self,
        x: &Tensor,
        context: &Context,
        temb: &Tensor,
        rope: &(Tensor, Tensor),
    ) -> Result<Tensor> {
        let dtype = x.dtype();
        let m = self.scale_shift_table.broadcast_add(temb)?; // [b, 6, dim] f32
        let part = |i: usize| m.narrow(1, i, 1); // [b, 1, dim]
        let (shift, scale, gate) = (part(0)?, part(1)?, part(2)?);
        let (c_shift, c_scale, c_gate) = (part(3)?, part(4)?, part(5)?);

        let modulated = self
            .norm1
            .forward(x)?
            .broadcast_mul(&(scale + 1.0)?)?
            .broadcast_add(&shift)?
            .to_dtype(dtype)?;
        let attn = self.attn1.forward(&modulated, None, Some(rope))?;
        let x = (x.to_dtype(DType::F32)? + attn.to_dtype(DType::F32)?.broadcast_mul(&gate)?)?
            .to_dtype(dtype)?;

        let normed = match &self.norm2 {
            Some(norm) => norm.forward(&x)?.to_dtype(dtype)?,
            None => x.clone(),
        };
        let cross = match context {
            Context::Shared(context) => self.attn2.forward(&normed, Some(context), None)?,
            Context::PerFrame {
                contexts,
                token_weights,
            } => self
                .attn2
                .forward_blended(&normed, contexts, token_weights)?,
        };
        let x = (&x + cross)?;

        let modulated = self
            .norm3
            .forward(&x)?
            .broadcast_mul(&(c_scale + 1.0)?)?
            .broadcast_add(&c_shift)?
            .to_dtype(dtype)?;
        let ff = self.ffn.forward(&modulated)?;
        (x.to_dtype(DType::F32)? + ff.to_dtype(DType::F32)?.broadcast_mul(&c_gate)?)?
            .to_dtype(dtype)
    }
}

/// Sinusoidal timestep features, cosines first (flip_sin_to_cos), in f32.
fn timestep_features(timesteps: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    let ln_period = -(10000f64.ln() as f32);
    let freqs: Vec<f32> = (0..half)
        .map(|i| ((ln_period * i as f32) / half as f32).exp())
        .collect();
    let freqs = Tensor::from_vec(freqs, (1, half), timesteps.device())?;
    let args = timesteps
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .broadcast_mul(&freqs)?;
    let features = Tensor::cat(&[args.cos()?, args.sin()?], 1)?;
    if dim % 2 == 1 {
        features.pad_with_zeros(1, 0, 1)
    } else {
        Ok(features)
    }
}

#[derive(Debug, Clone)]
struct ConditionEmbedder {
    time_linear_1: Linear,
    time_linear_2: Linear,
    time_proj: Linear,
    text_linear_1: Linear,
    text_linear_2: Linear,
    freq_dim: usize,
}

impl ConditionEmbedder {
    fn new(cfg: &TransformerConfig, vb: VarBuilder) -> Result<Self> {
        let dim = cfg.inner_dim();
        Ok(ConditionEmbedder {
            time_linear_1: linear(cfg.freq_dim, dim, vb.pp("time_embedder.linear_1"))?,
            time_linear_2: linear(dim, dim, vb.pp("time_embedder.linear_2"))?,
            time_proj: linear(dim, 6 * dim, vb.pp("time_proj"))?,
            text_linear_1: linear(cfg.text_dim, dim, vb.pp("text_embedder.linear_1"))?,
            text_linear_2: linear(dim, dim, vb.pp("text_embedder.linear_2"))?,
            freq_dim: cfg.freq_dim,
        })
    }

    /// (temb [b, dim], projected timestep [b, 6·dim])
    fn time(&self, timestep: &Tensor, dtype: DType) -> Result<(Tensor, Tensor)> {
        let features = timestep_features(timestep, self.freq_dim)?.to_dtype(dtype)?;
        let temb = self
            .time_linear_2
            .forward(&self.time_linear_1.forward(&features)?.silu()?)?;
        let projected = self.time_proj.forward(&temb.silu()?)?;
        Ok((temb, projected))
    }

    /// Text embeddings [n, len, text_dim] -> the context the blocks attend to [n, len, dim].
    fn text(&self, text: &Tensor) -> Result<Tensor> {
        self.text_linear_2
            .forward(&self.text_linear_1.forward(text)?.gelu()?)
    }
}

/// What the text conditions the video on, for a batch of `b` samples.
#[derive(Debug, Clone)]
pub enum TextConditioning {
    /// One text per sample, [b, len, text_dim]: the reference model's input.
    Shared(Tensor),
    /// Prompts blended per latent frame: `contexts` [b, prompts, len, text_dim] and `weights`
    /// [b, prompts, latent frames] (f32, each frame's weights summing to 1). Every prompt has
    /// its own cross-attention; a token takes its frame's weighted sum of their outputs.
    PerFrame { contexts: Tensor, weights: Tensor },
}

impl TextConditioning {
    /// The number of samples it conditions.
    pub fn batch(&self) -> Result<usize> {
        match self {
            TextConditioning::Shared(text) => text.dim(0),
            TextConditioning::PerFrame { contexts, .. } => contexts.dim(0),
        }
    }
}

/// The text side of the blocks, embedded once per forward.
enum Context {
    /// [b, len, dim]
    Shared(Tensor),
    /// `contexts` [prompts·b, len, dim], prompt-major; `token_weights[p]` [b, tokens, 1] f32.
    PerFrame {
        contexts: Tensor,
        token_weights: Vec<Tensor>,
    },
}

#[derive(Debug, Clone)]
pub struct WanTransformer {
    patch_embedding: Linear,
    condition_embedder: ConditionEmbedder,
    blocks: Vec<Block>,
    norm_out: Fp32LayerNorm,
    proj_out: Linear,
    /// [1, 2, dim]: shift, scale of the output head.
    scale_shift_table: Tensor,
    rope: Rope,
    config: TransformerConfig,
}

impl WanTransformer {
    pub fn new(cfg: &TransformerConfig, vb: VarBuilder) -> Result<Self> {
        let dim = cfg.inner_dim();
        let [pt, ph, pw] = cfg.patch_size;
        let patch = cfg.in_channels * pt * ph * pw;
        // The patch embedding is a Conv3d with stride = kernel: a linear map of each patch.
        let weight = vb
            .get((dim, cfg.in_channels, pt, ph, pw), "patch_embedding.weight")?
            .reshape((dim, patch))?;
        let bias = vb.get(dim, "patch_embedding.bias")?;
        let blocks = (0..cfg.num_layers)
            .map(|i| Block::new(cfg, vb.pp(format!("blocks.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(WanTransformer {
            patch_embedding: Linear::new(weight, Some(bias)),
            condition_embedder: ConditionEmbedder::new(cfg, vb.pp("condition_embedder"))?,
            blocks,
            norm_out: Fp32LayerNorm::plain(cfg.eps),
            proj_out: linear(dim, cfg.out_channels() * pt * ph * pw, vb.pp("proj_out"))?,
            scale_shift_table: vb
                .get((1, 2, dim), "scale_shift_table")?
                .to_dtype(DType::F32)?,
            rope: Rope::new(cfg.attention_head_dim, cfg.rope_max_seq_len),
            config: cfg.clone(),
        })
    }

    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    /// The predicted flow for `latents` [b, c, f, h, w] at `timestep` [b], conditioned on
    /// `text` [b, len, text_dim].
    pub fn forward(&self, latents: &Tensor, timestep: &Tensor, text: &Tensor) -> Result<Tensor> {
        self.forward_conditioned(latents, timestep, &TextConditioning::Shared(text.clone()))
    }

    /// The predicted flow for `latents` [b, c, f, h, w] at `timestep` [b], conditioned on a
    /// shared or a per-frame text.
    pub fn forward_conditioned(
        &self,
        latents: &Tensor,
        timestep: &Tensor,
        text: &TextConditioning,
    ) -> Result<Tensor> {
        let (b, _, f, h, w) = latents.dims5()?;
        let (x, temb) = self.run_blocks(latents, timestep, text, self.blocks.len())?;
        let dtype = x.dtype();
        let m = self
            .scale_shift_table
            .broadcast_add(&temb.to_dtype(DType::F32)?.unsqueeze(1)?)?;
        let (shift, scale) = (m.narrow(1, 0, 1)?, m.narrow(1, 1, 1)?);
        let x = self
            .norm_out
            .forward(&x)?
            .broadcast_mul(&(scale + 1.0)?)?
            .broadcast_add(&shift)?
            .to_dtype(dtype)?;
        let x = self.proj_out.forward(&x)?;

        // Unpatchify: [b, F, H, W, pt, ph, pw, c] -> [b, c, F, pt, H, ph, W, pw].
        let [pt, ph, pw] = self.config.patch_size;
        let out_c = self.config.out_channels();
        x.reshape(vec![b, f / pt, h / ph, w / pw, pt, ph, pw, out_c])?
            .permute(vec![0, 7, 1, 4, 2, 5, 3, 6])?
            .reshape((b, out_c, f, h, w))
    }

    /// The hidden states [b, tokens, dim] after the first `blocks` blocks (tokens in frame,
    /// row, column order): an inspection point for tests of the conditioning, which reaches
    /// the tokens of a frame only through their own cross-attention in the first block.
    pub fn hidden_states(
        &self,
        latents: &Tensor,
        timestep: &Tensor,
        text: &TextConditioning,
        blocks: usize,
    ) -> Result<Tensor> {
        if blocks > self.blocks.len() {
            candle_core::bail!("the model has {} blocks, not {blocks}", self.blocks.len());
        }
        Ok(self.run_blocks(latents, timestep, text, blocks)?.0)
    }

    /// Patchifies, embeds time and text, and runs the first `blocks` blocks: (hidden states
    /// [b, tokens, dim], temb [b, dim]).
    fn run_blocks(
        &self,
        latents: &Tensor,
        timestep: &Tensor,
        text: &TextConditioning,
        blocks: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (b, c, f, h, w) = latents.dims5()?;
        let [pt, ph, pw] = self.config.patch_size;
        if f % pt != 0 || h % ph != 0 || w % pw != 0 {
            candle_core::bail!(
                "latents {:?} do not divide into patches {:?}",
                latents.dims(),
                self.config.patch_size
            );
        }
        let grid = (f / pt, h / ph, w / pw);
        let tokens = grid.0 * grid.1 * grid.2;
        let dtype = self.patch_embedding.weight().dtype();

        // Patchify: [b, c, F, pt, H, ph, W, pw] -> [b, F, H, W, c, pt, ph, pw] -> tokens.
        let patches = latents
            .to_dtype(dtype)?
            .reshape(vec![b, c, grid.0, pt, grid.1, ph, grid.2, pw])?
            .permute(vec![0, 2, 4, 6, 1, 3, 5, 7])?
            .reshape((b, tokens, c * pt * ph * pw))?;
        let mut x = self.patch_embedding.forward(&patches)?;

        let (temb, projected) = self.condition_embedder.time(timestep, dtype)?;
        let context = self.embed_text(text, b, grid, dtype)?;
        let dim = self.config.inner_dim();
        let projected = projected.to_dtype(DType::F32)?.reshape((b, 6, dim))?;
        let rope = self.rope.tables(grid, latents.device())?;
        for block in &self.blocks[..blocks] {
            x = block.forward(&x, &context, &projected, &rope)?;
        }
        Ok((x, temb))
    }

    /// The text embedder on every prompt, and per-frame weights spread over the tokens.
    fn embed_text(
        &self,
        text: &TextConditioning,
        batch: usize,
        grid: (usize, usize, usize),
        dtype: DType,
    ) -> Result<Context> {
        let text_dim = self.config.text_dim;
        match text {
            TextConditioning::Shared(text) => {
                let (b, _, d) = text.dims3()?;
                if b != batch || d != text_dim {
                    candle_core::bail!(
                        "text embeddings {:?} do not fit a batch of {batch} and text width {text_dim}",
                        text.dims()
                    );
                }
                Ok(Context::Shared(
                    self.condition_embedder.text(&text.to_dtype(dtype)?)?,
                ))
            }
            TextConditioning::PerFrame { contexts, weights } => {
                let (b, prompts, len, d) = contexts.dims4()?;
                let (wb, wp, frames) = weights.dims3()?;
                if b != batch || d != text_dim || (wb, wp) != (b, prompts) || prompts == 0 {
                    candle_core::bail!(
                        "per-frame text {:?} with weights {:?} does not fit a batch of {batch}, text width {text_dim}",
                        contexts.dims(),
                        weights.dims()
                    );
                }
                // Weights are per latent frame; a token covers `pt` of them.
                if self.config.patch_size[0] != 1 || frames != grid.0 {
                    candle_core::bail!(
                        "per-frame weights for {frames} latent frames do not fit {} token frames of temporal patch {}",
                        grid.0,
                        self.config.patch_size[0]
                    );
                }
                let contexts = contexts
                    .transpose(0, 1)?
                    .reshape((prompts * b, len, d))?
                    .to_dtype(dtype)?;
                let per_frame = grid.1 * grid.2;
                let weights = weights.to_dtype(DType::F32)?;
                let token_weights = (0..prompts)
                    .map(|p| {
                        weights
                            .narrow(1, p, 1)?
                            .reshape((b, frames, 1))?
                            .broadcast_as((b, frames, per_frame))?
                            .reshape((b, frames * per_frame, 1))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Context::PerFrame {
                    contexts: self.condition_embedder.text(&contexts)?,
                    token_weights,
                })
            }
        }
    }
}
