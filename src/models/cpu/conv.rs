//! 3-D convolution (stride 1 in space, any stride in time) as one matrix product per tile of
//! output rows: `out[c_out, pixels] = weight[c_out, c_in·kt·kh·kw] · columns`, where the
//! columns (im2col) copy, for every input channel and tap, the shifted input rows that tap
//! sees, whole rows at a time. Kernels of 1 × 1 in space need no copy: each temporal tap
//! multiplies the input frame in place. candle's `conv2d` instead runs per temporal tap and
//! gathers its columns element by element.
//!
//! The input frames may come in parts, as a causal convolution has them: zero frames, the
//! frames kept from its previous call, its new frames ([`conv3d_in_parts`]). Each tap reads its
//! frame from the part that holds it, so no joined copy of the input is made.

use super::{contiguous_f32, f32_data, SharedMut};
use candle_core::{CpuStorage, Device, Layout, Result, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Size of one tile's columns: bounds the scratch memory per worker thread and leaves the
/// product long rows to work on.
const COLUMN_BYTES: usize = 4 * 1024 * 1024;

/// `x` [b, c_in, t, h, w] (f32, CPU) convolved with `weight` [c_out, c_in, kt, kh, kw] plus
/// `bias` [c_out]: zero padding of `padding` on each side of height and width, none in time
/// (put history or zeros in front first, or see [`conv3d_in_parts`]), `temporal_stride`
/// between output frames. Gives [b, c_out, (t − kt) / stride + 1, h + 2·padding − kh + 1,
/// w + 2·padding − kw + 1].
pub fn conv3d(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    padding: usize,
    temporal_stride: usize,
) -> Result<Tensor> {
    conv3d_in_parts(0, &[x], weight, bias, padding, temporal_stride)
}

/// [`conv3d`] of `zeros` zero frames followed by the frames of each of `parts` (all [b, c_in,
/// t_i, h, w], f32 on the CPU) in turn, as if they were joined in time, without joining them:
/// a causal convolution's zero padding, history and new frames. The columns hold the same
/// values in the same order as with the joined tensor, so the result is the same bit for bit.
pub fn conv3d_in_parts(
    zeros: usize,
    parts: &[&Tensor],
    weight: &Tensor,
    bias: &Tensor,
    padding: usize,
    temporal_stride: usize,
) -> Result<Tensor> {
    convolve(
        zeros,
        parts,
        weight,
        bias,
        padding,
        temporal_stride,
        COLUMN_BYTES,
    )
}

/// One part of the input frames, read in place: plane (n, c, f) (h × w elements, row-major)
/// starts at `start + n·strides[0] + c·strides[1] + f·strides[2]` of `data`.
struct Part<'a> {
    data: &'a [f32],
    frames: usize,
    start: usize,
    strides: [usize; 3],
}

/// The input frames of one convolution: `zeros` zero frames, then the frames of each part.
struct Frames<'a> {
    zeros: usize,
    parts: Vec<Part<'a>>,
    /// Elements of one (channel, frame) plane.
    plane: usize,
}

impl Frames<'_> {
    fn len(&self) -> usize {
        self.zeros + self.parts.iter().map(|p| p.frames).sum::<usize>()
    }

    /// Input frame `k` of batch `n`: the data from its channel 0 on, and the distance between
    /// its channels; `None` for a zero frame.
    fn frame(&self, n: usize, k: usize) -> Option<(&[f32], usize)> {
        let mut k = k.checked_sub(self.zeros)?;
        for part in &self.parts {
            if k < part.frames {
                let [batch, channel, frame] = part.strides;
                return Some((&part.data[part.start + n * batch + k * frame..], channel));
            }
            k -= part.frames;
        }
        unreachable!("input frame past the last part")
    }

    /// The plane of channel `c` of input frame `k` of batch `n`; `None` for a zero frame.
    fn plane(&self, n: usize, c: usize, k: usize) -> Option<&[f32]> {
        self.frame(n, k)
            .map(|(data, channel)| &data[c * channel..][..self.plane])
    }
}

/// The CPU storage behind a tensor.
fn cpu_storage<'a>(storage: &'a Storage, what: &str) -> Result<&'a CpuStorage> {
    match storage {
        Storage::Cpu(s) => Ok(s),
        _ => candle_core::bail!("{what}: a CPU tensor expected"),
    }
}

/// The f32 elements of a contiguous tensor.
fn contiguous_data<'a>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    contiguous_f32(cpu_storage(storage, what)?, layout, what)
}

/// [`conv3d_in_parts`] with a bound on one tile's columns.
#[allow(clippy::too_many_arguments)]
fn convolve(
    zeros: usize,
    parts: &[&Tensor],
    weight: &Tensor,
    bias: &Tensor,
    padding: usize,
    temporal_stride: usize,
    column_bytes: usize,
) -> Result<Tensor> {
    let Some(first) = parts.first() else {
        candle_core::bail!("conv3d: no input frames");
    };
    let (batch, c_in, _, h, w) = first.dims5()?;
    // Each part is read in place if its planes are laid out row by row (a view narrowed in
    // time or channels is); others are copied first.
    let parts = parts
        .iter()
        .map(|x| {
            let (b, c, _, hx, wx) = x.dims5()?;
            if (b, c, hx, wx) != (batch, c_in, h, w) {
                candle_core::bail!(
                    "conv3d: input parts {:?} and {:?} do not fit together",
                    first.dims(),
                    x.dims()
                );
            }
            if x.stride()[3] == w && x.stride()[4] == 1 {
                Ok((*x).clone())
            } else {
                x.contiguous()
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let (weight, bias) = (weight.contiguous()?, bias.contiguous()?);
    // Nothing writes these tensors in place meanwhile: the read locks never wait.
    let locked: Vec<_> = parts.iter().map(|x| x.storage_and_layout()).collect();
    let (w_storage, w_layout) = weight.storage_and_layout();
    let (b_storage, b_layout) = bias.storage_and_layout();
    let weight = contiguous_data(&w_storage, w_layout, "conv3d weight")?;
    let bias = contiguous_data(&b_storage, b_layout, "conv3d bias")?;
    let frames = Frames {
        zeros,
        parts: locked
            .iter()
            .map(|(storage, layout)| {
                let stride = layout.stride();
                Ok(Part {
                    data: f32_data(cpu_storage(storage, "conv3d input")?, "conv3d input")?,
                    frames: layout.dims()[2],
                    start: layout.start_offset(),
                    strides: [stride[0], stride[1], stride[2]],
                })
            })
            .collect::<Result<_>>()?,
        plane: h * w,
    };
    let t_in = frames.len();
    let (c_out, wc_in, kt, kh, kw) = w_layout.shape().dims5()?;
    let (p, stride) = (padding, temporal_stride);
    if wc_in != c_in || bias.len() != c_out || stride == 0 {
        candle_core::bail!(
            "conv3d: input {:?}, weight {:?}, bias {:?} do not fit",
            first.dims(),
            w_layout.dims(),
            b_layout.dims()
        );
    }
    if t_in < kt || h + 2 * p < kh || w + 2 * p < kw {
        candle_core::bail!(
            "conv3d: input of {t_in} frames of {h} × {w} is smaller than the kernel {:?}",
            w_layout.dims()
        );
    }
    let g = Geometry {
        c_in,
        c_out,
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
    let tile_rows = (column_bytes / (4 * g.depth() * g.w_out)).clamp(1, g.h_out);
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
    // Scratch for the columns; a pointwise kernel needs some only for a zero frame's.
    let columns_len = if !g.pointwise() {
        g.depth() * tile_rows * g.w_out
    } else if zeros > 0 {
        g.c_in * tile_rows * g.w_out
    } else {
        0
    };
    let run = |columns: &mut Vec<f32>, task: usize| {
        let tile = Tile {
            batch: task / tiles / g.t_out,
            frame: task / tiles % g.t_out,
            first_row: task % tiles * tile_rows,
            rows: tile_rows.min(g.h_out - task % tiles * tile_rows),
        };
        // SAFETY: tiles are disjoint parts of `out`, which `shared` points into.
        unsafe { tile.compute(&g, &frames, weight, bias, columns, shared, inner) }
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
    Tensor::from_vec(out, shape, &Device::Cpu)
}

/// The sizes of one convolution.
#[derive(Clone, Copy)]
struct Geometry {
    c_in: usize,
    c_out: usize,
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
        frames: &Frames,
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
        if g.pointwise() {
            for tap in 0..g.kt {
                // Input rows are the columns already: channel c of the frame at
                // `rhs + c · channel_stride`. A zero frame's are zeros, in the scratch.
                let (rhs, channel_stride) =
                    match frames.frame(self.batch, self.frame * g.stride + tap) {
                        Some((frame, channel_stride)) => {
                            (frame[self.first_row * g.w..].as_ptr(), channel_stride)
                        }
                        None => {
                            let zeros = &mut columns[..g.c_in * pixels];
                            zeros.fill(0.0);
                            (zeros.as_ptr(), pixels)
                        }
                    };
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
                    rhs,
                    1,
                    channel_stride as isize,
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
                let plane = frames.plane(self.batch, c, self.frame * g.stride + tap);
                for dy in 0..g.kh {
                    for dx in 0..g.kw {
                        let row = rows.next().expect("one column row per channel and tap");
                        match plane {
                            Some(plane) => self.gather(g, plane, dy, dx, row),
                            // Zeros, as gathered from a zero frame.
                            None => row.fill(0.0),
                        }
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
        let got = convolve(0, &[&x], &w, &b, padding, stride, column_bytes).unwrap();
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

    #[test]
    fn frames_in_parts_convolve_as_joined_bit_for_bit() {
        let values = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        let clip = random(&[2, 3, 5, 6, 5], 12);
        // The parts: two frames narrowed from the clip (read in place), one of its own, and two
        // whose rows are columns in memory (copied first).
        let own = clip.narrow(2, 2, 1).unwrap().contiguous().unwrap();
        let transposed = clip
            .narrow(2, 3, 2)
            .unwrap()
            .transpose(3, 4)
            .unwrap()
            .contiguous()
            .unwrap()
            .transpose(3, 4)
            .unwrap();
        let head = clip.narrow(2, 0, 2).unwrap();
        let parts = [&head, &own, &transposed];
        // 3x3x3 padded, and (3, 1, 1) with strides 1 and 2, each after two zero frames and
        // after none, in one tile and in tiles of one row.
        for (kernel, padding, stride) in [
            ([4, 3, 3, 3, 3], 1, 1),
            ([4, 3, 3, 1, 1], 0, 1),
            ([4, 3, 3, 1, 1], 0, 2),
        ] {
            let (w, b) = (random(&kernel, 13), random(&[4], 14));
            for zeros in [2, 0] {
                let joined = clip.pad_with_zeros(2, zeros, 0).unwrap();
                for column_bytes in [1 << 20, 1] {
                    let want = convolve(0, &[&joined], &w, &b, padding, stride, column_bytes);
                    let got = convolve(zeros, &parts, &w, &b, padding, stride, column_bytes);
                    let (want, got) = (want.unwrap(), got.unwrap());
                    assert_eq!(got.dims(), want.dims());
                    assert_eq!(values(&got), values(&want), "{kernel:?}, {zeros} zeros");
                }
            }
        }
    }
}
