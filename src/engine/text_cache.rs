//! Prompt embeddings kept between jobs: the text encoder (umT5-XXL, 6.7 B parameters) is
//! the slowest part of a short job, and a user who changes only the seed, the steps or the
//! size sends the same prompts again.
//!
//! Keyed by the cleaned prompt text (what the tokenizer sees), least recently used first out.
//! The pipeline keeps the entries in host memory, not on the GPU, whose memory the transformer
//! needs. The engine runs one job at a time, so a plain mutex around a short list is enough.

use candle_core::Tensor;
use parking_lot::Mutex;

/// Embeddings kept at most: at 512 × 4096 values each (8 MiB in f32, 4 MiB in bf16), 64
/// entries are at most 512 MiB of host memory.
pub const TEXT_CACHE_ENTRIES: usize = 64;

pub struct TextEmbeddingCache {
    capacity: usize,
    /// Least recently used first.
    entries: Mutex<Vec<(String, Tensor)>>,
}

impl TextEmbeddingCache {
    pub fn new(capacity: usize) -> TextEmbeddingCache {
        TextEmbeddingCache {
            capacity,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The embedding of `key`, now the most recently used, if it is kept.
    pub fn get(&self, key: &str) -> Option<Tensor> {
        let mut entries = self.entries.lock();
        let i = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(i);
        let embedding = entry.1.clone();
        entries.push(entry);
        Some(embedding)
    }

    /// Whether `key` is kept (its place in the order unchanged).
    pub fn contains(&self, key: &str) -> bool {
        self.entries.lock().iter().any(|(k, _)| k == key)
    }

    /// Keeps `embedding` for `key`, dropping the least recently used entry when full.
    pub fn insert(&self, key: String, embedding: Tensor) {
        let mut entries = self.entries.lock();
        entries.retain(|(k, _)| *k != key);
        if self.capacity == 0 {
            return;
        }
        if entries.len() == self.capacity {
            entries.remove(0);
        }
        entries.push((key, embedding));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn tensor(v: f32) -> Tensor {
        Tensor::new(&[v], &Device::Cpu).unwrap()
    }

    fn value(cache: &TextEmbeddingCache, key: &str) -> Option<f32> {
        cache.get(key).map(|t| t.to_vec1::<f32>().unwrap()[0])
    }

    #[test]
    fn least_recently_used_goes_first() {
        let cache = TextEmbeddingCache::new(2);
        cache.insert("a".into(), tensor(1.0));
        cache.insert("b".into(), tensor(2.0));
        assert_eq!(value(&cache, "a"), Some(1.0)); // a is now the most recent
        cache.insert("c".into(), tensor(3.0)); // so b goes
        assert_eq!(value(&cache, "b"), None);
        assert_eq!(value(&cache, "a"), Some(1.0));
        assert_eq!(value(&cache, "c"), Some(3.0));
        assert_eq!(cache.len(), 2);
        // A key inserted again replaces its entry rather than taking a second slot.
        cache.insert("c".into(), tensor(4.0));
        assert_eq!(cache.len(), 2);
        assert_eq!(value(&cache, "c"), Some(4.0));
    }

    #[test]
    fn a_zero_capacity_cache_keeps_nothing() {
        let cache = TextEmbeddingCache::new(0);
        cache.insert("a".into(), tensor(1.0));
        assert!(cache.is_empty());
        assert_eq!(value(&cache, "a"), None);
    }
}
