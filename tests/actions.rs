//! The instance actions a host runs for a generator, end to end through the ABI.

mod common;

use common::*;
use genclip::host::{HostOptions, ParamValue, PropValue};

fn status(instance: &genclip::host::Instance) -> String {
    match instance.param_value("status", 0.0).unwrap() {
        ParamValue::Str(s) => s,
        other => panic!("status is {other:?}"),
    }
}

#[test]
fn the_resolve_and_nuke_action_sequence_runs_clean() {
    let _g = serial();
    let (host, plugin, instance) = instance(quiet_options(), GENERATOR);
    instance
        .set_param("promptA", ParamValue::Str("a harbour at dawn".into()))
        .unwrap();
    let prefs = instance.clip_preferences().unwrap();
    assert_eq!(
        prefs.get("OfxImageEffectPropPreMultiplication"),
        Some(&PropValue::Str(vec!["OfxImageOpaque".into()]))
    );
    assert_eq!(
        prefs.get("OfxImageEffectFrameVarying"),
        Some(&PropValue::Int(vec![1]))
    );
    let rod = instance.region_of_definition(0.0, (1.0, 1.0)).unwrap();
    assert_eq!(
        (rod.x1, rod.y1, rod.x2, rod.y2),
        (0.0, 0.0, 1920.0, 1080.0),
        "Project resolution follows the host"
    );
    assert_eq!(instance.is_identity(3.0).unwrap(), None);
    instance
        .begin_sequence((0.0, 47.0), false, (1.0, 1.0))
        .unwrap();
    let image = instance
        .render(&genclip::host::RenderRequest::new(0.0))
        .unwrap();
    assert_eq!((image.width(), image.height()), (1920, 1080));
    instance
        .end_sequence((0.0, 47.0), false, (1.0, 1.0))
        .unwrap();
    instance.purge_caches().unwrap();
    instance.sync_private_data().unwrap();
    instance.destroy().unwrap();
    plugin.unload().unwrap();
    assert!(
        host.messages().iter().all(|m| m.kind != "OfxMessageError"),
        "{:?}",
        host.messages()
    );
}

#[test]
fn resolution_choices_set_the_region_of_definition() {
    let _g = serial();
    let options = HostOptions {
        pixel_aspect_ratio: 2.0,
        project_offset: (10.0, 20.0),
        ..quiet_options()
    };
    let (_host, plugin, instance) = instance(options, GENERATOR);
    let rod = instance.region_of_definition(0.0, (1.0, 1.0)).unwrap();
    assert_eq!(
        (rod.x1, rod.y1, rod.x2, rod.y2),
        (10.0, 20.0, 1930.0, 1100.0)
    );
    instance
        .set_param("resolution", ParamValue::Choice(1))
        .unwrap();
    let rod = instance.region_of_definition(0.0, (0.5, 0.5)).unwrap();
    // Canonical coordinates: 832 pixels of aspect 2 are 1664 units wide, whatever the scale.
    assert_eq!((rod.x1, rod.y1, rod.x2, rod.y2), (0.0, 0.0, 1664.0, 480.0));
    instance
        .set_param("resolution", ParamValue::Choice(4))
        .unwrap();
    let rod = instance.region_of_definition(0.0, (1.0, 1.0)).unwrap();
    assert_eq!((rod.x2, rod.y2), (1440.0, 1280.0));
    drop(instance);
    plugin.unload().unwrap();
}

#[test]
fn only_the_general_context_chooses_its_length() {
    let _g = serial();
    let (_host, plugin) = load(quiet_options());
    let general = plugin.create_instance(GENERAL).unwrap();
    assert_eq!(general.time_domain().unwrap(), Some((0.0, 80.0)));
    general
        .set_param("durationFrames", ParamValue::Int(33))
        .unwrap();
    assert_eq!(general.time_domain().unwrap(), Some((0.0, 32.0)));
    assert_eq!(
        general
            .param_props("durationFrames")
            .unwrap()
            .get("OfxParamPropSecret"),
        Some(&PropValue::Int(vec![0]))
    );

    let generator = plugin.create_instance(GENERATOR).unwrap();
    assert_eq!(
        generator.time_domain().unwrap(),
        None,
        "the host's clip length rules in the Generator context"
    );
    assert_eq!(
        generator
            .param_props("durationFrames")
            .unwrap()
            .get("OfxParamPropSecret"),
        Some(&PropValue::Int(vec![1]))
    );
    drop((general, generator));
    plugin.unload().unwrap();
}

#[test]
fn the_status_line_says_what_to_do_next() {
    let _g = serial();
    let (host, plugin, instance) = instance(quiet_options(), GENERATOR);
    assert!(
        status(&instance).starts_with("No prompt yet"),
        "{}",
        status(&instance)
    );

    instance
        .set_param("promptA", ParamValue::Str("a lighthouse in fog".into()))
        .unwrap();
    assert!(
        status(&instance).starts_with("No model yet"),
        "{}",
        status(&instance)
    );

    let folder = scratch("not-a-model");
    instance
        .set_param("modelFolder", ParamValue::Str(folder.display().to_string()))
        .unwrap();
    assert!(
        status(&instance).contains("holds no model_index.json"),
        "{}",
        status(&instance)
    );

    std::fs::write(folder.join("model_index.json"), "{}").unwrap();
    instance
        .set_param("weightA", ParamValue::Double(0.0))
        .unwrap();
    assert!(
        status(&instance).starts_with("Every prompt with text has weight 0"),
        "{}",
        status(&instance)
    );
    instance
        .set_param("weightA", ParamValue::Double(1.0))
        .unwrap();
    assert!(
        status(&instance).starts_with("Not generated"),
        "{}",
        status(&instance)
    );

    // Problems also reach the host's message suite, where it has one.
    assert!(
        host.messages()
            .iter()
            .any(|m| m.text.starts_with("No model yet")),
        "{:?}",
        host.messages()
    );

    // Generate starts the job in the background (the engine process); that a folder with an
    // empty model_index.json is no model comes back from the engine, and the next action
    // where the plugin may write parameters (here the host's SyncPrivateData) shows it.
    instance.press_button("generate").unwrap();
    assert!(
        status(&instance).starts_with("Generating"),
        "{}",
        status(&instance)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while status(&instance).starts_with("Generating") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        instance.sync_private_data().unwrap();
    }
    assert!(
        status(&instance).contains("model_index.json"),
        "{}",
        status(&instance)
    );
    drop(instance);
    plugin.unload().unwrap();
}

#[test]
fn randomize_picks_a_new_seed() {
    let _g = serial();
    let (_host, plugin, instance) = instance(quiet_options(), GENERATOR);
    assert_eq!(
        instance.param_value("seed", 0.0).unwrap(),
        ParamValue::Int(42)
    );
    instance.press_button("randomizeSeed").unwrap();
    let first = instance.param_value("seed", 0.0).unwrap();
    instance.press_button("randomizeSeed").unwrap();
    let second = instance.param_value("seed", 0.0).unwrap();
    assert_ne!(first, ParamValue::Int(42));
    assert_ne!(first, second);
    drop(instance);
    plugin.unload().unwrap();
}
