//! Where the engine program is: `genclip-engine` beside the plugin binary that is running
//! (`Contents/<arch>/` of the bundle), found from our own code's address, since hosts load
//! plugins from anywhere and say nothing about it. Beside it may sit `genclip-engine-cuda`,
//! the GPU build (docs/gpu.md): which one a request goes to is the *Device* choice
//! ([`DeviceChoice`]), and the cache key says which kind computed a clip ([`ComputeClass`]).

use crate::cache::CacheKey;
use std::path::{Path, PathBuf};

/// Overrides the engine program (a path to a `genclip-engine`).
pub const ENGINE_ENV: &str = "GENCLIP_ENGINE";

/// The engine program's file name.
pub const ENGINE_FILE: &str = if cfg!(windows) {
    "genclip-engine.exe"
} else {
    "genclip-engine"
};

/// Overrides the GPU engine program (a path to a `genclip-engine-cuda`).
pub const CUDA_ENGINE_ENV: &str = "GENCLIP_ENGINE_CUDA";

/// The GPU engine program's file name (shipped only by bundles built with it).
pub const CUDA_ENGINE_FILE: &str = if cfg!(windows) {
    "genclip-engine-cuda.exe"
} else {
    "genclip-engine-cuda"
};

/// Where the plugin wants a clip computed: the *Device* parameter, and `genclip-engine serve
/// --device` (`auto`, `cpu`, `cuda:N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceChoice {
    /// The GPU engine on GPU 0 when it is installed and starts, else the CPU engine.
    #[default]
    Auto,
    Cpu,
    /// GPU `n` (CUDA device ordinal); the CPU engine when the GPU engine cannot start.
    Gpu(u32),
}

impl DeviceChoice {
    /// The *Device* parameter's option index (params.rs `DEVICES`): 0 Auto, 1 CPU, 2 GPU 0,
    /// 3 GPU 1; anything else Auto.
    pub fn from_param(index: i32) -> DeviceChoice {
        match index {
            1 => DeviceChoice::Cpu,
            2 => DeviceChoice::Gpu(0),
            3 => DeviceChoice::Gpu(1),
            _ => DeviceChoice::Auto,
        }
    }

    /// `auto`, `cpu`, `cuda` (GPU 0) or `cuda:N`, as `--device` takes it.
    pub fn parse(text: &str) -> Result<DeviceChoice, String> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "auto" => return Ok(DeviceChoice::Auto),
            "cpu" => return Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => return Ok(DeviceChoice::Gpu(0)),
            _ => {}
        }
        text.strip_prefix("cuda:")
            .or_else(|| text.strip_prefix("gpu:"))
            .and_then(|n| n.parse().ok())
            .map(DeviceChoice::Gpu)
            .ok_or_else(|| format!("--device {text}: use auto, cpu, cuda or cuda:N (N = 0, 1, …)"))
    }

    /// The `--device` argument for this choice.
    pub fn arg(self) -> String {
        match self {
            DeviceChoice::Auto => "auto".into(),
            DeviceChoice::Cpu => "cpu".into(),
            DeviceChoice::Gpu(n) => format!("cuda:{n}"),
        }
    }

    /// Whether this choice goes to the GPU engine when there is one.
    pub fn wants_gpu(self) -> bool {
        !matches!(self, DeviceChoice::Cpu)
    }

    /// The CUDA ordinal the GPU engine is asked for.
    pub fn gpu(self) -> u32 {
        match self {
            DeviceChoice::Gpu(n) => n,
            _ => 0,
        }
    }
}

/// What kind of engine computed a clip. The CPU engine computes in f32 (the reference's
/// numbers, within 1e-5); the GPU engine in bf16, whose frames differ visibly in detail. A
/// clip is cached under a key that says which, so a cache never mixes the two (a timeline
/// rendered partly on each would flicker where they meet): see docs/gpu.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComputeClass {
    Cpu,
    Cuda,
}

impl ComputeClass {
    /// "cpu" or "cuda", as the cache key and the documentation name it.
    pub fn name(self) -> &'static str {
        match self {
            ComputeClass::Cpu => "cpu",
            ComputeClass::Cuda => "cuda",
        }
    }

    /// The cache key of a clip computed by this class, from the key `plan_clip` gives it
    /// (`clip_key`). The CPU's is that key itself, so every key made before GPU engines
    /// existed still names the same CPU-made clip; the GPU's is derived from it.
    ///
    /// The text encoder's device is [`TEXT_ENCODER_ENV`]'s, which the engine reads too.
    pub fn key_for(self, planned: &CacheKey) -> CacheKey {
        self.key_with_text_encoder(planned, TextEncoderDevice::from_env())
    }

    /// [`ComputeClass::key_for`] with the text encoder on `text_encoder`.
    pub fn key_with_text_encoder(
        self,
        planned: &CacheKey,
        text_encoder: TextEncoderDevice,
    ) -> CacheKey {
        match self {
            ComputeClass::Cpu => *planned,
            ComputeClass::Cuda => {
                let key = CacheKey::builder("genclip-clip-compute")
                    .bytes("clip", &planned.0)
                    .str("compute", self.name());
                // The encoder's embeddings differ by device: say so, leaving the default's
                // keys as they were.
                match text_encoder {
                    TextEncoderDevice::WithModel => key,
                    TextEncoderDevice::Cpu => key.str("text-encoder", "cpu"),
                }
                .finish()
            }
        }
    }

    /// [`ComputeClass::key_for`] on a key in hex; `None` if it is not a key.
    pub fn key_hex_for(self, planned: &str) -> Option<String> {
        CacheKey::from_hex(planned).map(|k| self.key_for(&k).to_hex())
    }
}

/// Names where the text encoder runs: `cpu`, or `auto` (the default: with the model).
pub const TEXT_ENCODER_ENV: &str = "GENCLIP_TEXT_ENCODER";

/// Where the umT5 text encoder runs. On a GPU engine it otherwise takes 13.5 GB of GPU
/// memory while it encodes; on the CPU it takes that much host memory instead, and seconds
/// more per new prompt (docs/gpu.md). The CPU engine runs everything on the CPU anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoderDevice {
    /// On the device the transformer runs on.
    WithModel,
    Cpu,
}

impl TextEncoderDevice {
    /// `auto` or `cpu` (`--text-encoder`, [`TEXT_ENCODER_ENV`]); empty is `auto`.
    pub fn parse(text: &str) -> Result<TextEncoderDevice, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(TextEncoderDevice::WithModel),
            "cpu" => Ok(TextEncoderDevice::Cpu),
            other => Err(format!(
                "the text encoder's device {other:?} is not one of auto, cpu"
            )),
        }
    }

    /// [`TEXT_ENCODER_ENV`]'s choice; unset or unreadable is `auto` (the engine says so when
    /// it starts).
    pub fn from_env() -> TextEncoderDevice {
        std::env::var(TEXT_ENCODER_ENV)
            .ok()
            .and_then(|v| TextEncoderDevice::parse(&v).ok())
            .unwrap_or(TextEncoderDevice::WithModel)
    }

    pub fn name(self) -> &'static str {
        match self {
            TextEncoderDevice::WithModel => "auto",
            TextEncoderDevice::Cpu => "cpu",
        }
    }
}

/// `$GENCLIP_ENGINE_CUDA` if set (and a file), else `genclip-engine-cuda` beside the loaded
/// plugin binary if it is there; `None` when there is no GPU engine to try.
pub fn cuda_engine_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CUDA_ENGINE_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let binary = plugin_binary()?;
    let engine = binary.parent()?.join(CUDA_ENGINE_FILE);
    engine.is_file().then_some(engine)
}

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
    fn device_choices_parse_and_print() {
        for (text, choice) in [
            ("auto", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Gpu(0)),
            ("CUDA:1", DeviceChoice::Gpu(1)),
            ("gpu:2", DeviceChoice::Gpu(2)),
        ] {
            assert_eq!(DeviceChoice::parse(text), Ok(choice), "{text}");
            assert_eq!(DeviceChoice::parse(&choice.arg()), Ok(choice));
        }
        assert!(DeviceChoice::parse("tpu").is_err());
        assert!(DeviceChoice::parse("cuda:x").is_err());
        assert_eq!(DeviceChoice::from_param(0), DeviceChoice::Auto);
        assert_eq!(DeviceChoice::from_param(1), DeviceChoice::Cpu);
        assert_eq!(DeviceChoice::from_param(3), DeviceChoice::Gpu(1));
        assert_eq!(DeviceChoice::from_param(99), DeviceChoice::Auto);
    }

    #[test]
    fn the_text_encoder_on_the_cpu_gets_gpu_clips_their_own_key() {
        for (text, choice) in [
            ("", TextEncoderDevice::WithModel),
            ("auto", TextEncoderDevice::WithModel),
            (" CPU ", TextEncoderDevice::Cpu),
        ] {
            assert_eq!(TextEncoderDevice::parse(text), Ok(choice), "{text:?}");
            assert_eq!(TextEncoderDevice::parse(choice.name()), Ok(choice));
        }
        assert!(TextEncoderDevice::parse("gpu").is_err());
        let planned = CacheKey::builder("t").str("a", "b").finish();
        let with_model = TextEncoderDevice::WithModel;
        let on_cpu = TextEncoderDevice::Cpu;
        // The CPU engine runs the encoder on the CPU whatever the choice.
        assert_eq!(
            ComputeClass::Cpu.key_with_text_encoder(&planned, on_cpu),
            planned
        );
        let gpu = ComputeClass::Cuda.key_with_text_encoder(&planned, with_model);
        let gpu_text_on_cpu = ComputeClass::Cuda.key_with_text_encoder(&planned, on_cpu);
        assert_ne!(gpu_text_on_cpu, gpu);
        assert_ne!(gpu_text_on_cpu, planned);
    }

    #[test]
    fn the_cpu_keeps_the_planned_key_and_the_gpu_gets_its_own() {
        let planned = CacheKey::builder("t").str("a", "b").finish();
        assert_eq!(ComputeClass::Cpu.key_for(&planned), planned);
        let gpu = ComputeClass::Cuda.key_for(&planned);
        assert_ne!(gpu, planned);
        assert_eq!(ComputeClass::Cuda.key_for(&planned), gpu, "deterministic");
        assert_eq!(
            ComputeClass::Cuda.key_hex_for(&planned.to_hex()),
            Some(gpu.to_hex())
        );
        assert_eq!(ComputeClass::Cuda.key_hex_for("nope"), None);
    }

    #[test]
    fn our_binary_is_found_from_our_code() {
        let found = plugin_binary().expect("dladdr finds this code");
        // In a unit test the code is linked into the test executable itself.
        let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
        assert_eq!(found, exe);
    }
}
