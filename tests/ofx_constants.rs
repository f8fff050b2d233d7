//! Conformance of `ofx-headers/` with the OpenFX specification's constants.
//!
//! `tests/data/ofx-constants.tsv` holds every constant of the OpenFX 1.5.1 specification
//! headers (name, value, header). Two checks:
//! - every `#define` in our headers names a specification constant and carries its exact
//!   value (text comparison of the C token: the quoted string, or the number);
//! - bindgen turned each of them into a Rust constant with that same value, so what the
//!   plugin and host compile against is what the headers say.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

fn spec() -> BTreeMap<String, String> {
    let tsv = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ofx-constants.tsv"),
    )
    .unwrap();
    tsv.lines()
        .filter(|l| l.starts_with('k'))
        .map(|l| {
            let mut cols = l.split('\t');
            (
                cols.next().unwrap().to_string(),
                cols.next().unwrap().to_string(),
            )
        })
        .collect()
}

/// `#define NAME VALUE` lines of our headers (VALUE is the rest of the line).
fn header_defines() -> Vec<(String, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ofx-headers");
    let mut defines = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for line in fs::read_to_string(&path).unwrap().lines() {
            let Some(rest) = line.trim_start().strip_prefix("#define ") else {
                continue;
            };
            let mut parts = rest.trim().splitn(2, char::is_whitespace);
            let name = parts.next().unwrap().to_string();
            let value = parts.next().unwrap_or("").trim().to_string();
            if name.starts_with("GENCLIP_") {
                continue; // include guards
            }
            defines.push((file.clone(), name, value));
        }
    }
    defines
}

#[test]
fn every_header_constant_is_in_the_specification_with_its_value() {
    let spec = spec();
    assert!(
        spec.len() > 900,
        "the specification table looks truncated: {} names",
        spec.len()
    );
    let defines = header_defines();
    assert!(defines.len() > 300, "only {} defines found", defines.len());
    let mut problems = Vec::new();
    for (file, name, value) in &defines {
        match spec.get(name) {
            None => problems.push(format!("{file}: {name} is not a specification constant")),
            Some(expected) if expected != value => problems.push(format!(
                "{file}: {name} is {value}, the specification says {expected}"
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn bindgen_constants_match_the_headers() {
    let bindings = fs::read_to_string(concat!(env!("OUT_DIR"), "/ofx_bindings.rs")).unwrap();
    let spec = spec();
    let mut generated = BTreeMap::new();
    // Statements may be wrapped over several lines: read from each `pub const` to its `;`.
    for statement in bindings.split("pub const ").skip(1) {
        // kOfxName: &[u8; 14] = b"OfxActionLoad\0";   or   kOfxStatOK: i32 = 0;
        let statement = statement.split(";\n").next().unwrap();
        let (name, rest) = statement.split_once(':').unwrap();
        let value = rest
            .split_once('=')
            .unwrap()
            .1
            .trim()
            .trim_end_matches(';')
            .trim();
        let value = match value.strip_prefix("b\"") {
            Some(s) => format!("\"{}\"", s.trim_end_matches('"').trim_end_matches("\\0")),
            None => value.to_string(),
        };
        generated.insert(name.trim().to_string(), value);
    }
    let defines = header_defines();
    let mut problems = Vec::new();
    for (_, name, _) in &defines {
        match (generated.get(name), spec.get(name)) {
            (None, _) => problems.push(format!("{name} did not reach the Rust bindings")),
            (Some(got), Some(want)) if !same_value(got, want) => problems.push(format!(
                "{name}: bindings have {got}, the specification {want}"
            )),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Numbers may be written differently (0x10 vs 16); strings must match exactly.
fn same_value(a: &str, b: &str) -> bool {
    let num = |s: &str| match s.strip_prefix("0x") {
        Some(h) => i64::from_str_radix(h, 16).ok(),
        None => s.parse::<i64>().ok(),
    };
    a == b || matches!((num(a), num(b)), (Some(x), Some(y)) if x == y)
}

#[test]
fn the_suites_and_actions_a_generator_needs_are_declared() {
    let defines: Vec<String> = header_defines().into_iter().map(|(_, n, _)| n).collect();
    for needed in [
        "kOfxPropertySuite",
        "kOfxImageEffectSuite",
        "kOfxParameterSuite",
        "kOfxMemorySuite",
        "kOfxMultiThreadSuite",
        "kOfxMessageSuite",
        "kOfxProgressSuite",
        "kOfxTimeLineSuite",
        "kOfxActionLoad",
        "kOfxImageEffectActionRender",
        "kOfxImageEffectActionGetClipPreferences",
        "kOfxImageEffectPropOpenGLRenderSupported",
        "kOfxImageEffectPropCudaRenderSupported",
        "kOfxImageEffectPropMetalRenderSupported",
        "kOfxImageEffectPropOpenCLRenderSupported",
    ] {
        assert!(
            defines.iter().any(|d| d == needed),
            "{needed} is missing from ofx-headers/"
        );
    }
}
