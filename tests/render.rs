//! Render writes exactly the host's image: every depth, component layout, render scale and
//! row order, every pixel inside, not one byte outside.

mod common;

use common::*;
use genclip::host::{
    BitDepth, Components, HostOptions, Instance, ParamValue, RenderRequest, RenderedImage,
};

fn render(instance: &Instance, request: &RenderRequest) -> RenderedImage {
    instance
        .render(request)
        .unwrap_or_else(|e| panic!("render {request:?}: {e}"))
}

#[test]
fn every_layout_is_written_whole_and_nothing_outside_it() {
    let _g = serial();
    let options = HostOptions {
        project_size: (160.0, 90.0),
        ..quiet_options()
    };
    let (_host, plugin, instance) = instance(options, GENERATOR);
    instance
        .set_param("promptA", ParamValue::Str("a test card".into()))
        .unwrap();
    let mut checked = 0;
    for depth in [BitDepth::Float, BitDepth::Short, BitDepth::Byte] {
        for components in [Components::Rgba, Components::Rgb] {
            for scale in [1.0, 0.5, 0.25] {
                for negative in [false, true] {
                    let mut request = RenderRequest::new(7.0);
                    request.depth = depth;
                    request.components = components;
                    request.render_scale = (scale, scale);
                    request.negative_row_bytes = negative;
                    request.row_padding = 12;
                    // Two fills: a byte the plugin never wrote would differ between them.
                    request.fill_byte = 0xAB;
                    let a = render(&instance, &request);
                    request.fill_byte = 0x54;
                    let b = render(&instance, &request);
                    let what =
                        format!("{depth:?} {components:?} scale {scale} negative {negative}");
                    assert!(
                        a.guard_intact && b.guard_intact,
                        "wrote outside the image: {what}"
                    );
                    assert_eq!(a.pixels, b.pixels, "left pixels unwritten: {what}");
                    // The host rounds the region outward: 90 x 0.25 = 22.5 rows become 23.
                    let (w, h) = (
                        (160.0 * scale).ceil() as usize,
                        (90.0 * scale).ceil() as usize,
                    );
                    assert_eq!((a.width(), a.height()), (w, h), "{what}");
                    assert_eq!(
                        a.row_bytes.unsigned_abs(),
                        w * depth_bytes(depth) * components_count(components) + 12
                    );
                    assert_eq!(a.row_bytes < 0, negative);
                    assert_eq!(a.rgba_f32(w / 2, 1)[3], 1.0, "opaque: {what}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 36);
    drop(instance);
    plugin.unload().unwrap();
}

fn depth_bytes(d: BitDepth) -> usize {
    match d {
        BitDepth::Byte => 1,
        BitDepth::Short => 2,
        BitDepth::Float => 4,
    }
}

fn components_count(c: Components) -> usize {
    match c {
        Components::Rgba => 4,
        Components::Rgb => 3,
    }
}

/// The slate: a neutral background with legible text, the same picture at every scale.
#[test]
fn the_slate_is_neutral_with_text_and_scales_with_proxies() {
    let _g = serial();
    let options = HostOptions {
        project_size: (960.0, 540.0),
        ..quiet_options()
    };
    let (_host, plugin, instance) = instance(options, GENERATOR);
    instance
        .set_param("promptA", ParamValue::Str("a lighthouse in fog".into()))
        .unwrap();
    let full = render(&instance, &RenderRequest::new(0.0));
    let corner = full.rgba_f32(2, 2);
    assert!(
        (corner[0] - 0.16).abs() < 1e-6 && corner[0] == corner[1] && corner[1] == corner[2],
        "{corner:?}"
    );
    let lit = (0..full.height())
        .flat_map(|y| (0..full.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| full.rgba_f32(x, y)[0] > 0.5)
        .count();
    assert!(lit > 2000, "only {lit} bright pixels: no legible text");

    // A half-scale proxy is the same picture: compare each proxy pixel with the full-size
    // pixel at the same place (sampling at pixel centres, so most match exactly).
    let mut request = RenderRequest::new(0.0);
    request.render_scale = (0.5, 0.5);
    let half = render(&instance, &request);
    let same = (0..half.height())
        .flat_map(|y| (0..half.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            half.rgba_f32(x, y) == full.rgba_f32(2 * x + 1, 2 * y + 1)
                || half.rgba_f32(x, y) == full.rgba_f32(2 * x, 2 * y)
        })
        .count();
    assert!(
        same as f64 > 0.97 * (half.width() * half.height()) as f64,
        "{same} of {} match",
        half.width() * half.height()
    );

    // Linear output removes the sRGB curve.
    instance
        .set_param("outputTransfer", ParamValue::Choice(1))
        .unwrap();
    let linear = render(&instance, &RenderRequest::new(0.0));
    let expected = ((0.16f32 + 0.055) / 1.055).powf(2.4);
    assert!((linear.rgba_f32(2, 2)[0] - expected).abs() < 1e-6);
    drop(instance);
    plugin.unload().unwrap();
}

#[test]
fn frames_do_not_depend_on_render_order_or_instance() {
    let _g = serial();
    let options = HostOptions {
        project_size: (128.0, 72.0),
        ..quiet_options()
    };
    let (_host, plugin) = load(options);
    let a = plugin.create_instance(GENERATOR).unwrap();
    let b = plugin.create_instance(GENERATOR).unwrap();
    for inst in [&a, &b] {
        inst.set_param("promptA", ParamValue::Str("order".into()))
            .unwrap();
    }
    let forward: Vec<Vec<u8>> = [1.0, 3.0, 5.0]
        .iter()
        .map(|&t| render(&a, &RenderRequest::new(t)).pixels)
        .collect();
    let backward: Vec<Vec<u8>> = [5.0, 3.0, 1.0]
        .iter()
        .map(|&t| render(&b, &RenderRequest::new(t)).pixels)
        .collect();
    assert_eq!(forward[0], backward[2]);
    assert_eq!(forward[1], backward[1]);
    assert_eq!(forward[2], backward[0]);
    // A thumbnail render is a cheaper, sparser slate, never an error.
    let mut thumb = RenderRequest::new(3.0);
    thumb.thumbnail = true;
    thumb.render_scale = (0.25, 0.25);
    let thumbnail = render(&a, &thumb);
    thumb.thumbnail = false;
    let full_slate = render(&a, &thumb);
    assert_ne!(
        thumbnail.pixels, full_slate.pixels,
        "a thumbnail shows the compact slate"
    );
    drop((a, b));
    plugin.unload().unwrap();
}

#[test]
fn genclip_render_writes_png_and_exr_frames() {
    let out = scratch("cli-render");
    for (format, ext) in [
        ("png8", "png"),
        ("png16", "png"),
        ("exr-half", "exr"),
        ("exr-float", "exr"),
    ] {
        let dir = out.join(format);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_genclip"))
            .args(["render", "--bundle"])
            .arg(bundle_path())
            .args([
                "--prompt",
                "a harbour at dawn",
                "--width",
                "64",
                "--height",
                "36",
                "--frames",
                "3",
                "--threads",
                "2",
            ])
            .args(["--key", "weightB=0:0,2:1", "--format", format, "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        for i in 0..3 {
            let file = dir.join(format!("frame.{i:04}.{ext}"));
            let len = std::fs::metadata(&file)
                .unwrap_or_else(|_| panic!("{} missing", file.display()))
                .len();
            assert!(len > 100, "{} is {len} bytes", file.display());
        }
    }
}
