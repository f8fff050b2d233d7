//! Shared set-up for the integration tests: a bundle assembled from the cdylib cargo just
//! built, and hosts that load it through the real OpenFX ABI.
//!
//! One process holds one copy of the plugin library, and a plugin talks to one host at a
//! time (as in every real editor), so tests that create hosts run one after another through
//! [`serial`].

#![allow(dead_code)]

pub mod journal;

use genclip::effect::PLUGIN_IDENTIFIER;
use genclip::host::{Bundle, Host, HostOptions, Instance, Plugin};
use parking_lot::{Mutex, MutexGuard};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub const GENERATOR: &str = "OfxImageEffectContextGenerator";
pub const GENERAL: &str = "OfxImageEffectContextGeneral";
pub const FILTER: &str = "OfxImageEffectContextFilter";

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the plugin for one test at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock()
}

/// A scratch folder unique to this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("genclip-tests-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The bundle, assembled once per test process from the cdylib and the engine program of
/// this test build.
///
/// `cargo test` leaves the cdylib it built for the tests in `target/<profile>/deps/` (only
/// `cargo build` copies it up to `target/<profile>/`, where an older build may sit), so that
/// is where we look first.
pub fn bundle_path() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_genclip"));
        let profile_dir = exe.parent().unwrap();
        let library = [profile_dir.join("deps"), profile_dir.to_path_buf()]
            .iter()
            .map(|dir| genclip::bundle::built_library(dir))
            .find(|lib| lib.is_file())
            .expect("the cdylib of this build");
        let engine = PathBuf::from(env!("CARGO_BIN_EXE_genclip-engine"));
        genclip::bundle::assemble(&library, &engine, &scratch("bundle"))
            .expect("assemble the test bundle")
    })
}

pub fn open_bundle() -> Arc<Bundle> {
    Bundle::open(bundle_path()).expect("open the bundle")
}

pub fn quiet_options() -> HostOptions {
    HostOptions {
        echo_messages: false,
        ..HostOptions::default()
    }
}

/// The tiny random-weight Wan2.1 model the tests generate with (absolute, as hosts pass it).
pub fn fixture_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_tiny_a/model")
}

/// The frame cache every plugin of this test process uses: a scratch folder, never the
/// user's own cache. Set before the plugin first looks for it (it reads it once).
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("frame-cache");
        std::env::set_var(genclip::cache::CACHE_DIR_ENV, &dir);
        dir
    })
}

/// A host with `options`, and the GenClip plugin loaded and described.
pub fn load(options: HostOptions) -> (Arc<Host>, Plugin) {
    cache_dir();
    let host = Host::new(options);
    let plugin = host
        .load_plugin(&open_bundle(), PLUGIN_IDENTIFIER)
        .expect("load action");
    plugin.describe().expect("describe action");
    (host, plugin)
}

/// A loaded plugin and one instance in `context`.
pub fn instance(options: HostOptions, context: &str) -> (Arc<Host>, Plugin, Instance) {
    let (host, plugin) = load(options);
    let instance = plugin.create_instance(context).expect("create instance");
    (host, plugin, instance)
}
