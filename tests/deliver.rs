//! Delivering a frame of the cached clip into a host image (src/effect/deliver.rs): exact
//! copies at identity, the output transfer, quantisation, frame blends, proxies averaged
//! down, every memory layout, the render window, and the time a 1080p frame takes.

use genclip::cache::Clip;
use genclip::effect::deliver::{
    cover_for, deliver, srgb_eotf, DeliverError, Delivery, Destination,
};
use genclip::effect::settings::Transfer;
use genclip::ofx::bindings::OfxRectI;
use genclip::ofx::image::{Components, Depth};
use genclip::timeline::plan::{Cover, Rect, Sample};
use std::time::Instant;

/// A clip whose samples are deterministic values in [0, 1], all different.
fn clip(frames: usize, width: usize, height: usize, channels: usize) -> Clip {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let data = (0..frames * width * height * channels)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Clip::new(frames, height, width, channels, data).unwrap()
}

/// The clip's RGB at column `x`, row `y` from the top, of frame `f`.
fn at(clip: &Clip, f: usize, x: usize, y: usize) -> [f32; 3] {
    let i = ((f * clip.height + y) * clip.width + x) * clip.channels;
    [clip.data[i], clip.data[i + 1], clip.data[i + 2]]
}

fn rect(x1: i32, y1: i32, x2: i32, y2: i32) -> OfxRectI {
    OfxRectI { x1, y1, x2, y2 }
}

fn still(frame: usize) -> Sample {
    Sample {
        a: frame,
        b: frame,
        weight: 0.0,
    }
}

fn never() -> bool {
    false
}

/// A host-like image in memory: bounds, layout, filled with a marker byte.
struct Image {
    data: Vec<u8>,
    bounds: OfxRectI,
    row_bytes: isize,
    depth: Depth,
    components: Components,
}

impl Image {
    fn new(bounds: OfxRectI, depth: Depth, components: Components, negative: bool) -> Image {
        let w = (bounds.x2 - bounds.x1) as usize;
        let h = (bounds.y2 - bounds.y1) as usize;
        // 8 bytes of padding per row, to catch a stride mistaken for a row length.
        let stride = w * depth.bytes() * components.count() + 8;
        Image {
            data: vec![0xAB; stride * h],
            bounds,
            row_bytes: if negative {
                -(stride as isize)
            } else {
                stride as isize
            },
            depth,
            components,
        }
    }

    fn render(
        &mut self,
        clip: &Clip,
        sample: Sample,
        cover: &Cover,
        window: OfxRectI,
        transfer: Transfer,
    ) -> Delivery {
        let mut dest = Destination::new(
            &mut self.data,
            self.bounds,
            self.row_bytes,
            self.depth,
            self.components,
        )
        .unwrap();
        deliver(clip, sample, cover, window, transfer, &mut dest, &never).unwrap()
    }

    /// The byte offset of pixel (x, y) (y up, image coordinates).
    fn offset(&self, x: i32, y: i32) -> usize {
        let h = (self.bounds.y2 - self.bounds.y1) as usize;
        let stride = self.row_bytes.unsigned_abs();
        let from_bottom = (y - self.bounds.y1) as usize;
        let row = if self.row_bytes >= 0 {
            from_bottom
        } else {
            h - 1 - from_bottom
        };
        row * stride + (x - self.bounds.x1) as usize * self.depth.bytes() * self.components.count()
    }

    /// The samples of pixel (x, y) as numbers (integers as their codes).
    fn pixel(&self, x: i32, y: i32) -> Vec<f32> {
        let o = self.offset(x, y);
        let n = self.components.count();
        (0..n)
            .map(|k| match self.depth {
                Depth::Float => {
                    f32::from_ne_bytes(self.data[o + 4 * k..o + 4 * k + 4].try_into().unwrap())
                }
                Depth::Short => f32::from(u16::from_ne_bytes(
                    self.data[o + 2 * k..o + 2 * k + 2].try_into().unwrap(),
                )),
                Depth::Byte => f32::from(self.data[o + k]),
            })
            .collect()
    }

    fn untouched(&self, x: i32, y: i32) -> bool {
        let o = self.offset(x, y);
        let n = self.depth.bytes() * self.components.count();
        self.data[o..o + n].iter().all(|&b| b == 0xAB)
    }
}

fn identity(width: u32, height: u32) -> (Cover, OfxRectI) {
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: f64::from(width),
        y2: f64::from(height),
    };
    (
        cover_for((width, height), rod, [1.0, 1.0], 1.0),
        rect(0, 0, width as i32, height as i32),
    )
}

#[test]
fn identity_size_is_an_exact_copy() {
    for channels in [3, 4] {
        let c = clip(3, 8, 6, channels);
        let (cover, bounds) = identity(8, 6);
        let mut img = Image::new(bounds, Depth::Float, Components::Rgba, false);
        assert_eq!(
            img.render(&c, still(1), &cover, bounds, Transfer::Display),
            Delivery::Complete
        );
        for y in 0..6 {
            for x in 0..8 {
                let want = at(&c, 1, x as usize, 5 - y as usize);
                assert_eq!(
                    img.pixel(x, y),
                    vec![want[0], want[1], want[2], 1.0],
                    "{x},{y}"
                );
            }
        }
    }
}

#[test]
fn linear_transfer_is_the_srgb_eotf_of_the_display_values() {
    let c = clip(1, 8, 6, 3);
    let (cover, bounds) = identity(8, 6);
    let mut img = Image::new(bounds, Depth::Float, Components::Rgba, false);
    img.render(&c, still(0), &cover, bounds, Transfer::Linear);
    let mut worst = 0f64;
    for y in 0..6 {
        for x in 0..8 {
            let want = at(&c, 0, x as usize, 5 - y as usize);
            let got = img.pixel(x, y);
            for k in 0..3 {
                worst = worst.max((f64::from(got[k]) - srgb_eotf(f64::from(want[k]))).abs());
            }
            assert_eq!(got[3], 1.0);
        }
    }
    assert!(worst < 1e-6, "{worst}");
    // The curve itself: the linear toe, the 2.4 power, the ends.
    assert_eq!(srgb_eotf(0.0), 0.0);
    assert!((srgb_eotf(0.04045) - 0.04045 / 12.92).abs() < 1e-15);
    assert!((srgb_eotf(0.5) - 0.214_041_140_482_232_54).abs() < 1e-12);
    assert!((srgb_eotf(1.0) - 1.0).abs() < 1e-15);
}

/// A 4 x 1 clip of chosen values.
fn values(v: [f32; 4]) -> Clip {
    let data = v.iter().flat_map(|&x| [x, x, x]).collect();
    Clip::new(1, 1, 4, 3, data).unwrap()
}

#[test]
fn integer_outputs_round_and_clamp() {
    let c = values([(100.0 + 0.49) / 255.0, (100.0 + 0.51) / 255.0, -0.25, 1.5]);
    let (cover, bounds) = identity(4, 1);
    let mut img = Image::new(bounds, Depth::Byte, Components::Rgba, false);
    img.render(&c, still(0), &cover, bounds, Transfer::Display);
    let red: Vec<f32> = (0..4).map(|x| img.pixel(x, 0)[0]).collect();
    assert_eq!(red, vec![100.0, 101.0, 0.0, 255.0]);
    assert_eq!(img.pixel(0, 0)[3], 255.0);

    let c = values([
        (30000.0 + 0.49) / 65535.0,
        (30000.0 + 0.51) / 65535.0,
        0.0,
        1.0,
    ]);
    let mut img = Image::new(bounds, Depth::Short, Components::Rgb, false);
    img.render(&c, still(0), &cover, bounds, Transfer::Display);
    let red: Vec<f32> = (0..4).map(|x| img.pixel(x, 0)[0]).collect();
    assert_eq!(red, vec![30000.0, 30001.0, 0.0, 65535.0]);
}

#[test]
fn a_halfway_blend_is_the_mean_of_the_neighbours() {
    let c = clip(4, 8, 6, 3);
    let (cover, bounds) = identity(8, 6);
    let mut img = Image::new(bounds, Depth::Float, Components::Rgba, false);
    let half = Sample {
        a: 1,
        b: 2,
        weight: 0.5,
    };
    img.render(&c, half, &cover, bounds, Transfer::Display);
    for y in 0..6 {
        for x in 0..8 {
            let (a, b) = (
                at(&c, 1, x as usize, 5 - y as usize),
                at(&c, 2, x as usize, 5 - y as usize),
            );
            let got = img.pixel(x, y);
            for k in 0..3 {
                assert!((got[k] - (a[k] + b[k]) / 2.0).abs() < 1e-7, "{x},{y}");
            }
        }
    }
    // A quarter of the way: (3a + b) / 4.
    let quarter = Sample {
        a: 0,
        b: 1,
        weight: 0.25,
    };
    img.render(&c, quarter, &cover, bounds, Transfer::Display);
    let (a, b) = (at(&c, 0, 3, 2), at(&c, 1, 3, 2));
    assert!((img.pixel(3, 3)[1] - (0.75 * a[1] + 0.25 * b[1])).abs() < 1e-7);
}

#[test]
fn a_half_scale_proxy_is_the_full_frame_averaged_down() {
    let c = clip(1, 8, 6, 3);
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 8.0,
        y2: 6.0,
    };
    let full_cover = cover_for((8, 6), rod, [1.0, 1.0], 1.0);
    let mut full = Image::new(rect(0, 0, 8, 6), Depth::Float, Components::Rgba, false);
    full.render(
        &c,
        still(0),
        &full_cover,
        rect(0, 0, 8, 6),
        Transfer::Display,
    );
    let proxy_cover = cover_for((8, 6), rod, [0.5, 0.5], 1.0);
    let mut proxy = Image::new(rect(0, 0, 4, 3), Depth::Float, Components::Rgba, false);
    proxy.render(
        &c,
        still(0),
        &proxy_cover,
        rect(0, 0, 4, 3),
        Transfer::Display,
    );
    for y in 0..3 {
        for x in 0..4 {
            for (k, got) in proxy.pixel(x, y).into_iter().enumerate().take(3) {
                let mean = (full.pixel(2 * x, 2 * y)[k]
                    + full.pixel(2 * x + 1, 2 * y)[k]
                    + full.pixel(2 * x, 2 * y + 1)[k]
                    + full.pixel(2 * x + 1, 2 * y + 1)[k])
                    / 4.0;
                assert!((got - mean).abs() < 1e-6, "{x},{y}");
            }
        }
    }
}

#[test]
fn a_larger_generation_is_averaged_down_and_a_smaller_one_interpolated() {
    // 16 x 12 generated onto an 8 x 6 frame: each host pixel is the mean of a 2 x 2 block.
    let c = clip(1, 16, 12, 3);
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 8.0,
        y2: 6.0,
    };
    let cover = cover_for((16, 12), rod, [1.0, 1.0], 1.0);
    let mut img = Image::new(rect(0, 0, 8, 6), Depth::Float, Components::Rgb, false);
    img.render(&c, still(0), &cover, rect(0, 0, 8, 6), Transfer::Display);
    for y in 0..6 {
        for x in 0..8 {
            let (cx, cy) = (2 * x as usize, 2 * (5 - y as usize));
            let mean = (at(&c, 0, cx, cy)[0]
                + at(&c, 0, cx + 1, cy)[0]
                + at(&c, 0, cx, cy + 1)[0]
                + at(&c, 0, cx + 1, cy + 1)[0])
                / 4.0;
            assert!((img.pixel(x, y)[0] - mean).abs() < 1e-6);
        }
    }
    // Columns valued by their index, 8 x 4 onto 8 x 8: scaled 2x (to cover the height),
    // centred, the sides cropped. Host pixel 3 has its centre at 3.5, generated 3.75:
    // a quarter of the way from column 3's centre to column 4's.
    let mut data = Vec::new();
    for _row in 0..4 {
        for col in 0..8 {
            data.extend([col as f32; 3]);
        }
    }
    let c = Clip::new(1, 4, 8, 3, data).unwrap();
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 8.0,
        y2: 8.0,
    };
    let cover = cover_for((8, 4), rod, [1.0, 1.0], 1.0);
    let mut img = Image::new(rect(0, 0, 8, 8), Depth::Float, Components::Rgba, false);
    img.render(&c, still(0), &cover, rect(0, 0, 8, 8), Transfer::Display);
    assert!((img.pixel(3, 4)[0] - 3.25).abs() < 1e-6);
    assert!((img.pixel(4, 4)[0] - 3.75).abs() < 1e-6);
    // Symmetric about the centre.
    for x in 0..8 {
        let (l, r) = (img.pixel(x, 0)[0], img.pixel(7 - x, 0)[0]);
        assert!((l + r - 7.0).abs() < 1e-6, "{x}: {l} {r}");
    }
}

#[test]
fn anamorphic_pixels_average_pairs_of_generated_columns() {
    // Pixel aspect 2: an 8 x 6 pixel image is 16 x 6 canonical; a 16 x 6 generation puts
    // two generated columns in every host pixel.
    let c = clip(1, 16, 6, 3);
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 16.0,
        y2: 6.0,
    };
    let cover = cover_for((16, 6), rod, [1.0, 1.0], 2.0);
    let mut img = Image::new(rect(0, 0, 8, 6), Depth::Float, Components::Rgb, false);
    img.render(&c, still(0), &cover, rect(0, 0, 8, 6), Transfer::Display);
    for y in 0..6 {
        for x in 0..8 {
            let row = 5 - y as usize;
            let mean =
                (at(&c, 0, 2 * x as usize, row)[2] + at(&c, 0, 2 * x as usize + 1, row)[2]) / 2.0;
            assert!((img.pixel(x, y)[2] - mean).abs() < 1e-6);
        }
    }
}

#[test]
fn every_layout_gives_the_same_pixels() {
    let c = clip(2, 10, 7, 3);
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 13.0,
        y2: 9.0,
    };
    let cover = cover_for((10, 7), rod, [1.0, 1.0], 1.0);
    let bounds = rect(0, 0, 13, 9);
    let sample = Sample {
        a: 0,
        b: 1,
        weight: 0.3,
    };
    let mut reference = Image::new(bounds, Depth::Float, Components::Rgba, false);
    reference.render(&c, sample, &cover, bounds, Transfer::Linear);
    for depth in [Depth::Float, Depth::Short, Depth::Byte] {
        for components in [Components::Rgba, Components::Rgb] {
            for negative in [false, true] {
                let mut img = Image::new(bounds, depth, components, negative);
                img.render(&c, sample, &cover, bounds, Transfer::Linear);
                let scale = match depth {
                    Depth::Float => 1.0,
                    Depth::Short => 65535.0,
                    Depth::Byte => 255.0,
                };
                for y in 0..9 {
                    for x in 0..13 {
                        let want = reference.pixel(x, y);
                        let got = img.pixel(x, y);
                        assert_eq!(got.len(), components.count());
                        for k in 0..got.len() {
                            let w = (want[k].clamp(0.0, 1.0) * scale).round();
                            let w = if depth == Depth::Float { want[k] } else { w };
                            assert_eq!(got[k], w, "{depth:?} {components:?} {negative} {x},{y}");
                        }
                    }
                }
                // The row padding is never written.
                let stride = img.row_bytes.unsigned_abs();
                let row_len = 13 * depth.bytes() * components.count();
                for row in img.data.chunks(stride) {
                    assert!(row[row_len..].iter().all(|&b| b == 0xAB));
                }
            }
        }
    }
}

#[test]
fn only_the_render_window_is_written() {
    let c = clip(1, 8, 6, 3);
    let (cover, bounds) = identity(8, 6);
    let mut img = Image::new(bounds, Depth::Float, Components::Rgba, true);
    let window = rect(2, 1, 6, 4);
    img.render(&c, still(0), &cover, window, Transfer::Display);
    for y in 0..6 {
        for x in 0..8 {
            let inside = (2..6).contains(&x) && (1..4).contains(&y);
            assert_eq!(!img.untouched(x, y), inside, "{x},{y}");
        }
    }
    // A window reaching past the image is cut to it; the image reaching past the picture
    // (a region larger than the frame) is transparent black there.
    let mut img = Image::new(rect(-2, -1, 10, 7), Depth::Float, Components::Rgba, false);
    img.render(
        &c,
        still(0),
        &cover,
        rect(-100, -100, 100, 100),
        Transfer::Display,
    );
    assert_eq!(img.pixel(-2, 3), vec![0.0; 4]);
    assert_eq!(img.pixel(4, 6), vec![0.0; 4]);
    let want = at(&c, 0, 4, 2);
    assert_eq!(img.pixel(4, 3), vec![want[0], want[1], want[2], 1.0]);
}

#[test]
fn abort_and_mismatches() {
    let c = clip(2, 8, 6, 3);
    let (cover, bounds) = identity(8, 6);
    let mut img = Image::new(bounds, Depth::Float, Components::Rgba, false);
    let mut dest = Destination::new(
        &mut img.data,
        bounds,
        img.row_bytes,
        Depth::Float,
        Components::Rgba,
    )
    .unwrap();
    let stop = || true;
    assert_eq!(
        deliver(
            &c,
            still(0),
            &cover,
            bounds,
            Transfer::Display,
            &mut dest,
            &stop
        ),
        Ok(Delivery::Aborted)
    );
    let past = deliver(
        &c,
        still(2),
        &cover,
        bounds,
        Transfer::Display,
        &mut dest,
        &never,
    );
    assert!(matches!(past, Err(DeliverError(ref e)) if e.contains("frame 2 is needed")));
    let (other, _) = identity(16, 12);
    let wrong = deliver(
        &c,
        still(0),
        &other,
        bounds,
        Transfer::Display,
        &mut dest,
        &never,
    );
    assert!(matches!(wrong, Err(DeliverError(ref e)) if e.contains("8 x 6")));
    // A buffer too small for its layout is refused before anything is written.
    let mut small = vec![0u8; 100];
    assert!(Destination::new(&mut small, bounds, 8 * 16, Depth::Float, Components::Rgba).is_err());
}

/// Prints the time of a 1920 x 1080 float delivery (832 x 480 generated, a frame blend and
/// the Linear transfer: the slowest path); run with --nocapture to see it.
#[test]
fn delivery_speed_1080p() {
    let c = clip(2, 832, 480, 3);
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 1920.0,
        y2: 1080.0,
    };
    let cover = cover_for((832, 480), rod, [1.0, 1.0], 1.0);
    let bounds = rect(0, 0, 1920, 1080);
    let sample = Sample {
        a: 0,
        b: 1,
        weight: 0.4,
    };
    for (depth, transfer) in [
        (Depth::Float, Transfer::Linear),
        (Depth::Float, Transfer::Display),
        (Depth::Byte, Transfer::Display),
    ] {
        let mut img = Image::new(bounds, depth, Components::Rgba, false);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            img.render(&c, sample, &cover, bounds, transfer);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "deliver 832x480 -> 1920x1080 RGBA {depth:?} {transfer:?}: {:.1} ms (best of 5)",
            best * 1e3
        );
        assert!(!img.untouched(960, 540));
    }
}
