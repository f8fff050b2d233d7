//! The host must never crash: bad handles, odd action orders, unknown actions, threads,
//! aborts and panics all end in a status code.

mod common;

use common::*;
use genclip::host::{HostOptions, ParamValue, RenderRequest};
use std::ffi::CString;
use std::ptr;
use std::time::Duration;

const OK: i32 = 0;
const REPLY_DEFAULT: i32 = 14;

fn action(name: &str) -> CString {
    CString::new(name).unwrap()
}

#[test]
fn null_and_foreign_handles_are_refused() {
    let _g = serial();
    let (_host, plugin) = load(quiet_options());
    let entry = plugin.main_entry();
    let garbage = 0x1234_5678usize as *const std::ffi::c_void;
    for name in [
        "OfxImageEffectActionRender",
        "OfxActionCreateInstance",
        "OfxImageEffectActionGetRegionOfDefinition",
        "OfxActionDescribe",
    ] {
        let a = action(name);
        // SAFETY (test): the entry point must cope with whatever a host passes.
        let null_status =
            unsafe { entry(a.as_ptr(), ptr::null(), ptr::null_mut(), ptr::null_mut()) };
        assert_ne!(null_status, OK, "{name} with a null handle");
        let (garbage_status, _) = plugin.call_action(name, garbage, None);
        assert_ne!(garbage_status, OK, "{name} with a garbage handle");
    }
    // A null action name.
    let st = unsafe { entry(ptr::null(), ptr::null(), ptr::null_mut(), ptr::null_mut()) };
    assert_ne!(st, OK);
    plugin.unload().unwrap();
}

#[test]
fn unknown_actions_get_reply_default() {
    let _g = serial();
    let (_host, plugin, instance) = instance(quiet_options(), GENERATOR);
    for name in [
        "OfxActionNoSuchThing",
        "OfxImageEffectActionGetFramesNeeded",
        "OfxActionBeginInstanceEdit",
        "",
    ] {
        let (st, _) = plugin.call_action(name, instance.handle(), None);
        assert_eq!(st, REPLY_DEFAULT, "{name:?}");
    }
    drop(instance);
    plugin.unload().unwrap();
}

#[test]
fn actions_in_an_unexpected_order_fail_cleanly() {
    let _g = serial();
    let (_host, plugin, instance) = instance(quiet_options(), GENERATOR);
    let handle = instance.handle();
    // Render without its arguments.
    let (st, _) = plugin.call_action("OfxImageEffectActionRender", handle, None);
    assert_ne!(st, OK);
    // Destroy twice, then act on the destroyed instance.
    let (st, _) = plugin.call_action("OfxActionDestroyInstance", handle, None);
    assert_eq!(st, OK);
    let (st, _) = plugin.call_action("OfxActionDestroyInstance", handle, None);
    assert_eq!(st, OK, "a second destroy is harmless");
    let (st, _) = plugin.call_action("OfxImageEffectActionGetClipPreferences", handle, None);
    assert_ne!(st, OK, "an instance without its data must refuse work");
    assert!(instance.render(&RenderRequest::new(0.0)).is_err());
    // Describe again, after instances exist, and again after unload/load.
    plugin.describe().unwrap();
    plugin.unload().unwrap();
    let (st, _) = plugin.call_action("OfxImageEffectActionRender", handle, None);
    assert_ne!(st, OK, "nothing works after unload");
    let (st, _) = plugin.call_action("OfxActionLoad", ptr::null(), None);
    assert_eq!(st, OK, "load returns kOfxStatOK");
    drop(instance);
    plugin.unload().unwrap();
}

#[test]
fn eight_threads_render_one_instance_and_several_instances_at_once() {
    let _g = serial();
    let options = HostOptions {
        project_size: (200.0, 112.0),
        ..quiet_options()
    };
    let (_host, plugin) = load(options);
    let instances: Vec<_> = (0..3)
        .map(|_| plugin.create_instance(GENERATOR).unwrap())
        .collect();
    for (i, inst) in instances.iter().enumerate() {
        inst.set_param("promptA", ParamValue::Str(format!("instance {i}")))
            .unwrap();
    }
    let reference: Vec<Vec<u8>> = (0..8)
        .map(|t| {
            instances[0]
                .render(&RenderRequest::new(t as f64))
                .unwrap()
                .pixels
        })
        .collect();
    std::thread::scope(|scope| {
        for thread in 0..8usize {
            let (instances, reference) = (&instances, &reference);
            scope.spawn(move || {
                for round in 0..6usize {
                    let t = (thread + round) % 8;
                    let pixels = instances[0]
                        .render(&RenderRequest::new(t as f64))
                        .unwrap()
                        .pixels;
                    assert_eq!(pixels, reference[t], "thread {thread} frame {t}");
                    // The other instances render beside it.
                    instances[1 + (thread + round) % 2]
                        .render(&RenderRequest::new(t as f64))
                        .unwrap();
                }
            });
        }
    });
    drop(instances);
    plugin.unload().unwrap();
}

#[test]
fn abort_mid_render_stops_without_harm() {
    let _g = serial();
    let options = HostOptions {
        project_size: (640.0, 360.0),
        abort_after: Some(Duration::ZERO),
        ..quiet_options()
    };
    let (host, plugin, instance) = instance(options, GENERATOR);
    instance
        .set_param("promptA", ParamValue::Str("aborted".into()))
        .unwrap();
    let result = instance.render(&RenderRequest::new(0.0));
    assert!(
        result.is_err(),
        "an aborted frame must not count as rendered"
    );
    assert!(
        host.messages().iter().all(|m| m.kind != "OfxMessageError"),
        "an abort is not an error: {:?}",
        host.messages()
    );
    // The instance is still fine for the next request.
    let rod = instance.region_of_definition(0.0, (1.0, 1.0)).unwrap();
    assert_eq!(rod.x2, 640.0);
    drop(instance);
    plugin.unload().unwrap();
}

/// Needs the test-only `fault-injection` feature (the README's test command turns it on).
#[cfg(feature = "fault-injection")]
#[test]
fn a_panic_in_render_becomes_a_failed_status() {
    let _g = serial();
    let options = HostOptions {
        project_size: (64.0, 36.0),
        ..quiet_options()
    };
    let (_host, plugin, instance) = instance(options, GENERATOR);
    instance
        .set_param("promptA", ParamValue::Str("genclip:fault:panic".into()))
        .unwrap();
    match instance.render(&RenderRequest::new(0.0)) {
        Err(err) => assert_eq!(err.status, 1, "kOfxStatFailed: {err}"),
        Ok(_) => {
            panic!("the injected panic did not happen: is the plugin built with fault-injection?")
        }
    }
    // The plugin survives: the next frame renders once the fault is gone.
    instance
        .set_param("promptA", ParamValue::Str("fine".into()))
        .unwrap();
    instance.render(&RenderRequest::new(0.0)).unwrap();
    drop(instance);
    plugin.unload().unwrap();
}

#[test]
fn hosts_without_message_or_progress_suites_are_served() {
    let _g = serial();
    let options = HostOptions {
        message_suite: false,
        progress_suite: false,
        project_size: (64.0, 36.0),
        ..quiet_options()
    };
    let (host, plugin, instance) = instance(options, GENERATOR);
    instance.press_button("generate").unwrap();
    instance.render(&RenderRequest::new(0.0)).unwrap();
    assert!(host.messages().is_empty());
    match instance.param_value("status", 0.0).unwrap() {
        ParamValue::Str(s) => assert!(s.starts_with("No prompt yet"), "{s}"),
        other => panic!("{other:?}"),
    }
    drop(instance);
    plugin.unload().unwrap();
}

#[test]
fn a_parameter_of_the_wrong_type_is_refused_not_written_through() {
    let _g = serial();
    // The host hands out "seed" as a double and "promptA" as an integer: reading them with
    // the pointer types GenClip declared would write through the wrong type.
    let overrides = vec![
        ("seed".to_string(), "OfxParamTypeDouble".to_string()),
        ("promptA".to_string(), "OfxParamTypeInteger".to_string()),
    ];
    let options = HostOptions {
        param_type_overrides: overrides,
        ..quiet_options()
    };
    let (host, plugin) = load(options);
    let err = match plugin.create_instance(GENERATOR) {
        Err(err) => err,
        Ok(_) => panic!("an instance with mistyped parameters must not be created"),
    };
    assert_ne!(err.status, OK);
    let said = host
        .messages()
        .iter()
        .map(|m| m.text.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        said.contains(
            "parameter promptA has type OfxParamTypeInteger, expected OfxParamTypeString"
        ),
        "{said}"
    );
    assert!(
        said.contains("remove the effect and add it again"),
        "{said}"
    );
    plugin.unload().unwrap();
}
