//! Generation end to end through the OpenFX ABI: the headless host renders GenClip.ofx, the
//! plugin plans the clip, starts `genclip-engine serve` from the bundle, waits for the clip
//! in the frame cache and delivers its frames; on the tiny fixture model
//! `tests/fixtures/wan_tiny_a/model` (48 × 32, 9 frames in the basic case).
//!
//! The engine appends a line per job event to the journal this test process names in
//! `GENCLIP_ENGINE_JOURNAL` (set before the plugin first starts its engine, which inherits
//! it): that is how the tests count engine calls. The plugin keeps one engine, one memory
//! cache and one set of generations per process, so every test uses its own seed (its own
//! clip keys) and counts journal lines of its keys only.
//!
//! Run `cargo test --release --features fault-injection --test generation -- --nocapture`
//! to see the measured numbers. The only exact timing assert is the cache's ≥ 100× speed-up;
//! the others are generous bounds for a loaded 2-core machine.

mod common;

use candle_core::{DType, Device};
use genclip::cache::{CacheKey, Clip, DiskCache, ReadOutcome};
use genclip::client::protocol::{CacheTarget, ClipRequest, ContextWindows, Sampler};
use genclip::engine::{Pipeline, Request, Video};
use genclip::host::{
    Host, HostOptions, Instance, ParamValue, Plugin, RenderRequest, RenderedImage,
};
use genclip::timeline::plan::WindowPlan;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::journal::{self, Event};
use common::*;

const PROMPT: &str = "a lighthouse in fog at dawn";
const PROMPT_B: &str = "a red tram crossing a bridge at night";
const NEGATIVE: &str = "blurry";
const GUIDANCE: f64 = 5.0;

// ---------------------------------------------------------------------------------------
// The journal

/// The journal file of this test process, named in the environment before any engine
/// starts (every test reaches the plugin through [`generator`], which calls this first).
fn journal_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let file = scratch("journal").join("journal.log");
        std::env::set_var("GENCLIP_ENGINE_JOURNAL", &file);
        file
    })
}

fn journal() -> Vec<Event> {
    journal::read(journal_file())
}

/// How many times the journal says `event` for `key`.
fn count(key: &str, event: &str) -> usize {
    journal()
        .iter()
        .filter(|e| e.key == key && e.event == event)
        .count()
}

/// The first journal event from line `since` on that satisfies `pred`; panics after `limit`.
fn wait_for_event(since: usize, limit: Duration, pred: impl Fn(&Event) -> bool) -> Event {
    journal::wait_for(journal_file(), since, limit, pred)
}

// ---------------------------------------------------------------------------------------
// The host and the plugin

/// A host with a `width × height` project at `fps`, whose clip is host frames 0 .. frames-1.
fn options(size: (u32, u32), fps: f64, frames: usize) -> HostOptions {
    HostOptions {
        project_size: (f64::from(size.0), f64::from(size.1)),
        frame_rate: fps,
        frame_range: (0.0, frames as f64 - 1.0),
        echo_messages: false,
        ..HostOptions::default()
    }
}

/// A GenClip instance in the Generator context, the journal named first.
fn generator(options: HostOptions) -> (Arc<Host>, Plugin, Instance) {
    journal_file();
    instance(options, GENERATOR)
}

/// The test's settings: the fixture model, one prompt, `seed`, `steps`, guidance 5,
/// *Resolution* = Project, *Output transfer* = display.
fn configure(inst: &Instance, seed: i32, steps: i32) {
    let set = |name: &str, value: ParamValue| {
        inst.set_param(name, value)
            .unwrap_or_else(|e| panic!("set {name}: {e}"))
    };
    set(
        "modelFolder",
        ParamValue::Str(fixture_model().display().to_string()),
    );
    set("promptA", ParamValue::Str(PROMPT.into()));
    set("negativePrompt", ParamValue::Str(NEGATIVE.into()));
    set("seed", ParamValue::Int(seed));
    set("steps", ParamValue::Int(steps));
    set("guidanceScale", ParamValue::Double(GUIDANCE));
    set("resolution", ParamValue::Choice(0));
    set("outputTransfer", ParamValue::Choice(0));
}

fn render(inst: &Instance, request: &RenderRequest) -> RenderedImage {
    inst.render(request)
        .unwrap_or_else(|e| panic!("render at t={}: {e}", request.time))
}

/// A rendered image as RGB, top row first (host images are bottom-up: row y of the image is
/// row h-1-y of the picture); checks that every pixel is opaque.
fn picture(image: &RenderedImage) -> Vec<f32> {
    let (w, h) = (image.width(), image.height());
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for x in 0..w {
            let p = image.rgba_f32(x, h - 1 - row);
            assert_eq!(p[3], 1.0, "alpha at ({x}, {row})");
            rgb.extend_from_slice(&p[..3]);
        }
    }
    rgb
}

/// Final (non-interactive) renders of host frames 0 .. n-1, as pictures.
fn render_frames(inst: &Instance, n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|t| picture(&render(inst, &RenderRequest::new(t as f64))))
        .collect()
}

/// The clip the instance shows, once its Status says Ready: SyncPrivateData (which hosts
/// call now and then) makes the plugin write `shownClip`. Polled, because the generation
/// an edit starts for a cached clip becomes Ready on its own thread a moment later.
fn shown_clip(inst: &Instance) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        inst.sync_private_data().unwrap();
        if status(inst).starts_with("Ready") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Status still says {:?}",
            status(inst)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    match inst.param_value("shownClip", 0.0).unwrap() {
        ParamValue::Str(key) => key,
        other => panic!("shownClip is {other:?}"),
    }
}

fn status(inst: &Instance) -> String {
    match inst.param_value("status", 0.0).unwrap() {
        ParamValue::Str(s) => s,
        other => panic!("status is {other:?}"),
    }
}

/// The clip the engine wrote to this process's frame cache under `key`.
fn cached_clip(key: &str) -> Clip {
    let key = CacheKey::from_hex(key).expect("a key in hex");
    match DiskCache::new(cache_dir()).read(&key).unwrap() {
        ReadOutcome::Hit(clip) => clip,
        other => panic!(
            "no cache entry for {key}: {:?}",
            matches!(other, ReadOutcome::Miss)
        ),
    }
}

/// The provenance record the engine wrote beside the clip.
fn record(key: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(cache_dir().join(format!("{key}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Cache-folder entries that belong to `key` (the clip, its record, a temporary, a lock).
fn entries_of(key: &str) -> Vec<String> {
    std::fs::read_dir(cache_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(key))
        .collect()
}

fn unload(inst: Instance, plugin: Plugin) {
    drop(inst);
    plugin.unload().unwrap();
}

// ---------------------------------------------------------------------------------------
// The engine's pipeline in this process

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| Pipeline::load(fixture_model(), &Device::Cpu, DType::F32).unwrap())
}

/// `Pipeline::generate` of the single-prompt request the test's settings make.
fn direct(seed: i32, steps: usize, (width, height): (usize, usize), frames: usize) -> Video {
    let request = Request {
        prompt: PROMPT.into(),
        negative_prompt: NEGATIVE.into(),
        seed: seed as u64,
        steps,
        guidance_scale: GUIDANCE,
        width,
        height,
        frames,
    };
    pipeline()
        .generate(&request, &mut |_| {}, &|| false)
        .unwrap()
}

/// Frame `i` of a video, RGB top row first.
fn video_frame(video: &Video, i: usize) -> &[f32] {
    let n = video.width * video.height * 3;
    &video.rgb[i * n..(i + 1) * n]
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn mean_abs_difference(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .sum::<f64>()
        / a.len() as f64
}

/// The sRGB decoding curve (IEC 61966-2-1), exactly.
fn srgb_eotf(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// The engine's request for the test's settings: one prompt, constant weights.
fn clip_request(
    seed: i32,
    steps: usize,
    (width, height): (usize, usize),
    frames: usize,
) -> ClipRequest {
    ClipRequest {
        model_folder: fixture_model(),
        prompts: vec![PROMPT.into()],
        weights: vec![vec![1.0]; (frames - 1) / 4 + 1],
        negative_prompt: NEGATIVE.into(),
        seed: seed as u64,
        steps,
        guidance_scale: GUIDANCE,
        shift: None,
        sampler: Sampler::ModelDefault,
        width,
        height,
        frames,
        windows: None,
        output: CacheTarget {
            root: scratch("unused"),
            key: String::new(),
        },
        provenance: serde_json::Value::Null,
    }
}

// ---------------------------------------------------------------------------------------
// The tests

/// The frames the host receives are the engine's own output: all 9 frames of a 48 × 32 clip
/// rendered through the ABI equal `Pipeline::generate` of the same request in this process
/// (the same code on the same machine), alpha 1, one engine job.
#[test]
fn rendered_frames_equal_the_pipelines_direct_output() {
    let _g = serial();
    let (_host, plugin, inst) = generator(options((48, 32), 16.0, 9));
    configure(&inst, 101, 3);
    let started = Instant::now();
    let frames = render_frames(&inst, 9);
    let seconds = started.elapsed().as_secs_f64();
    let key = shown_clip(&inst);
    assert_eq!(count(&key, "start"), 1, "one engine job for the clip");
    assert_eq!(count(&key, "done"), 1);

    let video = direct(101, 3, (48, 32), 9);
    assert_eq!((video.frames, video.width, video.height), (9, 48, 32));
    let mut worst = 0.0f32;
    let mut bitwise = true;
    for (i, frame) in frames.iter().enumerate() {
        let expected = video_frame(&video, i);
        worst = worst.max(max_difference(frame, expected));
        bitwise &= frame.as_slice() == expected;
    }
    println!(
        "9 frames of 48 x 32 through the ABI in {seconds:.3} s; largest difference from \
         Pipeline::generate: {worst:e} (bitwise equal: {bitwise})"
    );
    assert!(
        worst <= 1e-6,
        "the host's frames differ from the pipeline's by {worst}"
    );
    unload(inst, plugin);
}

/// Rendering a clip again costs no engine call: the second pass over the same 9 frames
/// starts no job, and is at least 100× faster than the first (which generated the clip).
/// The clip takes 200 steps (about half a second): with 3 steps the tiny model generates in
/// about 80 ms, so the ratio would measure the fixture's speed more than the cache's.
#[test]
fn a_second_render_makes_no_engine_call_and_is_100_times_faster() {
    let _g = serial();
    let (_host, plugin, inst) = generator(options((48, 32), 16.0, 9));
    configure(&inst, 102, 200);
    let started = Instant::now();
    let first = render_frames(&inst, 9);
    let pass1 = started.elapsed();
    let key = shown_clip(&inst);
    assert_eq!(count(&key, "start"), 1);
    let jobs_before = journal().len();

    let started = Instant::now();
    let second = render_frames(&inst, 9);
    let pass2 = started.elapsed();
    assert_eq!(
        journal().len(),
        jobs_before,
        "the second pass called the engine"
    );
    assert_eq!(first, second);
    let ratio = pass1.as_secs_f64() / pass2.as_secs_f64();
    println!(
        "pass 1 (generates): {:.1} ms; pass 2 (cached): {:.2} ms ({:.3} ms a frame); ratio {ratio:.0}",
        pass1.as_secs_f64() * 1e3,
        pass2.as_secs_f64() * 1e3,
        pass2.as_secs_f64() * 1e3 / 9.0
    );
    assert!(ratio >= 100.0, "cached frames only {ratio:.1}x faster");
    unload(inst, plugin);
}

/// Output transfer is not part of the clip: switching to Linear starts no job and gives the
/// sRGB EOTF of the display frames. Keyframed weights that stay constant are the
/// single-prompt clip itself (no job, identical frames); a weight that moves is a new clip.
#[test]
fn output_transfer_does_not_regenerate_but_a_moving_weight_does() {
    let _g = serial();
    let (_host, plugin, inst) = generator(options((48, 32), 16.0, 9));
    configure(&inst, 103, 3);
    let display = render_frames(&inst, 9);
    let key = shown_clip(&inst);
    assert_eq!(count(&key, "start"), 1);
    let lines = journal().len();

    // Linear: the same clip through the curve.
    inst.set_param("outputTransfer", ParamValue::Choice(1))
        .unwrap();
    let linear = render_frames(&inst, 9);
    assert_eq!(journal().len(), lines, "Linear output started a job");
    let mut worst = 0.0f64;
    for (d, l) in display.iter().zip(&linear) {
        for (&v, &lin) in d.iter().zip(l) {
            worst = worst.max((srgb_eotf(f64::from(v)) - f64::from(lin)).abs());
        }
    }
    println!("Linear vs the exact sRGB EOTF of the display frames: largest error {worst:e}");
    assert!(worst <= 1e-6, "Linear is {worst} off the sRGB EOTF");
    inst.set_param("outputTransfer", ParamValue::Choice(0))
        .unwrap();

    // A second prompt keyed to weight 0 at both ends: still the single-prompt clip.
    inst.set_param("promptB", ParamValue::Str(PROMPT_B.into()))
        .unwrap();
    inst.set_key("weightB", 0.0, ParamValue::Double(0.0))
        .unwrap();
    inst.set_key("weightB", 8.0, ParamValue::Double(0.0))
        .unwrap();
    let constant = render_frames(&inst, 9);
    assert_eq!(
        journal().len(),
        lines,
        "constant keyed weights started a job"
    );
    assert_eq!(
        shown_clip(&inst),
        key,
        "constant keyed weights changed the clip"
    );
    assert!(
        constant == display,
        "constant keyed weights changed the frames"
    );

    // Weight B rising to 1 at the last frame: another clip, generated once.
    inst.set_key("weightB", 8.0, ParamValue::Double(1.0))
        .unwrap();
    let blended = render_frames(&inst, 9);
    let blended_key = shown_clip(&inst);
    assert_ne!(blended_key, key);
    assert_eq!(count(&blended_key, "start"), 1);
    assert_eq!(count(&key, "start"), 1);
    // The rows the plugin sent: per latent frame (model frames 0 | 1-4 | 5-8, host frames
    // at 16 fps), the mean of the normalised weights A = 1, B = t/8.
    let rows: Vec<Vec<f64>> =
        serde_json::from_value(record(&blended_key)["weights_per_latent_frame"].clone()).unwrap();
    let normalised = |t: f64| [1.0 / (1.0 + t / 8.0), (t / 8.0) / (1.0 + t / 8.0)];
    for (j, frames) in [0..1, 1..5, 5..9].into_iter().enumerate() {
        let n = frames.len() as f64;
        let want = frames.fold([0.0, 0.0], |acc, t| {
            let w = normalised(t as f64);
            [acc[0] + w[0] / n, acc[1] + w[1] / n]
        });
        assert!(
            (rows[j][0] - want[0]).abs() < 1e-9 && (rows[j][1] - want[1]).abs() < 1e-9,
            "latent frame {j}: {:?}, not {want:?}",
            rows[j]
        );
    }
    // The frames are the engine's blend of exactly those rows.
    let mut request = clip_request(103, 3, (48, 32), 9);
    request.prompts = vec![PROMPT.into(), PROMPT_B.into()];
    request.weights = rows.clone();
    let video = pipeline()
        .generate_clip(&request, &mut |_| {}, &|| false)
        .unwrap();
    for (i, frame) in blended.iter().enumerate() {
        assert_eq!(
            frame.as_slice(),
            video_frame(&video, i),
            "blended frame {i}"
        );
    }
    // The fixture's random VAE lets a latent frame show only faintly in its own video frames
    // (the latents do change: tests/conditioning.rs), so the frames move by 1e-3, not 1e-1:
    // what is checked is that they changed, more where B weighs more.
    let differences: Vec<f32> = blended
        .iter()
        .zip(&display)
        .map(|(b, d)| max_difference(b, d))
        .collect();
    println!(
        "weight rows {rows:.3?}; max |blended - single prompt| per frame: {:?}",
        differences
            .iter()
            .map(|d| format!("{d:.2e}"))
            .collect::<Vec<_>>()
    );
    assert!(
        differences[8] > 1e-4 && differences[8] > 2.0 * differences[0],
        "the last frame, where B weighs most, did not change more than the first: {differences:?}"
    );
    unload(inst, plugin);
}

/// The host's abort stops a generation: the render returns within about one step of the
/// abort, the engine journals `aborted`, nothing of the clip is cached (no clip, no record,
/// no temporary file), and the next render generates the clip cleanly.
#[test]
fn an_abort_from_the_host_stops_the_generation_and_caches_nothing() {
    let _g = serial();
    // 64 × 64 × 33 frames in 200 steps: about 3 s of work on 2 cores, 1.5 s of it denoising.
    let abort_after = Duration::from_millis(400);
    let mut aborting = options((64, 64), 16.0, 33);
    aborting.abort_after = Some(abort_after);
    let (host, plugin, inst) = generator(aborting);
    configure(&inst, 105, 200);
    let since = journal().len();
    let started = Instant::now();
    let result = inst.render(&RenderRequest::new(0.0));
    let returned = started.elapsed();
    let err = result.expect_err("the host discards an aborted frame");
    assert!(err.message.contains("aborted by the host"), "{err}");
    let start = wait_for_event(since, Duration::from_secs(30), |e| e.event == "start");
    let key = start.key.clone();
    let aborted = wait_for_event(since, Duration::from_secs(30), |e| {
        e.key == key && e.event != "start"
    });
    let engine_stopped = started.elapsed().saturating_sub(abort_after);
    assert_eq!(aborted.event, "aborted", "{aborted:?}");
    assert_eq!((aborted.pid, aborted.job), (start.pid, start.job));
    println!(
        "abort after {} ms: the render returned {:.0} ms after the abort, the engine \
         journalled `aborted` {:.0} ms after it",
        abort_after.as_millis(),
        returned.saturating_sub(abort_after).as_secs_f64() * 1e3,
        engine_stopped.as_secs_f64() * 1e3
    );
    assert!(
        returned < abort_after + Duration::from_secs(2),
        "the render took {returned:?} with an abort at {abort_after:?}"
    );
    assert!(
        engine_stopped < Duration::from_secs(5),
        "the engine stopped {engine_stopped:?} after the abort"
    );
    // The engine answered; give its generation thread a moment to release the lock.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !entries_of(&key).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(entries_of(&key), Vec::<String>::new(), "left in the cache");
    assert!(
        !host.messages().iter().any(|m| m.kind == "OfxMessageError"),
        "an abort is not an error: {:?}",
        host.messages()
    );
    unload(inst, plugin);

    // The same clip, without an abort.
    let (_host, plugin, inst) = generator(options((64, 64), 16.0, 33));
    configure(&inst, 105, 200);
    let started = Instant::now();
    let frame = picture(&render(&inst, &RenderRequest::new(0.0)));
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(shown_clip(&inst), key);
    assert_eq!(count(&key, "start"), 2);
    assert_eq!(count(&key, "done"), 1);
    assert_eq!(count(&key, "aborted"), 1);
    assert!(frame
        .iter()
        .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    let clip = cached_clip(&key);
    assert_eq!(clip.frames, 33);
    assert_eq!(frame.as_slice(), clip.frame(0).unwrap());
    println!(
        "the clean rerun generated 64 x 64 x 33 in 200 steps in {seconds:.2} s \
         ({:.1} ms a step at most)",
        seconds * 1e3 / 200.0
    );
    unload(inst, plugin);
}

/// Interactive renders never wait: with *Auto-generate* off one returns the slate and starts
/// nothing; with it on (the edit starts the job) one returns at once with the progress
/// slate; when the job is done, SyncPrivateData names the clip in `shownClip` and Status
/// says Ready, and the next interactive render shows the clip's frame.
#[test]
fn interactive_renders_return_at_once_and_show_the_clip_when_it_is_ready() {
    let _g = serial();
    // 64 × 64 × 17 in 200 steps: about a second of work.
    let (_host, plugin, inst) = generator(options((64, 64), 16.0, 17));
    configure(&inst, 106, 200);
    let since = journal().len();
    let mut interactive = RenderRequest::new(4.0);
    interactive.interactive = true;

    let started = Instant::now();
    let slate = picture(&render(&inst, &interactive));
    let off = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        journal().len(),
        since,
        "an interactive render started a job"
    );
    assert!(
        status(&inst).starts_with("Not generated"),
        "{}",
        status(&inst)
    );
    let corner = &slate[..3];
    assert!(
        corner[0] == corner[1] && corner[1] == corner[2],
        "the slate's corner is not neutral: {corner:?}"
    );

    inst.set_param("autoGenerate", ParamValue::Bool(true))
        .unwrap();
    let started = Instant::now();
    let progress = picture(&render(&inst, &interactive));
    let on = started.elapsed();
    let start = wait_for_event(since, Duration::from_secs(30), |e| e.event == "start");
    let key = start.key.clone();
    let done_before_return = count(&key, "done");
    let done = wait_for_event(since, Duration::from_secs(60), |e| {
        e.key == key && e.event != "start"
    });
    let job = started.elapsed();
    assert_eq!(done.event, "done", "{done:?}");
    assert_eq!((done.pid, done.job), (start.pid, start.job));
    println!(
        "interactive render: {:.1} ms with Auto-generate off (slate), {:.1} ms with it on \
         (job running); the job was done {:.0} ms after that render began",
        off.as_secs_f64() * 1e3,
        on.as_secs_f64() * 1e3,
        job.as_secs_f64() * 1e3
    );
    assert_eq!(done_before_return, 0, "the render waited for the job");
    assert!(
        on < Duration::from_secs(1),
        "the interactive render took {on:?}"
    );
    assert!(
        off < Duration::from_secs(1),
        "the interactive render took {off:?}"
    );

    // The next legal action shows the clip.
    assert_eq!(shown_clip(&inst), key);
    assert!(status(&inst).starts_with("Ready"), "{}", status(&inst));
    let shown = picture(&render(&inst, &interactive));
    let clip = cached_clip(&key);
    assert_eq!(
        shown.as_slice(),
        clip.frame(4).unwrap(),
        "not the clip's frame"
    );
    assert_ne!(shown, slate, "the slate, not the clip");
    assert_ne!(shown, progress, "the progress slate, not the clip");
    assert_eq!(count(&key, "start"), 1);
    unload(inst, plugin);
}

/// Conform mode keeps real time: on a 24 fps timeline 12 host frames need
/// ceil(11·16/24)+1 = 9 model frames (a 9-frame clip); host frame 3 is model frame 2 exactly
/// and host frame 1 the blend (1−w)·f0 + w·f1 with w = 2/3. At 25 fps, 14 host frames need
/// ceil(13·16/25)+1 = 10, so 13 frames (4k+1) are generated. Both against the pipeline's
/// own frames of that length. The host's rate is not in the cache key: 9 frames at 16 fps
/// show the 24 fps timeline's clip, without a job.
#[test]
fn conformed_frame_rates_show_the_model_frames_at_real_time() {
    let _g = serial();
    let mut keys = Vec::new();
    for (fps, host_frames, needed, generated) in [(24.0, 12, 9, 9), (25.0, 14, 10, 13)] {
        let (_host, plugin, inst) = generator(options((48, 32), fps, host_frames));
        configure(&inst, 107, 3);
        let frames = render_frames(&inst, host_frames);
        let key = shown_clip(&inst);
        assert_eq!(count(&key, "start"), 1);
        let clip = cached_clip(&key);
        assert_eq!(clip.frames, generated, "{fps} fps");
        assert_eq!(record(&key)["model_frames_shown"], needed, "{fps} fps");
        let video = direct(107, 3, (48, 32), generated);
        assert_eq!(
            clip.data, video.rgb,
            "{fps} fps: the cached clip is not the pipeline's"
        );
        let mut worst = 0.0f32;
        for (i, frame) in frames.iter().enumerate() {
            let position = i as f64 * 16.0 / fps;
            let k = position.floor() as usize;
            let w = (position - k as f64) as f32;
            let a = video_frame(&video, k);
            let expected: Vec<f32> = if w == 0.0 {
                a.to_vec()
            } else {
                let b = video_frame(&video, k + 1);
                a.iter()
                    .zip(b)
                    .map(|(a, b)| (1.0 - w) * a + w * b)
                    .collect()
            };
            worst = worst.max(max_difference(frame, &expected));
        }
        println!(
            "{fps} fps, {host_frames} host frames: {generated} model frames generated \
             ({needed} needed); largest difference from the blended pipeline frames {worst:e}"
        );
        assert!(worst <= 1e-6, "{fps} fps: frames off by {worst}");
        if fps == 24.0 {
            assert_eq!(
                frames[3].as_slice(),
                video_frame(&video, 2),
                "frame 3 = model 2"
            );
            let w = 2.0f32 / 3.0;
            let blend: Vec<f32> = video_frame(&video, 0)
                .iter()
                .zip(video_frame(&video, 1))
                .map(|(a, b)| (1.0 - w) * a + w * b)
                .collect();
            let off = max_difference(&frames[1], &blend);
            assert!(off <= 1e-6, "frame 1 is {off} off (1-w)·f0 + w·f1, w = 2/3");
            // The blend is really between two different frames.
            assert!(max_difference(video_frame(&video, 0), video_frame(&video, 1)) > 1e-2);
        }
        unload(inst, plugin);
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "9 and 13 frames are different clips");

    let lines = journal().len();
    let (_host, plugin, inst) = generator(options((48, 32), 16.0, 9));
    configure(&inst, 107, 3);
    let native = render_frames(&inst, 9);
    assert_eq!(shown_clip(&inst), keys[0], "16 fps made another clip");
    assert_eq!(journal().len(), lines, "16 fps started a job");
    let video = direct(107, 3, (48, 32), 9);
    for (i, frame) in native.iter().enumerate() {
        assert_eq!(frame.as_slice(), video_frame(&video, i), "16 fps frame {i}");
    }
    unload(inst, plugin);
}

/// A clip 2.5× the native window (203 host frames at 16 fps) is one request of 205 frames
/// with context windows {81, 16}; every frame renders, finite and in [0, 1], and equals the
/// engine's windowed clip made in this process. The seam metric is printed, not asserted:
/// the tiny random model has no temporal prior, so seams cannot show in video space
/// (tests/long_clip.rs checks them in the latents).
#[test]
fn a_long_clip_renders_every_frame_through_context_windows() {
    let _g = serial();
    let host_frames = 203;
    let (_host, plugin, inst) = generator(options((48, 32), 16.0, host_frames));
    configure(&inst, 108, 2);
    let started = Instant::now();
    let frames = render_frames(&inst, host_frames);
    let seconds = started.elapsed().as_secs_f64();
    let key = shown_clip(&inst);
    assert_eq!(count(&key, "start"), 1);
    let provenance = record(&key);
    assert_eq!(provenance["frames"], 205);
    assert_eq!(
        provenance["windows"],
        serde_json::json!({"frames": 81, "overlap": 16})
    );
    assert_eq!(frames.len(), host_frames);
    for (i, f) in frames.iter().enumerate() {
        assert!(
            f.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
            "frame {i} has values outside [0, 1]"
        );
    }

    // The same request in this process.
    let clip = cached_clip(&key);
    let mut request = clip_request(108, 2, (48, 32), 205);
    request.windows = Some(ContextWindows {
        frames: 81,
        overlap: 16,
    });
    let video = pipeline()
        .generate_clip(&request, &mut |_| {}, &|| false)
        .unwrap();
    assert_eq!(
        clip.data, video.rgb,
        "the cached clip is not the windowed pipeline's"
    );
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.as_slice(), clip.frame(i).unwrap(), "host frame {i}");
    }

    // Seam metric (as in tests/long_clip.rs): mad(i) = mean |f(i+1) - f(i)|; at each join
    // the largest mad over the steps into, through and out of the overlap, against the
    // largest mad between frames that are in one window only.
    let mad: Vec<f64> = frames
        .windows(2)
        .map(|p| mean_abs_difference(&p[0], &p[1]))
        .collect();
    let plan = WindowPlan::new(host_frames);
    let in_overlap = |f: usize| {
        plan.windows
            .iter()
            .filter(|w| (w.start..w.end()).contains(&f))
            .count()
            > 1
    };
    let seams: Vec<f64> = plan.windows[1..]
        .iter()
        .zip(&plan.windows)
        .map(|(next, prev)| {
            let (a, b) = (next.start, prev.end() - 1);
            (a - 1..=b.min(mad.len() - 1))
                .map(|i| mad[i])
                .fold(0.0, f64::max)
        })
        .collect();
    let interior = (0..mad.len())
        .filter(|&i| !in_overlap(i) && !in_overlap(i + 1))
        .map(|i| mad[i])
        .fold(0.0, f64::max);
    println!(
        "203 host frames (205 generated, windows {:?}) rendered in {seconds:.2} s; seam jumps \
         {seams:.4?}, largest interior jump {interior:.4}",
        plan.windows
            .iter()
            .map(|w| (w.start, w.frames))
            .collect::<Vec<_>>()
    );
    // The criterion, in video space: no step across a window join is larger than the
    // largest step inside a window. (The tiny random model cannot show a seam even without
    // shared windows, see tests/long_clip.rs, which checks the joins in latent space against
    // a clip denoised in one piece.)
    for (join, seam) in seams.iter().enumerate() {
        assert!(
            *seam <= interior,
            "join {join}: a step of {seam} across the overlap, larger than any inside a window ({interior})"
        );
    }
    unload(inst, plugin);
}

/// An edit that brings back the settings of a cached clip (an undo) shows that clip in the
/// same action: Status says Ready and `shownClip` names it, and stays so while nothing else
/// happens (no render, no SyncPrivateData).
#[test]
fn an_edit_back_to_a_cached_clip_says_ready_in_the_same_action() {
    let _g = serial();
    let (_host, plugin, inst) = generator(options((48, 32), 16.0, 9));
    configure(&inst, 109, 3);
    render(&inst, &RenderRequest::new(0.0));
    let key = shown_clip(&inst);
    inst.set_param("seed", ParamValue::Int(110)).unwrap();
    assert!(
        status(&inst).starts_with("Not generated"),
        "{}",
        status(&inst)
    );
    inst.set_param("seed", ParamValue::Int(109)).unwrap();
    // Long enough for any background lookup to finish; nothing may write parameters now.
    std::thread::sleep(Duration::from_millis(200));
    let shown = match inst.param_value("shownClip", 0.0).unwrap() {
        ParamValue::Str(k) => k,
        other => panic!("shownClip is {other:?}"),
    };
    println!(
        "after the edit back: Status {:?}, shownClip {shown:.8}",
        status(&inst)
    );
    assert!(status(&inst).starts_with("Ready"), "{}", status(&inst));
    assert_eq!(shown, key);
    unload(inst, plugin);
}
