//! The engine process as the plugin uses it: started on the first job, restarted after it
//! died or went idle, shared by every instance, its jobs tracked by id.
//!
//! Locks: `Shared::inner` (the process and the pending jobs) may be held while taking a job's
//! own lock, never the other way round. Every line to the engine is sent under `inner`, so a
//! `generate` and an `abort` for one job cannot cross. The start of a process (spawn and
//! handshake, seconds at most) holds only `Shared::starting`, so no other lock waits on it.

use super::job::{Job, JobSlot, JobState};
use super::process::{End, Events, Process};
use super::program::{
    cuda_engine_program, engine_program, ComputeClass, DeviceChoice, CUDA_ENGINE_FILE,
};
use super::protocol::{encode, ClipRequest, FromEngine, ToEngine};
use once_cell::sync::OnceCell;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a starting engine has to answer `hello` (it loads no model before that).
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The GPU engine creates its CUDA context and runs a self-test before `ready`; the first
/// start on a machine may also compile kernels for its GPU (cached by the driver after).
pub const CUDA_START_TIMEOUT: Duration = Duration::from_secs(120);

/// How to start the engine process.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the host's environment for the engine.
    pub env: Vec<(String, String)>,
    pub start_timeout: Duration,
}

impl EngineConfig {
    /// `program serve`, with the default start timeout.
    pub fn serve(program: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            program: program.into(),
            args: vec!["serve".into()],
            env: Vec::new(),
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }

    /// `program serve --device cuda:N`: a GPU engine on GPU `gpu`, which refuses to start
    /// (rather than computing on the CPU) when that GPU cannot be used.
    pub fn serve_gpu(program: impl Into<PathBuf>, gpu: u32) -> EngineConfig {
        let mut config = EngineConfig::serve(program);
        config
            .args
            .extend(["--device".to_string(), DeviceChoice::Gpu(gpu).arg()]);
        config.start_timeout = CUDA_START_TIMEOUT;
        config
    }
}

/// One engine process (restarted as needed) and its jobs.
pub struct Engine {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    /// `Err`: the sentence saying why there is no engine program.
    config: Result<EngineConfig, String>,
    inner: Mutex<Inner>,
    /// Held while a process starts, so that one starts at a time.
    starting: Mutex<()>,
    jobs_sent: AtomicU64,
    /// As the engine last reported it in `done`.
    text_encoder_runs: AtomicU64,
}

struct Inner {
    process: Option<Arc<Process>>,
    /// Jobs not ended yet, by id.
    pending: HashMap<u64, Arc<JobSlot>>,
    /// The pending job a new request for a key joins.
    by_key: HashMap<String, u64>,
    next_job: u64,
    next_generation: u64,
    /// The `Engine` was dropped.
    closed: bool,
}

impl Engine {
    /// The process-wide engine: `genclip-engine serve` from [`engine_program`]. If there is no
    /// program, every job fails with the sentence saying so. (The CPU engine of
    /// [`Engines::global`].)
    pub fn global() -> &'static Engine {
        global_cpu()
    }

    pub fn new(config: EngineConfig) -> Engine {
        Engine::with(Ok(config))
    }

    fn with(config: Result<EngineConfig, String>) -> Engine {
        Engine {
            shared: Arc::new(Shared {
                config,
                inner: Mutex::new(Inner {
                    process: None,
                    pending: HashMap::new(),
                    by_key: HashMap::new(),
                    next_job: 1,
                    next_generation: 0,
                    closed: false,
                }),
                starting: Mutex::new(()),
                jobs_sent: AtomicU64::new(0),
                text_encoder_runs: AtomicU64::new(0),
            }),
        }
    }

    /// Sends `request` to the engine (starting it if needed) and returns its job. A request
    /// whose `output.key` is already queued or running joins that job (the same `Job`)
    /// instead of being sent twice. Never panics: every failure is a `Failed` job.
    pub fn submit(&self, request: ClipRequest) -> Job {
        let shared = &self.shared;
        let key = request.output.key.clone();
        let slot = {
            let mut inner = shared.inner.lock();
            if let Some(slot) = inner.by_key.get(&key).and_then(|id| inner.pending.get(id)) {
                return Job::new(slot.clone(), shared.clone());
            }
            let id = inner.next_job;
            inner.next_job += 1;
            let line = serde_json::to_string(&ToEngine::Generate {
                job: id,
                request: Box::new(request),
            });
            let failure = match (&line, &shared.config) {
                (Err(e), _) => Some(format!(
                    "GenClip cannot send this request to its engine ({e}): a folder path that \
                     is not valid UTF-8? Rename the folder and render again."
                )),
                (_, Err(no_program)) => Some(no_program.clone()),
                _ => None,
            };
            let slot = Arc::new(JobSlot::new(id, key.clone(), line.unwrap_or_default()));
            if let Some(message) = failure {
                slot.set(JobState::Failed(message));
                return Job::new(slot, shared.clone());
            }
            inner.pending.insert(id, slot.clone());
            inner.by_key.insert(key, id);
            slot
        };
        shared.dispatch(&slot);
        Job::new(slot, shared.clone())
    }

    /// The live engine's pid.
    pub fn pid(&self) -> Option<u32> {
        self.shared.current().map(|p| p.pid)
    }

    /// Starts the engine if it is not running; returns the device its `ready` named
    /// ("cpu", "cuda:0"), or the sentence saying why it could not start.
    pub fn ensure_started(&self) -> Result<String, String> {
        let process = self.shared.live_process()?;
        Ok(process.device.get().cloned().unwrap_or_default())
    }

    /// Asks the running engine to end (its jobs end as if it had died); the next submit
    /// starts a fresh one.
    fn stop_process(&self) {
        let inner = self.shared.inner.lock();
        if let Some(process) = &inner.process {
            let _ = process.send(&encode(&ToEngine::Shutdown));
            process.close_input();
        }
    }

    /// `generate` messages sent so far.
    pub fn jobs_sent(&self) -> u64 {
        self.shared.jobs_sent.load(Ordering::Relaxed)
    }

    /// Text-encoder passes the engine process had run at its last finished job (a repeated
    /// prompt costs none: the engine caches embeddings). Starts again from 0 with each new
    /// engine process.
    pub fn text_encoder_runs(&self) -> u64 {
        self.shared.text_encoder_runs.load(Ordering::Relaxed)
    }
}

impl Drop for Engine {
    /// Ends the engine: pending jobs end `Aborted`, the engine gets `shutdown` and its input
    /// closes, so it exits within a step.
    fn drop(&mut self) {
        let mut inner = self.shared.inner.lock();
        inner.closed = true;
        for (_, slot) in inner.pending.drain() {
            slot.set(JobState::Aborted);
        }
        inner.by_key.clear();
        if let Some(process) = inner.process.take() {
            let _ = process.send(&encode(&ToEngine::Shutdown));
            process.close_input();
        }
    }
}

impl Shared {
    /// The live, ready process, if any.
    fn current(&self) -> Option<Arc<Process>> {
        let inner = self.inner.lock();
        inner.process.clone().filter(|p| !p.has_exited())
    }

    /// The live process, started if there is none.
    fn live_process(self: &Arc<Self>) -> Result<Arc<Process>, String> {
        if let Some(p) = self.current() {
            return Ok(p);
        }
        let _one_at_a_time = self.starting.lock();
        if let Some(p) = self.current() {
            return Ok(p);
        }
        let config = self.config.as_ref().map_err(Clone::clone)?;
        let generation = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err("GenClip closed its generation engine.".into());
            }
            inner.next_generation += 1;
            inner.next_generation
        };
        let events: Arc<dyn Events> = self.clone();
        let process = Process::start(config, generation, events)?;
        let mut inner = self.inner.lock();
        if inner.closed {
            process.close_input();
            return Err("GenClip closed its generation engine.".into());
        }
        if !process.has_exited() {
            inner.process = Some(process.clone());
        }
        Ok(process)
    }

    /// Sends a pending job to the live engine (starting one if needed).
    fn dispatch(self: &Arc<Self>, slot: &Arc<JobSlot>) {
        // A process that dies between its start and our send is replaced once.
        for _ in 0..2 {
            let process = match self.live_process() {
                Ok(p) => p,
                Err(message) => {
                    self.finish(slot, JobState::Failed(message));
                    return;
                }
            };
            let inner = self.inner.lock();
            if !inner.pending.contains_key(&slot.id) {
                return; // aborted (or the engine closed) meanwhile
            }
            if process.has_exited() {
                continue;
            }
            slot.inner.lock().sent_to = Some(process.generation);
            match process.send(&slot.line) {
                Ok(()) => {
                    self.jobs_sent.fetch_add(1, Ordering::Relaxed);
                }
                // Its reader fails the job when the killed engine's output closes.
                Err(e) => process.kill(&format!("it stopped reading requests ({e})")),
            }
            drop(inner);
            return;
        }
        self.finish(
            slot,
            JobState::Failed(
                "The generation engine stopped right after starting, twice: run genclip-engine \
                 serve in a terminal to see why, or reinstall the GenClip bundle."
                    .into(),
            ),
        );
    }

    /// Ends a pending job with `state`.
    fn finish(&self, slot: &Arc<JobSlot>, state: JobState) {
        let mut inner = self.inner.lock();
        Self::finish_locked(&mut inner, slot, state);
    }

    fn finish_locked(inner: &mut Inner, slot: &Arc<JobSlot>, state: JobState) {
        inner.pending.remove(&slot.id);
        if inner.by_key.get(&slot.key) == Some(&slot.id) {
            inner.by_key.remove(&slot.key);
        }
        slot.set(state);
    }

    pub(crate) fn abort(&self, slot: &Arc<JobSlot>) {
        let mut inner = self.inner.lock();
        if !inner.pending.contains_key(&slot.id) {
            return;
        }
        // From now on a request for this key starts afresh instead of joining the dying job.
        if inner.by_key.get(&slot.key) == Some(&slot.id) {
            inner.by_key.remove(&slot.key);
        }
        let sent_to = slot.inner.lock().sent_to;
        let process = inner
            .process
            .clone()
            .filter(|p| Some(p.generation) == sent_to && !p.has_exited());
        match process {
            // The engine answers `aborted` (or `done`, if the job was just ending).
            Some(p) => {
                if let Err(e) = p.send(&encode(&ToEngine::Abort { job: slot.id })) {
                    p.kill(&format!("it stopped reading requests ({e})"));
                }
            }
            // Not sent yet, or its engine is gone: nothing runs it.
            None => Self::finish_locked(&mut inner, slot, JobState::Aborted),
        }
    }
}

impl Events for Shared {
    fn message(&self, generation: u64, message: FromEngine) {
        let mut inner = self.inner.lock();
        let mut encoder_runs = None;
        let (job, state) = match message {
            FromEngine::Progress {
                job,
                stage,
                step,
                of,
            } => (job, JobState::running(stage, step, of)),
            FromEngine::Done {
                job,
                text_encoder_runs,
                ..
            } => {
                encoder_runs = Some(text_encoder_runs);
                (job, JobState::Done)
            }
            FromEngine::Failed { job, message } => (job, JobState::Failed(message)),
            FromEngine::Aborted { job } => (job, JobState::Aborted),
            FromEngine::Ready { .. } => return,
        };
        let Some(slot) = inner.pending.get(&job).cloned() else {
            return;
        };
        if slot.inner.lock().sent_to != Some(generation) {
            return; // from an engine the job has left
        }
        if let Some(runs) = encoder_runs {
            self.text_encoder_runs.store(runs, Ordering::Relaxed);
        }
        if state.is_finished() {
            Self::finish_locked(&mut inner, &slot, state);
        } else {
            slot.set(state);
        }
    }

    fn exited(self: Arc<Self>, process: &Process, end: End) {
        let mut inner = self.inner.lock();
        process.mark_exited();
        if inner
            .process
            .as_ref()
            .is_some_and(|p| p.generation == process.generation)
        {
            inner.process = None;
        }
        let orphans: Vec<Arc<JobSlot>> = inner
            .pending
            .values()
            .filter(|s| s.inner.lock().sent_to == Some(process.generation))
            .cloned()
            .collect();
        let mut resend = Vec::new();
        for slot in orphans {
            let mut s = slot.inner.lock();
            // An engine that exits cleanly (idle) with a job it never started did not get
            // it in time: the job goes to a fresh engine, once.
            if end.clean && !inner.closed && s.state == JobState::Queued && s.resent == 0 {
                s.resent += 1;
                s.sent_to = None;
                drop(s);
                resend.push(slot);
            } else {
                drop(s);
                let message = format!(
                    "The generation engine stopped unexpectedly (killed, or out of memory?): {}. \
                     Render again to restart it.",
                    end.what
                );
                Self::finish_locked(&mut inner, &slot, JobState::Failed(message));
            }
        }
        drop(inner);
        // On the dead engine's reader thread: it may start the next engine.
        for slot in resend {
            self.dispatch(&slot);
        }
    }
}

fn global_cpu() -> &'static Arc<Engine> {
    static GLOBAL: OnceCell<Arc<Engine>> = OnceCell::new();
    GLOBAL.get_or_init(|| Arc::new(Engine::with(engine_program().map(EngineConfig::serve))))
}

/// Where requests go by their *Device* choice: the CPU engine (`genclip-engine`), and the GPU
/// engine (`genclip-engine-cuda`, one process per GPU used) where it is installed. A GPU engine
/// that cannot start (it is not executable, it exits before `ready`, it refuses the GPU, it
/// names another device) sends its request to the CPU engine instead, with a notice on the
/// job ([`Job::notice`]), and the choice keeps going to the CPU for the rest of the process.
pub struct Engines {
    cpu: Arc<Engine>,
    /// The GPU engine program, if there is one.
    cuda_program: Option<PathBuf>,
    /// Added to each GPU engine's environment.
    cuda_env: Vec<(String, String)>,
    /// One engine per GPU ordinal, made on first use.
    gpus: Mutex<HashMap<u32, Arc<Engine>>>,
    /// Why the GPU engine of an ordinal could not start, once it failed.
    failed: Mutex<HashMap<u32, String>>,
}

/// Where one request goes.
enum Route {
    Cpu { notice: Option<String> },
    Gpu(Arc<Engine>),
}

impl Engines {
    /// The process-wide engines: the CPU engine of [`Engine::global`] and
    /// [`cuda_engine_program`].
    pub fn global() -> &'static Engines {
        static GLOBAL: OnceCell<Engines> = OnceCell::new();
        GLOBAL.get_or_init(|| Engines::with(global_cpu().clone(), cuda_engine_program()))
    }

    /// A CPU engine of `cpu`, and the GPU engine `cuda_program` when given (started as
    /// [`EngineConfig::serve_gpu`], with `cpu.env` in its environment too).
    pub fn new(cpu: EngineConfig, cuda_program: Option<PathBuf>) -> Engines {
        let env = cpu.env.clone();
        let mut engines = Engines::with(Arc::new(Engine::new(cpu)), cuda_program);
        engines.cuda_env = env;
        engines
    }

    fn with(cpu: Arc<Engine>, cuda_program: Option<PathBuf>) -> Engines {
        Engines {
            cpu,
            cuda_program,
            cuda_env: Vec::new(),
            gpus: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// The CPU engine.
    pub fn cpu(&self) -> &Engine {
        &self.cpu
    }

    /// Which kind of engine a request with this choice is expected to run on, without
    /// starting anything: the GPU when the GPU engine is installed and has not failed in this
    /// process. A GPU engine that then fails to start sends the request to the CPU: the
    /// job's [`Job::key`] is the key it was really written under.
    pub fn compute_class(&self, choice: DeviceChoice) -> ComputeClass {
        let gpu = choice.wants_gpu()
            && self.cuda_program.is_some()
            && !self.failed.lock().contains_key(&choice.gpu());
        if gpu {
            ComputeClass::Cuda
        } else {
            ComputeClass::Cpu
        }
    }

    /// Sends `request` (its `output.key` the key `plan_clip` made) to the engine `choice`
    /// names. On a GPU engine the key becomes [`ComputeClass::Cuda`]'s; [`Job::key`] says
    /// where the clip will be. Never panics, never blocks on generation (it may wait for a
    /// GPU engine's start, seconds, once per process).
    pub fn submit(&self, choice: DeviceChoice, mut request: ClipRequest) -> Job {
        match self.route(choice) {
            Route::Cpu { notice } => self.cpu.submit(request).with_notice(notice),
            Route::Gpu(engine) => {
                if let Some(key) = ComputeClass::Cuda.key_hex_for(&request.output.key) {
                    request.output.key = key;
                }
                engine.submit(request)
            }
        }
    }

    /// Why the GPU engine of `choice` could not start, if it failed in this process.
    pub fn gpu_failure(&self, choice: DeviceChoice) -> Option<String> {
        self.failed.lock().get(&choice.gpu()).cloned()
    }

    fn route(&self, choice: DeviceChoice) -> Route {
        if !choice.wants_gpu() {
            return Route::Cpu { notice: None };
        }
        let gpu = choice.gpu();
        let Some(program) = &self.cuda_program else {
            // Auto without a GPU engine is the ordinary CPU install: nothing to say.
            let notice = (choice != DeviceChoice::Auto).then(|| {
                format!(
                    "GenClip's GPU engine ({CUDA_ENGINE_FILE}) is not installed beside \
                     GenClip.ofx; generating on the CPU."
                )
            });
            return Route::Cpu { notice };
        };
        if let Some(why) = self.failed.lock().get(&gpu) {
            return Route::Cpu {
                notice: Some(fallback_notice(why)),
            };
        }
        let engine = {
            let mut gpus = self.gpus.lock();
            gpus.entry(gpu)
                .or_insert_with(|| {
                    let mut config = EngineConfig::serve_gpu(program, gpu);
                    config.env = self.cuda_env.clone();
                    Arc::new(Engine::new(config))
                })
                .clone()
        };
        let why = match engine.ensure_started() {
            Ok(device) if device.starts_with("cuda") => return Route::Gpu(engine),
            Ok(device) => {
                engine.stop_process();
                format!("it runs on {device:?}, not on GPU {gpu}")
            }
            Err(why) => why,
        };
        eprintln!("GenClip: the GPU engine could not start: {why}");
        let notice = fallback_notice(&why);
        self.failed.lock().entry(gpu).or_insert(why);
        Route::Cpu {
            notice: Some(notice),
        }
    }
}

/// "The GPU engine could not start (…); generating on the CPU."
fn fallback_notice(why: &str) -> String {
    format!(
        "The GPU engine could not start ({}); generating on the CPU.",
        why.trim().trim_end_matches('.')
    )
}
