//! SHA-256 of every file that decides a model's output: the weights (`*.safetensors`) and the
//! JSON beside them (configs, tokenizer, safetensors indexes), by path relative to the model
//! folder, for the provenance record.
//!
//! A real model is 10–30 GB, minutes of hashing, so each file's digest is remembered on disk
//! under `<memo dir>/<sha256 of (canonical path, size, mtime)>.sha256`: a file that changes
//! (size or modification time) gets a new memo, an unchanged one is hashed once per cache
//! root. Hashing runs on its own thread while the model generates ([`WeightHashes::start`]).

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::UNIX_EPOCH;

/// Relative path (with `/`) → lowercase hex SHA-256.
pub type Digests = BTreeMap<String, String>;

/// How deep below the model folder files are looked for (a Diffusers folder is two deep).
const MAX_DEPTH: usize = 4;

/// Digests being computed on a thread, then kept.
pub struct WeightHashes {
    pending: Option<JoinHandle<Result<Digests, String>>>,
    result: Option<Result<Digests, String>>,
}

impl WeightHashes {
    /// Starts hashing `folder` (memos under `memo_dir`).
    pub fn start(folder: PathBuf, memo_dir: PathBuf) -> WeightHashes {
        let pending = std::thread::Builder::new()
            .name("genclip-weight-hashes".into())
            .spawn(move || hash_model_folder(&folder, &memo_dir));
        match pending {
            Ok(handle) => WeightHashes {
                pending: Some(handle),
                result: None,
            },
            Err(e) => WeightHashes {
                pending: None,
                result: Some(Err(format!("cannot start hashing the weights: {e}"))),
            },
        }
    }

    /// The digests, waiting for the thread the first time.
    pub fn get(&mut self) -> &Result<Digests, String> {
        if let Some(handle) = self.pending.take() {
            let result = handle
                .join()
                .unwrap_or_else(|_| Err("hashing the weights failed (panic)".into()));
            self.result = Some(result);
        }
        self.result
            .get_or_insert_with(|| Err("the weights were not hashed".into()))
    }
}

/// Digests of every `*.safetensors` and `*.json` file under `folder`.
pub fn hash_model_folder(folder: &Path, memo_dir: &Path) -> Result<Digests, String> {
    let mut files = Vec::new();
    collect(folder, folder, 0, &mut files)
        .map_err(|e| format!("cannot list the model folder {}: {e}", folder.display()))?;
    let mut digests = Digests::new();
    for (relative, path) in files {
        let digest = file_digest(&path, memo_dir)
            .map_err(|e| format!("cannot hash {}: {e}", path.display()))?;
        digests.insert(relative, digest);
    }
    Ok(digests)
}

fn collect(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        // Follows symlinks: the Hugging Face cache links snapshot files to blobs.
        let meta = fs::metadata(&path)?;
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                collect(root, &path, depth + 1, out)?;
            }
            continue;
        }
        let wanted = path
            .extension()
            .is_some_and(|e| e == "safetensors" || e == "json");
        if meta.is_file() && wanted {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((relative.join("/"), path));
        }
    }
    Ok(())
}

/// One file's digest, from its memo if it has one.
pub fn file_digest(path: &Path, memo_dir: &Path) -> io::Result<String> {
    let canonical = path.canonicalize()?;
    let meta = fs::metadata(&canonical)?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut identity = Sha256::new();
    identity.update(canonical.as_os_str().as_encoded_bytes());
    identity.update([0]);
    identity.update(meta.len().to_le_bytes());
    identity.update(mtime.to_le_bytes());
    let memo = memo_dir.join(format!("{}.sha256", hex(&identity.finalize())));
    if let Ok(text) = fs::read_to_string(&memo) {
        let text = text.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(text.to_ascii_lowercase());
        }
    }
    let digest = sha256_of(&canonical)?;
    if let Err(e) = write_memo(&memo, &digest) {
        // Only a lost shortcut: the next engine hashes again.
        eprintln!(
            "genclip-engine: cannot remember the hash of {} in {} ({e})",
            canonical.display(),
            memo.display()
        );
    }
    Ok(digest)
}

fn sha256_of(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Write-then-rename, so a reader never sees half a memo.
fn write_memo(memo: &Path, digest: &str) -> io::Result<()> {
    let dir = memo.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = memo.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{digest}\n").as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, memo)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("genclip-weights-{}", std::process::id()))
            .join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn digests_match_sha256_and_are_memoized() {
        let dir = scratch("memo");
        let model = dir.join("model");
        fs::create_dir_all(model.join("vae")).unwrap();
        fs::write(model.join("model_index.json"), b"{}").unwrap();
        fs::write(model.join("vae/w.safetensors"), b"abc").unwrap();
        fs::write(model.join("vae/notes.txt"), b"not hashed").unwrap();
        let memos = dir.join("weights");
        let digests = hash_model_folder(&model, &memos).unwrap();
        assert_eq!(
            digests.keys().collect::<Vec<_>>(),
            ["model_index.json", "vae/w.safetensors"]
        );
        // SHA-256("abc"), the FIPS 180-2 example.
        assert_eq!(
            digests["vae/w.safetensors"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(fs::read_dir(&memos).unwrap().count(), 2);

        // A memo is trusted while size and mtime hold: plant a fake one and see it used.
        let memo = fs::read_dir(&memos)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| fs::read_to_string(p).unwrap().starts_with("ba78"))
            .unwrap();
        fs::write(&memo, format!("{}\n", "0".repeat(64))).unwrap();
        let again = hash_model_folder(&model, &memos).unwrap();
        assert_eq!(again["vae/w.safetensors"], "0".repeat(64));

        // A changed file (another size) is hashed afresh.
        fs::write(model.join("vae/w.safetensors"), b"abcd").unwrap();
        let changed = hash_model_folder(&model, &memos).unwrap();
        assert_eq!(
            changed["vae/w.safetensors"],
            "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
