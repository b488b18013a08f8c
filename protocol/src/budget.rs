//! A shared bound on the memory that receive buffers may hold, across every connection of
//! a process.
//!
//! Used by [`crate::stream::FrameStream`]: a stream given a budget reserves each growth of
//! its receive buffer beyond the first chunk here and returns it when the buffer shrinks or
//! the stream is dropped. The daemon hands one budget to all its connections, so however
//! many peers announce gigabyte frames, the bytes they make it hold stay under the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A byte budget shared by clones; reservations are all-or-nothing.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes reserved right now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Reserves `n` bytes; `false` (and nothing reserved) if that would exceed the limit.
    pub fn try_reserve(&self, n: usize) -> bool {
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n)
                    .filter(|&total| total <= self.inner.limit)
            })
            .is_ok()
    }

    /// Returns `n` bytes reserved earlier.
    pub fn release(&self, n: usize) {
        self.inner.used.fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_limit_and_release_frees_them() {
        let b = MemoryBudget::new(100);
        let other = b.clone();
        assert!(b.try_reserve(60));
        assert!(!other.try_reserve(41), "clones share one budget");
        assert_eq!(b.used(), 60);
        assert!(other.try_reserve(40));
        assert!(!b.try_reserve(1));
        b.release(60);
        assert!(b.try_reserve(usize::MAX).then_some(()).is_none());
        assert_eq!(b.used(), 40);
        assert_eq!(b.limit(), 100);
    }
}
