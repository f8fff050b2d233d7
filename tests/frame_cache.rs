//! The frame cache end to end: round trip, bad files, one generation per key across threads
//! and processes, stale locks, the root's environment override. Every test uses its own
//! temporary directory, never the user's cache.

use genclip::cache::disk::LockInfo;
use genclip::cache::{
    CacheConfig, CacheError, CacheKey, Clip, FrameCache, LockPolicy, CACHE_DIR_ENV,
};
use std::convert::Infallible;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "genclip-cache-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn config(root: &Path) -> CacheConfig {
    CacheConfig {
        memory_budget: 64 << 20,
        root: Some(root.to_owned()),
        lock: LockPolicy {
            timeout: Duration::from_secs(30),
            stale_after: Duration::from_secs(600),
            poll: Duration::from_millis(10),
        },
    }
}

fn key(seed: u64) -> CacheKey {
    CacheKey::builder("test-window")
        .u64("seed", seed)
        .f64_list("weight_a", &[1.0, 0.75, 0.5])
        .str("prompt_a", "a red fox in snow")
        .plugin_version()
        .finish()
}

fn clip(seed: u64) -> Clip {
    let (frames, h, w, c) = (3, 5, 7, 4);
    let data = (0..frames * h * w * c)
        .map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 999.0)
        .collect();
    Clip::new(frames, h, w, c, data).unwrap()
}

fn ok(c: Clip) -> impl FnOnce() -> Result<Clip, Infallible> {
    move || Ok(c)
}

#[test]
fn round_trip_through_memory_and_disk() {
    let dir = TempDir::new("roundtrip");
    let k = key(1);
    let a = FrameCache::new(config(&dir.0)).unwrap();
    let got = a.get_or_generate(&k, ok(clip(1))).unwrap();
    assert_eq!(*got, clip(1));
    assert_eq!(a.stats().generated, 1);
    assert!(a.disk().path(&k).is_file());
    assert!(!a.disk().lock_path(&k).exists(), "lock released");
    // Memory hit.
    let again = a
        .get_or_generate(&k, || -> Result<Clip, Infallible> { panic!("regenerated") })
        .unwrap();
    assert!(Arc::ptr_eq(&got, &again));
    assert_eq!(a.stats().memory_hits, 1);
    // A second cache (another process, in effect) reads the disk file.
    let b = FrameCache::new(config(&dir.0)).unwrap();
    let from_disk = b
        .get_or_generate(&k, || -> Result<Clip, Infallible> { panic!("regenerated") })
        .unwrap();
    assert_eq!(*from_disk, clip(1));
    assert_eq!(b.stats().disk_hits, 1);
    assert_eq!(from_disk.frame(2).unwrap(), &clip(1).data[2 * 5 * 7 * 4..]);
    assert!(from_disk.frame(3).is_none());
    // Only the final file and no temporaries are left.
    let names: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{}.gcf", k.to_hex())]);
}

#[test]
fn generator_errors_pass_through_and_release_the_lock() {
    let dir = TempDir::new("error");
    let c = FrameCache::new(config(&dir.0)).unwrap();
    let k = key(2);
    let e = c
        .get_or_generate(&k, || Err::<Clip, _>("out of memory"))
        .unwrap_err();
    assert!(matches!(e, CacheError::Generate(_)), "{e}");
    assert_eq!(e.to_string(), "out of memory");
    assert!(!c.disk().lock_path(&k).exists());
    assert!(c.get_or_generate(&k, ok(clip(2))).is_ok());
    // A clip whose sizes disagree is refused, not stored.
    let bad = Clip {
        data: vec![0.0; 5],
        ..clip(3)
    };
    assert!(matches!(
        c.get_or_generate(&key(3), ok(bad)),
        Err(CacheError::InvalidClip(_))
    ));
    assert!(!c.disk().path(&key(3)).exists());
}

/// The engine process writes the entry itself; the cache reads it back under the lock.
#[test]
fn a_producer_that_writes_the_entry_itself_is_read_back() {
    let dir = TempDir::new("fill");
    let c = FrameCache::new(config(&dir.0)).unwrap();
    let k = key(4);
    let got = c
        .get_or_fill(&k, || {
            assert!(c.disk().lock_path(&k).exists(), "fill runs under the lock");
            c.disk().write(&k, &clip(4)).map_err(|e| e.to_string())
        })
        .unwrap();
    assert_eq!(*got, clip(4));
    assert!(!c.disk().lock_path(&k).exists(), "lock released");
    // Now a memory hit: fill is not run again.
    let again = c
        .get_or_fill(&k, || -> Result<(), Infallible> { panic!("filled twice") })
        .unwrap();
    assert!(Arc::ptr_eq(&got, &again));
    // Success without an entry is an error, not a hang or an empty clip.
    let e = c
        .get_or_fill(&key(5), || Ok::<(), Infallible>(()))
        .unwrap_err();
    assert!(matches!(e, CacheError::InvalidClip(_)), "{e}");
    // A failing producer's error passes through and releases the lock.
    let e = c.get_or_fill(&key(6), || Err("engine died")).unwrap_err();
    assert_eq!(e.to_string(), "engine died");
    assert!(!c.disk().lock_path(&key(6)).exists());
}

#[test]
fn memory_budget_evicts_least_recently_used() {
    let dir = TempDir::new("lru");
    let one = clip(0).byte_size();
    let c = FrameCache::new(CacheConfig {
        memory_budget: 2 * one,
        ..config(&dir.0)
    })
    .unwrap();
    for s in 0..3 {
        c.get_or_generate(&key(s), ok(clip(s))).unwrap();
    }
    assert_eq!(c.memory().len(), 2);
    assert!(c.memory().bytes() <= 2 * one);
    assert!(!c.memory().contains(&key(0)));
    // Evicted from memory, still on disk.
    let back = c
        .get_or_generate(&key(0), || -> Result<Clip, Infallible> {
            panic!("regenerated")
        })
        .unwrap();
    assert_eq!(*back, clip(0));
    assert_eq!(c.stats().disk_hits, 1);
    assert!(!c.memory().contains(&key(1)), "1 was least recently used");
}

/// Damages the file of `key(seed)` with `damage`, then checks that a fresh cache detects it,
/// removes it and regenerates.
fn bad_file_is_regenerated(tag: &str, damage: impl FnOnce(&mut Vec<u8>)) {
    let dir = TempDir::new(tag);
    let k = key(7);
    FrameCache::new(config(&dir.0))
        .unwrap()
        .get_or_generate(&k, ok(clip(7)))
        .unwrap();
    let path = FrameCache::new(config(&dir.0)).unwrap().disk().path(&k);
    let mut bytes = fs::read(&path).unwrap();
    damage(&mut bytes);
    fs::write(&path, &bytes).unwrap();

    let c = FrameCache::new(config(&dir.0)).unwrap();
    assert_eq!(c.get(&k).unwrap(), None, "{tag}: a bad file is a miss");
    assert_eq!(c.stats().corrupt_removed, 1, "{tag}");
    assert!(!path.exists(), "{tag}: the bad file is removed");
    fs::write(&path, &bytes).unwrap();
    let c = FrameCache::new(config(&dir.0)).unwrap();
    let got = c.get_or_generate(&k, ok(clip(7))).unwrap();
    assert_eq!(*got, clip(7));
    assert_eq!(c.stats().corrupt_removed, 1, "{tag}");
    assert_eq!(c.stats().generated, 1, "{tag}");
    // The regenerated file is good.
    let d = FrameCache::new(config(&dir.0)).unwrap();
    assert_eq!(*d.get(&k).unwrap().unwrap(), clip(7));
}

#[test]
fn truncated_file_is_detected_removed_and_regenerated() {
    bad_file_is_regenerated("truncated", |b| b.truncate(b.len() - 1));
    bad_file_is_regenerated("truncated-header", |b| b.truncate(50));
    bad_file_is_regenerated("empty", |b| b.clear());
}

#[test]
fn flipped_byte_is_detected() {
    bad_file_is_regenerated("flip-payload", |b| {
        let i = b.len() - 3;
        b[i] ^= 0x10;
    });
    bad_file_is_regenerated("flip-checksum", |b| b[100] ^= 1);
    bad_file_is_regenerated("flip-dims", |b| b[48] ^= 1);
    bad_file_is_regenerated("flip-key", |b| b[20] ^= 1);
    bad_file_is_regenerated("appended", |b| b.push(0));
}

#[test]
fn wrong_magic_or_version_is_detected() {
    bad_file_is_regenerated("magic", |b| b[0] = b'X');
    bad_file_is_regenerated("version", |b| b[8] = 99);
}

#[test]
fn two_threads_generate_once() {
    let dir = TempDir::new("threads");
    let c = Arc::new(FrameCache::new(config(&dir.0)).unwrap());
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (c, runs, barrier) = (c.clone(), runs.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                c.get_or_generate(&key(11), || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    Ok::<_, Infallible>(clip(11))
                })
                .unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(*h.join().unwrap(), clip(11));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(c.stats().generated, 1);
}

const CHILD_ENV: &str = "GENCLIP_FRAME_CACHE_CHILD";

/// Not a test on its own: the body of the child processes of
/// `two_processes_generate_once`, which re-run this test binary with `CHILD_ENV` set.
#[test]
fn child_process_role() {
    let Some(log) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    // The root comes from GENCLIP_CACHE_DIR, as in production.
    let c = FrameCache::new(CacheConfig {
        root: None,
        ..config(Path::new("unused"))
    })
    .unwrap();
    let got = c
        .get_or_generate(&key(21), || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&log)
                .unwrap();
            writeln!(f, "generated by {}", std::process::id()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            Ok::<_, Infallible>(clip(21))
        })
        .unwrap();
    assert_eq!(*got, clip(21));
    println!("CHILD-OK {:?}", c.stats());
}

#[test]
fn two_processes_generate_once() {
    let dir = TempDir::new("processes");
    let root = dir.0.join("root");
    let log = dir.0.join("generations.log");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_process_role", "--nocapture"])
                .env(CHILD_ENV, &log)
                .env(CACHE_DIR_ENV, &root)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("CHILD-OK"),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let generations = fs::read_to_string(&log).unwrap();
    assert_eq!(generations.lines().count(), 1, "{generations}");
    // The environment override put the file under `root`.
    assert!(root.join(format!("{}.gcf", key(21).to_hex())).is_file());
}

fn write_lock(path: &Path, info: &LockInfo) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, info.encode()).unwrap();
}

fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn stale_lock_of_a_dead_process_is_broken() {
    let dir = TempDir::new("stale-dead");
    let c = FrameCache::new(config(&dir.0)).unwrap();
    let k = key(31);
    write_lock(
        &c.disk().lock_path(&k),
        &LockInfo {
            pid: dead_pid(),
            host: genclip::cache::disk::hostname(),
            time_ms: genclip::cache::disk::now_ms(),
            token: "crashed".into(),
        },
    );
    let start = Instant::now();
    assert_eq!(*c.get_or_generate(&k, ok(clip(31))).unwrap(), clip(31));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!c.disk().lock_path(&k).exists());
}

#[test]
fn old_lock_is_broken_even_if_its_owner_lives() {
    let dir = TempDir::new("stale-old");
    let c = FrameCache::new(CacheConfig {
        lock: LockPolicy {
            stale_after: Duration::from_secs(60),
            ..config(&dir.0).lock
        },
        ..config(&dir.0)
    })
    .unwrap();
    let k = key(32);
    write_lock(
        &c.disk().lock_path(&k),
        &LockInfo {
            pid: std::process::id(),
            host: "some-other-farm-node".into(),
            time_ms: genclip::cache::disk::now_ms() - 120_000,
            token: "old".into(),
        },
    );
    assert_eq!(*c.get_or_generate(&k, ok(clip(32))).unwrap(), clip(32));
}

#[test]
fn live_lock_times_out_and_is_left_alone() {
    let dir = TempDir::new("live");
    let c = FrameCache::new(CacheConfig {
        lock: LockPolicy {
            timeout: Duration::from_millis(200),
            ..config(&dir.0).lock
        },
        ..config(&dir.0)
    })
    .unwrap();
    let k = key(33);
    let holder = LockInfo {
        pid: std::process::id(),
        host: "another-node".into(),
        time_ms: genclip::cache::disk::now_ms(),
        token: "busy".into(),
    };
    write_lock(&c.disk().lock_path(&k), &holder);
    let e = c
        .get_or_generate(&k, || -> Result<Clip, Infallible> { panic!("generated") })
        .unwrap_err();
    assert!(matches!(e, CacheError::LockTimeout(_)), "{e}");
    assert_eq!(
        fs::read_to_string(c.disk().lock_path(&k)).unwrap(),
        holder.encode()
    );
}

#[test]
fn waiter_reads_what_the_holder_wrote() {
    // A lock held by "another process" that finishes while we wait: we read its file.
    let dir = TempDir::new("waiter");
    let c = FrameCache::new(config(&dir.0)).unwrap();
    let k = key(34);
    let lock = c.disk().lock_path(&k);
    write_lock(
        &lock,
        &LockInfo {
            pid: std::process::id(),
            host: genclip::cache::disk::hostname(),
            time_ms: genclip::cache::disk::now_ms(),
            token: "other".into(),
        },
    );
    let root = dir.0.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        genclip::cache::DiskCache::new(root)
            .write(&key(34), &clip(34))
            .unwrap();
        fs::remove_file(lock).unwrap();
    });
    let got = c
        .get_or_generate(&k, || -> Result<Clip, Infallible> { panic!("generated") })
        .unwrap();
    writer.join().unwrap();
    assert_eq!(*got, clip(34));
    assert_eq!(c.stats().generated, 0);
}
