//! The disk layer: one file per cached clip (a generated window), written atomically and
//! checksummed, plus lock files so that one process generates a window while others wait.
//!
//! See `docs/cache.md` for the file format and the locking protocol.

use super::{CacheKey, Clip};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable that overrides the cache root.
pub const CACHE_DIR_ENV: &str = "GENCLIP_CACHE_DIR";

/// First eight bytes of every cache file.
pub const MAGIC: [u8; 8] = *b"GCLIPFC\0";
/// Bump when the layout changes; files of other versions are treated as corrupt (removed).
pub const FORMAT_VERSION: u32 = 1;
/// Fixed header size in bytes (see [`Header`]).
pub const HEADER_LEN: usize = 128;
/// Sample format code: f32 little-endian.
const SAMPLE_F32_LE: u32 = 1;
/// File name extension of cache files.
pub const EXT: &str = "gcf";

/// The cache root when none is configured: `$GENCLIP_CACHE_DIR` if set and not empty, else
/// the platform's per-user cache directory + `genclip`:
/// - Linux and other Unix: `$XDG_CACHE_HOME/genclip` (if absolute), else `$HOME/.cache/genclip`;
/// - macOS: `$HOME/Library/Caches/GenClip`;
/// - Windows: `%LOCALAPPDATA%\GenClip\cache`.
///
/// `None` when none of those variables is usable.
pub fn default_root() -> Option<PathBuf> {
    default_root_from(|k| std::env::var_os(k))
}

/// [`default_root`] over a given environment (tests pass their own).
pub fn default_root_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(dir) = nonempty(CACHE_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if cfg!(windows) {
        return nonempty("LOCALAPPDATA").map(|d| PathBuf::from(d).join("GenClip").join("cache"));
    }
    if cfg!(target_os = "macos") {
        return nonempty("HOME").map(|h| PathBuf::from(h).join("Library/Caches/GenClip"));
    }
    if let Some(x) = nonempty("XDG_CACHE_HOME").map(PathBuf::from) {
        if x.is_absolute() {
            return Some(x.join("genclip"));
        }
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".cache").join("genclip"))
}

/// Why a file was not accepted (it is removed and the read is a miss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corrupt {
    Short,
    Magic,
    Version(u32),
    Layout(&'static str),
    Checksum,
}

/// The fixed 128-byte header, all integers little-endian:
///
/// | off | size | field |
/// |----:|----:|-------|
/// | 0 | 8 | magic `GCLIPFC\0` |
/// | 8 | 4 | format version |
/// | 12 | 4 | header length (128) |
/// | 16 | 32 | the key (guards against a renamed or misplaced file) |
/// | 48 | 8 | frames |
/// | 56 | 8 | height |
/// | 64 | 8 | width |
/// | 72 | 4 | channels (3 or 4) |
/// | 76 | 4 | sample format (1 = f32 LE) |
/// | 80 | 8 | payload length in bytes |
/// | 88 | 32 | SHA-256 of header bytes 0..88 followed by the payload |
/// | 120 | 8 | zero |
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    key: CacheKey,
    frames: u64,
    height: u64,
    width: u64,
    channels: u32,
    payload_len: u64,
    checksum: [u8; 32],
}

const CHECKED_PREFIX: usize = 88;

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[16..48].copy_from_slice(&self.key.0);
        h[48..56].copy_from_slice(&self.frames.to_le_bytes());
        h[56..64].copy_from_slice(&self.height.to_le_bytes());
        h[64..72].copy_from_slice(&self.width.to_le_bytes());
        h[72..76].copy_from_slice(&self.channels.to_le_bytes());
        h[76..80].copy_from_slice(&SAMPLE_F32_LE.to_le_bytes());
        h[80..88].copy_from_slice(&self.payload_len.to_le_bytes());
        h[88..120].copy_from_slice(&self.checksum);
        h
    }

    fn decode(h: &[u8; HEADER_LEN]) -> Result<Header, Corrupt> {
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
        if h[0..8] != MAGIC {
            return Err(Corrupt::Magic);
        }
        if u32_at(8) != FORMAT_VERSION {
            return Err(Corrupt::Version(u32_at(8)));
        }
        if u32_at(12) as usize != HEADER_LEN {
            return Err(Corrupt::Layout("header length"));
        }
        if u32_at(76) != SAMPLE_F32_LE {
            return Err(Corrupt::Layout("sample format"));
        }
        if h[120..128].iter().any(|&b| b != 0) {
            return Err(Corrupt::Layout("reserved bytes"));
        }
        let header = Header {
            key: CacheKey(h[16..48].try_into().unwrap()),
            frames: u64_at(48),
            height: u64_at(56),
            width: u64_at(64),
            channels: u32_at(72),
            payload_len: u64_at(80),
            checksum: h[88..120].try_into().unwrap(),
        };
        let samples = header
            .frames
            .checked_mul(header.height)
            .and_then(|n| n.checked_mul(header.width))
            .and_then(|n| n.checked_mul(u64::from(header.channels)))
            .and_then(|n| n.checked_mul(4));
        if !(3..=4).contains(&header.channels) || samples != Some(header.payload_len) {
            return Err(Corrupt::Layout("dimensions"));
        }
        Ok(header)
    }
}

/// What a read found.
#[derive(Debug)]
pub enum ReadOutcome {
    Hit(Clip),
    Miss,
    /// The file was bad and has been removed (or someone else removed it first).
    Removed(Corrupt),
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Cache files under one root directory (created on first write).
#[derive(Debug, Clone)]
pub struct DiskCache {
    root: PathBuf,
}

impl DiskCache {
    pub fn new(root: impl Into<PathBuf>) -> DiskCache {
        DiskCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `key`'s clip lives.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.root.join(format!("{}.{EXT}", key.to_hex()))
    }

    /// Where `key`'s lock file lives.
    pub fn lock_path(&self, key: &CacheKey) -> PathBuf {
        self.root.join(format!("{}.lock", key.to_hex()))
    }

    /// Reads and verifies `key`'s clip. A file that fails any check (magic, version, layout,
    /// length, key, checksum) is removed and reported as [`ReadOutcome::Removed`]. I/O errors
    /// other than "not found" are returned.
    pub fn read(&self, key: &CacheKey) -> io::Result<ReadOutcome> {
        let path = self.path(key);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadOutcome::Miss),
            Err(e) => return Err(e),
        };
        match read_verified(&mut file, key)? {
            Ok(clip) => Ok(ReadOutcome::Hit(clip)),
            Err(why) => {
                remove_if_same(&path, &file)?;
                Ok(ReadOutcome::Removed(why))
            }
        }
    }

    /// Writes `clip` for `key` atomically: a temporary file in the same directory, fsync,
    /// rename over the final name, fsync of the directory. Readers see the old file, no file,
    /// or the whole new one; never a part.
    pub fn write(&self, key: &CacheKey, clip: &Clip) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        let tmp = self.root.join(format!(
            ".{}.{}.{}.tmp",
            key.to_hex(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            write_clip(&mut f, key, clip)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, self.path(key))?;
            sync_dir(&self.root);
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Removes `key`'s file; not an error if there is none.
    pub fn remove(&self, key: &CacheKey) -> io::Result<()> {
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes temporary files (left by writers that crashed) older than `age`.
    pub fn sweep_temp_files(&self, age: Duration) -> io::Result<usize> {
        let mut n = 0;
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with('.') && name.ends_with(".tmp")) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > age);
            if old && fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

fn write_clip(f: &mut File, key: &CacheKey, clip: &Clip) -> io::Result<()> {
    let mut header = Header {
        key: *key,
        frames: clip.frames as u64,
        height: clip.height as u64,
        width: clip.width as u64,
        channels: clip.channels as u32,
        payload_len: clip.byte_size() as u64,
        checksum: [0; 32],
    };
    let mut hasher = Sha256::new();
    hasher.update(&header.encode()[..CHECKED_PREFIX]);
    for chunk in clip.data.chunks(1 << 16) {
        let bytes = f32s_to_le(chunk);
        hasher.update(&bytes);
    }
    header.checksum = hasher.finalize().into();
    let mut w = io::BufWriter::with_capacity(1 << 20, f);
    w.write_all(&header.encode())?;
    for chunk in clip.data.chunks(1 << 16) {
        w.write_all(&f32s_to_le(chunk))?;
    }
    w.flush()
}

fn f32s_to_le(chunk: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() * 4);
    for x in chunk {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Outer `Err`: I/O failure; inner `Err`: the file is bad.
fn read_verified(file: &mut File, key: &CacheKey) -> io::Result<Result<Clip, Corrupt>> {
    let len = file.metadata()?.len();
    let mut hbuf = [0u8; HEADER_LEN];
    if len < HEADER_LEN as u64 {
        return Ok(Err(Corrupt::Short));
    }
    file.read_exact(&mut hbuf)?;
    let header = match Header::decode(&hbuf) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    if header.key != *key {
        return Ok(Err(Corrupt::Layout("key")));
    }
    if len != HEADER_LEN as u64 + header.payload_len {
        return Ok(Err(Corrupt::Short));
    }
    let samples = (header.payload_len / 4) as usize;
    let mut data = Vec::with_capacity(samples);
    let mut hasher = Sha256::new();
    hasher.update(&hbuf[..CHECKED_PREFIX]);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = header.payload_len as usize;
    while left > 0 {
        let n = left.min(buf.len());
        match file.read_exact(&mut buf[..n]) {
            Ok(()) => {}
            // Truncated between the size check and here (someone else's removal): bad file.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Err(Corrupt::Short)),
            Err(e) => return Err(e),
        }
        hasher.update(&buf[..n]);
        data.extend(
            buf[..n]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
        );
        left -= n;
    }
    let sum: [u8; 32] = hasher.finalize().into();
    if sum != header.checksum {
        return Ok(Err(Corrupt::Checksum));
    }
    Ok(Clip::new(
        header.frames as usize,
        header.height as usize,
        header.width as usize,
        header.channels as usize,
        data,
    )
    .map_err(|_| Corrupt::Layout("dimensions")))
}

/// Removes `path` only if it is still the file we opened (a writer may have renamed a good
/// file over it since; removing that would only cost a miss, but there is no need).
fn remove_if_same(path: &Path, opened: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ours = opened.metadata()?;
        match fs::metadata(path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {}
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    let _ = opened;
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) {
    // Makes the rename durable on Unix; best effort (not possible on every platform / fs).
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

// ---------------------------------------------------------------------------------------------
// Lock files

/// How lock waiting behaves.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    /// Give up waiting for another holder after this long.
    pub timeout: Duration,
    /// A lock older than this is stale whoever holds it (covers holders on other machines,
    /// whose pid cannot be checked). Must exceed the longest generation of one window.
    pub stale_after: Duration,
    /// Time between attempts while waiting.
    pub poll: Duration,
}

impl Default for LockPolicy {
    fn default() -> LockPolicy {
        LockPolicy {
            timeout: Duration::from_secs(60 * 60),
            stale_after: Duration::from_secs(3 * 60 * 60),
            poll: Duration::from_millis(50),
        }
    }
}

/// The contents of a lock file: `pid=…\nhost=…\ntime_ms=…\ntoken=…\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Unique per acquisition, so a holder only ever removes its own lock.
    pub token: String,
}

impl LockInfo {
    fn mine() -> LockInfo {
        let time_ms = now_ms();
        LockInfo {
            pid: std::process::id(),
            host: hostname(),
            time_ms,
            token: format!(
                "{}-{}-{}",
                std::process::id(),
                time_ms,
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    pub fn encode(&self) -> String {
        format!(
            "pid={}\nhost={}\ntime_ms={}\ntoken={}\n",
            self.pid, self.host, self.time_ms, self.token
        )
    }

    pub fn parse(text: &str) -> Option<LockInfo> {
        let mut pid = None;
        let mut host = None;
        let mut time_ms = None;
        let mut token = None;
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            match k {
                "pid" => pid = v.parse().ok(),
                "host" => host = Some(v.to_owned()),
                "time_ms" => time_ms = v.parse().ok(),
                "token" => token = Some(v.to_owned()),
                _ => {}
            }
        }
        Some(LockInfo {
            pid: pid?,
            host: host?,
            time_ms: time_ms?,
            token: token?,
        })
    }

    /// Stale: older than `stale_after`, or held on this machine by a process that is gone.
    pub fn is_stale(&self, stale_after: Duration) -> bool {
        let age = Duration::from_millis(now_ms().saturating_sub(self.time_ms));
        age > stale_after || (self.host == hostname() && !pid_alive(self.pid))
    }
}

/// A held lock; dropping it removes the lock file if it is still ours.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    info: LockInfo,
}

impl LockGuard {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Ok(text) = fs::read_to_string(&self.path) {
            if LockInfo::parse(&text).is_some_and(|i| i.token == self.info.token) {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// Tried once: the lock, or who holds it.
#[derive(Debug)]
pub enum TryLock {
    Acquired(LockGuard),
    /// Held by someone else (`None`: the file is being written or is unreadable).
    Held(Option<LockInfo>),
}

impl DiskCache {
    /// One attempt at `key`'s lock: `create_new` (O_CREAT|O_EXCL) of the lock file. A stale lock
    /// (see [`LockInfo::is_stale`]) is broken and the attempt repeated once.
    pub fn try_lock(&self, key: &CacheKey, stale_after: Duration) -> io::Result<TryLock> {
        fs::create_dir_all(&self.root)?;
        let path = self.lock_path(key);
        for _ in 0..2 {
            let info = LockInfo::mine();
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let written = f
                        .write_all(info.encode().as_bytes())
                        .and_then(|_| f.sync_all());
                    let guard = LockGuard { path, info };
                    written?;
                    return Ok(TryLock::Acquired(guard));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match LockInfo::parse(&text) {
                Some(holder) if holder.is_stale(stale_after) => {
                    // Remove it only if it is still the lock we judged (re-read just before):
                    // a small window remains in which two waiters both break it; the cost is
                    // one duplicate generation, never wrong data (writes are atomic renames).
                    if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
                        let _ = fs::remove_file(&path);
                    }
                }
                Some(holder) => return Ok(TryLock::Held(Some(holder))),
                None => {
                    // Being written right now, or garbage. Garbage older than the stale limit
                    // is broken by its modification time.
                    let old = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|a| a > stale_after);
                    if !old {
                        return Ok(TryLock::Held(None));
                    }
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(TryLock::Held(None))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Waits with `policy` for `key`'s lock, calling `check` before each wait: if it returns
/// `Some`, waiting stops and that is returned instead of a lock.
pub fn lock_or<T>(
    disk: &DiskCache,
    key: &CacheKey,
    policy: &LockPolicy,
    mut check: impl FnMut() -> io::Result<Option<T>>,
) -> io::Result<Result<LockGuard, T>> {
    let start = Instant::now();
    loop {
        match disk.try_lock(key, policy.stale_after)? {
            TryLock::Acquired(g) => return Ok(Ok(g)),
            TryLock::Held(holder) => {
                if let Some(t) = check()? {
                    return Ok(Err(t));
                }
                if start.elapsed() >= policy.timeout {
                    let who = holder
                        .map(|h| format!("pid {} on {}", h.pid, h.host))
                        .unwrap_or_else(|| "an unknown holder".into());
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "waited {:?} for {} (held by {who})",
                            policy.timeout,
                            disk.lock_path(key).display()
                        ),
                    ));
                }
                std::thread::sleep(policy.poll);
            }
        }
    }
}

/// This machine's name (for lock files on a shared disk); empty if unknown.
pub fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).replace(['\n', '='], "_");
        }
        String::new()
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_default()
    }
}

/// Whether a process with this pid exists on this machine (Unix: `kill(pid, 0)`; elsewhere
/// assumed alive, so only the age limit breaks the lock).
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if p <= 0 {
            return false;
        }
        // SAFETY: signal 0 only checks for existence and permission.
        let rc = unsafe { libc::kill(p, 0) };
        rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn root_from_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsStr::new(v).to_owned())
            }
        };
        assert_eq!(
            default_root_from(env(&[(CACHE_DIR_ENV, "/x/y"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/y"))
        );
        if cfg!(all(unix, not(target_os = "macos"))) {
            assert_eq!(
                default_root_from(env(&[("XDG_CACHE_HOME", "/c"), ("HOME", "/h")])),
                Some(PathBuf::from("/c/genclip"))
            );
            assert_eq!(
                default_root_from(env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")])),
                Some(PathBuf::from("/h/.cache/genclip"))
            );
            assert_eq!(
                default_root_from(env(&[(CACHE_DIR_ENV, ""), ("HOME", "/h")])),
                Some(PathBuf::from("/h/.cache/genclip"))
            );
        }
        assert_eq!(default_root_from(env(&[])), None);
    }

    #[test]
    fn header_round_trip_and_checks() {
        let h = Header {
            key: CacheKey([7; 32]),
            frames: 2,
            height: 3,
            width: 4,
            channels: 3,
            payload_len: 2 * 3 * 4 * 3 * 4,
            checksum: [9; 32],
        };
        let enc = h.encode();
        assert_eq!(Header::decode(&enc), Ok(h.clone()));
        let mut bad = enc;
        bad[0] ^= 1;
        assert_eq!(Header::decode(&bad), Err(Corrupt::Magic));
        let mut bad = enc;
        bad[8] = 2;
        assert_eq!(Header::decode(&bad), Err(Corrupt::Version(2)));
        let mut bad = enc;
        bad[80] ^= 4;
        assert_eq!(Header::decode(&bad), Err(Corrupt::Layout("dimensions")));
    }

    #[test]
    fn lock_info_round_trip() {
        let i = LockInfo::mine();
        assert_eq!(LockInfo::parse(&i.encode()), Some(i.clone()));
        assert!(!i.is_stale(Duration::from_secs(60)));
        assert!(pid_alive(std::process::id()));
        let old = LockInfo {
            time_ms: i.time_ms - 120_000,
            ..i.clone()
        };
        assert!(old.is_stale(Duration::from_secs(60)));
        assert!(LockInfo::parse("garbage").is_none());
    }
}
