//! Runs one job: the model (loaded once, kept while requests name the same folder), the
//! generation, the clip into the disk cache and the provenance record beside it.

use super::journal::{Event, Journal};
use super::outbox::Outbox;
use super::progress::Progress;
use super::provenance::{self, EngineFacts};
use super::weights::WeightHashes;
use crate::cache::{CacheKey, Clip, DiskCache};
use crate::client::protocol::{ClipRequest, FromEngine, Stage};
use crate::client::ComputeClass;
use crate::client::DeviceChoice;
use crate::engine::memory_plan::{self, Budget, JobShape, ModelShape};
use crate::engine::pipeline::{GenerateError, Pipeline};
use candle_core::{DType, Device, DeviceLocation};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

/// Where and in what precision the engine computes by default (`--device auto`): GPU 0 in
/// bf16 when this is the CUDA build and the GPU works, else the CPU in f32.
pub fn compute_device() -> (Device, DType) {
    open_device(DeviceChoice::Auto).unwrap_or((Device::Cpu, DType::F32))
}

/// The device and dtype for a `--device` choice: the one place that decides them.
///
/// - `cpu`: the CPU in f32 (the reference's precision; candle's CPU convolutions are f32).
/// - `cuda:N`: GPU N in bf16 (the transformer and the text encoder; the pipeline keeps the
///   latents and the scheduler in f32), or `Err` with the sentence saying why that GPU
///   cannot be used (no driver, no such GPU, a GPU this build has no kernels for).
/// - `auto`: `cuda:0` if that works, else the CPU (the reason goes to the log).
pub fn open_device(choice: DeviceChoice) -> Result<(Device, DType), String> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, DType::F32)),
        DeviceChoice::Gpu(n) => open_cuda(n as usize).map(|d| (d, DType::BF16)),
        DeviceChoice::Auto => match open_cuda(0) {
            Ok(device) => Ok((device, DType::BF16)),
            Err(why) => {
                if cfg!(feature = "cuda") {
                    eprintln!("genclip-engine: computing on the CPU: {why}");
                }
                Ok((Device::Cpu, DType::F32))
            }
        },
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(n: usize) -> Result<Device, String> {
    Err(format!(
        "this genclip-engine was built without CUDA, so it cannot use GPU {n}: the GPU engine \
         is genclip-engine-cuda (docs/gpu.md)"
    ))
}

/// Compute capability the kernels were built for (`CUDA_COMPUTE_CAP` at build time).
#[cfg(feature = "cuda")]
const BUILT_COMPUTE_CAP: Option<&str> = option_env!("CUDA_COMPUTE_CAP");

/// GPU `n`, checked by running a few kernels on it (cast, reduce, a cuBLAS product) in bf16.
/// cudarc panics instead of failing in some cases (no driver library); the panic is caught.
#[cfg(feature = "cuda")]
fn open_cuda(n: usize) -> Result<Device, String> {
    use candle_core::Tensor;
    let opened = catch_unwind(|| -> candle_core::Result<(Device, Option<(i32, i32)>)> {
        let device = Device::new_cuda(n)?;
        let capability = match &device {
            Device::Cuda(cuda) => cuda.cuda_stream().context().compute_capability().ok(),
            _ => None,
        };
        let x = Tensor::arange(0f32, 8f32, &device)?.to_dtype(DType::BF16)?;
        let sum = x.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let m = Tensor::ones((8, 8), DType::BF16, &device)?;
        let product = m.matmul(&m)?.to_dtype(DType::F32)?.sum_all()?;
        let product = product.to_scalar::<f32>()?;
        if sum != 28.0 || product != 512.0 {
            candle_core::bail!("a self-test computed {sum} and {product} instead of 28 and 512");
        }
        Ok((device, capability))
    });
    // "80" → "8.0"
    let built = match BUILT_COMPUTE_CAP {
        Some(cap) if cap.len() >= 2 => {
            format!("{}.{}", &cap[..cap.len() - 1], &cap[cap.len() - 1..])
        }
        Some(cap) => cap.to_string(),
        None => "8.0".to_string(),
    };
    match opened {
        Ok(Ok((device, capability))) => {
            if let Some((major, minor)) = capability {
                eprintln!(
                    "genclip-engine: GPU {n}: compute capability {major}.{minor}, kernels built \
                     for {built}"
                );
            }
            Ok(device)
        }
        Ok(Err(e)) => {
            // candle's errors carry a backtrace when RUST_BACKTRACE is set: the first line says it.
            let e = e.to_string();
            let e = e.lines().next().unwrap_or_default().trim();
            Err(format!(
                "GPU {n} cannot be used ({e}); this engine's kernels need an NVIDIA GPU of \
                 compute capability {built} or newer and a driver for CUDA 13.0 or newer"
            ))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(format!(
                "GPU {n} cannot be used: the CUDA driver failed ({what}); is the NVIDIA driver \
                 installed?"
            ))
        }
    }
}

/// "cpu", "cuda:0", "metal:0", as `ready` and the provenance record name it.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "cpu".into(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done { seconds: f64 },
    Failed(String),
    Aborted,
}

struct LoadedModel {
    /// Canonical, so two spellings of one folder share the model.
    folder: PathBuf,
    pipeline: Pipeline,
    hashes: WeightHashes,
    /// Bytes its weights hold (the memory guard counts them as available to the next job,
    /// which reuses or drops them).
    weight_bytes: u64,
}

pub struct Runner {
    device: Device,
    dtype: DType,
    loaded: Option<LoadedModel>,
    outbox: Outbox,
    journal: Journal,
    /// Text-encoder passes of models unloaded before the current one.
    earlier_encoder_runs: u64,
    /// The last model folder's shape (canonical folder), for the memory guard.
    shape: Option<(PathBuf, ModelShape)>,
}

impl Runner {
    /// A runner computing on `device` in `dtype` (see [`open_device`]).
    pub fn new(outbox: Outbox, journal: Journal, device: Device, dtype: DType) -> Runner {
        Runner {
            device,
            dtype,
            loaded: None,
            outbox,
            journal,
            earlier_encoder_runs: 0,
            shape: None,
        }
    }

    fn class(&self) -> ComputeClass {
        if self.device.is_cpu() {
            ComputeClass::Cpu
        } else {
            ComputeClass::Cuda
        }
    }

    /// The memory guard: `Err(sentence)` when the job would need more memory than there is
    /// (docs/gpu.md). Reads only the model folder's configs and weight headers.
    fn check_memory(&mut self, canonical: &Path, request: &ClipRequest) -> Result<(), String> {
        if self.shape.as_ref().is_none_or(|(f, _)| f != canonical) {
            match ModelShape::read(canonical) {
                Ok(shape) => self.shape = Some((canonical.to_path_buf(), shape)),
                Err(e) => {
                    // The load says what is wrong with the folder, in its own words.
                    eprintln!(
                        "genclip-engine: no memory estimate for {}: {e}",
                        canonical.display()
                    );
                    return Ok(());
                }
            }
        }
        let (_, shape) = self.shape.as_ref().expect("set just above");
        let plan = memory_plan::estimate(shape, &JobShape::of(request), self.class(), self.dtype);
        let held = self.loaded.as_ref().map_or(0, |m| m.weight_bytes);
        let budget = Budget::measure(&self.device, held);
        eprintln!(
            "genclip-engine: memory: needs about {} (weights {}, largest stage {}), budget {}",
            memory_plan::describe_bytes(plan.total),
            memory_plan::describe_bytes(plan.weights),
            memory_plan::describe_bytes(
                plan.transformer_step
                    .max(plan.vae_decode)
                    .max(plan.text_encoder)
            ),
            budget
                .bytes()
                .map_or("unknown".into(), memory_plan::describe_bytes)
        );
        memory_plan::check(&plan, &budget)
    }

    pub fn device_name(&self) -> String {
        device_name(&self.device)
    }

    /// Runs `request` as job `job` and answers `done`, `failed` or `aborted`. A panic inside
    /// is caught and answered as a failure; the model is then dropped (it may be half-way
    /// through something) and reloaded by the next job.
    pub fn run(&mut self, job: u64, request: &ClipRequest, abort: &AtomicBool) -> Outcome {
        self.journal.record(job, &request.output.key, Event::Start);
        let outcome = match catch_unwind(AssertUnwindSafe(|| self.generate(job, request, abort))) {
            Ok(outcome) => outcome,
            Err(panic) => {
                self.unload();
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                Outcome::Failed(format!(
                    "The generation engine hit an internal error ({what}). Render again to \
                     retry; if it happens again, report it with the host's log."
                ))
            }
        };
        // The engine keeps freed memory in its heap while it works (see main); between jobs
        // the activations' share goes back to the system (the model stays loaded).
        give_back_free_memory();
        let (event, message) = match &outcome {
            Outcome::Done { seconds } => (
                Event::Done,
                FromEngine::Done {
                    job,
                    seconds: *seconds,
                    text_encoder_runs: self.text_encoder_runs(),
                },
            ),
            Outcome::Failed(message) => (
                Event::Failed,
                FromEngine::Failed {
                    job,
                    message: message.clone(),
                },
            ),
            Outcome::Aborted => (Event::Aborted, FromEngine::Aborted { job }),
        };
        self.journal.record(job, &request.output.key, event);
        self.outbox.send(&message);
        outcome
    }

    /// Text-encoder passes of this process: the loaded model's and those of models before it.
    fn text_encoder_runs(&self) -> u64 {
        self.earlier_encoder_runs
            + self
                .loaded
                .as_ref()
                .map_or(0, |m| m.pipeline.text_encoder_runs())
    }

    /// Drops the loaded model (its memory goes back), keeping its count of encoder passes.
    fn unload(&mut self) {
        if let Some(model) = self.loaded.take() {
            self.earlier_encoder_runs += model.pipeline.text_encoder_runs();
        }
    }

    fn generate(&mut self, job: u64, request: &ClipRequest, abort: &AtomicBool) -> Outcome {
        let started = Instant::now();
        #[cfg(feature = "fault-injection")]
        if request.prompts.first().map(String::as_str) == Some("genclip:fault:engine-panic") {
            panic!("fault injection: panic in an engine job");
        }
        let Some(key) = CacheKey::from_hex(&request.output.key) else {
            return Outcome::Failed(format!(
                "The engine was asked to write to the cache key {:?}, which is not 64 hex digits: \
                 the plugin and the engine come from different builds; reinstall the GenClip bundle.",
                request.output.key
            ));
        };
        let outbox = self.outbox.clone();
        let mut progress = Progress::new(job, &outbox);
        progress.report(Stage::Loading, 0, 1);
        let (device, dtype) = (self.device_name(), self.dtype.as_str());
        // Before anything new is loaded: a job that cannot fit fails now, with a sentence.
        if let Ok(canonical) = request.model_folder.canonicalize() {
            if let Err(message) = self.check_memory(&canonical, request) {
                return Outcome::Failed(message);
            }
        }
        let model = match self.model(&request.model_folder, &request.output.root) {
            Ok(model) => model,
            Err(message) => return Outcome::Failed(message),
        };
        progress.report(Stage::Loading, 1, 1);
        let aborted = || abort.load(Ordering::Relaxed);
        let video =
            match model
                .pipeline
                .generate_clip(request, &mut |s| progress.pipeline(s), &aborted)
            {
                Ok(video) => video,
                Err(GenerateError::Aborted) => return Outcome::Aborted,
                Err(GenerateError::Failed(e)) => {
                    return Outcome::Failed(format!(
                        "Generation failed: {e}. Check the settings it names and render again."
                    ))
                }
            };
        // An abort that came during the last step still leaves no cache entry.
        if aborted() {
            return Outcome::Aborted;
        }
        progress.report(Stage::Writing, 0, 1);
        let clip = Clip::from(video);
        let clip = match Clip::new(clip.frames, clip.height, clip.width, 3, clip.data) {
            Ok(clip) => clip,
            Err(e) => return Outcome::Failed(format!("The engine produced a bad clip ({e}).")),
        };
        let seconds = started.elapsed().as_secs_f64();
        let facts = EngineFacts {
            device: &device,
            dtype,
            seconds,
            model_folder: &model.folder,
            weights: model.hashes.get(),
        };
        let record = provenance::record(&request.provenance, &facts, SystemTime::now());
        // Provenance first: a record without its clip is harmless (the clip is made again),
        // a clip without its record is not.
        let root = &request.output.root;
        if let Err(e) = provenance::write(root, &request.output.key, &record)
            .and_then(|()| DiskCache::new(root).write(&key, &clip))
        {
            return Outcome::Failed(format!(
                "The engine could not write the clip to the frame cache in {} ({e}): free some \
                 disk space or point GENCLIP_CACHE_DIR at a writable folder, then render again.",
                root.display()
            ));
        }
        progress.report(Stage::Writing, 1, 1);
        Outcome::Done { seconds }
    }

    /// The pipeline for `folder`: the loaded one if it is the same folder, else a fresh load
    /// (the old model is dropped first, so two never share the memory).
    fn model(&mut self, folder: &Path, cache_root: &Path) -> Result<&mut LoadedModel, String> {
        let canonical = folder.canonicalize().map_err(|e| {
            format!(
                "The model folder {} cannot be opened ({e}): check the Model folder parameter.",
                folder.display()
            )
        })?;
        if self.loaded.as_ref().is_some_and(|m| m.folder == canonical) {
            return Ok(self.loaded.as_mut().expect("checked just above"));
        }
        self.unload();
        let started = Instant::now();
        let pipeline = Pipeline::load(&canonical, &self.device, self.dtype).map_err(|e| {
            format!(
                "GenClip could not load the model in {}: {e}. Check the Model folder parameter.",
                folder.display()
            )
        })?;
        eprintln!(
            "genclip-engine: loaded {} in {:.1} s",
            canonical.display(),
            started.elapsed().as_secs_f64()
        );
        let hashes = WeightHashes::start(canonical.clone(), cache_root.join("weights"));
        let weight_bytes =
            self.shape
                .as_ref()
                .filter(|(f, _)| *f == canonical)
                .map_or(0, |(_, shape)| {
                    memory_plan::estimate(
                        shape,
                        &JobShape {
                            width: 0,
                            height: 0,
                            frames: 1,
                            window_frames: 1,
                            guided: false,
                            prompts: 1,
                        },
                        self.class(),
                        self.dtype,
                    )
                    .weights
                });
        Ok(self.loaded.insert(LoadedModel {
            folder: canonical,
            pipeline,
            hashes,
            weight_bytes,
        }))
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only returns unused heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}
