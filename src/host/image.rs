//! Render targets: the image buffer the host gives a render action, with guard bytes around
//! it and padding after each row, so writes outside the image are caught afterwards.
//!
//! Memory layout: `[guard][row][pad][row][pad]...[guard]`, 16-byte aligned at the start of the
//! first row. With positive row bytes the first row in memory is y1 (the bottom); with
//! negative row bytes it is y2-1 (the top) and the data pointer points at the last row in
//! memory, which is y1.

use std::alloc::{alloc, dealloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use super::ffi::{k, ofx};
use super::HostError;
use crate::ofx::bindings::OfxRectI;

/// Guard bytes before and after the pixels (a multiple of the alignment).
pub(crate) const GUARD: usize = 64;
const ALIGN: usize = 16;
/// The largest buffer a render may ask for.
const MAX_BYTES: usize = 4 << 30;

/// Bytes per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitDepth {
    Byte,
    Short,
    Float,
}

impl BitDepth {
    pub fn ofx_name(self) -> &'static str {
        k(match self {
            BitDepth::Byte => ofx::kOfxBitDepthByte,
            BitDepth::Short => ofx::kOfxBitDepthShort,
            BitDepth::Float => ofx::kOfxBitDepthFloat,
        })
    }

    /// Bytes per component sample.
    pub fn bytes(self) -> usize {
        match self {
            BitDepth::Byte => 1,
            BitDepth::Short => 2,
            BitDepth::Float => 4,
        }
    }
}

/// Channels per pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Components {
    Rgba,
    Rgb,
}

impl Components {
    pub fn ofx_name(self) -> &'static str {
        k(match self {
            Components::Rgba => ofx::kOfxImageComponentRGBA,
            Components::Rgb => ofx::kOfxImageComponentRGB,
        })
    }

    pub fn count(self) -> usize {
        match self {
            Components::Rgba => 4,
            Components::Rgb => 3,
        }
    }
}

/// What a render produced, copied out of the render target.
#[derive(Clone, Debug)]
pub struct RenderedImage {
    /// Pixel bounds the host gave the plugin.
    pub bounds: OfxRectI,
    pub depth: BitDepth,
    pub components: Components,
    /// The pixels, rows bottom (y1) to top, packed, native-endian samples.
    pub pixels: Vec<u8>,
    /// Whether every byte outside the pixels still holds the fill byte.
    pub guard_intact: bool,
    /// Row bytes as the plugin saw them (negative for top-down rows).
    pub row_bytes: isize,
    /// Output images the plugin fetched with clipGetImage during the render.
    pub images_fetched: usize,
    /// Of those, how many it had not released when the render returned (the host freed them).
    pub images_unreleased: usize,
}

impl RenderedImage {
    pub fn width(&self) -> usize {
        (self.bounds.x2 - self.bounds.x1).max(0) as usize
    }

    pub fn height(&self) -> usize {
        (self.bounds.y2 - self.bounds.y1).max(0) as usize
    }

    /// The pixel at column `x`, row `y` counted from the bottom (both from 0), normalised:
    /// bytes / 255, shorts / 65535, floats as they are; RGB images get alpha 1.
    pub fn rgba_f32(&self, x: usize, y: usize) -> [f32; 4] {
        assert!(
            x < self.width() && y < self.height(),
            "pixel ({x}, {y}) outside the image"
        );
        let n = self.components.count();
        let sample = self.depth.bytes();
        let start = ((y * self.width() + x) * n) * sample;
        let mut out = [0.0, 0.0, 0.0, 1.0];
        for (c, v) in out.iter_mut().enumerate().take(n) {
            let at = start + c * sample;
            let b = &self.pixels[at..at + sample];
            *v = match self.depth {
                BitDepth::Byte => b[0] as f32 / 255.0,
                BitDepth::Short => u16::from_ne_bytes([b[0], b[1]]) as f32 / 65535.0,
                BitDepth::Float => f32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            };
        }
        out
    }
}

static NEXT_RENDER: AtomicUsize = AtomicUsize::new(1);

/// The output image of one render action.
pub(crate) struct RenderTarget {
    ptr: *mut u8,
    layout: Layout,
    pub bounds: OfxRectI,
    pub depth: BitDepth,
    pub components: Components,
    /// Absolute row stride in bytes.
    stride: usize,
    negative: bool,
    fill: u8,
    pub time: f64,
    pub render_scale: (f64, f64),
    pub started: Instant,
    pub id: usize,
    /// Image handles fetched during the render and not yet released.
    pub images: Mutex<Vec<usize>>,
    pub fetched: AtomicUsize,
}

// The buffer is plain memory: the plugin writes it during the render, the host reads it after.
unsafe impl Send for RenderTarget {}
unsafe impl Sync for RenderTarget {}

impl RenderTarget {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bounds: OfxRectI,
        depth: BitDepth,
        components: Components,
        negative: bool,
        padding: usize,
        fill: u8,
        time: f64,
        render_scale: (f64, f64),
    ) -> Result<RenderTarget, HostError> {
        let too_big = || HostError::host(format!("render bounds {bounds:?} are too large"));
        let width = i64::from(bounds.x2) - i64::from(bounds.x1);
        let height = i64::from(bounds.y2) - i64::from(bounds.y1);
        if width <= 0 || height <= 0 {
            return Err(HostError::host(format!(
                "render bounds {bounds:?} are empty"
            )));
        }
        let (width, height) = (width as usize, height as usize);
        let pixel = depth.bytes() * components.count();
        let stride = width
            .checked_mul(pixel)
            .and_then(|r| r.checked_add(padding))
            .ok_or_else(too_big)?;
        if stride > i32::MAX as usize {
            return Err(too_big());
        }
        let total = stride
            .checked_mul(height)
            .and_then(|b| b.checked_add(2 * GUARD))
            .ok_or_else(too_big)?;
        if total > MAX_BYTES {
            return Err(too_big());
        }
        let layout = Layout::from_size_align(total, ALIGN).map_err(|_| too_big())?;
        let ptr = unsafe { alloc(layout) };
        if ptr.is_null() {
            return Err(HostError::host(format!(
                "cannot allocate {total} bytes for the render target"
            )));
        }
        unsafe { ptr.write_bytes(fill, total) };
        Ok(RenderTarget {
            ptr,
            layout,
            bounds,
            depth,
            components,
            stride,
            negative,
            fill,
            time,
            render_scale,
            started: Instant::now(),
            id: NEXT_RENDER.fetch_add(1, Ordering::Relaxed),
            images: Mutex::new(Vec::new()),
            fetched: AtomicUsize::new(0),
        })
    }

    pub fn width(&self) -> usize {
        (self.bounds.x2 - self.bounds.x1) as usize
    }

    pub fn height(&self) -> usize {
        (self.bounds.y2 - self.bounds.y1) as usize
    }

    fn pixel_row_bytes(&self) -> usize {
        self.width() * self.depth.bytes() * self.components.count()
    }

    /// Offset in the buffer of the start of row `y` (0 = bottom row).
    fn row_offset(&self, y: usize) -> usize {
        let slot = if self.negative {
            self.height() - 1 - y
        } else {
            y
        };
        GUARD + slot * self.stride
    }

    /// kOfxImagePropData: the start of row y1.
    pub fn data(&self) -> *mut u8 {
        unsafe { self.ptr.add(self.row_offset(0)) }
    }

    /// kOfxImagePropRowBytes.
    pub fn row_bytes(&self) -> isize {
        if self.negative {
            -(self.stride as isize)
        } else {
            self.stride as isize
        }
    }

    fn bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }

    /// Whether every byte outside the pixels still holds the fill byte.
    pub fn guard_intact(&self) -> bool {
        let bytes = self.bytes();
        let row = self.pixel_row_bytes();
        let mut pixel_rows: Vec<usize> = (0..self.height()).map(|y| self.row_offset(y)).collect();
        pixel_rows.sort_unstable();
        let mut at = 0;
        for start in pixel_rows {
            if bytes[at..start].iter().any(|b| *b != self.fill) {
                return false;
            }
            at = start + row;
        }
        bytes[at..].iter().all(|b| *b == self.fill)
    }

    /// Copies the pixels out, bottom row first, without padding.
    pub fn to_rendered(&self) -> RenderedImage {
        let bytes = self.bytes();
        let row = self.pixel_row_bytes();
        let mut pixels = Vec::with_capacity(row * self.height());
        for y in 0..self.height() {
            let start = self.row_offset(y);
            pixels.extend_from_slice(&bytes[start..start + row]);
        }
        let images_unreleased = self.images.lock().len();
        RenderedImage {
            bounds: self.bounds,
            depth: self.depth,
            components: self.components,
            pixels,
            guard_intact: self.guard_intact(),
            row_bytes: self.row_bytes(),
            images_fetched: self.fetched.load(Ordering::Relaxed),
            images_unreleased,
        }
    }
}

impl Drop for RenderTarget {
    fn drop(&mut self) {
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// Canonical coordinates to pixel bounds at a render scale, rounded outward.
pub(crate) fn pixel_bounds(
    rod: ofx::OfxRectD,
    scale: (f64, f64),
    par: f64,
) -> Result<OfxRectI, HostError> {
    // A hair of tolerance so 1919.9999999 does not become an extra column.
    const EPS: f64 = 1e-6;
    let par = if par > 0.0 && par.is_finite() {
        par
    } else {
        1.0
    };
    let xs = scale.0 / par;
    let conv = |v: f64, up: bool| -> Option<i32> {
        let r = if up {
            (v - EPS).ceil()
        } else {
            (v + EPS).floor()
        };
        (r.is_finite() && r.abs() < i32::MAX as f64 / 2.0).then_some(r as i32)
    };
    let b = (|| {
        Some(OfxRectI {
            x1: conv(rod.x1 * xs, false)?,
            y1: conv(rod.y1 * scale.1, false)?,
            x2: conv(rod.x2 * xs, true)?,
            y2: conv(rod.y2 * scale.1, true)?,
        })
    })();
    b.ok_or_else(|| {
        HostError::host(format!(
            "region of definition {rod:?} is not a usable rectangle"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x1: i32, y1: i32, x2: i32, y2: i32) -> OfxRectI {
        OfxRectI { x1, y1, x2, y2 }
    }

    fn tuple(r: OfxRectI) -> (i32, i32, i32, i32) {
        (r.x1, r.y1, r.x2, r.y2)
    }

    fn target(negative: bool, padding: usize, depth: BitDepth) -> RenderTarget {
        RenderTarget::new(
            rect(10, 20, 13, 22),
            depth,
            Components::Rgba,
            negative,
            padding,
            0xAB,
            0.0,
            (1.0, 1.0),
        )
        .unwrap()
    }

    /// Writes pixel (x, y) (relative, bottom-up) through the plugin's view of the image.
    fn write_pixel(t: &RenderTarget, x: usize, y: usize, value: [u8; 4]) {
        let pixel = t.depth.bytes() * 4;
        unsafe {
            let row = t.data().offset(y as isize * t.row_bytes());
            let p = row.add(x * pixel);
            for (c, v) in value.iter().enumerate() {
                p.add(c * t.depth.bytes()).write(*v);
            }
        }
    }

    #[test]
    fn untouched_target_is_intact_and_filled() {
        for negative in [false, true] {
            let t = target(negative, 7, BitDepth::Byte);
            assert!(t.guard_intact());
            let r = t.to_rendered();
            assert_eq!((r.width(), r.height()), (3, 2));
            assert_eq!(r.pixels.len(), 3 * 2 * 4);
            assert!(r.pixels.iter().all(|b| *b == 0xAB));
            assert_eq!(r.row_bytes.unsigned_abs(), 3 * 4 + 7);
            assert_eq!(r.row_bytes < 0, negative);
        }
    }

    #[test]
    fn rows_map_bottom_up_in_both_orders() {
        for negative in [false, true] {
            let t = target(negative, 0, BitDepth::Byte);
            write_pixel(&t, 0, 0, [1, 2, 3, 4]);
            write_pixel(&t, 2, 1, [5, 6, 7, 8]);
            assert!(t.guard_intact());
            let r = t.to_rendered();
            assert_eq!(&r.pixels[0..4], &[1, 2, 3, 4]);
            assert_eq!(&r.pixels[(3 + 2) * 4..(3 + 2) * 4 + 4], &[5, 6, 7, 8]);
            let px = r.rgba_f32(2, 1);
            assert!((px[0] - 5.0 / 255.0).abs() < 1e-6);
            // In memory, positive rows put the bottom row first; negative ones put it last.
            let first_row_in_memory = unsafe { t.ptr.add(GUARD).read() };
            assert_eq!(first_row_in_memory, if negative { 0xAB } else { 1 });
        }
    }

    #[test]
    fn writes_outside_are_caught() {
        let t = target(false, 4, BitDepth::Float);
        // One byte into the padding of the bottom row.
        unsafe { t.data().add(3 * 16).write(0) };
        assert!(!t.guard_intact());

        let t = target(true, 0, BitDepth::Byte);
        // One byte before the buffer (the top row comes first in memory).
        unsafe { t.data().offset(t.row_bytes()).sub(1).write(0) };
        assert!(!t.guard_intact());

        let t = target(false, 0, BitDepth::Short);
        // One byte past the top row.
        unsafe { t.data().offset(2 * t.row_bytes()).write(0) };
        assert!(!t.guard_intact());
    }

    #[test]
    fn float_and_rgb_samples() {
        let t = RenderTarget::new(
            rect(0, 0, 1, 1),
            BitDepth::Float,
            Components::Rgb,
            false,
            0,
            0,
            0.0,
            (1.0, 1.0),
        )
        .unwrap();
        assert_eq!(t.data() as usize % ALIGN, 0);
        unsafe {
            let p = t.data() as *mut f32;
            p.write(0.25);
            p.add(1).write(0.5);
            p.add(2).write(2.0);
        }
        assert_eq!(t.to_rendered().rgba_f32(0, 0), [0.25, 0.5, 2.0, 1.0]);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let mk = |b| {
            RenderTarget::new(
                b,
                BitDepth::Float,
                Components::Rgba,
                false,
                0,
                0,
                0.0,
                (1.0, 1.0),
            )
        };
        assert!(mk(rect(0, 0, 0, 10)).is_err());
        assert!(mk(rect(5, 5, 4, 10)).is_err());
        assert!(mk(rect(0, 0, 100_000, 100_000)).is_err());
    }

    #[test]
    fn pixel_bounds_round_outward() {
        let rod = ofx::OfxRectD {
            x1: 0.0,
            y1: 0.0,
            x2: 1920.0,
            y2: 1080.0,
        };
        assert_eq!(
            tuple(pixel_bounds(rod, (1.0, 1.0), 1.0).unwrap()),
            (0, 0, 1920, 1080)
        );
        assert_eq!(
            tuple(pixel_bounds(rod, (0.5, 0.5), 1.0).unwrap()),
            (0, 0, 960, 540)
        );
        assert_eq!(
            tuple(pixel_bounds(rod, (1.0, 1.0), 2.0).unwrap()),
            (0, 0, 960, 1080)
        );
        let odd = ofx::OfxRectD {
            x1: -0.5,
            y1: 0.2,
            x2: 10.1,
            y2: 9.9999999999,
        };
        assert_eq!(
            tuple(pixel_bounds(odd, (1.0, 1.0), 1.0).unwrap()),
            (-1, 0, 11, 10)
        );
        let bad = ofx::OfxRectD {
            x1: f64::NAN,
            y1: 0.0,
            x2: 1.0,
            y2: 1.0,
        };
        assert!(pixel_bounds(bad, (1.0, 1.0), 1.0).is_err());
    }
}
