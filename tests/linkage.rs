//! What the bundle's binaries link. Hosts ship their own libraries, so the plugin binary may
//! depend only on the C runtime and the loader; the engine program, shipped beside it, only on
//! the system C/C++ runtime in this (CPU) build, so it starts on a machine without CUDA
//! (`readelf -d` lists what a binary needs). And the plugin holds no generation code at all:
//! candle belongs in the engine process (`nm` lists the plugin's symbols).

mod common;

use std::path::Path;
use std::process::Command;

/// The libraries `binary` names as NEEDED.
fn needed(binary: &Path) -> Vec<String> {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(binary)
        .output()
        .expect("readelf (binutils) is needed for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<String> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.split(']').next()?.to_string()))
        .collect();
    assert!(!needed.is_empty(), "no NEEDED entries parsed from:\n{text}");
    needed
}

fn assert_only(binary: &Path, allowed: &[&str]) {
    for lib in needed(binary) {
        assert!(
            allowed.iter().any(|a| lib.starts_with(a)),
            "{} needs {lib}; allowed: {allowed:?}",
            binary.display()
        );
    }
}

const C_RUNTIME: [&str; 7] = [
    "libc.so",
    "libm.so",
    "libgcc_s.so",
    "libpthread.so",
    "libdl.so",
    "librt.so",
    "ld-linux",
];

#[test]
fn the_plugin_needs_only_the_system_c_runtime() {
    assert_only(
        &genclip::bundle::binary_in(common::bundle_path()),
        &C_RUNTIME,
    );
}

#[test]
fn the_engine_in_the_bundle_needs_no_cuda_library() {
    let engine = genclip::bundle::engine_in(common::bundle_path());
    assert!(
        engine.is_file(),
        "{} missing from the bundle",
        engine.display()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&engine).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "the bundled engine is not executable");
    }
    // The system C and C++ runtimes, nothing else: no libcuda, libcudart, libcublas, ….
    let mut allowed = C_RUNTIME.to_vec();
    allowed.push("libstdc++.so");
    assert_only(&engine, &allowed);
}

/// The libraries the GPU engine may need (docs/gpu.md): the driver's, and the CUDA 13 runtime
/// libraries from NVIDIA's wheels (or a toolkit, or PyTorch's wheels on the user's machine).
const CUDA_LIBRARIES: [&str; 6] = [
    "libcuda.so.1",
    "libcudart.so.13",
    "libcublas.so.13",
    "libcublasLt.so.13",
    "libcurand.so.10",
    "libnvrtc.so.13",
];

/// `genclip-engine-cuda`, when `tools/build_cuda_engine.sh` has built it (beside this
/// build's engine): it needs the C/C++ runtimes and the CUDA libraries above, nothing else,
/// and looks for them beside itself first (RUNPATH `$ORIGIN:$ORIGIN/cuda`).
#[test]
fn the_cuda_engine_if_built_needs_only_the_documented_cuda_libraries() {
    let engine = Path::new(env!("CARGO_BIN_EXE_genclip-engine"));
    let cuda = engine.with_file_name(genclip::client::CUDA_ENGINE_FILE);
    if !cuda.is_file() {
        eprintln!(
            "skipped: no {} (tools/build_cuda_engine.sh builds it)",
            cuda.display()
        );
        return;
    }
    let mut allowed = C_RUNTIME.to_vec();
    allowed.push("libstdc++.so");
    allowed.extend(CUDA_LIBRARIES);
    assert_only(&cuda, &allowed);
    let needed = needed(&cuda);
    assert!(
        needed.iter().any(|l| l == "libcuda.so.1"),
        "{} needs no libcuda.so.1: is it the CPU build? {needed:?}",
        cuda.display()
    );
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(&cuda)
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    assert!(
        dynamic
            .lines()
            .any(|l| l.contains("(RUNPATH)") && l.contains("[$ORIGIN:$ORIGIN/cuda]")),
        "{} has no RUNPATH $ORIGIN:$ORIGIN/cuda:\n{dynamic}",
        cuda.display()
    );
}

/// Symbol names (mangled, as the symbol table holds them) of `binary`.
fn symbols(binary: &Path) -> Vec<String> {
    let out = Command::new("nm")
        .arg(binary)
        .output()
        .expect("nm (binutils) is needed for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nm {}: {}{text}",
        binary.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

#[test]
fn the_plugin_contains_no_candle_code() {
    let plugin = genclip::bundle::binary_in(common::bundle_path());
    let plugin_symbols = symbols(&plugin);
    // A stripped binary would pass any "no such symbol" check: first show the table is
    // there and holds this crate's own code, by name.
    assert!(
        plugin_symbols.iter().any(|s| s == "OfxGetPlugin"),
        "no OfxGetPlugin in the symbol table of {}: is it stripped?",
        plugin.display()
    );
    let ours = plugin_symbols
        .iter()
        .filter(|s| s.contains("7genclip"))
        .count();
    assert!(ours > 20, "only {ours} genclip symbols: is it stripped?");
    // The same check on the engine, which does run candle, must find it: it can fail.
    let engine = genclip::bundle::engine_in(common::bundle_path());
    assert!(
        symbols(&engine).iter().any(|s| s.contains("candle")),
        "the check cannot see candle even in the engine"
    );
    let candle: Vec<&String> = plugin_symbols
        .iter()
        .filter(|s| s.to_ascii_lowercase().contains("candle"))
        .collect();
    assert!(
        candle.is_empty(),
        "GenClip.ofx contains candle code ({} symbols), e.g. {:?}",
        candle.len(),
        &candle[..candle.len().min(5)]
    );
}
