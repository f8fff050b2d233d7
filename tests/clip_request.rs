//! From an instance's settings and the host's facts to the engine's clip request and its
//! cache key (src/effect/clip.rs): conditioning per latent frame, frame counts under rate
//! conform, sizes, preview, what the key holds and what it must not, the error sentences.

use genclip::client::protocol::{self, ClipRequest, ContextWindows, Sampler, ToEngine};
use genclip::effect::clip::{
    self, engine_seed, model, plan_clip, preview_size, preview_steps, request_shift, sampler_of,
    ClipError, ClipInputs, HostFacts, ModelFacts, PlannedClip,
};
use genclip::effect::settings::{model_folder_problem, Settings, Transfer};
use genclip::timeline::plan::{RateMode, Sample, WAN21_14B, WAN21_1_3B, WAN_OTHER};
use std::path::{Path, PathBuf};

const FIXTURE_MODEL: &str = "tests/fixtures/wan_tiny_a/model";

fn host(fps: f64, frames: usize) -> HostFacts {
    HostFacts {
        fps,
        frames,
        start: 0.0,
        project_size: (1920, 1080),
        pixel_aspect: 1.0,
        host_name: Some("org.genclip.test".into()),
        host_version: Some("9.9".into()),
    }
}

fn model_facts() -> ModelFacts {
    ModelFacts {
        folder: PathBuf::from("models/Wan2.1-T2V-1.3B-Diffusers"),
        spec: &WAN21_1_3B,
        flow_shift: Some(3.0),
        fingerprint: [7; 32],
    }
}

fn settings(prompt_a: &str) -> Settings {
    let mut s = Settings::default();
    s.prompts[0] = prompt_a.into();
    s
}

fn inputs(host: HostFacts, settings: Settings) -> ClipInputs {
    ClipInputs {
        host,
        settings,
        model: model_facts(),
    }
}

/// Weight A 1 and the others 0 at every time, as a new instance has them.
fn default_weights(slot: usize, _t: f64) -> f64 {
    if slot == 0 {
        1.0
    } else {
        0.0
    }
}

fn plan(inputs: &ClipInputs, mut weight_at: impl FnMut(usize, f64) -> f64) -> PlannedClip {
    plan_clip(inputs, &mut weight_at, Path::new("cache-root"))
        .unwrap_or_else(|e| panic!("plan: {e}"))
}

fn plan_err(inputs: &ClipInputs, mut weight_at: impl FnMut(usize, f64) -> f64) -> String {
    match plan_clip(inputs, &mut weight_at, Path::new("cache-root")) {
        Ok(p) => panic!("planned {:?}", p.request),
        Err(ClipError::Settings(s)) => s,
        Err(e) => panic!("not a settings error: {e}"),
    }
}

fn latent_rows(frames: usize) -> usize {
    (frames - 1) / 4 + 1
}

// ----------------------------------------------------------------------------- conditioning

#[test]
fn constant_keyframed_weights_give_one_prompt_at_full_weight() {
    let mut s = settings("a harbour at dawn");
    s.prompts[1] = "the harbour at night".into();
    let inputs = inputs(host(24.0, 48), s);
    // Weight A keyed 0.6 at 0 and at 47 (a flat curve, as a host evaluates it, with its
    // rounding noise); Weight B keyed 0 everywhere.
    let p = plan(&inputs, |slot, t| {
        if slot == 0 {
            0.6 + 1e-14 * (t * 0.37).sin()
        } else {
            0.0
        }
    });
    let r = &p.request;
    assert_eq!(r.prompts, vec!["a harbour at dawn".to_string()]);
    assert_eq!(r.weights.len(), latent_rows(r.frames));
    assert!(r.weights.iter().all(|row| row == &vec![1.0]));
    assert_eq!(r.windows, None);
}

#[test]
fn a_schedule_cut_switches_from_the_latent_frame_holding_its_frame() {
    let mut s = settings("");
    s.schedule = "0: A; 48: B".into();
    // 96 host frames at 24 fps, conformed to 16: 65 model frames, 17 latent frames.
    let p = plan(&inputs(host(24.0, 96), s), default_weights);
    let r = &p.request;
    assert_eq!(r.frames, 65);
    assert_eq!(r.prompts, vec!["A".to_string(), "B".into()]);
    assert_eq!(r.weights.len(), 17);
    // Host frame 48 plays at model frame 32, in latent frame 8 (model frames 29..=32, at
    // host times 43.5, 45, 46.5, 48).
    assert_eq!(p.plan.time.model_position(48.0), 32.0);
    for (j, row) in r.weights.iter().enumerate() {
        match j {
            0..=7 => assert_eq!(row, &vec![1.0, 0.0], "latent {j}"),
            8 => assert_eq!(row, &vec![0.75, 0.25]),
            _ => assert_eq!(row, &vec![0.0, 1.0], "latent {j}"),
        }
    }
}

#[test]
fn keyframed_weights_are_read_at_the_host_times_of_each_latent_frame() {
    let mut s = settings("dawn");
    s.prompts[1] = "night".into();
    let mut asked = Vec::new();
    let p = plan(&inputs(host(24.0, 48), s), |slot, t| {
        asked.push((slot, t));
        // A fades out over the clip while B fades in.
        let x = (t / 47.0).clamp(0.0, 1.0);
        if slot == 0 {
            1.0 - x
        } else {
            x
        }
    });
    // 48 frames at 24 fps: 33 model frames; model frame 1 plays at host time 1.5.
    assert_eq!(p.request.frames, 33);
    assert!(asked.contains(&(0, 1.5)) && asked.contains(&(1, 1.5)));
    assert!(asked.iter().all(|&(_, t)| (0.0..=48.0).contains(&t)));
    let rows = &p.request.weights;
    assert_eq!(rows[0], vec![1.0, 0.0]);
    for pair in rows.windows(2) {
        assert!(pair[1][1] > pair[0][1], "B rises: {pair:?}");
    }
}

// ----------------------------------------------------------------------------- time

#[test]
fn conform_on_24_and_25_fps_timelines() {
    // Two seconds of timeline hold 2 s of 16 fps model frames: the last host frame (47 at
    // 24 fps, 49 at 25) plays at model position 31.33 / 31.36, so 33 frames are needed
    // (frames 0..=32), which is already 4k+1.
    for (fps, frames, last_position) in [
        (24.0, 48, 47.0 * 16.0 / 24.0),
        (25.0, 50, 49.0 * 16.0 / 25.0),
    ] {
        let p = plan(&inputs(host(fps, frames), settings("x")), default_weights);
        assert_eq!(p.plan.count.needed, 33, "{fps}");
        assert_eq!(p.request.frames, 33, "{fps}");
        assert_eq!(p.request.weights.len(), 9);
        assert!((p.plan.time.model_position(frames as f64 - 1.0) - last_position).abs() < 1e-12);
        // Host frame 3 at 24 fps is model frame 2 exactly; host frame 1 is 2/3 of the way
        // from model frame 0 to 1 (16/25 at 25 fps).
        let s = p.plan.sample(1.0);
        assert_eq!((s.a, s.b), (0, 1));
        assert!((s.weight - 16.0 / fps).abs() < 1e-12);
    }
    let p = plan(&inputs(host(24.0, 48), settings("x")), default_weights);
    assert_eq!(
        p.plan.sample(3.0),
        Sample {
            a: 2,
            b: 2,
            weight: 0.0
        }
    );
    // Ten seconds at 24 fps need 161 model frames: more than one 81-frame window.
    let p = plan(&inputs(host(24.0, 240), settings("x")), default_weights);
    assert_eq!(p.request.frames, 161);
    assert_eq!(
        p.request.windows,
        Some(ContextWindows {
            frames: 81,
            overlap: 16
        })
    );
    assert_eq!(p.request.weights.len(), 41);
}

#[test]
fn model_native_rounds_host_frames_up_to_4k_plus_1() {
    for (frames, want) in [(1, 1), (81, 81), (82, 85), (100, 101), (48, 49)] {
        let mut s = settings("x");
        s.rate_mode = RateMode::ModelNative;
        let p = plan(&inputs(host(24.0, frames), s), default_weights);
        assert_eq!(p.request.frames, want, "{frames} host frames");
        assert_eq!(p.plan.count.needed, frames);
        assert_eq!(p.request.windows.is_some(), frames > 81);
        assert_eq!(p.plan.rounding_note().is_some(), want > frames);
        assert_eq!(p.plan.sample(10.0).a, 10.min(frames - 1));
    }
}

#[test]
fn clip_start_is_the_host_frame_numbering() {
    let mut h = host(16.0, 81);
    h.start = 1001.0;
    let mut s = settings("");
    s.schedule = "1001: first; 1041: second".into();
    let p = plan(&inputs(h, s), default_weights);
    assert_eq!(p.plan.sample(1001.0).a, 0);
    assert_eq!(p.plan.sample(1041.0).a, 40);
    // Model frame 40 is in latent frame 10 (37..=40).
    assert_eq!(p.request.weights[9], vec![1.0, 0.0]);
    assert_eq!(p.request.weights[10], vec![0.75, 0.25]);
    assert_eq!(p.request.weights[11], vec![0.0, 1.0]);
}

// ----------------------------------------------------------------------------- request fields

#[test]
fn request_fields_follow_the_parameters() {
    let mut s = settings("  a harbour at dawn ");
    s.negative_prompt = " blurry ".into();
    s.seed = 1234;
    s.steps = 30;
    s.guidance = 6.5;
    s.shift = 5.0;
    s.sampler = 1;
    s.resolution = Some((480, 832));
    let p = plan(&inputs(host(16.0, 81), s), default_weights);
    let r = &p.request;
    assert_eq!(r.prompts, vec!["a harbour at dawn".to_string()]);
    assert_eq!(r.negative_prompt, "blurry");
    assert_eq!((r.seed, r.steps, r.guidance_scale), (1234, 30, 6.5));
    assert_eq!(r.shift, Some(5.0));
    assert_eq!(r.sampler, Sampler::FlowEuler);
    assert_eq!((r.width, r.height, r.frames), (480, 832, 81));
    assert_eq!(
        r.model_folder,
        PathBuf::from("models/Wan2.1-T2V-1.3B-Diffusers")
    );
    assert_eq!(r.output.root, PathBuf::from("cache-root"));
    assert_eq!(r.output.key, p.key.to_hex());
    // Project size: 1920 x 1080 is 832 x 480 work on the 1.3B, 1280 x 720 on the 14B.
    let p = plan(&inputs(host(16.0, 81), settings("x")), default_weights);
    assert_eq!((p.request.width, p.request.height), (832, 480));
    assert_eq!(p.plan.size, (832, 480));
    let mut i = inputs(host(16.0, 81), settings("x"));
    i.model.spec = &WAN21_14B;
    let p = plan(&i, default_weights);
    assert_eq!((p.request.width, p.request.height), (1280, 720));
    // The request travels to the engine as one line and back unchanged.
    let line = protocol::encode(&ToEngine::Generate {
        job: 1,
        request: Box::new(p.request.clone()),
    });
    match protocol::decode::<ToEngine>(&line).unwrap() {
        ToEngine::Generate { request, .. } => assert_eq!(*request, p.request),
        other => panic!("{other:?}"),
    }
}

#[test]
fn seed_sampler_and_shift_mappings() {
    assert_eq!(engine_seed(0), 0);
    assert_eq!(engine_seed(42), 42);
    assert_eq!(engine_seed(i32::MAX), (1 << 31) - 1);
    assert_eq!(engine_seed(-1), u64::from(u32::MAX));
    assert_ne!(engine_seed(-1), engine_seed(i32::MAX));
    assert_eq!(sampler_of(0), Sampler::ModelDefault);
    assert_eq!(sampler_of(1), Sampler::FlowEuler);
    assert_eq!(sampler_of(7), Sampler::ModelDefault);
    assert_eq!(request_shift(3.0, Some(3.0)), None);
    assert_eq!(request_shift(5.0, Some(3.0)), Some(5.0));
    assert_eq!(request_shift(3.0, None), Some(3.0));
}

#[test]
fn the_default_shift_is_the_models_own() {
    // Wan2.1's scheduler_config.json says flow_shift 3.0, and so does the Shift default: a
    // new instance sends no shift, so the engine runs the model's scheduler unchanged.
    let facts = ModelFacts::read(Path::new(FIXTURE_MODEL)).unwrap();
    assert_eq!(facts.flow_shift, Some(3.0));
    assert_eq!(Settings::default().shift, 3.0);
    let p = plan(
        &ClipInputs {
            host: host(16.0, 17),
            settings: settings("x"),
            model: facts,
        },
        default_weights,
    );
    assert_eq!(p.request.shift, None);
    assert_eq!(p.request.sampler, Sampler::ModelDefault);
    assert_eq!(p.request.steps, 50);
    assert_eq!(p.request.guidance_scale, 5.0);
    assert_eq!(p.request.seed, 42);
}

#[test]
fn preview_uses_fewer_steps_and_half_the_size() {
    assert_eq!(preview_steps(50), 13);
    assert_eq!(preview_steps(20), 8);
    assert_eq!(preview_steps(40), 10);
    assert_eq!(preview_steps(4), 4);
    assert_eq!(preview_steps(1), 1);
    assert_eq!(preview_size((832, 480), 16), (416, 240));
    assert_eq!(preview_size((480, 832), 16), (240, 416));
    assert_eq!(preview_size((1280, 720), 16), (640, 368));
    assert_eq!(preview_size((16, 48), 16), (16, 32));
    let final_clip = plan(&inputs(host(16.0, 81), settings("x")), default_weights);
    let mut s = settings("x");
    s.preview = true;
    let preview = plan(&inputs(host(16.0, 81), s), default_weights);
    assert!(preview.preview && !final_clip.preview);
    assert_eq!(preview.request.steps, 13);
    assert_eq!((preview.request.width, preview.request.height), (416, 240));
    assert_eq!(preview.plan.size, (416, 240));
    assert_eq!(preview.request.frames, final_clip.request.frames);
    assert_ne!(preview.key, final_clip.key);
}

#[test]
fn provenance_says_what_made_the_clip() {
    let mut s = settings("dawn");
    s.prompts[1] = "night".into();
    let p = plan(&inputs(host(24.0, 48), s), |slot, t| {
        if slot == 0 {
            1.0
        } else {
            t / 47.0
        }
    });
    let v = &p.request.provenance;
    assert_eq!(v["model"]["folder"], "Wan2.1-T2V-1.3B-Diffusers");
    assert_eq!(v["model"]["spec"], "Wan2.1 T2V 1.3B");
    assert_eq!(v["prompts"], serde_json::json!(["dawn", "night"]));
    assert_eq!(
        v["weights_per_latent_frame"].as_array().unwrap().len(),
        p.request.weights.len()
    );
    assert_eq!(v["seed"], 42);
    assert_eq!(v["steps"], 50);
    assert_eq!(v["shift"], 3.0);
    assert_eq!(v["sampler"], "model_default");
    assert_eq!(v["frames"], 33);
    assert_eq!(v["fps"]["host"], 24.0);
    assert_eq!(v["frame_rate_mode"], "host (conform)");
    assert_eq!(v["windows"], serde_json::Value::Null);
    assert_eq!(v["host"]["name"], "org.genclip.test");
    assert_eq!(v["host"]["version"], "9.9");
    assert_eq!(v["plugin_version"], env!("CARGO_PKG_VERSION"));
}

// ----------------------------------------------------------------------------- the key

#[test]
fn the_key_ignores_how_the_clip_is_shown() {
    let base = plan(&inputs(host(24.0, 48), settings("x")), default_weights);
    // The output transfer is applied when a frame is delivered, not generated.
    let mut s = settings("x");
    s.transfer = Transfer::Linear;
    assert_eq!(
        plan(&inputs(host(24.0, 48), s), default_weights).key,
        base.key
    );
    // Render scale and the frame being rendered are no input of the plan at all; neither
    // is the cache root, the model folder's path (the fingerprint stands for the model) or
    // the host's name.
    let mut i = inputs(host(24.0, 48), settings("x"));
    i.model.folder = PathBuf::from("elsewhere/the same model");
    i.host.host_name = Some("another host".into());
    let mut w = default_weights;
    let moved = plan_clip(&i, &mut w, Path::new("another-root")).unwrap();
    assert_eq!(moved.key, base.key);
    // The timeline's rate only through what it changes: 50 frames at 25 fps need the same
    // 33 model frames with the same weights as 48 at 24.
    assert_eq!(
        plan(&inputs(host(25.0, 50), settings("x")), default_weights).key,
        base.key
    );
}

#[test]
fn the_key_follows_everything_that_changes_the_pixels() {
    let base = plan(&inputs(host(24.0, 48), settings("x")), default_weights).key;
    let differs = |change: &dyn Fn(&mut ClipInputs)| {
        let mut i = inputs(host(24.0, 48), settings("x"));
        change(&mut i);
        plan(&i, default_weights).key != base
    };
    assert!(differs(&|i| i.settings.seed = 43));
    assert!(differs(&|i| i.settings.steps = 49));
    assert!(differs(&|i| i.settings.guidance = 5.5));
    assert!(differs(&|i| i.settings.shift = 3.5));
    assert!(differs(&|i| i.settings.sampler = 1));
    assert!(differs(&|i| i.settings.negative_prompt = "text".into()));
    assert!(differs(&|i| i.settings.prompts[0] = "y".into()));
    assert!(differs(&|i| i.settings.resolution = Some((480, 832))));
    assert!(differs(&|i| i.settings.preview = true));
    assert!(differs(&|i| i.host.frames = 60));
    assert!(differs(&|i| i.model.fingerprint[31] ^= 1));
    assert!(differs(&|i| i.model.flow_shift = Some(5.0)));
    // One weight keyframe: Weight B keyed to 0.5 at frame 40 (and 0 before) adds "y" to
    // the last latent frames.
    let mut s = settings("x");
    s.prompts[1] = "y".into();
    let keyed = plan(&inputs(host(24.0, 48), s.clone()), |slot, t| match slot {
        0 => 1.0,
        1 => (t / 40.0 * 0.5).clamp(0.0, 0.5),
        _ => 0.0,
    });
    let unkeyed = plan(&inputs(host(24.0, 48), s), default_weights);
    assert_eq!(unkeyed.key, base, "an unused slot changes nothing");
    assert_ne!(keyed.key, base);
}

#[test]
fn the_key_is_stable() {
    let a = plan(&inputs(host(24.0, 48), settings("x")), default_weights);
    let b = plan(&inputs(host(24.0, 48), settings("x")), default_weights);
    assert_eq!(a.key, b.key);
    assert_eq!(a.request, b.request);
    assert_eq!(clip::clip_key(&a.request, &[7; 32]), a.key);
    // Provenance and output are not part of it.
    let mut r: ClipRequest = a.request.clone();
    r.provenance = serde_json::json!({"anything": 1});
    r.output.key = "0".repeat(64);
    assert_eq!(clip::clip_key(&r, &[7; 32]), a.key);
}

// ----------------------------------------------------------------------------- errors

#[test]
fn what_stops_a_request_is_a_sentence() {
    let e = plan_err(&inputs(host(24.0, 48), settings("  ")), default_weights);
    assert!(e.contains("No prompt yet"), "{e}");

    let mut s = settings("dawn");
    s.rate_mode = RateMode::ModelNative;
    let e = plan_err(
        &inputs(host(24.0, 48), s),
        |_, t| if t < 20.0 { 1.0 } else { 0.0 },
    );
    assert_eq!(
        e,
        "At frame 20 every prompt with text has weight 0: raise Weight A there."
    );

    let mut s = settings("dawn");
    s.schedule = "0: dawn; later: night".into();
    let e = plan_err(&inputs(host(24.0, 48), s), default_weights);
    assert!(
        e.starts_with("Prompt schedule, line 1, entry 2") && e.contains("not a frame number"),
        "{e}"
    );

    // Fifteen minutes at 24 fps is 14400 model frames; the limit is 10 minutes (9600).
    let e = plan_err(&inputs(host(24.0, 21_600), settings("x")), default_weights);
    assert!(
        e.contains("at most 10 minutes") && e.contains("shorten the clip"),
        "{e}"
    );
    let e = plan_err(
        &inputs(host(24.0, usize::MAX / 2), settings("x")),
        default_weights,
    );
    assert!(e.contains("at most 10 minutes"), "{e}");
    // Ten minutes exactly are fine.
    let p = plan(&inputs(host(16.0, 9600), settings("x")), default_weights);
    assert_eq!(p.request.frames, 9601);

    let e = plan_err(&inputs(host(0.0, 48), settings("x")), default_weights);
    assert!(e.contains("frame rate"), "{e}");
    let e = plan_err(&inputs(host(24.0, 0), settings("x")), default_weights);
    assert!(e.contains("no frames"), "{e}");

    assert!(model_folder_problem("").unwrap().contains("No model yet"));
    let e = model_folder_problem("no/such/folder").unwrap();
    assert!(e.contains("does not exist"), "{e}");
    let e = model_folder_problem("tests/fixtures").unwrap();
    assert!(e.contains("holds no model_index.json"), "{e}");
    assert_eq!(model_folder_problem(FIXTURE_MODEL), None);
}

// ----------------------------------------------------------------------------- model facts

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            set_mtime(&target, entry.metadata().unwrap().modified().unwrap());
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("genclip-clip-request-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sets a file's modification time (so an edit can keep size and time).
fn set_mtime(path: &Path, time: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// A fresh copy of the fixture model with `file` rewritten by `edit`, its size and time
/// kept (a fresh path, so no digest of this process is remembered for it).
fn edited_copy(name: &str, file: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let dir = scratch(name);
    copy_dir(Path::new(FIXTURE_MODEL), &dir);
    let path = dir.join(file);
    let time = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    edit(&mut bytes);
    assert_eq!(bytes.len(), len, "the edit keeps the size");
    std::fs::write(&path, &bytes).unwrap();
    set_mtime(&path, time);
    dir
}

#[test]
fn model_facts_come_from_the_folder() {
    let facts = ModelFacts::read(Path::new(FIXTURE_MODEL)).unwrap();
    // The tiny fixture is 32 wide: no known training sizes, it generates the project's size.
    assert_eq!(facts.spec, &WAN_OTHER);
    assert_eq!(ModelFacts::read(Path::new(FIXTURE_MODEL)).unwrap(), facts);

    // A copy elsewhere, times kept: the same fingerprint.
    let copy = scratch("copy");
    copy_dir(Path::new(FIXTURE_MODEL), &copy);
    assert_eq!(model::fingerprint(&copy).unwrap(), facts.fingerprint);
    // Files that are not weights, configs or tokenizer files do not count, nor hidden ones.
    std::fs::write(copy.join("README.md"), "notes").unwrap();
    std::fs::create_dir_all(copy.join(".cache")).unwrap();
    std::fs::write(copy.join(".cache/x.json"), "{}").unwrap();
    assert_eq!(model::fingerprint(&copy).unwrap(), facts.fingerprint);

    // A config edited with its size and time kept: configs are hashed whole.
    let shifted = edited_copy("shifted", "scheduler/scheduler_config.json", |b| {
        let text = String::from_utf8(b.clone()).unwrap();
        *b = text
            .replace("\"flow_shift\": 3.0", "\"flow_shift\": 5.0")
            .into_bytes();
    });
    let changed = ModelFacts::read(&shifted).unwrap();
    assert_eq!(changed.flow_shift, Some(5.0));
    assert_ne!(changed.fingerprint, facts.fingerprint);

    // Safetensors files count by their header: a weight byte changed (size and time kept)
    // is not read, a header byte is.
    let weights = "transformer/diffusion_pytorch_model.safetensors";
    let weight_byte = edited_copy("weight-byte", weights, |b| {
        let last = b.len() - 1;
        b[last] ^= 0xff;
    });
    assert_eq!(model::fingerprint(&weight_byte).unwrap(), facts.fingerprint);
    let header_byte = edited_copy("header-byte", weights, |b| {
        let header = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let at = b[8..8 + header]
            .windows(5)
            .position(|w| w == b"dtype")
            .expect("a dtype in the header");
        b[8 + at] = b'D';
    });
    assert_ne!(model::fingerprint(&header_byte).unwrap(), facts.fingerprint);

    // Touching a file (a new modification time) changes it too.
    let touched = scratch("touched");
    copy_dir(Path::new(FIXTURE_MODEL), &touched);
    set_mtime(
        &touched.join("vae/config.json"),
        std::time::SystemTime::now(),
    );
    assert_ne!(model::fingerprint(&touched).unwrap(), facts.fingerprint);
}

#[test]
fn the_transformer_width_picks_the_model() {
    let dir = scratch("widths");
    let write = |config: &str| {
        std::fs::create_dir_all(dir.join("transformer")).unwrap();
        std::fs::write(dir.join("transformer/config.json"), config).unwrap();
    };
    write(r#"{"num_attention_heads": 40, "attention_head_dim": 128}"#);
    assert_eq!(model::model_spec(&dir).unwrap(), &WAN21_14B);
    write(r#"{"num_attention_heads": 12, "attention_head_dim": 128}"#);
    assert_eq!(model::model_spec(&dir).unwrap(), &WAN21_1_3B);
    write(r#"{"dim": 5120}"#);
    assert_eq!(model::model_spec(&dir).unwrap(), &WAN21_14B);
    write(r#"{"num_attention_heads": 3}"#);
    assert_eq!(model::model_spec(&dir).unwrap(), &WAN21_1_3B);
    write(r#"{"num_attention_heads": 2, "attention_head_dim": 16}"#);
    assert_eq!(model::model_spec(&dir).unwrap(), &WAN_OTHER);
    write("{ not json");
    match model::model_spec(&dir) {
        Err(ClipError::Settings(e)) => assert!(e.contains("not valid JSON"), "{e}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(dir.join("transformer/config.json")).unwrap();
    assert_eq!(model::model_spec(&dir).unwrap(), &WAN21_1_3B);
    let e = model::fingerprint(&dir).unwrap_err().to_string();
    assert!(e.contains("holds no safetensors or config files"), "{e}");
}

// ----------------------------------------------------------------------------- genclip render flags

mod common;

/// `genclip render ARGS --dry-run`: the parameters as the host holds them, `name: value` at
/// the first frame and `name@frame: value` per keyframe; or the error text.
fn dry_run(args: &[&str]) -> Result<std::collections::HashMap<String, String>, String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genclip"))
        .args(["render", "--bundle"])
        .arg(common::bundle_path())
        .args(args)
        .arg("--dry-run")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

#[test]
fn render_flags_set_the_parameters() {
    let p = dry_run(&[
        "--prompt",
        "a harbour at dawn",
        "--prompt-b",
        "the harbour at night",
        "--prompt-c",
        "fog",
        "--prompt-d",
        "rain",
        "--weight-a",
        "0.5",
        "--weight-b",
        "0:0, 48:1",
        "--weight-c",
        "0.25",
        "--weight-d",
        "12:0.5,24:0",
        "--negative-prompt",
        "blurry",
        "--schedule",
        "0: dawn; 24-48: night",
        "--model",
        "models/wan",
        "--seed",
        "7",
        "--steps",
        "20",
        "--guidance",
        "6",
        "--shift",
        "5",
        "--sampler",
        "euler",
        "--fps",
        "24",
        "--frame-rate-mode",
        "native",
        "--transfer",
        "linear",
        "--quality",
        "preview",
        "--width",
        "1920",
        "--height",
        "1080",
        "--frames",
        "49",
        "--start",
        "10",
    ])
    .unwrap();
    let get = |k: &str| {
        p.get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{k}: {p:?}"))
    };
    assert_eq!(
        get("host"),
        "project 1920 x 1080 (pixel aspect 1), 24 fps, frames 10..58, context Generator"
    );
    assert_eq!(get("promptA"), "\"a harbour at dawn\"");
    assert_eq!(get("promptB"), "\"the harbour at night\"");
    assert_eq!(get("promptC"), "\"fog\"");
    assert_eq!(get("promptD"), "\"rain\"");
    assert_eq!(get("negativePrompt"), "\"blurry\"");
    assert_eq!(get("promptSchedule"), "\"0: dawn; 24-48: night\"");
    assert_eq!(get("modelFolder"), "\"models/wan\"");
    assert_eq!(get("weightA"), "0.5");
    assert_eq!(get("weightC"), "0.25");
    assert_eq!(get("weightB@0"), "0");
    assert_eq!(get("weightB@48"), "1");
    assert_eq!(get("weightD@12"), "0.5");
    assert_eq!(get("weightD@24"), "0");
    for (k, v) in [
        ("seed", "7"),
        ("steps", "20"),
        ("guidanceScale", "6"),
        ("shift", "5"),
        ("sampler", "1"),
        ("frameRateMode", "1"),
        ("outputTransfer", "1"),
        ("quality", "1"),
        // 1920 x 1080 is no native size: the project size, Resolution = Project.
        ("resolution", "0"),
        ("durationFrames", "49"),
    ] {
        assert_eq!(get(k), v, "{k}");
    }

    // A native size picks its Resolution; the defaults are the parameters' own.
    let p = dry_run(&["--prompt", "x", "--width", "480", "--height", "832"]).unwrap();
    assert_eq!(p["resolution"], "2");
    assert_eq!(
        p["host"],
        "project 480 x 832 (pixel aspect 1), 16 fps, frames 0..80, context Generator"
    );
    for (k, v) in [
        ("sampler", "0"),
        ("frameRateMode", "0"),
        ("outputTransfer", "0"),
        ("quality", "0"),
        ("weightA", "1"),
        ("weightB", "0"),
    ] {
        assert_eq!(p[k], v, "{k}");
    }
    // The word forms of the choices and the older flags.
    let p = dry_run(&[
        "--sampler",
        "UniPC",
        "--frame-rate-mode",
        "conform",
        "--transfer",
        "display",
        "--quality",
        "final",
        "--key",
        "weightB=0:0,10:1",
        "--set",
        "seed=99",
    ])
    .unwrap();
    assert_eq!((p["sampler"].as_str(), p["seed"].as_str()), ("0", "99"));
    assert_eq!(p["weightB@10"], "1");
}

#[test]
fn render_flag_mistakes_are_explained() {
    let e = dry_run(&["--sampler", "ddim"]).unwrap_err();
    assert!(e.contains("--sampler ddim: use unipc or euler"), "{e}");
    let e = dry_run(&["--frame-rate-mode", "fast"]).unwrap_err();
    assert!(e.contains("use conform or native"), "{e}");
    let e = dry_run(&["--weight-b", "x:1"]).unwrap_err();
    assert!(e.contains("--weight-b x:1: x is not a frame"), "{e}");
    let e = dry_run(&["--weight-b", "0:lots"]).unwrap_err();
    assert!(e.contains("weightB: lots is not a valid value"), "{e}");
    let e = dry_run(&["--weight-b", "0:1;48:0"]).unwrap_err();
    assert!(e.contains("is not a valid value"), "{e}");
}

#[test]
fn linear_renders_default_to_exr() {
    let dir = scratch("linear-render");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genclip"))
        .args(["render", "--bundle"])
        .arg(common::bundle_path())
        .args([
            "--prompt",
            "x",
            "--width",
            "32",
            "--height",
            "16",
            "--frames",
            "2",
            "--transfer",
            "linear",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..2 {
        assert!(dir.join(format!("frame.{i:04}.exr")).is_file());
    }
}
