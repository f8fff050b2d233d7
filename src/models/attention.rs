//! Scaled dot-product attention, written once for every model.
//!
//! Queries are processed in blocks so that the score matrix of one call never exceeds
//! `block x keys` per head: memory grows linearly with the number of queries rather than
//! quadratically. (A fused kernel with an online softmax can replace this function later
//! without touching model code.)

use candle_core::{DType, Result, Tensor, D};

/// Queries per block: bounds the score matrix at `QUERY_BLOCK x keys` per head.
const QUERY_BLOCK: usize = 1024;

/// `softmax(q kᵀ · scale) v` for `q`: [batch, heads, queries, dim] and `k`, `v`:
/// [batch, heads, keys, dim]. Scores and softmax in f32 whatever the input dtype.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let queries = q.dim(2)?;
    let kt = k.transpose(D::Minus2, D::Minus1)?.contiguous()?;
    let mut outputs = Vec::with_capacity(queries.div_ceil(QUERY_BLOCK));
    for start in (0..queries).step_by(QUERY_BLOCK) {
        let len = QUERY_BLOCK.min(queries - start);
        let q_block = q.narrow(2, start, len)?.contiguous()?;
        let scores = (q_block.matmul(&kt)?.to_dtype(DType::F32)? * scale)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        outputs.push(weights.matmul(v)?);
    }
    Tensor::cat(&outputs, 2)
}
