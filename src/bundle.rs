//! The OpenFX bundle: the folder layout hosts scan for, and the step that assembles it from
//! a cargo build.
//!
//! ```text
//! GenClip.ofx.bundle/
//!   Contents/
//!     Info.plist
//!     Resources/org.genclip.GenClip.png      (the icon hosts show; named after the identifier)
//!     Linux-x86-64/GenClip.ofx               (the cdylib, renamed)
//!     Linux-x86-64/genclip-engine            (the engine process the plugin starts)
//!     Win64/GenClip.ofx                      (Windows: the .dll, renamed; not built here yet)
//!     MacOS/GenClip.ofx                      (macOS: the .dylib, renamed; not built here yet)
//! ```

use crate::client::ENGINE_FILE;
use crate::effect::PLUGIN_IDENTIFIER;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const BUNDLE_NAME: &str = "GenClip.ofx.bundle";
pub const BINARY_NAME: &str = "GenClip.ofx";

/// The architecture folder of this platform, as the OpenFX specification names it.
pub fn arch_folder() -> &'static str {
    if cfg!(target_os = "windows") {
        "Win64"
    } else if cfg!(target_os = "macos") {
        "MacOS"
    } else if cfg!(target_arch = "aarch64") {
        "Linux-arm-64"
    } else {
        "Linux-x86-64"
    }
}

/// The plugin binary inside a bundle folder.
pub fn binary_in(bundle: &Path) -> PathBuf {
    bundle
        .join("Contents")
        .join(arch_folder())
        .join(BINARY_NAME)
}

/// The engine program inside a bundle folder, beside the plugin binary (where the plugin
/// looks for it: `client::engine_program`).
pub fn engine_in(bundle: &Path) -> PathBuf {
    bundle
        .join("Contents")
        .join(arch_folder())
        .join(ENGINE_FILE)
}

/// The cdylib cargo builds next to the `genclip` executable.
pub fn built_library(dir: &Path) -> PathBuf {
    let name = if cfg!(target_os = "windows") {
        "genclip.dll"
    } else if cfg!(target_os = "macos") {
        "libgenclip.dylib"
    } else {
        "libgenclip.so"
    };
    dir.join(name)
}

/// Assembles `out_dir/GenClip.ofx.bundle` from a built cdylib and engine program; returns
/// the bundle's path. An existing bundle there is replaced whole, so no stale file survives.
pub fn assemble(library: &Path, engine: &Path, out_dir: &Path) -> io::Result<PathBuf> {
    for built in [library, engine] {
        if !built.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} not found: build the plugin and its engine first (cargo build --release)",
                    built.display()
                ),
            ));
        }
    }
    let bundle = out_dir.join(BUNDLE_NAME);
    // Build beside the target and rename into place, so a host scanning the folder never
    // sees a half-written bundle.
    let staging = out_dir.join(format!(".{BUNDLE_NAME}.partial-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    let contents = staging.join("Contents");
    fs::create_dir_all(contents.join("Resources"))?;
    fs::create_dir_all(contents.join(arch_folder()))?;
    fs::write(contents.join("Info.plist"), info_plist())?;
    fs::copy(library, contents.join(arch_folder()).join(BINARY_NAME))?;
    copy_executable(engine, &contents.join(arch_folder()).join(ENGINE_FILE))?;
    fs::write(
        contents
            .join("Resources")
            .join(format!("{PLUGIN_IDENTIFIER}.png")),
        icon_png(),
    )?;
    if bundle.exists() {
        fs::remove_dir_all(&bundle)?;
    }
    fs::rename(&staging, &bundle)?;
    Ok(bundle)
}

/// Copies a program and makes sure the copy is executable (whatever umask or file system
/// the build went through).
fn copy_executable(from: &Path, to: &Path) -> io::Result<()> {
    fs::copy(from, to)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut permissions = fs::metadata(to)?.permissions();
        permissions.set_mode(permissions.mode() | 0o755);
        fs::set_permissions(to, permissions)?;
    }
    Ok(())
}

fn info_plist() -> String {
    include_str!("../bundle/Info.plist")
        .replace("@IDENTIFIER@", PLUGIN_IDENTIFIER)
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"))
}

/// The 128 x 128 icon: a film frame with a rising gradient (drawn here, so the bundle needs
/// no binary assets in the repository).
fn icon_png() -> Vec<u8> {
    const SIZE: u32 = 128;
    let mut pixels = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (fx, fy) = (x as f32 / (SIZE - 1) as f32, y as f32 / (SIZE - 1) as f32);
            let inside = (8..120).contains(&x) && (20..108).contains(&y);
            let perforation = ((12..116).contains(&x) && (x - 12) % 16 < 8)
                && ((24..30).contains(&y) || (98..104).contains(&y));
            let screen = (8..120).contains(&x) && (34..94).contains(&y);
            let rgba = if screen {
                let t = 0.5 * fx + 0.5 * (1.0 - fy);
                [
                    (40.0 + 200.0 * t) as u8,
                    (60.0 + 120.0 * t) as u8,
                    (140.0 + 60.0 * (1.0 - t)) as u8,
                    255,
                ]
            } else if perforation {
                [230, 230, 230, 255]
            } else if inside {
                [30, 30, 34, 255]
            } else {
                [0, 0, 0, 0]
            };
            pixels.extend_from_slice(&rgba);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, SIZE, SIZE);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header into memory");
        writer
            .write_image_data(&pixels)
            .expect("PNG data into memory");
    }
    out
}
