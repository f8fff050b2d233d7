//! Delivering a frame: the cached clip's frames at a host time, blended, resampled through
//! the cover transform onto the render window, in the output transfer, quantised into the
//! host's image.
//!
//! - **Frame blend**: a conformed host time falls between model frames a and b (weight w);
//!   the frame shown is `(1-w)·a + w·b` of the display-referred values, as generated.
//! - **Resampling**, per axis: bilinear where the picture is magnified (one host pixel is at
//!   most one generated pixel wide), area-averaging (a box over the host pixel's footprint)
//!   where it is minified, so a proxy at render scale 0.5 is the full frame averaged down,
//!   not aliased. Pixel centres are at +0.5; edges clamp.
//! - Resampling and blending happen on the display-referred values (the model's own space,
//!   and what the engine's frames are); the output transfer comes last: *Display* as
//!   generated, *Linear* the sRGB EOTF (IEC 61966-2-1) applied. Alpha is 1 inside the
//!   generated picture and 0 (transparent black) in any part of the window it does not
//!   reach.
//! - 8- and 16-bit outputs round to the nearest code and clamp to [0, 1].
//!
//! The core works on rows of bytes ([`PixelRows`]: [`Destination`] for plain memory, or a
//! host's image), with the sample positions and weights of every column precomputed.

use crate::cache::Clip;
use crate::effect::settings::Transfer;
use crate::ofx::bindings::OfxRectI;
use crate::ofx::image::{Components, Depth, Image};
use crate::timeline::plan::{Cover, Rect, Sample};
use once_cell::sync::Lazy;
use std::fmt;

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Every pixel of the render window is written.
    Complete,
    /// The abort poll said stop; the window is partly written.
    Aborted,
}

/// Why a frame cannot be delivered: a sentence for the log or the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverError(pub String);

impl fmt::Display for DeliverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeliverError {}

/// Rows are written between abort polls.
const ABORT_EVERY_ROWS: usize = 16;

/// The cover transform of a `size` generated frame onto the region of definition `rod`
/// (canonical coordinates), in pixel coordinates at the render's scale and pixel aspect:
/// what [`deliver`] takes.
pub fn cover_for(size: (u32, u32), rod: Rect, render_scale: [f64; 2], pixel_aspect: f64) -> Cover {
    Cover::new(size.0, size.1, rod).at_render_scale(render_scale[0], render_scale[1], pixel_aspect)
}

/// An image in plain memory: `bounds` in pixel coordinates (y up), rows `row_bytes` apart.
/// `data` holds every row, lowest address first: with positive `row_bytes` the bottom row
/// (`bounds.y1`) starts at 0, with negative ones it is the last row in memory, as OpenFX lays
/// images out from their bottom row's address.
pub struct Destination<'a> {
    data: &'a mut [u8],
    bounds: OfxRectI,
    row_bytes: isize,
    depth: Depth,
    components: Components,
}

impl<'a> Destination<'a> {
    pub fn new(
        data: &'a mut [u8],
        bounds: OfxRectI,
        row_bytes: isize,
        depth: Depth,
        components: Components,
    ) -> Result<Destination<'a>, DeliverError> {
        let (w, h) = (span(bounds.x1, bounds.x2), span(bounds.y1, bounds.y2));
        let row_len = w * depth.bytes() * components.count();
        let stride = row_bytes.unsigned_abs();
        let need = if h == 0 || w == 0 {
            0
        } else {
            (h - 1) * stride + row_len
        };
        if (w > 0 && stride < row_len) || data.len() < need {
            return Err(DeliverError(format!(
                "The destination ({w} x {h} pixels, rows {row_bytes} bytes apart) does not fit its {} bytes.",
                data.len()
            )));
        }
        Ok(Destination {
            data,
            bounds,
            row_bytes,
            depth,
            components,
        })
    }

    /// Each row inside the bounds as `(y, its pixels)`, in memory order.
    fn rows_mut(&mut self) -> impl Iterator<Item = (i32, &mut [u8])> + '_ {
        let (w, h) = (
            span(self.bounds.x1, self.bounds.x2),
            span(self.bounds.y1, self.bounds.y2),
        );
        let row_len = w * self.depth.bytes() * self.components.count();
        let stride = self.row_bytes.unsigned_abs().max(1);
        let (y1, up) = (self.bounds.y1, self.row_bytes >= 0);
        let rows = if row_len == 0 { 0 } else { h };
        self.data
            .chunks_mut(stride)
            .take(rows)
            .enumerate()
            .map(move |(i, chunk)| {
                let from_bottom = if up { i } else { h - 1 - i };
                (y1 + from_bottom as i32, &mut chunk[..row_len])
            })
    }
}

fn span(a: i32, b: i32) -> usize {
    (i64::from(b) - i64::from(a)).max(0) as usize
}

/// Where rows of pixels go: a host's image or plain memory.
pub trait PixelRows {
    /// Bounds (pixel coordinates, y up), sample depth and components.
    fn layout(&self) -> (OfxRectI, Depth, Components);
    /// Each row inside the bounds as `(y, its pixels)`.
    fn rows(&mut self) -> impl Iterator<Item = (i32, &mut [u8])> + '_;
}

impl PixelRows for Destination<'_> {
    fn layout(&self) -> (OfxRectI, Depth, Components) {
        (self.bounds, self.depth, self.components)
    }
    fn rows(&mut self) -> impl Iterator<Item = (i32, &mut [u8])> + '_ {
        self.rows_mut()
    }
}

impl PixelRows for Image {
    fn layout(&self) -> (OfxRectI, Depth, Components) {
        (self.bounds, self.depth, self.components)
    }
    fn rows(&mut self) -> impl Iterator<Item = (i32, &mut [u8])> + '_ {
        self.rows_mut()
    }
}

/// Delivers the frame at `sample` of `clip` into `dest`'s part of `window` (pixel
/// coordinates at the render's scale, like `cover`).
pub fn deliver(
    clip: &Clip,
    sample: Sample,
    cover: &Cover,
    window: OfxRectI,
    transfer: Transfer,
    dest: &mut impl PixelRows,
    abort: &dyn Fn() -> bool,
) -> Result<Delivery, DeliverError> {
    let (bounds, depth, components) = dest.layout();
    let target = Target {
        bounds,
        depth,
        components,
    };
    fill(
        clip,
        sample,
        cover,
        window,
        transfer,
        target,
        dest.rows(),
        abort,
    )
}

/// The layout the rows are written in.
#[derive(Clone, Copy)]
struct Target {
    bounds: OfxRectI,
    depth: Depth,
    components: Components,
}

/// One axis of the resampling: for each output position, the source indices and weights
/// (summing to 1), or none where the output pixel's centre is outside the source.
struct Taps {
    /// `ranges[i]`: the slice of `index` / `weight` for output `i`; empty = outside.
    ranges: Vec<(u32, u32)>,
    index: Vec<u32>,
    weight: Vec<f32>,
}

impl Taps {
    /// Output pixels `0..count` whose centres are at source positions `position(i)` (source
    /// pixel units from the source's first edge), each `footprint` source pixels wide, over
    /// a source of `len` pixels.
    fn new(count: usize, len: usize, footprint: f64, position: impl Fn(usize) -> f64) -> Taps {
        let mut taps = Taps {
            ranges: Vec::with_capacity(count),
            index: Vec::with_capacity(count * 2),
            weight: Vec::with_capacity(count * 2),
        };
        for i in 0..count {
            let start = taps.index.len() as u32;
            let u = position(i);
            if u >= 0.0 && u < len as f64 {
                if footprint <= 1.0 {
                    taps.bilinear(u, len);
                } else {
                    taps.area(u, footprint, len);
                }
            }
            taps.ranges.push((start, taps.index.len() as u32));
        }
        taps
    }

    fn push(&mut self, index: usize, weight: f64) {
        if weight <= 0.0 {
            return;
        }
        // Clamped edge taps may land on the same pixel twice.
        let start = self.ranges.last().map_or(0, |r| r.1) as usize;
        if let Some(k) = self.index[start..]
            .iter()
            .position(|&j| j as usize == index)
        {
            self.weight[start + k] += weight as f32;
        } else {
            self.index.push(index as u32);
            self.weight.push(weight as f32);
        }
    }

    /// Linear between the two nearest pixel centres (centres at +0.5).
    fn bilinear(&mut self, u: f64, len: usize) {
        let p = u - 0.5;
        let i0 = p.floor();
        let f = p - i0;
        let clamp = |i: f64| i.clamp(0.0, (len - 1) as f64) as usize;
        self.push(clamp(i0), 1.0 - f);
        self.push(clamp(i0 + 1.0), f);
    }

    /// The mean over [u - footprint/2, u + footprint/2] (clipped to the source), each pixel
    /// weighted by how much of it the interval covers.
    fn area(&mut self, u: f64, footprint: f64, len: usize) {
        let (a, b) = (
            (u - footprint / 2.0).max(0.0),
            (u + footprint / 2.0).min(len as f64),
        );
        let total = b - a;
        let first = a.floor() as usize;
        let last = (b.ceil() as usize).min(len);
        for i in first..last {
            let covered = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
            self.push(i, covered / total);
        }
    }

    fn of(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = self.ranges[i];
        (
            &self.index[a as usize..b as usize],
            &self.weight[a as usize..b as usize],
        )
    }
}

/// The whole job: checks, column taps, then row by row.
#[allow(clippy::too_many_arguments)]
fn fill<'r>(
    clip: &Clip,
    sample: Sample,
    cover: &Cover,
    window: OfxRectI,
    transfer: Transfer,
    target: Target,
    rows: impl Iterator<Item = (i32, &'r mut [u8])>,
    abort: &dyn Fn() -> bool,
) -> Result<Delivery, DeliverError> {
    let (width, height, channels) = (clip.width, clip.height, clip.channels);
    let samples = clip
        .frames
        .checked_mul(height)
        .and_then(|n| n.checked_mul(width))
        .and_then(|n| n.checked_mul(channels));
    if !(3..=4).contains(&channels) || samples != Some(clip.data.len()) {
        return Err(DeliverError(format!(
            "The cached clip is damaged ({} frames of {width} x {height} x {channels} in {} samples): regenerate it.",
            clip.frames,
            clip.data.len()
        )));
    }
    if cover.generated != (width as u32, height as u32) {
        return Err(DeliverError(format!(
            "The cached clip is {width} x {height} but the plan expects {} x {}: regenerate the clip.",
            cover.generated.0, cover.generated.1
        )));
    }
    let frame = |i: usize| {
        clip.frame(i).ok_or_else(|| {
            DeliverError(format!(
                "The cached clip has {} frames but frame {i} is needed: it does not match the clip's plan; regenerate the clip.",
                clip.frames
            ))
        })
    };
    let (a, b) = (frame(sample.a)?, frame(sample.b)?);
    let blend = if sample.weight.is_finite() {
        sample.weight.clamp(0.0, 1.0) as f32
    } else {
        0.0
    };

    // The window, inside the image.
    let bounds = target.bounds;
    let (x1, x2) = (window.x1.max(bounds.x1), window.x2.min(bounds.x2));
    let (y1, y2) = (window.y1.max(bounds.y1), window.y2.min(bounds.y2));
    if x1 >= x2 || y1 >= y2 {
        return Ok(Delivery::Complete);
    }
    // Host pixel (x, y) has its centre at (x + 0.5, y + 0.5); generated columns count from
    // the left edge, rows from the top edge.
    let columns = Taps::new(span(x1, x2), width, 1.0 / cover.scale_x, |i| {
        cover.to_generated(f64::from(x1) + i as f64 + 0.5, 0.0).0
    });
    let rows_taps = Taps::new(span(y1, y2), height, 1.0 / cover.scale_y, |i| {
        height as f64 - cover.to_generated(0.0, f64::from(y1) + i as f64 + 0.5).1
    });
    let (cmin, cmax) = columns.index.iter().fold((usize::MAX, 0), |(lo, hi), &c| {
        (lo.min(c as usize), hi.max(c as usize + 1))
    });
    let used = cmax.saturating_sub(cmin.min(cmax));
    let mut line = vec![0f32; used * 3];
    let mut out_rgba = vec![[0f32; 4]; span(x1, x2)];
    let eotf: Option<&[f32]> = (transfer == Transfer::Linear).then(|| EOTF_TABLE.as_slice());
    let pixel_bytes = target.depth.bytes() * target.components.count();
    let offset = span(bounds.x1, x1) * pixel_bytes;

    let mut done = 0usize;
    for (y, row) in rows {
        if y < y1 || y >= y2 {
            continue;
        }
        if done % ABORT_EVERY_ROWS == 0 && abort() {
            return Ok(Delivery::Aborted);
        }
        done += 1;
        let out = &mut row[offset..offset + span(x1, x2) * pixel_bytes];
        let (rows_i, rows_w) = rows_taps.of(span(y1, y));
        if rows_i.is_empty() || used == 0 {
            out_rgba.fill([0.0; 4]);
            store_row(out, &out_rgba, target);
            continue;
        }
        // Vertical pass (and frame blend) into one line of the used columns.
        line.fill(0.0);
        for (&r, &wv) in rows_i.iter().zip(rows_w) {
            let base = (r as usize * width + cmin) * channels;
            let src_a = &a[base..base + used * channels];
            if blend == 0.0 {
                for (acc, px) in line.chunks_exact_mut(3).zip(src_a.chunks_exact(channels)) {
                    for k in 0..3 {
                        acc[k] += wv * px[k];
                    }
                }
            } else {
                let src_b = &b[base..base + used * channels];
                let (wa, wb) = (wv * (1.0 - blend), wv * blend);
                for ((acc, pa), pb) in line
                    .chunks_exact_mut(3)
                    .zip(src_a.chunks_exact(channels))
                    .zip(src_b.chunks_exact(channels))
                {
                    for k in 0..3 {
                        acc[k] += wa * pa[k] + wb * pb[k];
                    }
                }
            }
        }
        // Horizontal pass; no taps: the pixel's centre is outside the picture.
        for (i, rgba) in out_rgba.iter_mut().enumerate() {
            let (cols, ws) = columns.of(i);
            let mut acc = [0f32; 4];
            for (&c, &w) in cols.iter().zip(ws) {
                let px = &line[(c as usize - cmin) * 3..][..3];
                for k in 0..3 {
                    acc[k] += w * px[k];
                }
            }
            acc[3] = if cols.is_empty() { 0.0 } else { 1.0 };
            *rgba = acc;
        }
        if let Some(table) = eotf {
            for rgba in &mut out_rgba {
                for v in &mut rgba[..3] {
                    *v = srgb_to_linear(*v, table);
                }
            }
        }
        store_row(out, &out_rgba, target);
    }
    Ok(Delivery::Complete)
}

/// Writes one row of the window's pixels, rounded and clamped for the integer depths.
fn store_row(out: &mut [u8], rgba: &[[f32; 4]], target: Target) {
    let n = target.components.count();
    let pixel_bytes = target.depth.bytes() * n;
    let pixels = out.chunks_exact_mut(pixel_bytes).zip(rgba);
    // Non-negative after the clamp, so adding a half and truncating rounds to nearest.
    match target.depth {
        Depth::Float => {
            for (px, c) in pixels {
                for (k, v) in c[..n].iter().enumerate() {
                    px[k * 4..k * 4 + 4].copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
        Depth::Short => {
            for (px, c) in pixels {
                for (k, v) in c[..n].iter().enumerate() {
                    let q = (v.clamp(0.0, 1.0) * 65535.0 + 0.5) as u16;
                    px[k * 2..k * 2 + 2].copy_from_slice(&q.to_ne_bytes());
                }
            }
        }
        Depth::Byte => {
            for (px, c) in pixels {
                for (k, v) in c[..n].iter().enumerate() {
                    px[k] = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
                }
            }
        }
    }
}

/// The sRGB EOTF (IEC 61966-2-1): display value → linear light, exactly.
pub fn srgb_eotf(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// Intervals of the EOTF table over [0, 1]: linear interpolation between its entries is
/// within 3e-8 of the exact curve, below f32's resolution near 1.
const EOTF_STEPS: usize = 4096;

static EOTF_TABLE: Lazy<Vec<f32>> = Lazy::new(|| {
    (0..=EOTF_STEPS)
        .map(|i| srgb_eotf(i as f64 / EOTF_STEPS as f64) as f32)
        .collect()
});

/// [`srgb_eotf`] for a pixel: `table` ([`EOTF_TABLE`]) in [0, 1] (a `powf` per sample
/// would take longer than the rest of the delivery), the exact curve outside it.
fn srgb_to_linear(v: f32, table: &[f32]) -> f32 {
    if (0.0..1.0).contains(&v) {
        let x = v * EOTF_STEPS as f32;
        let i = x as usize;
        let f = x - i as f32;
        table[i] + (table[i + 1] - table[i]) * f
    } else {
        srgb_eotf(f64::from(v)) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eotf_table_matches_the_curve() {
        let mut worst = 0f64;
        for i in 0..=100_000 {
            let v = i as f64 / 100_000.0;
            let got = f64::from(srgb_to_linear(v as f32, &EOTF_TABLE));
            worst = worst.max((got - srgb_eotf(v as f32 as f64)).abs());
        }
        assert!(worst < 1e-7, "{worst}");
        assert_eq!(srgb_to_linear(1.0, &EOTF_TABLE), 1.0);
        assert_eq!(srgb_to_linear(0.0, &EOTF_TABLE), 0.0);
    }

    #[test]
    fn taps_sum_to_one() {
        for footprint in [0.3, 1.0, 1.7, 2.0, 5.5] {
            let t = Taps::new(40, 64, footprint, |i| 0.2 + i as f64 * footprint);
            for i in 0..40 {
                let (idx, w) = t.of(i);
                if !idx.is_empty() {
                    let s: f32 = w.iter().sum();
                    assert!((s - 1.0).abs() < 1e-6, "{footprint} {i} {s}");
                }
            }
        }
    }
}
