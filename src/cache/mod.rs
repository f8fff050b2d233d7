//! The frame cache: frames travel engine → cache → host.
//!
//! A generated window (a [`Clip`]) is named by a [`CacheKey`] (a SHA-256 over everything that
//! changes its pixels) and kept in two layers:
//! - [`MemoryCache`]: decoded clips, least recently used first out, within a byte budget;
//! - [`DiskCache`]: one checksummed file per window under a root shared by every process
//!   (and farm node), written atomically, with a lock file per key so that one process
//!   generates a window while the others wait and then read it.
//!
//! [`FrameCache::get_or_generate`] puts them together. Correctness never depends on the lock:
//! files appear only by atomic rename and are verified on every read, so at worst two holders
//! (after a broken stale lock) generate the same deterministic window twice. See
//! `docs/cache.md`.

pub mod disk;
pub mod key;
pub mod memory;

pub use disk::{DiskCache, LockPolicy, ReadOutcome, CACHE_DIR_ENV};
pub use key::{CacheKey, KeyBuilder};
pub use memory::MemoryCache;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A window of frames: `frames` × `height` × `width` × `channels` f32 samples, interleaved,
/// row-major from the top-left, frame after frame. One frame is a contiguous slice
/// ([`Clip::frame`]), so the plugin copies a frame with one `memcpy` (per row if the host's
/// row stride differs).
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    pub data: Vec<f32>,
}

impl Clip {
    pub fn new(
        frames: usize,
        height: usize,
        width: usize,
        channels: usize,
        data: Vec<f32>,
    ) -> Result<Clip, CacheError> {
        let want = frames
            .checked_mul(height)
            .and_then(|n| n.checked_mul(width))
            .and_then(|n| n.checked_mul(channels));
        if !(3..=4).contains(&channels) || frames == 0 || height == 0 || width == 0 {
            return Err(CacheError::InvalidClip(format!(
                "{frames} frames of {width}x{height}x{channels}"
            )));
        }
        if want != Some(data.len()) {
            return Err(CacheError::InvalidClip(format!(
                "{frames} frames of {width}x{height}x{channels} need {want:?} samples, got {}",
                data.len()
            )));
        }
        Ok(Clip {
            frames,
            height,
            width,
            channels,
            data,
        })
    }

    /// Samples in one frame.
    pub fn frame_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Frame `i` (0-based within the window), or `None` past the end.
    pub fn frame(&self, i: usize) -> Option<&[f32]> {
        let n = self.frame_len();
        self.data.get(i.checked_mul(n)?..(i + 1).checked_mul(n)?)
    }

    /// Payload bytes (what the memory budget counts and the disk file holds).
    pub fn byte_size(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

impl From<crate::engine::pipeline::Video> for Clip {
    /// The engine's output (RGB); moves the samples, no copy.
    fn from(v: crate::engine::pipeline::Video) -> Clip {
        Clip {
            frames: v.frames,
            height: v.height,
            width: v.width,
            channels: 3,
            data: v.rgb,
        }
    }
}

#[derive(Debug)]
pub enum CacheError {
    /// The generator's error, passed through.
    Generate(Box<dyn std::error::Error + Send + Sync>),
    /// A clip whose dimensions and sample count disagree.
    InvalidClip(String),
    /// Waiting for another holder's lock timed out.
    LockTimeout(String),
    /// Disk trouble other than a bad cache file (those are removed and regenerated).
    Io(io::Error),
    /// No cache root: neither `GENCLIP_CACHE_DIR` nor the platform's cache directory is set.
    NoRoot,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Generate(e) => write!(f, "{e}"),
            CacheError::InvalidClip(s) => write!(f, "invalid clip: {s}"),
            CacheError::LockTimeout(s) => write!(f, "frame cache lock: {s}"),
            CacheError::Io(e) => write!(f, "frame cache: {e}"),
            CacheError::NoRoot => write!(
                f,
                "no frame cache directory: set {CACHE_DIR_ENV} (or HOME / XDG_CACHE_HOME)"
            ),
        }
    }
}

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CacheError::Generate(e) => Some(e.as_ref()),
            CacheError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for CacheError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::TimedOut {
            CacheError::LockTimeout(e.to_string())
        } else {
            CacheError::Io(e)
        }
    }
}

/// How a [`FrameCache`] is set up.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Byte budget of the memory layer.
    pub memory_budget: usize,
    /// Disk root; `None`: [`disk::default_root`] (`GENCLIP_CACHE_DIR`, else the user's cache
    /// directory).
    pub root: Option<PathBuf>,
    pub lock: LockPolicy,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            memory_budget: 2 << 30,
            root: None,
            lock: LockPolicy::default(),
        }
    }
}

/// Counters, for tests and diagnostics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub generated: u64,
    /// Bad files found (and removed) on disk.
    pub corrupt_removed: u64,
    /// Generated clips that could not be written to disk (still returned and kept in memory).
    pub disk_write_failures: u64,
}

#[derive(Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    generated: AtomicU64,
    corrupt_removed: AtomicU64,
    disk_write_failures: AtomicU64,
}

/// Memory LRU over a shared disk cache, with one generation per key across threads and
/// processes.
pub struct FrameCache {
    memory: MemoryCache,
    disk: DiskCache,
    lock: LockPolicy,
    counters: Counters,
}

impl FrameCache {
    pub fn new(config: CacheConfig) -> Result<FrameCache, CacheError> {
        let root = match config.root {
            Some(r) => r,
            None => disk::default_root().ok_or(CacheError::NoRoot)?,
        };
        Ok(FrameCache {
            memory: MemoryCache::new(config.memory_budget),
            disk: DiskCache::new(root),
            lock: config.lock,
            counters: Counters::default(),
        })
    }

    pub fn memory(&self) -> &MemoryCache {
        &self.memory
    }

    pub fn disk(&self) -> &DiskCache {
        &self.disk
    }

    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            memory_hits: c.memory_hits.load(Ordering::Relaxed),
            disk_hits: c.disk_hits.load(Ordering::Relaxed),
            generated: c.generated.load(Ordering::Relaxed),
            corrupt_removed: c.corrupt_removed.load(Ordering::Relaxed),
            disk_write_failures: c.disk_write_failures.load(Ordering::Relaxed),
        }
    }

    /// Memory, then disk (a disk hit is kept in memory). Never generates or waits.
    pub fn get(&self, key: &CacheKey) -> Result<Option<Arc<Clip>>, CacheError> {
        if let Some(c) = self.memory.get(key) {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(c));
        }
        self.read_disk(key)
    }

    fn read_disk(&self, key: &CacheKey) -> Result<Option<Arc<Clip>>, CacheError> {
        match self.disk.read(key)? {
            ReadOutcome::Hit(clip) => {
                self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
                let clip = Arc::new(clip);
                self.memory.insert(*key, clip.clone());
                Ok(Some(clip))
            }
            ReadOutcome::Miss => Ok(None),
            ReadOutcome::Removed(_) => {
                self.counters
                    .corrupt_removed
                    .fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// The clip for `key`: from memory, else from disk, else generated exactly once among all
    /// threads and processes sharing the disk root: the first takes the key's lock file and
    /// runs `generate`; the others wait (polling, up to the lock timeout), checking memory and
    /// disk between attempts, and read what the holder wrote.
    ///
    /// A generated clip is written to disk before the lock is released. If that write fails
    /// the clip is still returned (and kept in memory); [`CacheStats::disk_write_failures`]
    /// counts it. If `generate` fails or panics the lock is released and the next waiter
    /// tries to generate.
    pub fn get_or_generate<E>(
        &self,
        key: &CacheKey,
        generate: impl FnOnce() -> Result<Clip, E>,
    ) -> Result<Arc<Clip>, CacheError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.under_lock(key, || {
            let clip = generate().map_err(|e| CacheError::Generate(e.into()))?;
            let clip = Clip::new(
                clip.frames,
                clip.height,
                clip.width,
                clip.channels,
                clip.data,
            )?;
            self.counters.generated.fetch_add(1, Ordering::Relaxed);
            if self.disk.write(key, &clip).is_err() {
                self.counters
                    .disk_write_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
            let clip = Arc::new(clip);
            self.memory.insert(*key, clip.clone());
            Ok(clip)
        })
    }

    /// As [`FrameCache::get_or_generate`], for a producer that writes the disk entry itself
    /// (the engine process writes `<key>.gcf` atomically; frames never cross the pipe):
    /// `fill` runs under the key's lock, then the entry is read back and verified like any
    /// other. A `fill` that reports success without leaving a valid entry is an error.
    pub fn get_or_fill<E>(
        &self,
        key: &CacheKey,
        fill: impl FnOnce() -> Result<(), E>,
    ) -> Result<Arc<Clip>, CacheError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.under_lock(key, || {
            fill().map_err(|e| CacheError::Generate(e.into()))?;
            self.counters.generated.fetch_add(1, Ordering::Relaxed);
            self.read_disk(key)?.ok_or_else(|| {
                CacheError::InvalidClip(format!(
                    "the generator reported {} written, but it is missing or damaged",
                    self.disk.path(key).display()
                ))
            })
        })
    }

    /// Memory, disk, else `make` while holding the key's lock (waiting for another holder
    /// first, and reading what it wrote).
    fn under_lock(
        &self,
        key: &CacheKey,
        make: impl FnOnce() -> Result<Arc<Clip>, CacheError>,
    ) -> Result<Arc<Clip>, CacheError> {
        if let Some(c) = self.get(key)? {
            return Ok(c);
        }
        let waited = disk::lock_or(&self.disk, key, &self.lock, || {
            if let Some(c) = self.memory.get(key) {
                self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(c));
            }
            self.read_disk(key).map_err(|e| match e {
                CacheError::Io(e) => e,
                other => io::Error::other(other.to_string()),
            })
        })?;
        let _guard = match waited {
            Ok(guard) => guard,
            Err(clip) => return Ok(clip),
        };
        // Re-check under the lock: the previous holder may have finished just before we
        // took it.
        if let Some(c) = self.get(key)? {
            return Ok(c);
        }
        make()
    }
}
