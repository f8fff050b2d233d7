//! Scaled dot-product attention, written once for every model.
//!
//! Memory grows linearly with the number of queries: the score matrix never exists whole.
//! On the CPU in f32 a fused kernel ([`crate::models::cpu::attention`]) computes each block
//! of queries' scores, softmax and output in one go; elsewhere queries are processed in
//! blocks of candle ops, whose score matrix is at most `block x keys` per head.

use crate::models::cpu;
use candle_core::{DType, Result, Tensor, D};

/// Queries per block of the candle-ops path: bounds its score matrix at
/// `QUERY_BLOCK x keys` per head.
const QUERY_BLOCK: usize = 1024;

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
    let queries = q.dim(2)?;
    let kt = k.transpose(D::Minus2, D::Minus1)?.contiguous()?;
    let v = v.contiguous()?;
    let mut outputs = Vec::with_capacity(queries.div_ceil(QUERY_BLOCK));
    for start in (0..queries).step_by(QUERY_BLOCK) {
        let len = QUERY_BLOCK.min(queries - start);
        let q_block = q.narrow(2, start, len)?.contiguous()?;
        let scores = (q_block.matmul(&kt)?.to_dtype(DType::F32)? * scale)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        outputs.push(weights.matmul(&v)?);
    }
    Tensor::cat(&outputs, 2)
}
