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
//!     Linux-x86-64/genclip-engine-cuda       (optional: the GPU engine, docs/gpu.md)
//!     Linux-x86-64/cuda/                     (optional: CUDA libraries for the GPU engine,
//!                                             found through its RUNPATH $ORIGIN/cuda)
//!     Win64/GenClip.ofx                      (Windows: the .dll, renamed; not built here yet)
//!     MacOS/GenClip.ofx                      (macOS: the .dylib, renamed; not built here yet)
//! ```

use crate::client::{CUDA_ENGINE_FILE, ENGINE_FILE};
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

/// The GPU engine program inside a bundle folder (only bundles built with one have it).
pub fn cuda_engine_in(bundle: &Path) -> PathBuf {
    bundle
        .join("Contents")
        .join(arch_folder())
        .join(CUDA_ENGINE_FILE)
}

/// The folder of CUDA libraries beside the engines, where the GPU engine looks first.
pub fn cuda_libraries_in(bundle: &Path) -> PathBuf {
    bundle.join("Contents").join(arch_folder()).join("cuda")
}

/// The CUDA libraries the GPU engine loads (CUDA 13): what `readelf -d` lists as NEEDED, and
/// `libcublasLt` that `libcublas` needs. `libcuda.so.1` comes with the driver and is never
/// shipped. About 700 MB together, most of it `libcublasLt`.
pub const CUDA_LIBRARIES: [&str; 4] = [
    "libcudart.so.13",
    "libcublas.so.13",
    "libcublasLt.so.13",
    "libcurand.so.10",
];

/// The GPU engine to ship in a bundle.
#[derive(Clone, Copy, Debug)]
pub struct CudaEngine<'a> {
    /// `genclip-engine-cuda` (tools/build_cuda_engine.sh).
    pub program: &'a Path,
    /// A folder holding [`CUDA_LIBRARIES`] to copy into `Contents/<arch>/cuda/` (e.g. the
    /// `nvidia/cu13/lib` folder of NVIDIA's wheels); `None` ships none, and the user's
    /// machine must provide them (docs/gpu.md).
    pub libraries: Option<&'a Path>,
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
    assemble_with(library, engine, None, out_dir)
}

/// [`assemble`], with the GPU engine (and its CUDA libraries) when `cuda` is given.
pub fn assemble_with(
    library: &Path,
    engine: &Path,
    cuda: Option<CudaEngine>,
    out_dir: &Path,
) -> io::Result<PathBuf> {
    let cuda_program = cuda.map(|c| c.program);
    for built in [Some(library), Some(engine), cuda_program]
        .into_iter()
        .flatten()
    {
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
    if let Some(cuda) = cuda {
        copy_executable(
            cuda.program,
            &contents.join(arch_folder()).join(CUDA_ENGINE_FILE),
        )?;
        if let Some(from) = cuda.libraries {
            let to = contents.join(arch_folder()).join("cuda");
            fs::create_dir_all(&to)?;
            for name in CUDA_LIBRARIES {
                let file = from.join(name);
                if file.is_file() {
                    // Follows links: the wheels' and toolkits' names are often symlinks.
                    fs::copy(&file, to.join(name))?;
                } else {
                    let _ = fs::remove_dir_all(&staging);
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "{} has no {name}: point --cuda-libs at a folder holding {} (the \
                             nvidia/cu13/lib folder of NVIDIA's CUDA 13 wheels)",
                            from.display(),
                            CUDA_LIBRARIES.join(", ")
                        ),
                    ));
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_ships_the_gpu_engine_and_its_libraries_when_given() {
        let dir = std::env::temp_dir().join(format!("genclip-bundle-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let libs = dir.join("libs");
        fs::create_dir_all(&libs).unwrap();
        let file = |path: &Path| {
            fs::write(path, b"x").unwrap();
            path.to_path_buf()
        };
        let library = file(&dir.join("libgenclip.so"));
        let engine = file(&dir.join("genclip-engine"));
        let cuda = file(&dir.join("genclip-engine-cuda"));
        for name in CUDA_LIBRARIES {
            file(&libs.join(name));
        }
        let out = dir.join("out");
        fs::create_dir_all(&out).unwrap();

        let plain = assemble(&library, &engine, &out).unwrap();
        assert!(engine_in(&plain).is_file());
        assert!(!cuda_engine_in(&plain).exists());

        let gpu = CudaEngine {
            program: &cuda,
            libraries: Some(&libs),
        };
        let bundle = assemble_with(&library, &engine, Some(gpu), &out).unwrap();
        assert!(cuda_engine_in(&bundle).is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(cuda_engine_in(&bundle))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111);
        }
        for name in CUDA_LIBRARIES {
            assert!(cuda_libraries_in(&bundle).join(name).is_file(), "{name}");
        }

        // A library folder without the libraries is refused, saying which is missing.
        fs::remove_file(libs.join("libcurand.so.10")).unwrap();
        let err = assemble_with(&library, &engine, Some(gpu), &out).unwrap_err();
        assert!(err.to_string().contains("libcurand.so.10"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
