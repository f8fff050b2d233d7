//! A host-owned image: its layout as the host describes it, and a checked way to write it.
//!
//! OpenFX images address pixels from the bottom-left corner `bounds.(x1, y1)`; row `y` starts
//! at `data + (y - y1) * rowBytes`, and rowBytes may be negative (rows top-down in memory) or
//! larger than the pixels (padding). Writing goes through [`Image::rows_mut`], which hands out
//! exactly one slice per row inside the image, so nothing outside it can be touched.

use super::bindings::*;
use super::props::PropSet;
use super::{lookup, OfxError, OfxResult};

/// Sample types an image can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    Byte,
    Short,
    Float,
}

impl Depth {
    pub fn from_ofx(name: &str) -> Option<Depth> {
        lookup(
            &[
                (kOfxBitDepthByte, Depth::Byte),
                (kOfxBitDepthShort, Depth::Short),
                (kOfxBitDepthFloat, Depth::Float),
            ],
            name,
        )
    }

    pub fn bytes(self) -> usize {
        match self {
            Depth::Byte => 1,
            Depth::Short => 2,
            Depth::Float => 4,
        }
    }
}

/// Channel layouts GenClip writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Components {
    Rgba,
    Rgb,
}

impl Components {
    pub fn from_ofx(name: &str) -> Option<Components> {
        lookup(
            &[
                (kOfxImageComponentRGBA, Components::Rgba),
                (kOfxImageComponentRGB, Components::Rgb),
            ],
            name,
        )
    }

    pub fn count(self) -> usize {
        match self {
            Components::Rgba => 4,
            Components::Rgb => 3,
        }
    }
}

type ReleaseFn = Option<unsafe extern "C" fn(OfxPropertySetHandle) -> OfxStatus>;

/// An image fetched from a clip; released back to the host on drop.
pub struct Image {
    props: PropSet,
    release: ReleaseFn,
    data: *mut u8,
    pub bounds: OfxRectI,
    pub row_bytes: isize,
    pub depth: Depth,
    pub components: Components,
    pub render_scale: [f64; 2],
    pub pixel_aspect_ratio: f64,
}

impl Image {
    pub(super) fn from_host(props: PropSet, release: ReleaseFn) -> OfxResult<Image> {
        // Build the value first so that an error below still releases the image.
        let mut image = Image {
            props,
            release,
            data: std::ptr::null_mut(),
            bounds: OfxRectI::default(),
            row_bytes: 0,
            depth: Depth::Float,
            components: Components::Rgba,
            render_scale: [1.0, 1.0],
            pixel_aspect_ratio: 1.0,
        };
        image.data = props.pointer(kOfxImagePropData, 0)?.cast();
        let [x1, y1, x2, y2] = props.ints::<4>(kOfxImagePropBounds)?;
        image.bounds = OfxRectI { x1, y1, x2, y2 };
        image.row_bytes = props.int(kOfxImagePropRowBytes, 0)? as isize;
        let depth = props.string(kOfxImageEffectPropPixelDepth, 0)?;
        image.depth = Depth::from_ofx(&depth).ok_or_else(|| {
            OfxError::new(
                kOfxStatErrImageFormat,
                format!("GenClip cannot write {depth} images"),
            )
        })?;
        let comps = props.string(kOfxImageEffectPropComponents, 0)?;
        image.components = Components::from_ofx(&comps).ok_or_else(|| {
            OfxError::new(
                kOfxStatErrImageFormat,
                format!("GenClip cannot write {comps} images"),
            )
        })?;
        image.render_scale = props
            .doubles::<2>(kOfxImageEffectPropRenderScale)
            .unwrap_or([1.0, 1.0]);
        image.pixel_aspect_ratio = props
            .double(kOfxImagePropPixelAspectRatio, 0)
            .unwrap_or(1.0);
        image.validate()?;
        Ok(image)
    }

    fn validate(&self) -> OfxResult<()> {
        let bad = |why: &str| {
            Err(OfxError::new(
                kOfxStatErrImageFormat,
                format!("the host's image is unusable: {why}"),
            ))
        };
        if self.data.is_null() {
            return bad("no pixel data");
        }
        if self.bounds.x2 < self.bounds.x1 || self.bounds.y2 < self.bounds.y1 {
            return bad("inverted bounds");
        }
        // No real frame is this large; a larger one is a confused host, and refusing it keeps
        // every offset below (rows x rowBytes) far from overflow.
        const MAX_SIDE: usize = 1 << 18;
        if self.width() > MAX_SIDE || self.height() > MAX_SIDE {
            return bad("bounds larger than 262144 pixels on a side");
        }
        let min_row = self.width() * self.pixel_bytes();
        if self.row_bytes.unsigned_abs() < min_row {
            return bad("rowBytes smaller than a row of pixels");
        }
        if self
            .row_bytes
            .unsigned_abs()
            .checked_mul(self.height())
            .is_none_or(|span| span > isize::MAX as usize)
        {
            return bad("rowBytes times height overflows the address space");
        }
        Ok(())
    }

    /// Computed in i64: bounds near the ends of the i32 range must not wrap.
    pub fn width(&self) -> usize {
        (i64::from(self.bounds.x2) - i64::from(self.bounds.x1)).max(0) as usize
    }

    pub fn height(&self) -> usize {
        (i64::from(self.bounds.y2) - i64::from(self.bounds.y1)).max(0) as usize
    }

    pub fn pixel_bytes(&self) -> usize {
        self.depth.bytes() * self.components.count()
    }

    /// Each row inside the bounds, bottom to top, as `(y, bytes of that row's pixels)`.
    pub fn rows_mut(&mut self) -> impl Iterator<Item = (i32, &mut [u8])> + '_ {
        let row_len = self.width() * self.pixel_bytes();
        let (data, row_bytes, y1) = (self.data, self.row_bytes, self.bounds.y1);
        (0..self.height()).map(move |i| {
            // SAFETY: the host promises `height` rows of at least `row_len` bytes at
            // `data + i * rowBytes` (validated above); each row is handed out once.
            let row = unsafe {
                std::slice::from_raw_parts_mut(data.offset(i as isize * row_bytes), row_len)
            };
            (y1 + i as i32, row)
        })
    }

    /// Writes one pixel's worth of samples (`rgba` in 0..1 for integer depths) at `out`.
    pub fn store_pixel(depth: Depth, components: Components, out: &mut [u8], rgba: [f32; 4]) {
        let n = components.count();
        match depth {
            Depth::Float => {
                for (i, v) in rgba[..n].iter().enumerate() {
                    out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
                }
            }
            Depth::Short => {
                for (i, v) in rgba[..n].iter().enumerate() {
                    let q = (v.clamp(0.0, 1.0) * 65535.0).round() as u16;
                    out[i * 2..i * 2 + 2].copy_from_slice(&q.to_ne_bytes());
                }
            }
            Depth::Byte => {
                for (i, v) in rgba[..n].iter().enumerate() {
                    out[i] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the handle came from clipGetImage and is released exactly once.
            unsafe { release(self.props.handle()) };
        }
    }
}
