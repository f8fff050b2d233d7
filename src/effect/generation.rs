//! The clips of this host process and the jobs that make them.
//!
//! Hosts ask for single frames, from several threads, in any order; a clip is generated as a
//! whole. So every clip (named by its cache key) has at most one [`Generation`] in this
//! process: the first render (or the *Generate* button) starts it on a background thread, the
//! others join it. The thread takes the clip's lock in the shared frame cache (so another
//! process or farm node making the same clip is waited for, not repeated), hands the request
//! to the engine process, follows its progress, and reads the finished clip back from the
//! cache, where the engine wrote it.
//!
//! A final render waits for its generation (with progress, abortable); an interactive one only
//! looks at its state and draws the slate. See `docs/rendering.md`.

use crate::cache::{CacheConfig, CacheError, CacheKey, Clip, FrameCache};
use crate::client::protocol::ClipRequest;
use crate::client::{DeviceChoice, Engines, JobState};
use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a clip's generation is.
#[derive(Clone, Debug)]
pub enum GenerationState {
    /// Started; waiting for the cache lock (another process may be making this clip).
    Waiting,
    /// The engine works on it: overall progress in [0, 1].
    Running {
        fraction: f64,
    },
    Ready(Arc<Clip>),
    /// The sentence that says what went wrong and what to do.
    Failed(String),
    /// Stopped by the host's abort; nothing was cached.
    Aborted,
}

impl GenerationState {
    pub fn is_over(&self) -> bool {
        matches!(
            self,
            GenerationState::Ready(_) | GenerationState::Failed(_) | GenerationState::Aborted
        )
    }
}

/// One clip being made (or made, or failed).
pub struct Generation {
    state: Mutex<GenerationState>,
    changed: Condvar,
    /// Renders blocked in [`Generation::wait`]; the job is aborted only when all of them
    /// gave up.
    waiters: AtomicUsize,
    abort: AtomicBool,
    /// What the engine choice said (e.g. the GPU engine could not start: on the CPU).
    notice: Mutex<Option<String>>,
    /// The cache key the clip was written under (another than asked for after a fall-back).
    stored_under: Mutex<Option<CacheKey>>,
}

impl Generation {
    pub fn state(&self) -> GenerationState {
        self.state.lock().clone()
    }

    /// A sentence about where the clip was computed, when it was not where the user asked.
    pub fn notice(&self) -> Option<String> {
        self.notice.lock().clone()
    }

    /// The cache key of the finished clip.
    pub fn stored_under(&self) -> Option<CacheKey> {
        *self.stored_under.lock()
    }

    fn set(&self, state: GenerationState) {
        *self.state.lock() = state;
        self.changed.notify_all();
    }

    /// Stops the job when no render waits for it (an instance asked for another clip).
    pub fn cancel_if_unwatched(&self) {
        if self.waiters.load(Ordering::SeqCst) == 0 && !self.state.lock().is_over() {
            self.abort.store(true, Ordering::SeqCst);
        }
    }

    /// Blocks until the generation is over. `tick` hears the state at least every 50 ms and
    /// returns false to give up (the host aborted): the job is then aborted if no other
    /// render still waits for it, and `Aborted` is returned at once.
    pub fn wait(&self, tick: &mut dyn FnMut(&GenerationState) -> bool) -> GenerationState {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let end = loop {
            let mut state = self.state.lock();
            if state.is_over() {
                break state.clone();
            }
            let seen = state.clone();
            self.changed.wait_for(&mut state, Duration::from_millis(50));
            drop(state);
            if !tick(&seen) {
                if self.waiters.load(Ordering::SeqCst) == 1 {
                    self.abort.store(true, Ordering::SeqCst);
                }
                break GenerationState::Aborted;
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        end
    }
}

/// Every clip of this process: the frame cache and the generations.
pub struct Generations {
    cache: Result<Arc<FrameCache>, String>,
    clips: Mutex<HashMap<CacheKey, Arc<Generation>>>,
}

static GENERATIONS: Lazy<Generations> = Lazy::new(|| {
    let no_cache = |e: &dyn std::fmt::Display| {
        format!("GenClip has no frame cache: {e}. Set GENCLIP_CACHE_DIR to a folder GenClip may write to.")
    };
    // Absolute, because the engine process writes there from its own working directory.
    let root = crate::cache::disk::default_root()
        .ok_or_else(|| no_cache(&CacheError::NoRoot))
        .and_then(|r| std::path::absolute(r).map_err(|e| no_cache(&e)));
    let cache = root.and_then(|root| {
        FrameCache::new(CacheConfig {
            root: Some(root),
            ..CacheConfig::default()
        })
        .map_err(|e| no_cache(&e))
    });
    Generations::new(cache)
});

impl Generations {
    pub fn global() -> &'static Generations {
        &GENERATIONS
    }

    pub fn new(cache: Result<FrameCache, String>) -> Generations {
        Generations {
            cache: cache.map(Arc::new),
            clips: Mutex::new(HashMap::new()),
        }
    }

    /// The frame cache, or the sentence saying why there is none.
    pub fn cache(&self) -> Result<&FrameCache, String> {
        self.cache.as_deref().map_err(Clone::clone)
    }

    /// The clip if it is ready in memory or on disk; never waits, never generates.
    pub fn ready(&self, key: &CacheKey) -> Option<Arc<Clip>> {
        self.cache().ok()?.get(key).ok().flatten()
    }

    /// Starts the generation of `request` under `key`, or joins the one under way. A failed
    /// generation is started again only when `retry_failed` (a final render, the *Generate*
    /// button), so interactive renders do not hammer a broken model folder.
    pub fn start(
        &self,
        key: CacheKey,
        request: ClipRequest,
        device: DeviceChoice,
        retry_failed: bool,
    ) -> Arc<Generation> {
        let mut clips = self.clips.lock();
        // Finished clips live in the frame cache (within its budget), not here; failures stay
        // so that interactive renders do not restart them.
        clips.retain(|_, g| !matches!(*g.state.lock(), GenerationState::Ready(_)));
        if let Some(g) = clips.get(&key) {
            let again = match &*g.state.lock() {
                GenerationState::Failed(_) => retry_failed,
                GenerationState::Aborted => true,
                _ => false,
            };
            if !again {
                return g.clone();
            }
        }
        let generation = Arc::new(Generation {
            state: Mutex::new(GenerationState::Waiting),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            notice: Mutex::new(None),
            stored_under: Mutex::new(None),
        });
        clips.insert(key, generation.clone());
        drop(clips);
        let cache = match &self.cache {
            Ok(c) => c.clone(),
            Err(e) => {
                generation.set(GenerationState::Failed(e.clone()));
                return generation;
            }
        };
        // A clip already in the cache (an undo back to it) is ready in this very action.
        if let Ok(Some(clip)) = cache.get(&key) {
            *generation.stored_under.lock() = Some(key);
            generation.set(GenerationState::Ready(clip));
            return generation;
        }
        let g = generation.clone();
        let spawned = std::thread::Builder::new()
            .name("genclip-generation".into())
            .spawn(move || {
                // Nothing may unwind out of a thread inside the host's process.
                let end = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&cache, &key, request, device, &g)
                }))
                .unwrap_or_else(|_| {
                    GenerationState::Failed(
                        "GenClip hit an internal error while generating; render again, and report it if it repeats.".into(),
                    )
                });
                g.set(end);
            });
        if let Err(e) = spawned {
            generation.set(GenerationState::Failed(format!(
                "GenClip could not start a generation thread ({e}); free some memory and render again."
            )));
        }
        generation
    }
}

/// The background thread's work: lock, engine, read back.
fn run(
    cache: &FrameCache,
    key: &CacheKey,
    request: ClipRequest,
    device: DeviceChoice,
    g: &Generation,
) -> GenerationState {
    let mut aborted = false;
    // A GPU engine that cannot start sends the job to the CPU engine, which writes the clip
    // under the CPU's key: where the clip really is.
    let mut written_under: Option<CacheKey> = None;
    let result = cache.get_or_fill(key, || {
        g.set(GenerationState::Running { fraction: 0.0 });
        let job = Engines::global().submit(device, request);
        let end = job.wait(&mut |state| {
            if let JobState::Running { fraction, .. } = state {
                g.set(GenerationState::Running {
                    fraction: *fraction,
                });
            }
            !g.abort.load(Ordering::SeqCst)
        });
        *g.notice.lock() = job.notice();
        match end {
            JobState::Done if job.key() != key.to_hex() => {
                written_under = CacheKey::from_hex(job.key());
                Ok(())
            }
            JobState::Done => Ok(()),
            JobState::Aborted => {
                aborted = true;
                Err("aborted".to_string())
            }
            JobState::Failed(message) => Err(message),
            other => Err(format!(
                "the generation engine left the job unfinished ({other:?}); render again"
            )),
        }
    });
    match (result, written_under) {
        (Ok(clip), _) => {
            *g.stored_under.lock() = Some(*key);
            GenerationState::Ready(clip)
        }
        (Err(_), Some(elsewhere)) => match cache.get(&elsewhere) {
            Ok(Some(clip)) => {
                *g.stored_under.lock() = Some(elsewhere);
                GenerationState::Ready(clip)
            }
            _ => GenerationState::Failed(format!(
                "The clip the engine made is missing from the frame cache under {elsewhere}; render again."
            )),
        },
        (Err(_), None) if aborted => GenerationState::Aborted,
        (Err(e), None) => GenerationState::Failed(e.to_string()),
    }
}
