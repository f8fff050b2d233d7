//! Scaled dot-product attention, written once for every model.
//!
//! Memory grows linearly with the number of queries: the score matrix never exists whole.
//! On the CPU in f32 a fused kernel ([`crate::models::cpu::attention`]) computes each block
//! of queries' scores, softmax and output in one go; elsewhere queries are processed in
//! blocks of candle ops, whose score matrix is bounded by [`query_block`].

use crate::models::cpu;
use candle_core::{DType, Result, Tensor, D};

/// Most queries per block of the candle-ops path.
const MAX_QUERY_BLOCK: usize = 1024;
/// Fewest queries per block: below this the products get too thin to keep a GPU busy.
const MIN_QUERY_BLOCK: usize = 64;
/// Bound on one block's f32 scores (batch × heads × block × keys × 4 bytes). Two such
/// blocks and a copy in the input dtype are alive at once (scores, softmax, its cast): at
/// Wan2.1's 32,760 tokens per sample, 1024 queries would hold 3.2 GB per block, 8 GB in all.
const SCORE_BYTES: usize = 1 << 30;

/// Queries per block for `batch × heads` score rows over `keys`: the most, in multiples of
/// [`MIN_QUERY_BLOCK`] up to [`MAX_QUERY_BLOCK`], whose f32 scores stay under
/// [`SCORE_BYTES`]. It depends on shapes only, so a clip is computed in the same blocks
/// whatever memory is free (the engine's memory plan uses it too).
pub fn query_block(batch: usize, heads: usize, keys: usize) -> usize {
    let row_bytes = (batch * heads * keys * 4).max(1);
    let fitting = SCORE_BYTES / row_bytes / MIN_QUERY_BLOCK * MIN_QUERY_BLOCK;
    fitting.clamp(MIN_QUERY_BLOCK, MAX_QUERY_BLOCK)
}

/// `softmax(q kᵀ · scale) v` for `q`: [batch, heads, queries, dim] and `k`, `v`:
/// [batch, heads, keys, dim]. Scores and softmax in f32 whatever the input dtype.
///
/// The inputs may be transposed views (a [batch, len, heads, dim] projection with heads and
/// len swapped); on the CPU they are read in place, and the result is itself such a view, so
/// that merging the heads back is free.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    if cpu::is_cpu_f32(&[q, k, v]) {
        return cpu::attention(q, k, v, scale);
    }
    let (batch, heads, _, _) = q.dims4()?;
    in_blocks(q, k, v, scale, query_block(batch, heads, k.dim(2)?))
}

/// The candle-ops path, `block` queries at a time.
fn in_blocks(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, block: usize) -> Result<Tensor> {
    let queries = q.dim(2)?;
    let kt = k.transpose(D::Minus2, D::Minus1)?.contiguous()?;
    let v = v.contiguous()?;
    let mut outputs = Vec::with_capacity(queries.div_ceil(block));
    for start in (0..queries).step_by(block) {
        let len = block.min(queries - start);
        let q_block = q.narrow(2, start, len)?.contiguous()?;
        let scores = (q_block.matmul(&kt)?.to_dtype(DType::F32)? * scale)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        outputs.push(weights.matmul(&v)?);
    }
    Tensor::cat(&outputs, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn blocks_shrink_to_keep_the_scores_bounded() {
        // Short sequences: the largest block.
        assert_eq!(query_block(2, 12, 1920), MAX_QUERY_BLOCK);
        // Wan2.1 1.3B at 480 x 832 x 81, guided: 2 × 12 rows of 32,760 keys, 3.1 MB per
        // query row: 320 queries, 1.0 GB of scores.
        let block = query_block(2, 12, 32_760);
        assert_eq!(block, 320);
        assert!(2 * 12 * block * 32_760 * 4 <= SCORE_BYTES);
        // Never thinner than the minimum, even past the bound.
        assert_eq!(query_block(2, 40, 1_000_000), MIN_QUERY_BLOCK);
    }

    #[test]
    fn the_blocked_path_equals_one_softmax_over_all_queries() {
        // f64 takes the candle-ops path on the CPU; blocks of 64 make 150 queries three
        // blocks, the last one partial.
        let device = Device::Cpu;
        let (b, h, n, keys, d) = (2, 3, 150, 70, 8);
        let q = Tensor::randn(0f64, 1.0, (b, h, n, d), &device).unwrap();
        let k = Tensor::randn(0f64, 1.0, (b, h, keys, d), &device).unwrap();
        let v = Tensor::randn(0f64, 1.0, (b, h, keys, d), &device).unwrap();
        let whole = in_blocks(&q, &k, &v, 0.5, n).unwrap();
        let blocked = in_blocks(&q, &k, &v, 0.5, 64).unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * 0.5).unwrap();
        let naive = candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32).unwrap())
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .matmul(&v)
            .unwrap();
        let max_diff = |a: &Tensor, b: &Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        // Each query row's scores, softmax and sum are the same operations in any block.
        assert_eq!(max_diff(&whole, &blocked), 0.0);
        assert_eq!(max_diff(&whole, &naive), 0.0);
        assert_eq!(attention(&q, &k, &v, 0.5).unwrap().dims(), &[b, h, n, d]);
    }
}
