//! Runs one job: the model (loaded once, kept while requests name the same folder), the
//! generation, the clip into the disk cache and the provenance record beside it.

use super::journal::{Event, Journal};
use super::outbox::Outbox;
use super::progress::Progress;
use super::provenance::{self, EngineFacts};
use super::weights::WeightHashes;
use crate::cache::{CacheKey, Clip, DiskCache};
use crate::client::protocol::{ClipRequest, FromEngine, Stage};
use crate::engine::pipeline::{GenerateError, Pipeline};
use candle_core::{DType, Device, DeviceLocation};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

/// Where and in what precision the engine computes: the one place that decides it.
pub fn compute_device() -> (Device, DType) {
    (Device::Cpu, DType::F32)
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
}

pub struct Runner {
    device: Device,
    dtype: DType,
    loaded: Option<LoadedModel>,
    outbox: Outbox,
    journal: Journal,
    /// Text-encoder passes of models unloaded before the current one.
    earlier_encoder_runs: u64,
}

impl Runner {
    pub fn new(outbox: Outbox, journal: Journal) -> Runner {
        let (device, dtype) = compute_device();
        Runner {
            device,
            dtype,
            loaded: None,
            outbox,
            journal,
            earlier_encoder_runs: 0,
        }
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
        Ok(self.loaded.insert(LoadedModel {
            folder: canonical,
            pipeline,
            hashes,
        }))
    }
}
