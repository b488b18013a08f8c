//! A small cache of decoded chunk rows, so reading `db[i]` frame after frame decompresses
//! each column's chunk once, not once per frame.
//!
//! Part of the columnar core, used by [`super::reader`]. One cache belongs to one
//! committed state: a commit publishes a new, empty cache (that is the invalidation), so a
//! cached chunk can never be stale. Bounded by bytes; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// Default budget of one cache.
pub const DEFAULT_BYTES: usize = 64 << 20;

/// One decoded chunk row (all trailing axes) of a numeric or string array.
#[derive(Clone, Debug)]
pub enum Chunk {
    /// Raw little-endian elements.
    Bytes(Arc<Vec<u8>>),
    /// Strings.
    Strings(Arc<Vec<String>>),
}

impl Chunk {
    fn size(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::Strings(s) => s.iter().map(|x| x.len() + 24).sum(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<(String, u64), Chunk>,
    order: VecDeque<(String, u64)>,
    bytes: usize,
}

/// Decoded chunks keyed by `(array name, chunk index on axis 0)`.
#[derive(Debug)]
pub struct ChunkCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl Default for ChunkCache {
    fn default() -> Self {
        Self::new(DEFAULT_BYTES)
    }
}

impl ChunkCache {
    /// A cache holding at most `budget` bytes (0 disables it).
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The cached chunk, if any.
    pub fn get(&self, name: &str, chunk: u64) -> Option<Chunk> {
        if self.budget == 0 {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.map.get(&(name.to_string(), chunk)).cloned()
    }

    /// Keeps a chunk, evicting the oldest ones beyond the budget. A chunk larger than
    /// the whole budget is not kept.
    pub fn put(&self, name: &str, chunk: u64, value: Chunk) {
        let size = value.size();
        if size > self.budget {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (name.to_string(), chunk);
        if let Some(old) = inner.map.insert(key.clone(), value) {
            inner.bytes -= old.size();
        } else {
            inner.order.push_back(key);
        }
        inner.bytes += size;
        while inner.bytes > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.size();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_budget() {
        let c = ChunkCache::new(10);
        c.put("a", 0, Chunk::Bytes(Arc::new(vec![0; 6])));
        c.put("a", 1, Chunk::Bytes(Arc::new(vec![0; 6])));
        assert!(c.get("a", 0).is_none());
        assert!(c.get("a", 1).is_some());
        c.put("b", 0, Chunk::Bytes(Arc::new(vec![0; 11])));
        assert!(c.get("b", 0).is_none());
    }
}
