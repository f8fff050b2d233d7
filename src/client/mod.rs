//! The plugin's side of the engine process: starts `genclip-engine serve` on first need (one
//! per host process, shared by every instance), sends it clip requests, hears progress, aborts,
//! and notices when it dies. See [`protocol`] and `docs/engine-process.md`.

pub mod protocol;
