//! The panic fence around everything the host calls.
//!
//! A Rust panic must never unwind into the host (that aborts the editor), so every exported
//! function runs its body through [`guard`], which turns a panic into a status code.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`; a panic becomes `on_panic` (and is reported on stderr by the panic hook).
pub fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}
