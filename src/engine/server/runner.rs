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
use crate::engine::memory_plan::{self, Budget, JobShape, ModelShape, Residency, TextWork};
use crate::engine::pipeline::{GenerateError, Pipeline, Stage as PipelineStage};
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
    /// Opened; which weights are loaded varies with the jobs' memory (`Residency`).
    pipeline: Pipeline,
    hashes: WeightHashes,
}

/// Where the engine computes, and where its text encoder runs.
#[derive(Clone, Debug)]
pub struct Placement {
    pub device: Device,
    pub dtype: DType,
    /// The compute device, or the CPU (`--text-encoder cpu`), in `dtype` either way.
    pub text_device: Device,
}

pub struct Runner {
    device: Device,
    dtype: DType,
    text_device: Device,
    loaded: Option<LoadedModel>,
    outbox: Outbox,
    journal: Journal,
    /// Text-encoder passes of models unloaded before the current one.
    earlier_encoder_runs: u64,
    /// The last model folder's shape (canonical folder), for the memory guard.
    shape: Option<(PathBuf, ModelShape)>,
}

impl Runner {
    /// A runner computing where `placement` says (see [`open_device`]).
    pub fn new(outbox: Outbox, journal: Journal, placement: Placement) -> Runner {
        Runner {
            device: placement.device,
            dtype: placement.dtype,
            text_device: placement.text_device,
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

    /// The memory guard: how the loaded model's weights share memory for `request`, or
    /// `Err(sentence)` when the job would need more memory than there is (docs/gpu.md). Reads
    /// only the model folder's configs and weight headers.
    fn plan_memory(&mut self, request: &ClipRequest, text: TextWork) -> Result<Residency, String> {
        let Some(model) = self.loaded.as_ref() else {
            return Ok(Residency::unguarded(self.class()));
        };
        let canonical = model.folder.clone();
        if self.shape.as_ref().is_none_or(|(f, _)| *f != canonical) {
            match ModelShape::read(&canonical) {
                Ok(shape) => self.shape = Some((canonical.clone(), shape)),
                Err(e) => {
                    // The load says what is wrong with the folder, in its own words.
                    eprintln!(
                        "genclip-engine: no memory estimate for {}: {e}",
                        canonical.display()
                    );
                    return Ok(Residency::unguarded(self.class()));
                }
            }
        }
        let (_, shape) = self.shape.as_ref().expect("set just above");
        let plan = memory_plan::estimate(shape, &JobShape::of(request), self.class(), self.dtype);
        // What the engine holds now counts as free: the job reuses it or drops it.
        let pipeline = &model.pipeline;
        let encoder_held = pipeline.text().is_loaded() && text.on_compute_device;
        let held = u64::from(pipeline.denoiser_loaded()) * plan.denoiser_weights
            + u64::from(encoder_held) * plan.text_encoder_weights;
        let budget = Budget::measure(&self.device, held);
        let residency = memory_plan::choose(&plan, text, self.class(), &budget);
        let chosen = match &residency {
            Ok(r) => format!(
                "needs about {}: {}",
                memory_plan::describe_bytes(plan.peak(*r, text)),
                r.describe()
            ),
            Err(sentence) => format!("refused: {sentence}"),
        };
        eprintln!(
            "genclip-engine: memory (weights {} + text encoder {}, largest stage {}, budget \
             {}): {chosen}",
            memory_plan::describe_bytes(plan.denoiser_weights),
            memory_plan::describe_bytes(plan.text_encoder_weights),
            memory_plan::describe_bytes(plan.transformer_step.max(plan.vae_decode)),
            budget
                .bytes()
                .map_or("unknown".into(), memory_plan::describe_bytes),
        );
        if text.encoding && !text.on_compute_device {
            let held = if pipeline.text().is_loaded() {
                plan.text_encoder_weights
            } else {
                0
            };
            memory_plan::fits(
                plan.text_encoder_on_cpu(),
                &Budget::measure(&Device::Cpu, held),
                "The text encoder on the CPU (GENCLIP_TEXT_ENCODER=cpu)",
                "close other programs, or unset GENCLIP_TEXT_ENCODER to encode on the GPU",
            )?;
        }
        residency
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
        // Opening reads configs only; the memory guard decides what may be loaded, before
        // anything is.
        if let Err(message) = self.open_model(&request.model_folder, &request.output.root) {
            return Outcome::Failed(message);
        }
        let model = self.loaded.as_ref().expect("opened just above");
        let texts = match model.pipeline.clip_texts(request) {
            Ok(texts) => texts,
            Err(e) => return Outcome::Failed(generation_failed(&e)),
        };
        let text = TextWork {
            encoding: texts
                .iter()
                .any(|t| model.pipeline.text().needs_encoding(t)),
            on_compute_device: self.text_device.same_device(&self.device),
        };
        let residency = match self.plan_memory(request, text) {
            Ok(residency) => residency,
            Err(message) => return Outcome::Failed(message),
        };
        let model = self.loaded.as_mut().expect("opened just above");
        if let Err(message) = load_for(model, &texts, text.encoding, residency, &mut progress) {
            return Outcome::Failed(message);
        }
        progress.report(Stage::Loading, 1, 1);
        let aborted = || abort.load(Ordering::Relaxed);
        let video =
            match model
                .pipeline
                .generate_clip(request, &mut |s| progress.pipeline(s), &aborted)
            {
                Ok(video) => video,
                Err(GenerateError::Aborted) => return Outcome::Aborted,
                Err(GenerateError::Failed(e)) => return Outcome::Failed(generation_failed(&e)),
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
        let text_encoder_device = device_name(&self.text_device);
        let facts = EngineFacts {
            device: &device,
            text_encoder_device: &text_encoder_device,
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

    /// Opens the pipeline for `folder` unless it is the open one (the old model is dropped
    /// first, so two never share the memory). Loads no weights.
    fn open_model(&mut self, folder: &Path, cache_root: &Path) -> Result<(), String> {
        let canonical = folder.canonicalize().map_err(|e| {
            format!(
                "The model folder {} cannot be opened ({e}): check the Model folder parameter.",
                folder.display()
            )
        })?;
        if self.loaded.as_ref().is_some_and(|m| m.folder == canonical) {
            return Ok(());
        }
        self.unload();
        give_back_free_memory();
        let pipeline = Pipeline::open(&canonical, &self.device, self.dtype, &self.text_device)
            .map_err(|e| cannot_load(folder, &e))?;
        let hashes = WeightHashes::start(canonical.clone(), cache_root.join("weights"));
        self.loaded = Some(LoadedModel {
            folder: canonical,
            pipeline,
            hashes,
        });
        Ok(())
    }
}

/// Loads and drops weights as `residency` says, encoding the clip's `texts` into the
/// embedding cache on the way when `encoding` (some are not there): on return the transformer
/// and the VAE are loaded, and the text encoder only if it stays ([`Residency::Resident`]).
fn load_for(
    model: &mut LoadedModel,
    texts: &[String],
    encoding: bool,
    residency: Residency,
    progress: &mut Progress,
) -> Result<(), String> {
    let pipeline = &mut model.pipeline;
    let started = Instant::now();
    let folder = &model.folder;
    if encoding {
        if residency.encodes_alone() && pipeline.denoiser_loaded() {
            pipeline.release_denoiser();
            give_back_free_memory();
        }
        pipeline
            .text()
            .load_as(residency.encoder_weights())
            .map_err(|e| cannot_load(folder, &e))?;
        progress.pipeline(PipelineStage::EncodingText);
        // Into the embedding cache; left where they were computed (no copy).
        let encoder = pipeline.text();
        for text in texts {
            encoder
                .encode(text, encoder.device())
                .map_err(|e| generation_failed(&e))?;
        }
    }
    if residency != Residency::Resident && pipeline.text().is_loaded() {
        pipeline.text().release();
        give_back_free_memory();
    }
    if !pipeline.denoiser_loaded() {
        pipeline
            .load_denoiser()
            .map_err(|e| cannot_load(folder, &e))?;
        eprintln!(
            "genclip-engine: loaded {} in {:.1} s ({})",
            folder.display(),
            started.elapsed().as_secs_f64(),
            residency.describe()
        );
    }
    Ok(())
}

fn cannot_load(folder: &Path, e: &candle_core::Error) -> String {
    format!(
        "GenClip could not load the model in {}: {e}. Check the Model folder parameter.",
        folder.display()
    )
}

fn generation_failed(e: &candle_core::Error) -> String {
    format!("Generation failed: {e}. Check the settings it names and render again.")
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
