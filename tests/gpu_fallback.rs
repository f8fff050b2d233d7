//! The *Device* choice through the OpenFX ABI when the GPU engine cannot start: the plugin
//! renders the clip on the CPU engine, the frames are the CPU's (under the CPU's cache key),
//! and Status says why. Its own test binary, because the GPU engine's path is read from the
//! environment once per process.

mod common;

use genclip::host::{HostOptions, ParamValue, RenderRequest};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn an_unstartable_gpu_engine_falls_back_to_the_cpu_and_says_so() {
    let _g = serial();
    // A "GPU engine" that dies at once, as one without libcuda does (exit 127).
    let fake = scratch("fake-gpu").join("genclip-engine-cuda");
    std::fs::write(&fake, "#!/bin/sh\nexit 127\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var("GENCLIP_ENGINE_CUDA", &fake);

    let options = HostOptions {
        project_size: (48.0, 32.0),
        frame_rate: 16.0,
        frame_range: (0.0, 8.0),
        echo_messages: false,
        ..HostOptions::default()
    };
    let (_host, plugin, inst) = instance(options, GENERATOR);
    let set = |name: &str, value: ParamValue| inst.set_param(name, value).unwrap();
    set(
        "modelFolder",
        ParamValue::Str(fixture_model().display().to_string()),
    );
    set(
        "promptA",
        ParamValue::Str("a lighthouse in fog at dawn".into()),
    );
    set("steps", ParamValue::Int(3));
    set("resolution", ParamValue::Choice(0));
    // Device stays at its default, Auto (GPU when available).
    let image = inst
        .render(&RenderRequest::new(4.0))
        .expect("rendered on the CPU");
    assert_eq!(image.rgba_f32(0, 0)[3], 1.0);

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        inst.sync_private_data().unwrap();
        let ParamValue::Str(status) = inst.param_value("status", 0.0).unwrap() else {
            panic!("status is not text");
        };
        if status.starts_with("Ready") || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.starts_with("Ready"), "{status}");
    assert!(
        status.contains("GPU engine could not start") && status.contains("on the CPU"),
        "{status}"
    );
    // The clip the plugin names is the one on disk (the CPU's key, not the GPU's).
    let ParamValue::Str(key) = inst.param_value("shownClip", 0.0).unwrap() else {
        panic!("shownClip is not text");
    };
    assert!(cache_dir().join(format!("{key}.gcf")).is_file(), "{key}");
    // Later renders go straight to the CPU clip: another frame, no new attempt needed.
    inst.render(&RenderRequest::new(5.0)).expect("cached frame");
    drop(inst);
    plugin.unload().unwrap();
}
