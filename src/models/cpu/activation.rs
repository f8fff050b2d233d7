//! The tanh-approximated GELU in one vectorised pass (candle's `gelu` calls libm's `tanhf`
//! element by element), alone and gated (`gelu(gate) · up`, T5's feed-forward).

use super::contiguous_f32;
use super::math::{gelu_tanh_mul_slice, gelu_tanh_slice};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel piece.
const CHUNK: usize = 16 * 1024;

/// GELU, tanh approximation (`gelu_new`, PyTorch's `approximate="tanh"`); candle's `gelu`
/// off the CPU or for other dtypes.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if !super::is_cpu_f32(&[x]) {
        return x.gelu();
    }
    x.contiguous()?.apply_op1_no_bwd(&GeluTanh)
}

/// `gelu_tanh(gate) · up` in one pass; both of the same shape.
pub fn gelu_tanh_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if !super::is_cpu_f32(&[gate, up]) || gate.shape() != up.shape() {
        return gate.gelu()? * up;
    }
    gate.contiguous()?
        .apply_op2_no_bwd(&up.contiguous()?, &GeluTanhMul)
}

struct GeluTanh;

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "genclip-gelu-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(storage, layout, "gelu")?;
        let mut out = vec![0f32; xs.len()];
        out.par_chunks_mut(CHUNK)
            .zip(xs.par_chunks(CHUNK))
            .for_each(|(out, xs)| gelu_tanh_slice(xs, out));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

struct GeluTanhMul;

impl CustomOp2 for GeluTanhMul {
    fn name(&self) -> &'static str {
        "genclip-gelu-tanh-mul"
    }

    fn cpu_fwd(
        &self,
        gate_storage: &CpuStorage,
        gate_layout: &Layout,
        up_storage: &CpuStorage,
        up_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let gate = contiguous_f32(gate_storage, gate_layout, "gated gelu")?;
        let up = contiguous_f32(up_storage, up_layout, "gated gelu")?;
        let mut out = vec![0f32; gate.len()];
        out.par_chunks_mut(CHUNK)
            .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
            .for_each(|(out, (gate, up))| gelu_tanh_mul_slice(gate, up, out));
        Ok((CpuStorage::F32(out), gate_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn agrees_with_candles_gelu() {
        let xs: Vec<f32> = (-5000..5000).map(|i| i as f32 * 1.3e-3).collect();
        let x = Tensor::from_vec(xs, (100, 100), &Device::Cpu).unwrap();
        let diff = (gelu_tanh(&x).unwrap() - x.gelu().unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        let up = (x.sin().unwrap() + 2.0).unwrap();
        let gated = gelu_tanh_mul(&x, &up).unwrap();
        let want = (x.gelu().unwrap() * &up).unwrap();
        let diff = (gated - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 3e-6, "{diff}");
    }
}
