//! The describe and describe-in-context actions, as a host reads them through the ABI.

mod common;

use common::*;
use genclip::effect::params::{Kind, TextMode, PARAMS};
use genclip::host::{HostOptions, PropValue};

fn strs(v: Option<&PropValue>) -> Vec<String> {
    match v {
        Some(PropValue::Str(s)) => s.clone(),
        other => panic!("expected strings, got {other:?}"),
    }
}

fn int(v: Option<&PropValue>) -> i32 {
    match v {
        Some(PropValue::Int(i)) => i[0],
        other => panic!("expected an int, got {other:?}"),
    }
}

fn doubles(v: Option<&PropValue>) -> Vec<f64> {
    match v {
        Some(PropValue::Double(d)) => d.clone(),
        other => panic!("expected doubles, got {other:?}"),
    }
}

#[test]
fn the_bundle_offers_one_image_effect_plugin_version_1_0() {
    let bundle = open_bundle();
    let plugins = bundle.plugins();
    assert_eq!(plugins.len(), 1);
    let p = &plugins[0];
    assert_eq!(p.identifier, "org.genclip.GenClip");
    assert_eq!(p.api, "OfxImageEffectPluginAPI");
    assert_eq!(p.api_version, 1);
    assert_eq!(p.version, (1, 0));
}

#[test]
fn describe_declares_contexts_depths_and_threading() {
    let _g = serial();
    let (_host, plugin) = load(quiet_options());
    assert_eq!(
        plugin.supported_contexts(),
        vec![GENERATOR, GENERAL, FILTER]
    );
    let props = plugin.descriptor_props();
    assert_eq!(
        strs(props.get("OfxImageEffectPropSupportedPixelDepths")),
        vec!["OfxBitDepthFloat", "OfxBitDepthShort", "OfxBitDepthByte"]
    );
    assert_eq!(
        strs(props.get("OfxImageEffectPluginRenderThreadSafety")),
        vec!["OfxImageEffectRenderInstanceSafe"]
    );
    assert_eq!(
        strs(props.get("OfxImageEffectPluginPropGrouping")),
        vec!["Image"]
    );
    assert_eq!(int(props.get("OfxImageEffectPropSupportsTiles")), 0);
    assert_eq!(
        int(props.get("OfxImageEffectPropSupportsMultiResolution")),
        1
    );
    assert_eq!(strs(props.get("OfxPropLabel")), vec!["GenClip"]);
    plugin.unload().unwrap();
}

#[test]
fn every_context_gets_its_clips_and_every_parameter() {
    let _g = serial();
    let (_host, plugin) = load(quiet_options());
    for context in [GENERATOR, GENERAL, FILTER] {
        let desc = plugin.describe_in_context(context).unwrap();
        let clips: Vec<&str> = desc.clips.iter().map(|(n, _)| n.as_str()).collect();
        if context == FILTER {
            assert_eq!(clips, vec!["Output", "Source"]);
            let source = &desc.clips[1].1;
            assert_eq!(int(source.get("OfxImageClipPropOptional")), 1);
        } else {
            assert_eq!(clips, vec!["Output"], "{context}");
        }
        for (_, clip) in &desc.clips {
            assert_eq!(
                strs(clip.get("OfxImageEffectPropSupportedComponents")),
                vec!["OfxImageComponentRGBA", "OfxImageComponentRGB"]
            );
        }
        for spec in PARAMS {
            let param = desc
                .params
                .iter()
                .find(|p| p.name == spec.name)
                .unwrap_or_else(|| panic!("{} missing", spec.name));
            let p = &param.props;
            assert!(
                !strs(p.get("OfxParamPropHint"))[0].is_empty(),
                "{} has no hint",
                spec.name
            );
            assert_eq!(strs(p.get("OfxPropLabel"))[0], spec.label);
            match spec.kind {
                Kind::Double {
                    default,
                    min,
                    max,
                    display,
                    ..
                } => {
                    assert_eq!(param.param_type, "OfxParamTypeDouble");
                    assert_eq!(doubles(p.get("OfxParamPropDefault")), vec![default]);
                    assert_eq!(doubles(p.get("OfxParamPropMin")), vec![min]);
                    assert_eq!(doubles(p.get("OfxParamPropMax")), vec![max]);
                    assert_eq!(doubles(p.get("OfxParamPropDisplayMin")), vec![display.0]);
                    assert_eq!(doubles(p.get("OfxParamPropDisplayMax")), vec![display.1]);
                }
                Kind::Int {
                    default,
                    min,
                    max,
                    display,
                } => {
                    assert_eq!(param.param_type, "OfxParamTypeInteger");
                    assert_eq!(int(p.get("OfxParamPropDefault")), default);
                    assert_eq!(int(p.get("OfxParamPropMin")), min);
                    assert_eq!(int(p.get("OfxParamPropMax")), max);
                    assert_eq!(int(p.get("OfxParamPropDisplayMin")), display.0);
                    assert_eq!(int(p.get("OfxParamPropDisplayMax")), display.1);
                }
                Kind::Choice { options, .. } => {
                    assert_eq!(param.param_type, "OfxParamTypeChoice");
                    assert_eq!(strs(p.get("OfxParamPropChoiceOption")), options.to_vec());
                }
                Kind::Text { .. } => assert_eq!(param.param_type, "OfxParamTypeString"),
                Kind::Bool { .. } => assert_eq!(param.param_type, "OfxParamTypeBoolean"),
                Kind::Button => assert_eq!(param.param_type, "OfxParamTypePushButton"),
            }
            // Visibility is an instance matter: nothing the user edits is declared secret;
            // only the hidden re-render token is, and it must reach the render hash.
            let hidden = matches!(
                spec.kind,
                Kind::Text {
                    mode: TextMode::Hidden,
                    ..
                }
            );
            let secret = p
                .get("OfxParamPropSecret")
                .map(|v| int(Some(v)))
                .unwrap_or(0);
            assert_eq!(secret, i32::from(hidden), "{} secret", spec.name);
            if hidden {
                assert_eq!(int(p.get("OfxParamPropEvaluateOnChange")), 1);
            }
        }
        // Pages hold every parameter the user sees exactly once.
        let mut children: Vec<String> = desc
            .params
            .iter()
            .filter(|p| p.param_type == "OfxParamTypePage")
            .flat_map(|p| strs(p.props.get("OfxParamPropPageChild")))
            .collect();
        children.sort();
        let mut all: Vec<String> = PARAMS
            .iter()
            .filter(|p| {
                !matches!(
                    p.kind,
                    Kind::Text {
                        mode: TextMode::Hidden,
                        ..
                    }
                )
            })
            .map(|p| p.name.to_string())
            .collect();
        all.sort();
        assert_eq!(children, all);
    }
    plugin.unload().unwrap();
}

fn prompt_animates(options: HostOptions) -> (i32, i32) {
    let (_host, plugin) = load(options);
    let desc = plugin.describe_in_context(GENERATOR).unwrap();
    let get = |name: &str| {
        int(desc
            .params
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .props
            .get("OfxParamPropAnimates"))
    };
    let result = (get("promptA"), get("weightB"));
    plugin.unload().unwrap();
    result
}

#[test]
fn prompts_animate_only_where_the_host_animates_strings() {
    let _g = serial();
    assert_eq!(prompt_animates(quiet_options()), (0, 1));
    assert_eq!(
        prompt_animates(HostOptions {
            supports_string_animation: true,
            ..quiet_options()
        }),
        (1, 1)
    );
}

#[test]
fn output_transfer_defaults_to_linear_in_nuke() {
    let _g = serial();
    for (host_name, expected) in [("org.genclip.headless", 0), ("uk.co.thefoundry.nuke", 1)] {
        let (_host, plugin) = load(HostOptions {
            host_name: host_name.into(),
            ..quiet_options()
        });
        let desc = plugin.describe_in_context(GENERATOR).unwrap();
        let transfer = desc
            .params
            .iter()
            .find(|p| p.name == "outputTransfer")
            .unwrap();
        assert_eq!(
            int(transfer.props.get("OfxParamPropDefault")),
            expected,
            "{host_name}"
        );
        plugin.unload().unwrap();
    }
}

#[test]
fn genclip_describe_prints_contexts_and_parameters() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genclip"))
        .arg("describe")
        .arg(bundle_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("contexts: Generator, General, Filter"),
        "{text}"
    );
    for spec in PARAMS {
        assert!(
            text.contains(spec.name),
            "{} not printed:\n{text}",
            spec.name
        );
    }
    assert!(
        text.contains("range=[1, 200] display=[1, 100]"),
        "steps range not printed:\n{text}"
    );
    assert!(text.contains("clip Source"), "{text}");
}
