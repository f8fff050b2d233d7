//! Where the engine program is: `genclip-engine` beside the plugin binary that is running
//! (`Contents/<arch>/` of the bundle), found from our own code's address, since hosts load
//! plugins from anywhere and say nothing about it.

use std::path::{Path, PathBuf};

/// Overrides the engine program (a path to a `genclip-engine`).
pub const ENGINE_ENV: &str = "GENCLIP_ENGINE";

/// The engine program's file name.
pub const ENGINE_FILE: &str = if cfg!(windows) {
    "genclip-engine.exe"
} else {
    "genclip-engine"
};

/// `$GENCLIP_ENGINE` if set, else `genclip-engine` beside the loaded plugin binary; else the
/// sentence to show.
pub fn engine_program() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(ENGINE_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{ENGINE_ENV} names {}, which is not a file: correct it or unset it.",
                path.display()
            ))
        };
    }
    let binary = plugin_binary().ok_or_else(|| {
        format!(
            "GenClip cannot tell where its own binary is, so it cannot find {ENGINE_FILE}: set \
             {ENGINE_ENV} to the path of {ENGINE_FILE} from the GenClip bundle."
        )
    })?;
    let dir = binary.parent().unwrap_or(Path::new("."));
    let engine = dir.join(ENGINE_FILE);
    if engine.is_file() {
        Ok(engine)
    } else {
        Err(format!(
            "{ENGINE_FILE} is missing beside GenClip.ofx in {}: reinstall the GenClip bundle.",
            dir.display()
        ))
    }
}

/// The file of the loaded binary that holds this code: GenClip.ofx inside a host, the test or
/// command executable otherwise.
#[cfg(unix)]
pub fn plugin_binary() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = plugin_binary as *const () as *const libc::c_void;
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
    match path.canonicalize() {
        Ok(path) => Some(path),
        // The main program can be reported by a name the loader does not resolve.
        Err(_) => std::env::current_exe().ok(),
    }
}

#[cfg(not(unix))]
pub fn plugin_binary() -> Option<PathBuf> {
    None
}

/// Keeps the plugin binary mapped until the process ends, whatever the host does: the
/// client's threads run our code and may outlive a host's `dlclose` of the plugin, and code
/// unmapped under a running thread takes the host down. Called before the first engine
/// thread starts; idempotent.
#[cfg(unix)]
pub(crate) fn keep_plugin_loaded() {
    use std::os::unix::ffi::OsStrExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(path) = plugin_binary() else { return };
        let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return;
        };
        // RTLD_NOLOAD: only a reference to the copy already loaded; RTLD_NODELETE: never
        // unmapped. The handle is deliberately never closed.
        // SAFETY: dlopen of an object that is already loaded runs no initialisers.
        unsafe {
            libc::dlopen(
                path.as_ptr(),
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            )
        };
    });
}

#[cfg(not(unix))]
pub(crate) fn keep_plugin_loaded() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_binary_is_found_from_our_code() {
        let found = plugin_binary().expect("dladdr finds this code");
        // In a unit test the code is linked into the test executable itself.
        let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
        assert_eq!(found, exe);
    }
}
