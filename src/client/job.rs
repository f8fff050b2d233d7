//! One clip request as the plugin sees it: its state (updated by the engine's reader thread),
//! waiting with a tick, and abort.

use super::engine::Shared;
use super::protocol::Stage;
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::Duration;

/// How often [`Job::wait`] calls its tick at least.
pub const TICK: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Sent (or about to be), not started: another job runs, or the engine is starting.
    Queued,
    /// `step` of `of` in `stage`; `fraction` is the whole job's progress, 0..=1 (see
    /// [`overall_fraction`]).
    Running {
        stage: Stage,
        step: usize,
        of: usize,
        fraction: f64,
    },
    /// The clip is in the disk cache under the job's key.
    Done,
    /// The sentence to show.
    Failed(String),
    Aborted,
}

impl JobState {
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed(_) | JobState::Aborted
        )
    }

    pub fn running(stage: Stage, step: usize, of: usize) -> JobState {
        JobState::Running {
            stage,
            step,
            of,
            fraction: overall_fraction(stage, step, of),
        }
    }
}

/// The whole job's progress from where it is: loading 0–5 %, text encoding 5–10 %,
/// denoising 10–90 %, decoding 90–98 %, writing 98–100 %. Denoising is nearly all of the
/// time on any real model; decoding is the rest; loading is quick once the model is in the
/// engine (the first job's load shows as a pause at the start).
pub fn overall_fraction(stage: Stage, step: usize, of: usize) -> f64 {
    let (start, end) = match stage {
        Stage::Loading => (0.0, 0.05),
        Stage::EncodingText => (0.05, 0.10),
        Stage::Denoising => (0.10, 0.90),
        Stage::Decoding => (0.90, 0.98),
        Stage::Writing => (0.98, 1.0),
    };
    let within = if of == 0 {
        0.0
    } else {
        (step as f64 / of as f64).clamp(0.0, 1.0)
    };
    start + (end - start) * within
}

/// What the engine side keeps per job.
pub(crate) struct JobSlot {
    pub id: u64,
    pub key: String,
    /// The `generate` line, kept so the job can go to a fresh engine.
    pub line: String,
    pub inner: Mutex<SlotState>,
    changed: Condvar,
}

pub(crate) struct SlotState {
    pub state: JobState,
    /// The engine process (its generation number) the job was sent to.
    pub sent_to: Option<u64>,
    /// Times the job was sent again after its engine exited cleanly without starting it.
    pub resent: u32,
}

impl JobSlot {
    pub fn new(id: u64, key: String, line: String) -> JobSlot {
        JobSlot {
            id,
            key,
            line,
            inner: Mutex::new(SlotState {
                state: JobState::Queued,
                sent_to: None,
                resent: 0,
            }),
            changed: Condvar::new(),
        }
    }

    pub fn state(&self) -> JobState {
        self.inner.lock().state.clone()
    }

    /// Moves to `state` unless the job has already ended (an end is final).
    pub fn set(&self, state: JobState) {
        let mut s = self.inner.lock();
        if !s.state.is_finished() {
            s.state = state;
            self.changed.notify_all();
        }
    }
}

/// A handle on one clip request; clones (and joined requests for the same key) share it.
#[derive(Clone)]
pub struct Job {
    slot: Arc<JobSlot>,
    engine: Arc<Shared>,
    /// Said beside the job's progress and result (a GPU engine that could not start).
    notice: Option<Arc<str>>,
}

impl Job {
    pub(crate) fn new(slot: Arc<JobSlot>, engine: Arc<Shared>) -> Job {
        Job {
            slot,
            engine,
            notice: None,
        }
    }

    pub(crate) fn with_notice(mut self, notice: Option<String>) -> Job {
        self.notice = notice.map(Arc::from);
        self
    }

    /// A sentence to show beside the job's state, whatever its end: e.g. "The GPU engine
    /// could not start (…); generating on the CPU." `None` when there is nothing to say.
    pub fn notice(&self) -> Option<String> {
        self.notice.as_deref().map(str::to_string)
    }

    pub fn state(&self) -> JobState {
        self.slot.state()
    }

    /// The cache key the clip is written under (64 hex digits).
    pub fn key(&self) -> &str {
        &self.slot.key
    }

    /// Blocks until the job ends; `tick` is called at least every 50 ms with the state and
    /// returns false to abort the job (sends `abort`). After an abort it returns at once with
    /// `Aborted` (unless the job had just ended otherwise): the engine stops within one step
    /// and writes nothing, and `state()` follows when it confirms.
    pub fn wait(&self, tick: &mut dyn FnMut(&JobState) -> bool) -> JobState {
        loop {
            let state = {
                let mut s = self.slot.inner.lock();
                if !s.state.is_finished() {
                    self.slot.changed.wait_for(&mut s, TICK);
                }
                s.state.clone()
            };
            if state.is_finished() {
                return state;
            }
            if !tick(&state) {
                self.abort();
                let now = self.state();
                return if now.is_finished() {
                    now
                } else {
                    JobState::Aborted
                };
            }
        }
    }

    /// Asks the engine to stop the job (a queued one is dropped, a running one stops at its
    /// next step) and writes nothing to the cache. A later `submit` of the same key starts a
    /// new job instead of joining this one.
    pub fn abort(&self) {
        self.engine.abort(&self.slot);
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.slot.id)
            .field("key", &self.slot.key)
            .field("state", &self.state())
            .field("notice", &self.notice)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fraction_rises_through_the_stages() {
        let mut last = -1.0;
        for (stage, of) in [
            (Stage::Loading, 1),
            (Stage::EncodingText, 1),
            (Stage::Denoising, 50),
            (Stage::Decoding, 21),
            (Stage::Writing, 1),
        ] {
            for step in 0..=of {
                let f = overall_fraction(stage, step, of);
                assert!(f >= last, "{stage:?} {step}/{of}: {f} < {last}");
                last = f;
            }
        }
        assert_eq!(overall_fraction(Stage::Loading, 0, 1), 0.0);
        assert_eq!(last, 1.0);
        assert_eq!(overall_fraction(Stage::Denoising, 25, 50), 0.5);
        assert_eq!(overall_fraction(Stage::Decoding, 0, 0), 0.90);
    }

    #[test]
    fn an_end_is_final() {
        let slot = JobSlot::new(1, "k".into(), String::new());
        slot.set(JobState::running(Stage::Denoising, 1, 2));
        slot.set(JobState::Done);
        slot.set(JobState::Failed("late".into()));
        assert_eq!(slot.state(), JobState::Done);
    }
}
