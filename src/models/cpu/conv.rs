//! 3-D convolution (stride 1 in space, any stride in time) as one matrix product per tile of
//! output rows: `out[c_out, pixels] = weight[c_out, c_in·kt·kh·kw] · columns`, where the
//! columns (im2col) copy, for every input channel and tap, the shifted input rows that tap
//! sees, whole rows at a time. Kernels of 1 × 1 in space need no copy: each temporal tap
//! multiplies the input frame in place. candle's `conv2d` instead runs per temporal tap and
//! gathers its columns element by element.

use super::{contiguous_f32, SharedMut};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Size of one tile's columns: bounds the scratch memory per worker thread and leaves the
/// product long rows to work on.
const COLUMN_BYTES: usize = 4 * 1024 * 1024;

/// `x` [b, c_in, t, h, w] (f32, CPU) convolved with `weight` [c_out, c_in, kt, kh, kw] plus
/// `bias` [c_out]: zero padding of `padding` on each side of height and width, none in time
/// (put history or zeros in front first), `temporal_stride` between output frames. Gives
/// [b, c_out, (t − kt) / stride + 1, h + 2·padding − kh + 1, w + 2·padding − kw + 1].
pub fn conv3d(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    padding: usize,
    temporal_stride: usize,
) -> Result<Tensor> {
    let op = Conv3d {
        padding,
        temporal_stride,
        column_bytes: COLUMN_BYTES,
    };
    x.contiguous()?
        .apply_op3_no_bwd(&weight.contiguous()?, &bias.contiguous()?, &op)
}

struct Conv3d {
    padding: usize,
    temporal_stride: usize,
    /// Bound on one tile's columns.
    column_bytes: usize,
}

/// The sizes of one convolution.
#[derive(Clone, Copy)]
struct Geometry {
    c_in: usize,
    c_out: usize,
    t_in: usize,
    h: usize,
    w: usize,
    kt: usize,
    kh: usize,
    kw: usize,
    padding: usize,
    stride: usize,
    t_out: usize,
    h_out: usize,
    w_out: usize,
}

impl Geometry {
    /// Rows of the product: input channels × taps.
    fn depth(&self) -> usize {
        self.c_in * self.kt * self.kh * self.kw
    }

    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.padding == 0
    }
}

impl CustomOp3 for Conv3d {
    fn name(&self) -> &'static str {
        "genclip-conv3d"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        w_storage: &CpuStorage,
        w_layout: &Layout,
        b_storage: &CpuStorage,
        b_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(x_storage, x_layout, "conv3d input")?;
        let weight = contiguous_f32(w_storage, w_layout, "conv3d weight")?;
        let bias = contiguous_f32(b_storage, b_layout, "conv3d bias")?;
        let (batch, c_in, t_in, h, w) = x_layout.shape().dims5()?;
        let (c_out, wc_in, kt, kh, kw) = w_layout.shape().dims5()?;
        let (p, stride) = (self.padding, self.temporal_stride);
        if wc_in != c_in || bias.len() != c_out || stride == 0 {
            candle_core::bail!(
                "conv3d: input {:?}, weight {:?}, bias {:?} do not fit",
                x_layout.dims(),
                w_layout.dims(),
                b_layout.dims()
            );
        }
        if t_in < kt || h + 2 * p < kh || w + 2 * p < kw {
            candle_core::bail!(
                "conv3d: input {:?} is smaller than the kernel {:?}",
                x_layout.dims(),
                w_layout.dims()
            );
        }
        let g = Geometry {
            c_in,
            c_out,
            t_in,
            h,
            w,
            kt,
            kh,
            kw,
            padding: p,
            stride,
            t_out: (t_in - kt) / stride + 1,
            h_out: h + 2 * p - kh + 1,
            w_out: w + 2 * p - kw + 1,
        };

        let mut out = vec![0f32; batch * c_out * g.t_out * g.h_out * g.w_out];
        let shared = SharedMut(out.as_mut_ptr());
        let tile_rows = (self.column_bytes / (4 * g.depth() * g.w_out)).clamp(1, g.h_out);
        let tiles = g.h_out.div_ceil(tile_rows);
        let tasks = batch * g.t_out * tiles;
        // Few large tiles: let the product itself use the threads. (Each output element is
        // summed in the same order either way.)
        let threads = rayon::current_num_threads();
        let parallel_tiles = tasks >= threads || threads == 1;
        let inner = if parallel_tiles {
            Parallelism::None
        } else {
            Parallelism::Rayon(threads)
        };
        let columns_len = if g.pointwise() {
            0
        } else {
            g.depth() * tile_rows * g.w_out
        };
        let run = |columns: &mut Vec<f32>, task: usize| {
            let tile = Tile {
                batch: task / tiles / g.t_out,
                frame: task / tiles % g.t_out,
                first_row: task % tiles * tile_rows,
                rows: tile_rows.min(g.h_out - task % tiles * tile_rows),
            };
            // SAFETY: tiles are disjoint parts of `out`, which `shared` points into.
            unsafe { tile.compute(&g, x, weight, bias, columns, shared, inner) }
        };
        if parallel_tiles {
            (0..tasks)
                .into_par_iter()
                .for_each_init(|| vec![0f32; columns_len], run);
        } else {
            let mut columns = vec![0f32; columns_len];
            (0..tasks).for_each(|task| run(&mut columns, task));
        }
        let shape = (batch, c_out, g.t_out, g.h_out, g.w_out);
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

/// Output rows `first_row..first_row + rows` of one output frame.
struct Tile {
    batch: usize,
    frame: usize,
    first_row: usize,
    rows: usize,
}

impl Tile {
    /// Writes the tile: bias first, then the product added onto it.
    ///
    /// # Safety
    /// `out` points to the [b, c_out, t_out, h_out, w_out] output, whose elements of this tile
    /// no other thread touches meanwhile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn compute(
        &self,
        g: &Geometry,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
        columns: &mut [f32],
        out: SharedMut,
        parallelism: Parallelism,
    ) {
        let pixels = self.rows * g.w_out;
        let out_plane = g.h_out * g.w_out;
        // Output channel c of this tile starts at `dst + c · dst_rs`.
        let dst_rs = g.t_out * out_plane;
        let dst = out
            .at((self.batch * g.c_out * g.t_out + self.frame) * out_plane
                + self.first_row * g.w_out);
        for (c, b) in bias.iter().enumerate() {
            std::slice::from_raw_parts_mut(dst.add(c * dst_rs), pixels).fill(*b);
        }
        let in_plane = g.h * g.w;
        // Input frame `frame · stride + tap` of channel 0.
        let frame_start =
            |tap: usize| (self.batch * g.c_in * g.t_in + self.frame * g.stride + tap) * in_plane;
        if g.pointwise() {
            // Input rows are the columns already: channel c of the frame at
            // `frame_start + c · t_in · h · w`.
            for tap in 0..g.kt {
                let rhs = &x[frame_start(tap) + self.first_row * g.w..];
                gemm::gemm(
                    g.c_out,
                    pixels,
                    g.c_in,
                    dst,
                    1,
                    dst_rs as isize,
                    true,
                    weight[tap..].as_ptr(),
                    g.kt as isize,
                    (g.c_in * g.kt) as isize,
                    rhs.as_ptr(),
                    1,
                    (g.t_in * in_plane) as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
            return;
        }
        let columns = &mut columns[..g.depth() * pixels];
        let mut rows = columns.chunks_exact_mut(pixels);
        for c in 0..g.c_in {
            for tap in 0..g.kt {
                let plane = &x[frame_start(tap) + c * g.t_in * in_plane..][..in_plane];
                for dy in 0..g.kh {
                    for dx in 0..g.kw {
                        let row = rows.next().expect("one column row per channel and tap");
                        self.gather(g, plane, dy, dx, row);
                    }
                }
            }
        }
        gemm::gemm(
            g.c_out,
            pixels,
            g.depth(),
            dst,
            1,
            dst_rs as isize,
            true,
            weight.as_ptr(),
            1,
            g.depth() as isize,
            columns.as_ptr(),
            1,
            pixels as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }

    /// What spatial tap (dy, dx) sees of one input plane for this tile's output pixels,
    /// zeros where it falls into the padding.
    fn gather(&self, g: &Geometry, plane: &[f32], dy: usize, dx: usize, row: &mut [f32]) {
        let p = g.padding;
        // Output x reads input x + dx - p: inside for x in lo..hi.
        let lo = p.saturating_sub(dx).min(g.w_out);
        let hi = (g.w + p).saturating_sub(dx).clamp(lo, g.w_out);
        for (i, out_row) in row.chunks_exact_mut(g.w_out).enumerate() {
            let y = self.first_row + i + dy;
            if y < p || y - p >= g.h {
                out_row.fill(0.0);
                continue;
            }
            let src = &plane[(y - p) * g.w..][..g.w];
            out_row[..lo].fill(0.0);
            out_row[lo..hi].copy_from_slice(&src[lo + dx - p..hi + dx - p]);
            out_row[hi..].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::torch_rng::TorchGenerator;
    use candle_core::Device;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        TorchGenerator::manual_seed(seed)
            .randn_tensor(shape, &Device::Cpu)
            .unwrap()
    }

    /// The textbook convolution, in f64.
    fn direct(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize, stride: usize) -> Vec<f64> {
        let (nb, ci, t, h, wd) = x.dims5().unwrap();
        let (co, _, kt, kh, kw) = w.dims5().unwrap();
        let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        let (x, w, b) = (flat(x), flat(w), flat(b));
        let (to, ho, wo) = (
            (t - kt) / stride + 1,
            h + 2 * padding - kh + 1,
            wd + 2 * padding - kw + 1,
        );
        let mut out = Vec::new();
        for n in 0..nb {
            for o in 0..co {
                for f in 0..to {
                    for y in 0..ho {
                        for xo in 0..wo {
                            let mut acc = b[o] as f64;
                            for i in 0..ci {
                                for dt in 0..kt {
                                    for dy in 0..kh {
                                        for dx in 0..kw {
                                            let (sy, sx) = (y + dy, xo + dx);
                                            if sy < padding || sx < padding {
                                                continue;
                                            }
                                            let (sy, sx) = (sy - padding, sx - padding);
                                            if sy >= h || sx >= wd {
                                                continue;
                                            }
                                            let xv = x[(((n * ci + i) * t + f * stride + dt) * h
                                                + sy)
                                                * wd
                                                + sx];
                                            let wv =
                                                w[(((o * ci + i) * kt + dt) * kh + dy) * kw + dx];
                                            acc += xv as f64 * wv as f64;
                                        }
                                    }
                                }
                            }
                            out.push(acc);
                        }
                    }
                }
            }
        }
        out
    }

    fn check(x: &[usize], w: &[usize], padding: usize, stride: usize, column_bytes: usize) {
        let (x, w, b) = (random(x, 1), random(w, 2), random(&[w[0]], 3));
        let op = Conv3d {
            padding,
            temporal_stride: stride,
            column_bytes,
        };
        let got = x.apply_op3_no_bwd(&w, &b, &op).unwrap();
        let want = direct(&x, &w, &b, padding, stride);
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (*g as f64 - w).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "max difference {worst:e}");
    }

    #[test]
    fn equals_a_direct_convolution() {
        // 3x3x3 with padding, in one tile and in tiles of one row (six of them, the last
        // output frame's included).
        check(&[2, 3, 4, 6, 5], &[4, 3, 3, 3, 3], 1, 1, 1 << 20);
        check(&[2, 3, 4, 6, 5], &[4, 3, 3, 3, 3], 1, 1, 1);
        // 2-D kernels and unpadded ones.
        check(&[1, 2, 1, 7, 4], &[3, 2, 1, 3, 3], 1, 1, 1 << 20);
        check(&[1, 2, 3, 7, 4], &[3, 2, 1, 3, 2], 0, 1, 64);
    }

    #[test]
    fn pointwise_kernels_read_the_input_in_place() {
        // 1x1x1 and (3, 1, 1) with a temporal stride of 2, in tiles too.
        check(&[2, 5, 3, 4, 6], &[3, 5, 1, 1, 1], 0, 1, 1 << 20);
        check(&[1, 4, 7, 3, 5], &[6, 4, 3, 1, 1], 0, 2, 1 << 20);
        check(&[1, 4, 7, 3, 5], &[6, 4, 3, 1, 1], 0, 2, 1);
    }
}
