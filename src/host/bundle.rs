//! Plugin binaries: finding a `.ofx.bundle`, dlopen-ing its binary and listing its plugins.
//!
//! Binaries are never dlclose'd: plugins may keep threads and thread-local destructors
//! alive, and real hosts keep them loaded for the life of the process too.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ffi::ofx;
use super::HostError;

/// One plugin in a binary, as OfxGetPlugin describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    pub index: i32,
    pub identifier: String,
    pub api: String,
    pub api_version: i32,
    pub version: (u32, u32),
}

type GetNumberOfPlugins = unsafe extern "C" fn() -> c_int;
type GetPlugin = unsafe extern "C" fn(c_int) -> *mut ofx::OfxPlugin;
type SetHost = unsafe extern "C" fn(*const ofx::OfxHost) -> ofx::OfxStatus;

/// A loaded plugin binary.
pub struct Bundle {
    path: PathBuf,
    binary: PathBuf,
    get_number_of_plugins: GetNumberOfPlugins,
    get_plugin: GetPlugin,
    set_host: Option<SetHost>,
}

const BUNDLE_SUFFIX: &str = ".ofx.bundle";
const ARCH_DIR: &str = "Linux-x86-64";

fn dl_error() -> String {
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dynamic loader error".into()
    } else {
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl Bundle {
    /// Opens a `*.ofx.bundle` directory (its `Contents/Linux-x86-64/<name>.ofx`) or an
    /// `.ofx` binary itself.
    pub fn open(path: &Path) -> Result<Arc<Bundle>, HostError> {
        let (bundle_path, binary) = Self::locate(path)?;
        let c_path = CString::new(binary.as_os_str().as_bytes())
            .map_err(|_| HostError::host(format!("{} contains a NUL byte", binary.display())))?;
        let lib = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if lib.is_null() {
            return Err(HostError::host(format!(
                "{} could not be loaded as a shared object: {}",
                binary.display(),
                dl_error()
            )));
        }
        let sym = |name: &CStr| -> *mut c_void { unsafe { libc::dlsym(lib, name.as_ptr()) } };
        let missing = |name: &str| {
            HostError::host(format!(
                "{} does not export {name}: not an OpenFX plugin binary",
                binary.display()
            ))
        };
        let n = sym(c"OfxGetNumberOfPlugins");
        if n.is_null() {
            return Err(missing("OfxGetNumberOfPlugins"));
        }
        let g = sym(c"OfxGetPlugin");
        if g.is_null() {
            return Err(missing("OfxGetPlugin"));
        }
        let s = sym(c"OfxSetHost");
        // SAFETY: the OpenFX ABI fixes these symbols' signatures.
        let bundle = unsafe {
            Bundle {
                path: bundle_path,
                binary,
                get_number_of_plugins: std::mem::transmute::<*mut c_void, GetNumberOfPlugins>(n),
                get_plugin: std::mem::transmute::<*mut c_void, GetPlugin>(g),
                set_host: (!s.is_null()).then(|| std::mem::transmute::<*mut c_void, SetHost>(s)),
            }
        };
        Ok(Arc::new(bundle))
    }

    /// A bundle whose entry points are functions in this process (host tests only).
    #[cfg(test)]
    pub(crate) fn fake(
        get_number_of_plugins: GetNumberOfPlugins,
        get_plugin: GetPlugin,
    ) -> Arc<Bundle> {
        Arc::new(Bundle {
            path: PathBuf::from("/fake/Fake.ofx.bundle"),
            binary: PathBuf::from("/fake/Fake.ofx.bundle/Contents/Linux-x86-64/Fake.ofx"),
            get_number_of_plugins,
            get_plugin,
            set_host: None,
        })
    }

    /// (bundle path, binary path) for a bundle directory or a binary.
    fn locate(path: &Path) -> Result<(PathBuf, PathBuf), HostError> {
        if !path.exists() {
            return Err(HostError::host(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
        if path.is_dir() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(stem) = name.strip_suffix(BUNDLE_SUFFIX) else {
                return Err(HostError::host(format!(
                    "{} is a directory but not a {BUNDLE_SUFFIX}",
                    path.display()
                )));
            };
            let binary = path
                .join("Contents")
                .join(ARCH_DIR)
                .join(format!("{stem}.ofx"));
            if !binary.is_file() {
                return Err(HostError::host(format!(
                    "{}: bundle has no binary {}",
                    path.display(),
                    binary.display()
                )));
            }
            return Ok((path.to_path_buf(), binary));
        }
        // A binary inside a bundle belongs to that bundle.
        let bundle = path
            .parent()
            .filter(|d| d.file_name().is_some_and(|n| n == ARCH_DIR))
            .and_then(Path::parent)
            .filter(|d| d.file_name().is_some_and(|n| n == "Contents"))
            .and_then(Path::parent)
            .filter(|d| d.to_string_lossy().ends_with(BUNDLE_SUFFIX));
        Ok((bundle.unwrap_or(path).to_path_buf(), path.to_path_buf()))
    }

    /// The bundle directory (or the binary when it was opened on its own).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shared object that was loaded.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Every plugin the binary reports (null entries are skipped).
    pub fn plugins(&self) -> Vec<PluginInfo> {
        let n = unsafe { (self.get_number_of_plugins)() };
        (0..n.max(0))
            .filter_map(|i| self.plugin(i).map(|(info, _)| info))
            .collect()
    }

    /// Plugin `index` and its raw struct.
    pub(crate) fn plugin(&self, index: i32) -> Option<(PluginInfo, *const ofx::OfxPlugin)> {
        let p = unsafe { (self.get_plugin)(index) };
        let r = unsafe { p.as_ref() }?;
        let info = PluginInfo {
            index,
            identifier: text(r.pluginIdentifier),
            api: text(r.pluginApi),
            api_version: r.apiVersion,
            version: (r.pluginVersionMajor, r.pluginVersionMinor),
        };
        Some((info, p))
    }

    pub(crate) fn set_host(&self) -> Option<SetHost> {
        self.set_host
    }

    /// Finds a bundle by name the way hosts do: each directory of `OFX_PLUGIN_PATH`
    /// (':'-separated), then `/usr/OFX/Plugins`; in each, the bundle itself or one level down.
    pub fn find_on_search_path(bundle_name: &str) -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("OFX_PLUGIN_PATH")
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|d| !d.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        dirs.push(PathBuf::from("/usr/OFX/Plugins"));
        dirs.iter().find_map(|d| Self::find_in(d, bundle_name))
    }

    fn find_in(dir: &Path, bundle_name: &str) -> Option<PathBuf> {
        let direct = dir.join(bundle_name);
        if direct.is_dir() {
            return Some(direct);
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        subdirs
            .into_iter()
            .map(|d| d.join(bundle_name))
            .find(|p| p.is_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("genclip-host-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn clear_errors() {
        let d = scratch("errors");
        let e = Bundle::open(&d.join("Nope.ofx.bundle")).err().unwrap();
        assert!(e.message.contains("no such file"), "{e}");

        let not_bundle = d.join("plain");
        std::fs::create_dir_all(&not_bundle).unwrap();
        assert!(Bundle::open(&not_bundle)
            .err()
            .unwrap()
            .message
            .contains("not a .ofx.bundle"));

        let empty = d.join("Empty.ofx.bundle");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(Bundle::open(&empty)
            .err()
            .unwrap()
            .message
            .contains("no binary"));

        let text = d.join("Text.ofx");
        std::fs::write(&text, "not an ELF file").unwrap();
        let e = Bundle::open(&text).err().unwrap();
        assert!(
            e.message.contains("could not be loaded as a shared object"),
            "{e}"
        );
        assert_eq!(e.status, -1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn shared_object_without_entry_points() {
        // libc is a perfectly good shared object that is not a plugin.
        let libc_path = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
        if let Some(p) = libc_path {
            let e = Bundle::open(p).err().unwrap();
            assert!(
                e.message.contains("does not export OfxGetNumberOfPlugins"),
                "{e}"
            );
        }
    }

    #[test]
    fn binary_inside_bundle_reports_the_bundle() {
        let d = scratch("locate");
        let bundle = d.join("X.ofx.bundle");
        let bin_dir = bundle.join("Contents").join(ARCH_DIR);
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::fs::write(bin_dir.join("X.ofx"), b"").unwrap();
        let (b, bin) = Bundle::locate(&bin_dir.join("X.ofx")).unwrap();
        assert_eq!(b, bundle);
        assert_eq!(bin, bin_dir.join("X.ofx"));
        let (b, bin) = Bundle::locate(&bundle).unwrap();
        assert_eq!(b, bundle);
        assert_eq!(bin, bin_dir.join("X.ofx"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn search_path_scans_one_level_down() {
        let d = scratch("search");
        let nested = d.join("vendor").join("Found.ofx.bundle");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(
            Bundle::find_in(&d, "Found.ofx.bundle"),
            Some(nested.clone())
        );
        assert_eq!(
            Bundle::find_in(&d.join("vendor"), "Found.ofx.bundle"),
            Some(nested)
        );
        assert_eq!(Bundle::find_in(&d, "Missing.ofx.bundle"), None);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
