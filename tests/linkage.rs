//! Hosts ship their own libraries, so the plugin binary may depend only on the C runtime and
//! the loader (`readelf -d` lists what it needs).

mod common;

#[test]
fn the_plugin_needs_only_the_system_c_runtime() {
    let binary = genclip::bundle::binary_in(common::bundle_path());
    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(&binary)
        .output()
        .expect("readelf (binutils) is needed for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "no NEEDED entries parsed from:\n{text}");
    let allowed = [
        "libc.so",
        "libm.so",
        "libgcc_s.so",
        "libpthread.so",
        "libdl.so",
        "librt.so",
        "ld-linux",
    ];
    for lib in &needed {
        assert!(
            allowed.iter().any(|a| lib.starts_with(a)),
            "GenClip.ofx needs {lib}; allowed: {allowed:?}"
        );
    }
}
