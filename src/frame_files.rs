//! Writing rendered frames to image files (PNG 8/16-bit, OpenEXR half/float), each written
//! to a temporary name and renamed into place, so a reader never sees half a frame.

use std::fs;
use std::io;
use std::path::Path;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFormat {
    Png8,
    Png16,
    ExrHalf,
    ExrFloat,
}

impl FrameFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FrameFormat::Png8 | FrameFormat::Png16 => "png",
            FrameFormat::ExrHalf | FrameFormat::ExrFloat => "exr",
        }
    }
}

impl FromStr for FrameFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "png8" | "png" => Ok(FrameFormat::Png8),
            "png16" => Ok(FrameFormat::Png16),
            "exr" | "exr-half" | "exrhalf" => Ok(FrameFormat::ExrHalf),
            "exr-float" | "exrfloat" | "exr32" => Ok(FrameFormat::ExrFloat),
            other => Err(format!(
                "unknown output format {other}: use png8, png16, exr-half or exr-float"
            )),
        }
    }
}

/// A picture to write: `width` x `height`, sampled top row first.
pub trait Picture: Sync {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Normalised RGBA at column `x`, row `y` counted from the top.
    fn rgba(&self, x: usize, y: usize) -> [f32; 4];
}

pub fn write(path: &Path, picture: &dyn Picture, format: FrameFormat) -> io::Result<()> {
    let tmp = path.with_extension(format!("{}.partial", format.extension()));
    let result = match format {
        FrameFormat::Png8 | FrameFormat::Png16 => {
            write_png(&tmp, picture, format == FrameFormat::Png16)
        }
        FrameFormat::ExrHalf | FrameFormat::ExrFloat => {
            write_exr(&tmp, picture, format == FrameFormat::ExrHalf)
        }
    };
    match result {
        Ok(()) => fs::rename(&tmp, path),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_png(path: &Path, picture: &dyn Picture, sixteen: bool) -> io::Result<()> {
    let (w, h) = (picture.width(), picture.height());
    let mut data = Vec::with_capacity(w * h * if sixteen { 6 } else { 3 });
    for y in 0..h {
        for x in 0..w {
            let px = picture.rgba(x, y);
            for v in &px[..3] {
                let v = v.clamp(0.0, 1.0);
                if sixteen {
                    data.extend_from_slice(&((v * 65535.0).round() as u16).to_be_bytes());
                } else {
                    data.push((v * 255.0).round() as u8);
                }
            }
        }
    }
    let file = io::BufWriter::new(fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, w as u32, h as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(if sixteen {
        png::BitDepth::Sixteen
    } else {
        png::BitDepth::Eight
    });
    let mut writer = encoder.write_header().map_err(io::Error::other)?;
    writer.write_image_data(&data).map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)
}

fn write_exr(path: &Path, picture: &dyn Picture, half: bool) -> io::Result<()> {
    use exr::prelude::*;
    let (w, h) = (picture.width(), picture.height());
    let result = if half {
        write_rgba_file(path, w, h, |x, y| {
            let [r, g, b, a] = picture.rgba(x, y);
            (
                f16::from_f32(r),
                f16::from_f32(g),
                f16::from_f32(b),
                f16::from_f32(a),
            )
        })
    } else {
        write_rgba_file(path, w, h, |x, y| {
            let [r, g, b, a] = picture.rgba(x, y);
            (r, g, b, a)
        })
    };
    result.map_err(io::Error::other)
}
