//! What the clip plan needs from the model folder, read at render time: which Wan2.1 model it
//! is (from `transformer/config.json`), the scheduler's own flow shift, and a cheap
//! fingerprint of the files that decide its output, for the cache key.
//!
//! The fingerprint hashes each weight file's safetensors *header* (tensor names, dtypes,
//! shapes, offsets) with its size and modification time, not the weights themselves: a real
//! model is 10–60 GB, minutes of hashing that a host's render thread cannot wait for. Size and
//! time catch a file replaced in place; the engine hashes the full contents once (on its own
//! thread, memoised on disk) and records them in the clip's provenance.

use super::ClipError;
use crate::timeline::plan::{wan21_spec_for_dim, ModelSpec};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The model facts the plan and the cache key use.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFacts {
    /// The folder as the *Model folder* parameter names it.
    pub folder: PathBuf,
    pub spec: &'static ModelSpec,
    /// `flow_shift` (or `shift`) of `scheduler/scheduler_config.json`, when it has one.
    pub flow_shift: Option<f64>,
    /// SHA-256 over the files that decide the model's output (see [`fingerprint`]).
    pub fingerprint: [u8; 32],
}

impl ModelFacts {
    /// Reads the facts of a Diffusers model folder (one that holds `model_index.json`).
    pub fn read(folder: &Path) -> Result<ModelFacts, ClipError> {
        Ok(ModelFacts {
            folder: folder.to_path_buf(),
            spec: model_spec(folder)?,
            flow_shift: scheduler_shift(folder)?,
            fingerprint: fingerprint(folder)?,
        })
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, ClipError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ClipError::Settings(format!(
                "GenClip cannot read {}: {e}. Check that the model folder is readable.",
                path.display()
            )))
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        ClipError::Settings(format!(
            "{} is not valid JSON ({e}): the model folder is damaged; download the model again.",
            path.display()
        ))
    })
}

/// The transformer's width: `dim` (original Wan configs) or heads × head dimension
/// (Diffusers' `WanTransformer3DModel`).
fn transformer_dim(config: &serde_json::Value) -> Option<u64> {
    config["dim"].as_u64().or_else(|| {
        Some(config["num_attention_heads"].as_u64()? * config["attention_head_dim"].as_u64()?)
    })
}

/// Which Wan2.1 model the folder holds: the 14B when its transformer is 5120 wide, else (also
/// without a readable width) the 1.3B, whose size rules are the conservative ones.
pub fn model_spec(folder: &Path) -> Result<&'static ModelSpec, ClipError> {
    let config = read_json(&folder.join("transformer").join("config.json"))?;
    Ok(wan21_spec_for_dim(
        config.as_ref().and_then(transformer_dim).unwrap_or(0),
    ))
}

/// The flow shift the model's scheduler config sets (`flow_shift` for UniPC, `shift` for
/// flow-match Euler configs).
pub fn scheduler_shift(folder: &Path) -> Result<Option<f64>, ClipError> {
    let config = read_json(&folder.join("scheduler").join("scheduler_config.json"))?;
    Ok(config.and_then(|c| c["flow_shift"].as_f64().or_else(|| c["shift"].as_f64())))
}

/// Safetensors headers are at most 100 MB (the format's own limit).
const MAX_HEADER: u64 = 100 << 20;
/// Configs and tokenizer files are hashed whole up to this size (umT5's tokenizer.json is
/// 16 MB); past it, their first this-many bytes with size and time.
const MAX_WHOLE: u64 = 64 << 20;
/// Files deeper than this below the model folder are not looked at (Diffusers folders are
/// two deep).
const MAX_DEPTH: usize = 4;

/// Which part of a file decides the model's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Part {
    /// A safetensors file: its 8-byte length and JSON header.
    Header,
    /// A config or tokenizer file: all of it.
    Whole,
}

fn part_of(relative: &str) -> Option<Part> {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    if name.ends_with(".safetensors") {
        Some(Part::Header)
    } else if name.ends_with(".json") || relative.split('/').any(|c| c.starts_with("tokenizer")) {
        Some(Part::Whole)
    } else {
        None
    }
}

/// A file's identity for the memo: where it is, how long, when it last changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Stamp {
    path: PathBuf,
    len: u64,
    mtime_ns: i128,
    part: Part,
}

/// File digests already computed in this process, by stamp.
static MEMO: Lazy<Mutex<HashMap<Stamp, [u8; 32]>>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        },
        Err(_) => 0,
    }
}

fn digest_part(path: &Path, len: u64, part: Part) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let take = match part {
        Part::Whole => len.min(MAX_WHOLE),
        Part::Header if len < 8 => len,
        Part::Header => {
            let mut n = [0u8; 8];
            file.read_exact(&mut n)?;
            file.seek(SeekFrom::Start(0))?;
            8 + u64::from_le_bytes(n).min(MAX_HEADER).min(len - 8)
        }
    };
    let mut hasher = Sha256::new();
    io::copy(&mut file.take(take), &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// The relevant files below `folder` as (relative path with `/`, full path), sorted. Hidden
/// entries (`.cache`, `.git`) are skipped; links are followed (Hugging Face snapshot folders
/// link to their blobs).
fn relevant_files(folder: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut pending = vec![(folder.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let relative = format!("{prefix}{name}");
            let meta = fs::metadata(&path)?;
            if meta.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    pending.push((path, format!("{relative}/"), depth + 1));
                }
            } else if part_of(&relative).is_some() {
                out.push((relative, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// SHA-256 over, for every safetensors, JSON and tokenizer file below `folder` in path
/// order: its relative path, size, modification time and the digest of the part that
/// decides the output (the safetensors header; configs and tokenizer files whole). Digests
/// are memoised per (path, size, time), so after the first render this costs a directory
/// walk and a `stat` per file.
///
/// The folder's own location is not part of it: the same model at another path (another
/// farm node's mount) gives the same fingerprint when its files keep their times.
pub fn fingerprint(folder: &Path) -> Result<[u8; 32], ClipError> {
    let failed = |e: io::Error| {
        ClipError::Settings(format!(
            "GenClip cannot read the model folder {}: {e}. Check that it exists and is readable.",
            folder.display()
        ))
    };
    let files = relevant_files(folder).map_err(failed)?;
    if files.is_empty() {
        return Err(ClipError::Settings(format!(
            "Model folder {} holds no safetensors or config files: point Model folder at a Diffusers Wan2.1 directory.",
            folder.display()
        )));
    }
    let mut all = Sha256::new();
    all.update(b"genclip-model-fingerprint-v1\0");
    for (relative, path) in files {
        let meta = fs::metadata(&path).map_err(failed)?;
        let part = part_of(&relative).expect("listed files are relevant");
        let stamp = Stamp {
            path: path.clone(),
            len: meta.len(),
            mtime_ns: mtime_ns(&meta),
            part,
        };
        let memo = MEMO.lock().get(&stamp).copied();
        let digest = match memo {
            Some(d) => d,
            None => {
                let d = digest_part(&path, stamp.len, part).map_err(|e| {
                    ClipError::Settings(format!(
                        "GenClip cannot read {}: {e}. Check that the model folder is readable.",
                        path.display()
                    ))
                })?;
                MEMO.lock().insert(stamp.clone(), d);
                d
            }
        };
        all.update((relative.len() as u64).to_le_bytes());
        all.update(relative.as_bytes());
        all.update(stamp.len.to_le_bytes());
        all.update(stamp.mtime_ns.to_le_bytes());
        all.update(digest);
    }
    Ok(all.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_parts() {
        assert_eq!(
            part_of("transformer/diffusion_pytorch_model-00001-of-00002.safetensors"),
            Some(Part::Header)
        );
        assert_eq!(part_of("vae/config.json"), Some(Part::Whole));
        assert_eq!(part_of("tokenizer/spiece.model"), Some(Part::Whole));
        assert_eq!(part_of("README.md"), None);
        assert_eq!(part_of("transformer/diffusion_pytorch_model.bin"), None);
    }

    #[test]
    fn widths() {
        let diffusers = serde_json::json!({"num_attention_heads": 40, "attention_head_dim": 128});
        assert_eq!(transformer_dim(&diffusers), Some(5120));
        assert_eq!(
            transformer_dim(&serde_json::json!({"dim": 1536})),
            Some(1536)
        );
        assert_eq!(transformer_dim(&serde_json::json!({})), None);
    }
}
