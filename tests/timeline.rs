//! The clip plan (src/timeline): frame-rate conform, 4k+1 counts, sizes and the cover
//! transform, windows for long clips, the prompt schedule and per-latent-frame weights.

use genclip::timeline::plan::*;
use genclip::timeline::schedule::*;

const WAN_FPS: Rate = Rate { num: 16, den: 1 };

fn host_map(fps: f64) -> TimeMap {
    TimeMap {
        mode: RateMode::Host,
        host_rate: Rate::from_fps(fps).unwrap(),
        model_rate: WAN_FPS,
        start: 0.0,
    }
}

fn native_map() -> TimeMap {
    TimeMap {
        mode: RateMode::ModelNative,
        host_rate: Rate::from_fps(24.0).unwrap(),
        model_rate: WAN_FPS,
        start: 0.0,
    }
}

// ----------------------------------------------------------------------------- rates

#[test]
fn model_native_is_one_to_one() {
    let map = native_map();
    for i in [0.0, 1.0, 80.0, 1e6] {
        assert_eq!(map.model_position(i), i);
    }
    assert_eq!(
        map.sample(10.0, 81),
        Sample {
            a: 10,
            b: 10,
            weight: 0.0
        }
    );
    assert_eq!(map.needed_model_frames(81), 81);
}

#[test]
fn ntsc_rates_do_not_drift_over_long_clips() {
    // 24000 host frames at 23.976 are 1001 s: exactly 16016 model frames; likewise 30000 at
    // 29.97 and 60000 at 59.94. Checked out to ~28 hours of timeline.
    for (fps, per, model) in [
        (23.976, 24000u64, 16016u64),
        (29.97, 30000, 16016),
        (59.94, 60000, 16016),
    ] {
        let map = host_map(fps);
        for k in [1u64, 7, 100, 1000] {
            let pos = map.model_position((per * k) as f64);
            assert_eq!(pos, (model * k) as f64, "{fps} fps, {k} periods");
            let s = map.sample((per * k) as f64, usize::MAX);
            assert_eq!((s.a as u64, s.weight), (model * k, 0.0));
        }
        // The naive product with the rounded rate would be frames off by now.
        let naive = (per * 1000) as f64 * 16.0 / fps;
        assert!((naive - (model * 1000) as f64).abs() > 1.0);
    }
}

#[test]
fn every_host_frame_matches_exact_rational() {
    for (fps, num, den) in [
        (23.976, 24000u128, 1001u128),
        (29.97, 30000, 1001),
        (25.0, 25, 1),
        (59.94, 60000, 1001),
    ] {
        let map = host_map(fps);
        for i in (0u128..2_000_000).step_by(997) {
            // position = i * 16 * den / num
            let n = i * 16 * den;
            let exact = (n / num) as f64 + (n % num) as f64 / num as f64;
            let got = map.model_position(i as f64);
            assert!((got - exact).abs() < 1e-6, "{fps}: {i} -> {got} vs {exact}");
        }
    }
}

#[test]
fn conform_samples_and_blends() {
    // 24 fps host: host frame 3 is model frame 2; host 1 is 2/3 of the way from 0 to 1.
    let map = host_map(24.0);
    assert_eq!(
        map.sample(3.0, 81),
        Sample {
            a: 2,
            b: 2,
            weight: 0.0
        }
    );
    let s = map.sample(1.0, 81);
    assert_eq!((s.a, s.b), (0, 1));
    assert!((s.weight - 2.0 / 3.0).abs() < 1e-12);
    // Fields / retimed in-betweens: 0.75 host frames -> model 0.5.
    let s = map.sample(0.75, 81);
    assert_eq!((s.a, s.b, s.weight), (0, 1, 0.5));
    // 25 fps: host 25 = model 16; a field at 12.5 -> model 8.
    let map = host_map(25.0);
    assert_eq!(map.model_position(25.0), 16.0);
    assert_eq!(map.model_position(12.5), 8.0);
    // 29.97 field.
    let map = host_map(29.97);
    let p = map.model_position(0.5);
    assert!((p - 0.5 * 16016.0 / 30000.0).abs() < 1e-12);
    // Before the clip holds the first frame, after it the last.
    assert_eq!(map.sample(-3.0, 81).a, 0);
    let s = map.sample(1e6, 81);
    assert_eq!((s.a, s.b, s.weight), (80, 80, 0.0));
}

#[test]
fn clip_start_offsets_host_time() {
    let mut map = host_map(24.0);
    map.start = 1000.0;
    assert_eq!(map.model_position(1003.0), 2.0);
    assert_eq!(map.host_time(2.0), 1003.0);
}

#[test]
fn needed_frames_cover_the_last_host_frame() {
    // 5 s + 1 frame at 24 fps = 81 model frames exactly.
    assert_eq!(host_map(24.0).needed_model_frames(121), 81);
    // 299 host frames at 23.976 reach model position 199.53: frames 0..=200.
    assert_eq!(host_map(23.976).needed_model_frames(300), 201);
    assert_eq!(host_map(25.0).needed_model_frames(1), 1);
    for fps in [23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0] {
        let map = host_map(fps);
        for n in [1usize, 2, 50, 121, 1000, 12345] {
            let needed = map.needed_model_frames(n);
            let last = map.model_position((n - 1) as f64);
            assert!((needed - 1) as f64 >= last - 1e-9, "{fps} {n}");
            assert!(((needed - 1) as f64) < last + 1.0, "{fps} {n}");
        }
    }
}

// ----------------------------------------------------------------------------- counts

#[test]
fn counts_round_up_to_4k_plus_1() {
    let cases = [
        (0, 1),
        (1, 1),
        (2, 5),
        (5, 5),
        (6, 9),
        (80, 81),
        (81, 81),
        (82, 85),
    ];
    for (n, want) in cases {
        assert_eq!(round_up_4k1(n), want, "{n}");
    }
    let c = FrameCount::new(10);
    assert_eq!(c.frames, 13);
    assert!(c.rounded_up());
    assert!(!FrameCount::new(81).rounded_up());
}

#[test]
fn plan_says_when_it_rounds_up() {
    let host = HostClip {
        fps: 24.0,
        frames: 10,
        start: 0.0,
        project_size: (1920, 1080),
        pixel_aspect: 1.0,
    };
    let plan = ClipPlan::new(
        &host,
        RateMode::ModelNative,
        SizeChoice::Project,
        &WAN21_1_3B,
    )
    .unwrap();
    assert_eq!(
        plan.windows.windows,
        vec![Window {
            start: 0,
            frames: 13
        }]
    );
    let note = plan.rounding_note().unwrap();
    assert!(
        note.contains("needs 10") && note.contains("13 are generated"),
        "{note}"
    );
    let host = HostClip { frames: 81, ..host };
    let plan = ClipPlan::new(
        &host,
        RateMode::ModelNative,
        SizeChoice::Project,
        &WAN21_1_3B,
    )
    .unwrap();
    assert_eq!(plan.rounding_note(), None);
    assert_eq!(plan.size, (832, 480));

    // 23.976 conform, 12.5 s: 201 model frames in three windows, the last rounded to 73.
    let host = HostClip {
        fps: 23.976,
        frames: 300,
        ..host
    };
    let plan = ClipPlan::new(
        &host,
        RateMode::Host,
        SizeChoice::Native(1280, 720),
        &WAN21_14B,
    )
    .unwrap();
    assert_eq!(plan.count.needed, 201);
    let starts: Vec<_> = plan
        .windows
        .windows
        .iter()
        .map(|w| (w.start, w.frames))
        .collect();
    assert_eq!(starts, vec![(0, 81), (65, 81), (130, 73)]);
    // The clip is generated as one 4k+1 piece (201 = 4·50 + 1): nothing past its end.
    assert_eq!(plan.count.frames, 201);
    assert_eq!(plan.rounding_note(), None);
    assert_eq!(plan.size, (1280, 720));
}

#[test]
fn plan_rejects_what_cannot_be_generated() {
    let host = HostClip {
        fps: 24.0,
        frames: 0,
        start: 0.0,
        project_size: (1920, 1080),
        pixel_aspect: 1.0,
    };
    let e = ClipPlan::new(&host, RateMode::Host, SizeChoice::Project, &WAN21_1_3B).unwrap_err();
    assert!(e.0.contains("no frames"), "{e}");
    let host = HostClip {
        frames: 10,
        fps: 0.0,
        ..host
    };
    let e = ClipPlan::new(&host, RateMode::Host, SizeChoice::Project, &WAN21_1_3B).unwrap_err();
    assert!(e.0.contains("frame rate"), "{e}");
    let host = HostClip { fps: 25.0, ..host };
    let e = ClipPlan::new(
        &host,
        RateMode::Host,
        SizeChoice::Native(830, 480),
        &WAN21_1_3B,
    )
    .unwrap_err();
    assert!(e.0.contains("multiples of 16"), "{e}");
    let host = HostClip {
        project_size: (0, 1080),
        ..host
    };
    assert!(ClipPlan::new(&host, RateMode::Host, SizeChoice::Project, &WAN21_1_3B).is_err());
}

// ----------------------------------------------------------------------------- sizes

fn assert_fits(size: (u32, u32), aspect: f64, budget: f64) {
    let (w, h) = size;
    assert!(w % 16 == 0 && h % 16 == 0 && w > 0 && h > 0, "{size:?}");
    let got = w as f64 / h as f64;
    assert!(
        (got / aspect).ln().abs() < 0.02,
        "{size:?} for aspect {aspect}"
    );
    let area = w as f64 * h as f64;
    assert!(
        (area / budget).ln().abs() < 0.1,
        "{size:?} for {budget} pixels"
    );
}

#[test]
fn project_sizes_fit_the_model() {
    let p480 = 832.0 * 480.0;
    let p720 = 1280.0 * 720.0;
    // 16:9 and 9:16 take the native sizes.
    assert_eq!(
        fit_project_size(1920, 1080, 1.0, &WAN21_1_3B).unwrap(),
        (832, 480)
    );
    assert_eq!(
        fit_project_size(1080, 1920, 1.0, &WAN21_1_3B).unwrap(),
        (480, 832)
    );
    assert_eq!(
        fit_project_size(1920, 1080, 1.0, &WAN21_14B).unwrap(),
        (1280, 720)
    );
    assert_eq!(
        fit_project_size(2160, 3840, 1.0, &WAN21_14B).unwrap(),
        (720, 1280)
    );
    assert_eq!(
        fit_project_size(854, 480, 1.0, &WAN21_14B).unwrap(),
        (832, 480)
    );
    // Anamorphic 1440x1080 at 4/3 pixels is 16:9 on screen.
    assert_eq!(
        fit_project_size(1440, 1080, 4.0 / 3.0, &WAN21_1_3B).unwrap(),
        (832, 480)
    );
    // 4:3 and scope (2.39:1): the project's aspect at the native pixel count.
    assert_fits(
        fit_project_size(1440, 1080, 1.0, &WAN21_1_3B).unwrap(),
        4.0 / 3.0,
        p480,
    );
    assert_fits(
        fit_project_size(2048, 858, 1.0, &WAN21_1_3B).unwrap(),
        2048.0 / 858.0,
        p480,
    );
    assert_fits(
        fit_project_size(2048, 858, 1.0, &WAN21_14B).unwrap(),
        2048.0 / 858.0,
        p720,
    );
    // Tiny projects are generated at the native pixel count and scaled down.
    assert_eq!(
        fit_project_size(160, 90, 1.0, &WAN21_14B).unwrap(),
        (832, 480)
    );
    assert_fits(
        fit_project_size(64, 48, 1.0, &WAN21_1_3B).unwrap(),
        4.0 / 3.0,
        p480,
    );
    assert_fits(
        fit_project_size(16, 16, 1.0, &WAN21_1_3B).unwrap(),
        1.0,
        p480,
    );
    // A model without known training sizes generates the project's size (multiples of 16),
    // up to 720p's pixel count.
    assert_eq!(fit_project_size(48, 32, 1.0, &WAN_OTHER).unwrap(), (48, 32));
    assert_eq!(fit_project_size(50, 30, 1.0, &WAN_OTHER).unwrap(), (48, 32));
    assert_fits(
        fit_project_size(3840, 2160, 1.0, &WAN_OTHER).unwrap(),
        16.0 / 9.0,
        p720,
    );
    // Huge ones at the largest native tier and scaled up.
    assert_eq!(
        fit_project_size(7680, 4320, 1.0, &WAN21_14B).unwrap(),
        (1280, 720)
    );
    assert_fits(
        fit_project_size(8192, 4320, 1.0, &WAN21_14B).unwrap(),
        8192.0 / 4320.0,
        p720,
    );
    assert_fits(
        fit_project_size(8192, 4320, 1.0, &WAN21_1_3B).unwrap(),
        8192.0 / 4320.0,
        p480,
    );
    assert!(fit_project_size(0, 0, 1.0, &WAN21_1_3B).is_err());
}

#[test]
fn cover_maps_centre_to_centre_and_fills() {
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 1920.0,
        y2: 1080.0,
    };
    for (gw, gh) in [(832u32, 480u32), (480, 832), (720, 544), (1280, 720)] {
        let c = Cover::new(gw, gh, rod);
        let (cx, cy) = c.to_host(gw as f64 / 2.0, gh as f64 / 2.0);
        assert!((cx - 960.0).abs() < 1e-9 && (cy - 540.0).abs() < 1e-9);
        // Covers: the generated frame's corners lie on or outside the RoD.
        let (x0, y0) = c.to_host(0.0, 0.0);
        let (x1, y1) = c.to_host(gw as f64, gh as f64);
        assert!(x0 <= 1e-9 && y0 <= 1e-9 && x1 >= 1920.0 - 1e-9 && y1 >= 1080.0 - 1e-9);
        // One axis fits exactly (the other is cropped symmetrically).
        assert!(
            (x0.abs() < 1e-9 && (x1 - 1920.0).abs() < 1e-9)
                || (y0.abs() < 1e-9 && (y1 - 1080.0).abs() < 1e-9)
        );
        assert!((x0 + x1 - 1920.0).abs() < 1e-9 && (y0 + y1 - 1080.0).abs() < 1e-9);
        // Round trip.
        let (gx, gy) = c.to_generated(x1, y1);
        assert!((gx - gw as f64).abs() < 1e-9 && (gy - gh as f64).abs() < 1e-9);
    }
    // 832x480 onto 16:9: full width, 2.5 % of the height cropped.
    let c = Cover::new(832, 480, rod);
    let v = c.visible(rod);
    assert!((v.x1).abs() < 1e-9 && (v.x2 - 832.0).abs() < 1e-9);
    assert!(v.y1 > 0.0 && (v.y1 + v.y2 - 480.0).abs() < 1e-9);
    // The host's centre pixel samples the generated centre; top-left host pixel the top rows.
    let (col, row) = c.sample_position(960.0, 540.0);
    assert!((col - 415.5).abs() < 1e-9 && (row - 239.5).abs() < 1e-9);
    let (_, row_top) = c.sample_position(960.0, 1079.5);
    assert!(row_top < 10.0);
}

#[test]
fn render_scale_scales_the_same_result() {
    let rod = Rect {
        x1: 0.0,
        y1: 0.0,
        x2: 1920.0,
        y2: 1080.0,
    };
    let full = Cover::new(832, 480, rod);
    let half = full.at_render_scale(0.5, 0.5, 1.0);
    assert_eq!(half.generated, (832, 480));
    let (cx, cy) = half.to_host(416.0, 240.0);
    assert!((cx - 480.0).abs() < 1e-9 && (cy - 270.0).abs() < 1e-9);
    // The same generated point at half the pixels.
    let (fx, fy) = full.to_host(100.0, 50.0);
    let (hx, hy) = half.to_host(100.0, 50.0);
    assert!((hx - fx / 2.0).abs() < 1e-9 && (hy - fy / 2.0).abs() < 1e-9);
    // Pixel aspect 2: canonical width 1920 is 960 pixels.
    let wide = full.at_render_scale(1.0, 1.0, 2.0);
    let (cx, _) = wide.to_host(416.0, 240.0);
    assert!((cx - 480.0).abs() < 1e-9);
}

// ----------------------------------------------------------------------------- windows

#[test]
fn windows_cover_every_frame_with_weights_summing_to_one() {
    for needed in (1..=700).chain([1000, 4001]) {
        let plan = WindowPlan::new(needed);
        for w in &plan.windows {
            assert!(
                w.frames <= NATIVE_WINDOW && (w.frames - 1) % 4 == 0,
                "{needed}: {w:?}"
            );
        }
        for pair in plan.windows.windows(2) {
            assert_eq!(pair[0].end() - pair[1].start, WINDOW_OVERLAP, "{needed}");
        }
        assert!(plan.generated_end() >= needed);
        assert!(plan.generated_end() - needed < 4 || plan.windows.len() > 1);
        for f in 0..needed {
            let src = plan.sources(f);
            assert!(!src.is_empty() && src.len() <= 2, "{needed}: frame {f}");
            let sum: f64 = src.iter().map(|s| s.2).sum();
            assert!(
                (sum - 1.0).abs() < 1e-12,
                "{needed}: frame {f} sums to {sum}"
            );
            assert!(src.iter().all(|s| s.2 > 0.0));
        }
        // The minimum number of windows.
        let min = if needed <= 81 {
            1
        } else {
            (needed - 81).div_ceil(65) + 1
        };
        assert_eq!(plan.windows.len(), min, "{needed}");
    }
}

#[test]
fn exactly_81_frames_is_one_window() {
    let plan = WindowPlan::new(81);
    assert_eq!(
        plan.windows,
        vec![Window {
            start: 0,
            frames: 81
        }]
    );
    assert!(plan.weights(0).iter().all(|&w| w == 1.0));
    assert!(!plan.rounded_up());
}

#[test]
fn overlap_cross_fades_linearly() {
    let plan = WindowPlan::new(146);
    assert_eq!(
        plan.windows,
        vec![
            Window {
                start: 0,
                frames: 81
            },
            Window {
                start: 65,
                frames: 81
            }
        ]
    );
    let a = plan.weights(0);
    let b = plan.weights(1);
    assert_eq!(a[64], 1.0);
    assert!((b[0] - 1.0 / 17.0).abs() < 1e-12 && (a[65] - 16.0 / 17.0).abs() < 1e-12);
    assert!((b[15] - 16.0 / 17.0).abs() < 1e-12);
    assert_eq!(b[16], 1.0);
}

// ----------------------------------------------------------------------------- schedule

#[test]
fn schedule_parses_tolerantly() {
    let s = Schedule::parse("0: a harbour at dawn; 48: the same harbour at night")
        .unwrap()
        .unwrap();
    assert_eq!(
        s.entries,
        vec![
            Entry {
                frame: 0,
                prompt: "a harbour at dawn".into(),
                blend_from: None,
            },
            Entry {
                frame: 48,
                prompt: "the same harbour at night".into(),
                blend_from: None,
            },
        ]
    );
    let s2 = Schedule::parse("\n  0 :a harbour at dawn ;\r\n\n48:   the same harbour at night;;\n")
        .unwrap()
        .unwrap();
    assert_eq!(s, s2);
    // Out of order, a ':' inside the prompt, a duplicate frame (the last one wins).
    let s = Schedule::parse("48: night\n0: a 2:1 shot\n48: late night")
        .unwrap()
        .unwrap();
    assert_eq!(s.entries[0].prompt, "a 2:1 shot");
    assert_eq!(
        s.entries[1],
        Entry {
            frame: 48,
            prompt: "late night".into(),
            blend_from: None,
        }
    );
    assert_eq!(s.entries.len(), 2);
    for empty in ["", "  ", ";;", "\n ; \n"] {
        assert_eq!(Schedule::parse(empty).unwrap(), None);
    }
}

#[test]
fn schedule_rejects_garbage_with_where_and_what() {
    let cases = [
        ("a harbour at dawn", "line 1, entry 1", "has no ':'"),
        (
            "0: dawn; x: night",
            "line 1, entry 2",
            "\"x\" is not a frame number",
        ),
        (
            "0: dawn\n-5: night",
            "line 2, entry 2",
            "\"-5\" is not a frame number",
        ),
        (
            "0: dawn\n\n12.5: night",
            "line 3, entry 2",
            "is not a frame number",
        ),
        ("0: dawn; 12:", "entry 2", "frame 12 has no prompt"),
        (": dawn", "entry 1", "no frame number before the ':'"),
        (
            "0: dawn; 48-24: night",
            "entry 2",
            "runs backwards; write the frame it starts at first: '24-48: night'",
        ),
        ("0: dawn; 24-24: night", "entry 2", "has no length"),
        (
            "0: dawn; 24-x: night",
            "entry 2",
            "\"x\" is not a frame number",
        ),
        (
            "12-48: night; 60: rain",
            "line 1, entry 1",
            "nothing to blend from",
        ),
        (
            "0: dawn\n30: noon\n24-48: night",
            "line 3, entry 3",
            "starts before frame 30",
        ),
    ];
    for (text, place, what) in cases {
        let e = Schedule::parse(text).unwrap_err().0;
        assert!(e.contains(place) && e.contains(what), "{text:?}: {e}");
    }
}

#[test]
fn two_entry_schedule_cuts_at_the_latent_frame_holding_its_frame() {
    let s = Schedule::parse("0: dawn; 48: night").unwrap().unwrap();
    let times = latent_host_times(
        Window {
            start: 0,
            frames: 81,
        },
        &native_map(),
    );
    assert_eq!(times.len(), 21);
    assert_eq!(times[1], vec![1.0, 2.0, 3.0, 4.0]);
    let c = schedule_conditioning(&s, &times);
    assert_eq!(c.prompts, vec!["dawn".to_string(), "night".into()]);
    // Host frame 48 is model frame 48, in latent frame 12 (frames 45..=48): before it the
    // rows are exactly dawn, from the next one exactly night; latent 12 holds one night
    // frame of four.
    for j in 0..12 {
        assert_eq!(c.weights[j], vec![1.0, 0.0], "{j}");
    }
    assert_eq!(c.weights[12], vec![0.75, 0.25]);
    for j in 13..21 {
        assert_eq!(c.weights[j], vec![0.0, 1.0], "{j}");
    }
    assert!(!c.is_constant());
    // Before the first entry holds it: a schedule starting at 100 is all "dawn" here.
    let late = Schedule::parse("100: dawn; 200: night").unwrap().unwrap();
    let c = schedule_conditioning(&late, &times);
    assert_eq!(c.prompts, vec!["dawn".to_string()]);
    assert!(c.is_constant() && c.single_prompt() == Some("dawn"));
}

#[test]
fn a_range_entry_blends_over_its_frames() {
    let s = Schedule::parse("0: dawn; 24-48: night; 60: rain")
        .unwrap()
        .unwrap();
    assert_eq!(s.entries[1].blend_from, Some(24));
    assert_eq!(s.weights_at(10.0), vec![1.0, 0.0, 0.0]);
    assert_eq!(s.weights_at(24.0), vec![1.0, 0.0, 0.0]);
    assert_eq!(s.weights_at(30.0), vec![0.75, 0.25, 0.0]);
    assert_eq!(s.weights_at(48.0), vec![0.0, 1.0, 0.0]);
    assert_eq!(s.weights_at(59.5), vec![0.0, 1.0, 0.0]);
    // "60: rain" is a cut.
    assert_eq!(s.weights_at(60.0), vec![0.0, 0.0, 1.0]);
    let times = latent_host_times(
        Window {
            start: 0,
            frames: 81,
        },
        &native_map(),
    );
    let c = schedule_conditioning(&s, &times);
    for (j, frame_times) in times.iter().enumerate().skip(1) {
        let mean_night = frame_times
            .iter()
            .map(|&t| ((t - 24.0) / 24.0).clamp(0.0, 1.0) * f64::from(t < 60.0))
            .sum::<f64>()
            / 4.0;
        assert!((c.weights[j][1] - mean_night).abs() < 1e-12, "{j}");
    }
}

#[test]
fn conform_windows_sample_host_times() {
    // At 24 fps a model frame is 1.5 host frames; the second window starts at model 65.
    let times = latent_host_times(
        Window {
            start: 65,
            frames: 81,
        },
        &host_map(24.0),
    );
    assert_eq!(times[0], vec![97.5]);
    assert_eq!(times[1], vec![99.0, 100.5, 102.0, 103.5]);
}

#[test]
fn keyframed_slot_weights_blend_per_latent_frame() {
    let prompts = [
        "dawn".to_string(),
        "night".into(),
        "".into(),    // C has weight but no text: ignored
        "fog".into(), // D's curve is NaN: counts as 0
    ];
    let weight_at = |slot: usize, t: f64| match slot {
        0 => 1.0 - t / 80.0,
        1 => t / 80.0,
        2 => 5.0,
        _ => f64::NAN,
    };
    let times = latent_host_times(
        Window {
            start: 0,
            frames: 81,
        },
        &native_map(),
    );
    let c = slot_conditioning(&prompts, weight_at, &times).unwrap();
    assert_eq!(c.prompts, vec!["dawn".to_string(), "night".into()]);
    assert_eq!(c.weights[0], vec![1.0, 0.0]);
    let last = &c.weights[20];
    assert!((last[1] - 78.5 / 80.0).abs() < 1e-12 && (last[0] + last[1] - 1.0).abs() < 1e-12);
    for row in &c.weights {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    // The schedule wins over the slots when it has entries.
    let c = conditioning("0: harbour", &prompts, weight_at, &times).unwrap();
    assert_eq!(c.prompts, vec!["harbour".to_string()]);
    let c = conditioning(" ; ", &prompts, weight_at, &times).unwrap();
    assert_eq!(c.prompts.len(), 2);
    assert!(conditioning("harbour", &prompts, weight_at, &times).is_err());
}

#[test]
fn constant_weights_give_identical_rows() {
    let prompts = ["dawn".to_string(), "night".into(), "".into(), "".into()];
    let times = latent_host_times(
        Window {
            start: 0,
            frames: 81,
        },
        &host_map(29.97),
    );
    // A flat curve, with the rounding noise of a host's evaluation.
    let c = slot_conditioning(
        &prompts,
        |slot, t| {
            if slot == 0 {
                0.7 + 1e-13 * t.sin()
            } else {
                0.3
            }
        },
        &times,
    )
    .unwrap();
    assert!(c.is_constant());
    assert!(c.weights.iter().all(|r| r == &c.weights[0]));
    assert!((c.weights[0][0] - 0.7).abs() < 1e-9);
    // One slot only: the plain single-prompt path.
    let c = slot_conditioning(
        &prompts,
        |slot, _| if slot == 0 { 0.4 } else { 0.0 },
        &times,
    )
    .unwrap();
    assert_eq!(c.single_prompt(), Some("dawn"));
    assert!(c.weights.iter().all(|r| r == &vec![1.0]));
}

#[test]
fn all_zero_or_negative_weights_are_an_error() {
    let prompts = ["dawn".to_string(), "night".into(), "".into(), "".into()];
    let times = latent_host_times(
        Window {
            start: 0,
            frames: 81,
        },
        &native_map(),
    );
    let e = slot_conditioning(&prompts, |_, t| if t < 40.0 { 1.0 } else { -1.0 }, &times)
        .unwrap_err()
        .0;
    assert_eq!(
        e,
        "At frame 40 every prompt with text has weight 0: raise Weight A or Weight B there."
    );
    let empty = [String::new(), " ".into(), "".into(), "".into()];
    let e = slot_conditioning(&empty, |_, _| 1.0, &times).unwrap_err().0;
    assert!(e.contains("No prompt yet"), "{e}");
}
