//! Generates the Rust view of our OpenFX headers (`ofx-headers/`) and builds the host's C shim.
//!
//! bindgen turns every `kOfx*` macro into a constant (strings become NUL-terminated byte
//! strings) and every `Ofx*` struct into a `#[repr(C)]` type; the shim holds the C-variadic
//! parameter and message functions that the headless host must provide but stable Rust
//! cannot define.

use std::env;
use std::path::PathBuf;

fn main() {
    let headers = PathBuf::from("ofx-headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    println!("cargo:rerun-if-changed=ofx-headers");
    println!("cargo:rerun-if-changed=src/host/shim.c");

    let bindings = bindgen::Builder::default()
        .header(headers.join("ofx.h").to_string_lossy())
        .clang_arg(format!("-I{}", headers.display()))
        .allowlist_type("Ofx.*")
        .allowlist_var("kOfx.*")
        // The exported functions are defined by our plugin, not imported.
        .blocklist_function(".*")
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen could not read ofx-headers/ofx.h (is libclang-dev installed?)");
    bindings
        .write_to_file(out.join("ofx_bindings.rs"))
        .expect("write OUT_DIR/ofx_bindings.rs");

    cc::Build::new()
        .file("src/host/shim.c")
        .include(&headers)
        .warnings(true)
        .extra_warnings(true)
        .compile("genclip_host_shim");
}
