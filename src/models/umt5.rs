//! The umT5 text encoder Wan uses (`UMT5EncoderModel` in Transformers).
//!
//! T5's encoder with three differences that matter: every layer has its own relative
//! position bias (T5 has one, in the first layer), attention scores are not scaled by
//! 1/sqrt(d), and the feed-forward is gated GELU (tanh form). Norms are RMS norms without
//! bias, computed in f32. The weights may be kept narrower than the compute dtype (bf16 files
//! read for f32, `Weights::as_stored`): each layer widens them where it uses them, which
//! computes the same numbers in half the memory. Checkpoint keys:
//!
//! ```text
//! shared.weight                                            token embeddings (tied)
//! encoder.block.{i}.layer.0.layer_norm.weight
//! encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight
//! encoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight
//! encoder.block.{i}.layer.1.layer_norm.weight
//! encoder.block.{i}.layer.1.DenseReluDense.{wi_0,wi_1,wo}.weight
//! encoder.final_layer_norm.weight
//! ```

use crate::models::cpu;
use crate::models::diffusers::ModelFolder;
use candle_core::{DType, Device, Error, Module, Result, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub relative_attention_num_buckets: usize,
    pub relative_attention_max_distance: usize,
    pub layer_norm_epsilon: f64,
    pub feed_forward_proj: String,
    #[serde(default)]
    pub dense_act_fn: Option<String>,
    #[serde(default)]
    pub is_gated_act: Option<bool>,
    #[serde(default)]
    pub is_decoder: bool,
}

/// Config fields that do not change what the encoder computes (training, decoding, tokenizer
/// bookkeeping; `scalable_attention` is ignored by the Transformers reference too).
const HARMLESS: &[&str] = &[
    "architectures",
    "classifier_dropout",
    "decoder_start_token_id",
    "dropout_rate",
    "dtype",
    "eos_token_id",
    "initializer_factor",
    "is_encoder_decoder",
    "model_type",
    "num_decoder_layers",
    "output_past",
    "pad_token_id",
    "scalable_attention",
    "scale_decoder_outputs",
    "tie_word_embeddings",
    "tokenizer_class",
    "torch_dtype",
    "transformers_version",
    "use_cache",
];

impl Config {
    pub fn load(folder: &ModelFolder) -> Result<Config> {
        let config: Config = folder.config("text_encoder", HARMLESS)?;
        let gated_gelu = config.feed_forward_proj == "gated-gelu"
            && config
                .dense_act_fn
                .as_deref()
                .is_none_or(|a| a == "gelu_new")
            && config.is_gated_act != Some(false);
        if !gated_gelu || config.is_decoder {
            return Err(Error::msg(format!(
                "text_encoder/config.json: feed_forward_proj {:?} / is_decoder {} is not the umT5 encoder Wan uses (gated-gelu encoder)",
                config.feed_forward_proj, config.is_decoder
            )));
        }
        Ok(config)
    }
}

/// RMS norm as T5 does it: the mean square in f32, no mean subtraction, no bias.
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(RmsNorm {
            weight: vb.get(size, "weight")?,
            eps,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?;
        let variance = x32.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x32.broadcast_mul(&(variance + self.eps)?.sqrt()?.recip()?)?;
        normed
            .to_dtype(dtype)?
            .broadcast_mul(&self.weight.to_dtype(dtype)?)
    }
}

/// A projection without bias whose weight is widened to the input's dtype when they differ.
#[derive(Debug, Clone)]
struct Projection {
    /// [out, in]
    weight: Tensor,
}

impl Projection {
    fn new(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Projection {
            weight: vb.get((out_dim, in_dim), "weight")?,
        })
    }
}

impl Module for Projection {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Linear::new(self.weight.to_dtype(x.dtype())?, None).forward(x)
    }
}

/// An embedding table whose rows come out in `dtype` (the table may be stored narrower).
#[derive(Debug, Clone)]
struct Lookup {
    table: Embedding,
    dtype: DType,
}

impl Lookup {
    fn new(rows: usize, width: usize, vb: VarBuilder) -> Result<Self> {
        let dtype = vb.dtype();
        let table = vb.get((rows, width), "weight")?;
        Ok(Lookup {
            table: Embedding::new(table, width),
            dtype,
        })
    }
}

impl Module for Lookup {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.table.forward(ids)?.to_dtype(self.dtype)
    }
}

/// Which of the relative-position buckets each (query, key) distance falls in, as
/// Transformers computes it for a bidirectional encoder (same f32 operations, so bucket
/// edges agree).
fn relative_bucket(relative: i64, num_buckets: usize, max_distance: usize) -> u32 {
    let half = (num_buckets / 2) as i64;
    let mut bucket = if relative > 0 { half } else { 0 };
    let distance = relative.abs();
    let max_exact = half / 2;
    if distance < max_exact {
        return (bucket + distance) as u32;
    }
    let log_ratio = ((distance as f32) / (max_exact as f32)).ln()
        / ((max_distance as f64 / max_exact as f64).ln() as f32);
    let large = max_exact + (log_ratio * (half - max_exact) as f32) as i64;
    bucket += large.min(half - 1);
    bucket as u32
}

#[derive(Debug, Clone)]
struct SelfAttention {
    q: Projection,
    k: Projection,
    v: Projection,
    o: Projection,
    relative_attention_bias: Lookup,
    num_heads: usize,
    d_kv: usize,
    num_buckets: usize,
    max_distance: usize,
}

impl SelfAttention {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        Ok(SelfAttention {
            q: Projection::new(cfg.d_model, inner, vb.pp("q"))?,
            k: Projection::new(cfg.d_model, inner, vb.pp("k"))?,
            v: Projection::new(cfg.d_model, inner, vb.pp("v"))?,
            o: Projection::new(inner, cfg.d_model, vb.pp("o"))?,
            relative_attention_bias: Lookup::new(
                cfg.relative_attention_num_buckets,
                cfg.num_heads,
                vb.pp("relative_attention_bias"),
            )?,
            num_heads: cfg.num_heads,
            d_kv: cfg.d_kv,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
        })
    }

    /// The [1, heads, len, len] bias this layer adds to its attention scores.
    fn position_bias(&self, len: usize, device: &Device) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..len as i64)
            .flat_map(|q| (0..len as i64).map(move |k| (q, k)))
            .map(|(q, k)| relative_bucket(k - q, self.num_buckets, self.max_distance))
            .collect();
        let buckets = Tensor::from_vec(buckets, (len, len), device)?;
        self.relative_attention_bias
            .forward(&buckets)?
            .permute((2, 0, 1))?
            .unsqueeze(0)
    }

    /// `mask`: [batch, 1, 1, len] additive (0 for tokens, a large negative for padding).
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, len, _) = x.dims3()?;
        let heads = |t: Tensor| {
            t.reshape((b, len, self.num_heads, self.d_kv))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(self.q.forward(x)?)?;
        let k = heads(self.k.forward(x)?)?;
        let v = heads(self.v.forward(x)?)?;
        // No 1/sqrt(d) scaling in T5-family attention.
        let mut scores = q.matmul(&k.t()?)?.to_dtype(DType::F32)?;
        scores =
            scores.broadcast_add(&self.position_bias(len, x.device())?.to_dtype(DType::F32)?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        let out =
            weights
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, len, self.num_heads * self.d_kv))?;
        self.o.forward(&out)
    }
}

#[derive(Debug, Clone)]
struct GatedFeedForward {
    wi_0: Projection,
    wi_1: Projection,
    wo: Projection,
}

impl GatedFeedForward {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(GatedFeedForward {
            wi_0: Projection::new(cfg.d_model, cfg.d_ff, vb.pp("wi_0"))?,
            wi_1: Projection::new(cfg.d_model, cfg.d_ff, vb.pp("wi_1"))?,
            wo: Projection::new(cfg.d_ff, cfg.d_model, vb.pp("wo"))?,
        })
    }
}

impl Module for GatedFeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // gelu_new: the tanh approximation.
        let hidden = cpu::gelu_tanh_mul(&self.wi_0.forward(x)?, &self.wi_1.forward(x)?)?;
        self.wo.forward(&hidden)
    }
}

#[derive(Debug, Clone)]
struct Block {
    attention_norm: RmsNorm,
    attention: SelfAttention,
    ff_norm: RmsNorm,
    ff: GatedFeedForward,
}

impl Block {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let eps = cfg.layer_norm_epsilon;
        Ok(Block {
            attention_norm: RmsNorm::new(cfg.d_model, eps, vb.pp("layer.0.layer_norm"))?,
            attention: SelfAttention::new(cfg, vb.pp("layer.0.SelfAttention"))?,
            ff_norm: RmsNorm::new(cfg.d_model, eps, vb.pp("layer.1.layer_norm"))?,
            ff: GatedFeedForward::new(cfg, vb.pp("layer.1.DenseReluDense"))?,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let x = (x + self
            .attention
            .forward(&self.attention_norm.forward(x)?, mask)?)?;
        &x + self.ff.forward(&self.ff_norm.forward(&x)?)?
    }
}

/// The encoder: token ids in, one embedding per token out.
#[derive(Debug, Clone)]
pub struct Umt5Encoder {
    shared: Lookup,
    blocks: Vec<Block>,
    final_norm: RmsNorm,
}

impl Umt5Encoder {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        // Tied embeddings: checkpoints store `shared.weight`; some also `encoder.embed_tokens`.
        let shared = if vb.contains_tensor("shared.weight") {
            Lookup::new(cfg.vocab_size, cfg.d_model, vb.pp("shared"))?
        } else {
            Lookup::new(cfg.vocab_size, cfg.d_model, vb.pp("encoder.embed_tokens"))?
        };
        let blocks = (0..cfg.num_layers)
            .map(|i| Block::new(cfg, vb.pp(format!("encoder.block.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = RmsNorm::new(
            cfg.d_model,
            cfg.layer_norm_epsilon,
            vb.pp("encoder.final_layer_norm"),
        )?;
        Ok(Umt5Encoder {
            shared,
            blocks,
            final_norm,
        })
    }

    /// `input_ids`: [batch, len] (u32 or i64); `attention_mask`: [batch, len] of 1 for tokens
    /// and 0 for padding, or `None` when every position is a token.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let mut x = self.shared.forward(input_ids)?;
        let mask = match attention_mask {
            Some(m) => {
                let (b, len) = m.dims2()?;
                // 0 where attended, the most negative f32 where not (as Transformers adds).
                let m = m.to_dtype(DType::F32)?;
                let additive = ((1.0 - m)? * f64::from(f32::MIN))?;
                Some(additive.reshape((b, 1, 1, len))?)
            }
            None => None,
        };
        for block in &self.blocks {
            x = block.forward(&x, mask.as_ref())?;
        }
        self.final_norm.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::relative_bucket;

    #[test]
    fn buckets_are_exact_near_and_logarithmic_far() {
        // 32 buckets, bidirectional: 16 per direction, 8 exact distances each.
        assert_eq!(relative_bucket(0, 32, 128), 0);
        assert_eq!(relative_bucket(-7, 32, 128), 7);
        assert_eq!(relative_bucket(7, 32, 128), 23);
        assert_eq!(relative_bucket(-8, 32, 128), 8);
        assert_eq!(relative_bucket(-1000, 32, 128), 15);
        assert_eq!(relative_bucket(1000, 32, 128), 31);
        // Monotone in distance.
        let mut last = 0;
        for d in 0..200 {
            let b = relative_bucket(-d, 32, 128);
            assert!(b >= last);
            last = b;
        }
    }
}
