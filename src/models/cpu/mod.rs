//! f32 kernels for the CPU where candle's generic CPU ops are slow on our shapes: a fused
//! attention, the tanh GELU, and 3-D convolutions as one matrix product. Each is a candle
//! custom op over contiguous or simply strided f32 storage, parallel over the rayon pool that
//! candle's own ops use (`RAYON_NUM_THREADS`). Work is split in pieces whose size never
//! depends on the thread count, so results are the same with any number of threads.
//!
//! Callers check [`is_cpu_f32`] and keep candle's ops for other devices and dtypes.

mod activation;
mod attention;
mod conv;
mod math;

pub use activation::{gelu_tanh, gelu_tanh_mul};
pub use attention::attention;
pub use conv::{conv3d, conv3d_in_parts};

use candle_core::{CpuStorage, Layout, Result, Tensor};

/// Whether every tensor is f32 on the CPU, where these kernels run.
pub fn is_cpu_f32(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32)
}

/// The f32 data of a storage, whole (index it through the layout).
fn f32_data<'a>(storage: &'a CpuStorage, what: &str) -> Result<&'a [f32]> {
    match storage {
        CpuStorage::F32(data) => Ok(data),
        _ => candle_core::bail!("{what}: f32 storage expected"),
    }
}

/// The f32 elements of a contiguous tensor's storage.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = f32_data(storage, what)?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: contiguous input expected"),
    }
}

/// A pointer that parallel tasks may share, each writing a part no other task touches.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);

// SAFETY: the kernels hand the pointer to tasks that write disjoint elements, and read the
// buffer only after the parallel loop has joined.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The element `offset` places further on.
    ///
    /// # Safety
    /// `offset` must stay inside the buffer the pointer came from.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}
