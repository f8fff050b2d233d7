//! What the calling thread is doing for the host: the actions it is inside (innermost last),
//! the renders it is running, and its multi-thread suite index.
//!
//! Several threads render one instance at once, so "which image does clipGetImage mean" and
//! "when did this render start" are answered per thread. Threads the multi-thread suite
//! spawns inherit their parent's context.

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::app::Host;
use super::image::RenderTarget;

/// One action in progress on this thread.
#[derive(Clone)]
pub(crate) struct Frame {
    pub host: Weak<Host>,
    /// The effect handle the action was sent to (0 for Load/Unload).
    pub effect: usize,
    pub started: Instant,
}

/// A render in progress: the instance's handle and its target image.
#[derive(Clone)]
pub(crate) struct RenderCtx {
    pub effect: usize,
    pub target: Arc<RenderTarget>,
}

#[derive(Clone, Default)]
pub(crate) struct Inherited {
    frames: Vec<Frame>,
    renders: Vec<RenderCtx>,
}

#[derive(Default)]
struct Ctx {
    inherited: Inherited,
    /// Set on threads the multi-thread suite spawned.
    spawned: Option<u32>,
}

thread_local! {
    static CTX: RefCell<Ctx> = RefCell::new(Ctx::default());
}

/// Pops what it pushed when dropped.
pub(crate) struct Popper {
    frame: bool,
}

impl Drop for Popper {
    fn drop(&mut self) {
        let frame = self.frame;
        // During thread teardown the context may already be gone; nothing to pop then.
        let _ = CTX.try_with(|c| {
            let mut c = c.borrow_mut();
            if frame {
                c.inherited.frames.pop();
            } else {
                c.inherited.renders.pop();
            }
        });
    }
}

pub(crate) fn push_frame(frame: Frame) -> Popper {
    CTX.with(|c| c.borrow_mut().inherited.frames.push(frame));
    Popper { frame: true }
}

pub(crate) fn push_render(render: RenderCtx) -> Popper {
    CTX.with(|c| c.borrow_mut().inherited.renders.push(render));
    Popper { frame: false }
}

/// The host of the innermost action on this thread.
pub(crate) fn current_host() -> Option<Arc<Host>> {
    CTX.with(|c| {
        c.borrow()
            .inherited
            .frames
            .iter()
            .rev()
            .find_map(|f| f.host.upgrade())
    })
}

/// When the innermost action on `effect` began on this thread.
pub(crate) fn action_start(effect: usize) -> Option<Instant> {
    CTX.with(|c| {
        c.borrow()
            .inherited
            .frames
            .iter()
            .rev()
            .find(|f| f.effect == effect)
            .map(|f| f.started)
    })
}

/// The innermost render of `effect` on this thread.
pub(crate) fn render_of(effect: usize) -> Option<Arc<RenderTarget>> {
    CTX.with(|c| {
        c.borrow()
            .inherited
            .renders
            .iter()
            .rev()
            .find(|r| r.effect == effect)
            .map(|r| r.target.clone())
    })
}

/// This thread's context, for a thread about to be spawned on its behalf.
pub(crate) fn inherit() -> Inherited {
    CTX.with(|c| c.borrow().inherited.clone())
}

/// Installs an inherited context on a spawned worker with its index.
pub(crate) fn install(inherited: Inherited, index: u32) {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        c.inherited = inherited;
        c.spawned = Some(index);
    });
}

/// Marks (or unmarks) the current thread as running worker `index` (for work run inline).
pub(crate) fn set_spawned(index: Option<u32>) -> Option<u32> {
    CTX.with(|c| std::mem::replace(&mut c.borrow_mut().spawned, index))
}

/// The multi-thread suite index: 0 on threads the host did not spawn.
pub(crate) fn thread_index() -> u32 {
    CTX.with(|c| c.borrow().spawned.unwrap_or(0))
}

pub(crate) fn is_spawned() -> bool {
    CTX.with(|c| c.borrow().spawned.is_some())
}
