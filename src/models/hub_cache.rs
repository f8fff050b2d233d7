//! Model folders as users have them: a Diffusers folder (the one holding `model_index.json`),
//! or a Hugging Face hub cache entry (`…/hub/models--Wan-AI--Wan2.1-T2V-1.3B-Diffusers`),
//! whose files live in `snapshots/<revision>/` as links into `blobs/`. Read-only: the hub's
//! `refs/main` names the revision to use; nothing is downloaded or written.
//!
//! Plain `std` (no candle), so the plugin can check its *Model folder* with it.

use std::fs;
use std::path::{Path, PathBuf};

/// The Diffusers folder `path` names: itself when it holds `model_index.json`; for a hub
/// cache entry, the snapshot `refs/main` names, else its only snapshot with a
/// `model_index.json`. `None` when it is neither.
pub fn resolve(path: &Path) -> Option<PathBuf> {
    if path.join("model_index.json").is_file() {
        return Some(path.to_path_buf());
    }
    let snapshots = path.join("snapshots");
    if !snapshots.is_dir() {
        return None;
    }
    if let Ok(revision) = fs::read_to_string(path.join("refs").join("main")) {
        let snapshot = snapshots.join(revision.trim());
        if !revision.trim().is_empty() && snapshot.join("model_index.json").is_file() {
            return Some(snapshot);
        }
    }
    let mut candidates: Vec<PathBuf> = fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model_index.json").is_file())
        .collect();
    if candidates.len() == 1 {
        candidates.pop()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_entry_resolves_to_its_main_snapshot() {
        let root = std::env::temp_dir().join(format!("genclip-hub-{}", std::process::id()));
        let entry = root.join("models--Wan-AI--Wan2.1-T2V-1.3B-Diffusers");
        for rev in ["aaa", "bbb"] {
            let snap = entry.join("snapshots").join(rev);
            fs::create_dir_all(&snap).unwrap();
            fs::write(snap.join("model_index.json"), "{}").unwrap();
        }
        // Two snapshots and no ref: ambiguous.
        assert_eq!(resolve(&entry), None);
        fs::create_dir_all(entry.join("refs")).unwrap();
        fs::write(entry.join("refs/main"), "bbb\n").unwrap();
        assert_eq!(resolve(&entry), Some(entry.join("snapshots/bbb")));
        // A snapshot is a Diffusers folder itself.
        let snap = entry.join("snapshots/aaa");
        assert_eq!(resolve(&snap), Some(snap.clone()));
        // One snapshot and a stale ref: the one that exists.
        fs::remove_dir_all(entry.join("snapshots/bbb")).unwrap();
        assert_eq!(resolve(&entry), Some(snap));
        assert_eq!(resolve(&root), None);
        fs::remove_dir_all(&root).unwrap();
    }
}
