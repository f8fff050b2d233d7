//! The in-memory layer: decoded clips kept by least-recent use within a byte budget.

use super::{CacheKey, Clip};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

struct Entry {
    clip: Arc<Clip>,
    bytes: usize,
    tick: u64,
}

struct Inner {
    entries: HashMap<CacheKey, Entry>,
    /// Last use → key; the first entry is the least recently used.
    order: BTreeMap<u64, CacheKey>,
    bytes: usize,
    tick: u64,
}

/// A thread-safe LRU of clips whose payload bytes stay within `budget`.
///
/// A clip bigger than the whole budget is not kept (the caller still has its `Arc`). Evicted
/// clips stay alive while a caller holds their `Arc`, so the budget bounds what the cache
/// keeps, not what the process holds.
pub struct MemoryCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl MemoryCache {
    pub fn new(budget_bytes: usize) -> MemoryCache {
        MemoryCache {
            budget: budget_bytes,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                bytes: 0,
                tick: 0,
            }),
        }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes held now (payload bytes of the clips kept).
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The clip, marked most recently used.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<Clip>> {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        let e = inner.entries.get_mut(key)?;
        inner.order.remove(&e.tick);
        e.tick = tick;
        inner.order.insert(tick, *key);
        Some(e.clip.clone())
    }

    /// Whether `key` is held, without touching its recency.
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.inner.lock().entries.contains_key(key)
    }

    /// Keeps `clip` as most recently used, evicting least recently used clips to stay within
    /// the budget. Returns whether it was kept.
    pub fn insert(&self, key: CacheKey, clip: Arc<Clip>) -> bool {
        let bytes = clip.byte_size();
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if let Some(old) = inner.entries.remove(&key) {
            inner.order.remove(&old.tick);
            inner.bytes -= old.bytes;
        }
        if bytes > self.budget {
            return false;
        }
        while inner.bytes + bytes > self.budget {
            let Some((_, victim)) = inner.order.pop_first() else {
                break;
            };
            if let Some(v) = inner.entries.remove(&victim) {
                inner.bytes -= v.bytes;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, key);
        inner.entries.insert(key, Entry { clip, bytes, tick });
        inner.bytes += bytes;
        true
    }

    pub fn remove(&self, key: &CacheKey) -> Option<Arc<Clip>> {
        let mut g = self.inner.lock();
        let e = g.entries.remove(key)?;
        g.order.remove(&e.tick);
        g.bytes -= e.bytes;
        Some(e.clip)
    }

    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.entries.clear();
        g.order.clear();
        g.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> CacheKey {
        CacheKey::builder("t").u64("i", i).finish()
    }

    fn clip(floats: usize) -> Arc<Clip> {
        Arc::new(Clip::new(1, 1, floats / 3, 3, vec![0.5; floats]).unwrap())
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        // Each clip is 30 floats = 120 bytes; the budget holds three.
        let m = MemoryCache::new(360);
        for i in 0..3 {
            assert!(m.insert(key(i), clip(30)));
        }
        assert_eq!(m.bytes(), 360);
        // Touch 0 so that 1 is now the least recently used.
        assert!(m.get(&key(0)).is_some());
        assert!(m.insert(key(3), clip(30)));
        assert!(m.contains(&key(0)));
        assert!(!m.contains(&key(1)));
        assert!(m.contains(&key(2)));
        assert!(m.contains(&key(3)));
        assert_eq!(m.bytes(), 360);
        // A clip of two slots evicts the two least recently used (2, then 0... order: 2, 0).
        assert!(m.insert(key(4), clip(60)));
        assert!(!m.contains(&key(2)));
        assert!(!m.contains(&key(0)));
        assert!(m.contains(&key(3)) && m.contains(&key(4)));
        assert_eq!(m.bytes(), 360);
    }

    #[test]
    fn too_big_is_not_kept_and_replacing_accounts_bytes() {
        let m = MemoryCache::new(100);
        assert!(!m.insert(key(0), clip(30)));
        assert!(m.is_empty());
        let m = MemoryCache::new(1000);
        m.insert(key(0), clip(30));
        m.insert(key(0), clip(60));
        assert_eq!(m.len(), 1);
        assert_eq!(m.bytes(), 240);
        m.remove(&key(0));
        assert_eq!(m.bytes(), 0);
    }
}
