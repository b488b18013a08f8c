//! Reads through the cache: a row the record marks cached is read from the cache; the
//! rows of a request that are not are fetched from the source in one batch, committed to
//! the cache, marked, and then served from the cache like the rest.
//!
//! Layer: inside [`super`] (the cached backend). Fills are serialised by the cache
//! backend's mutex and re-check the record under it, so concurrent readers of the same
//! rows fetch each row from the source once; reads of cached rows take no lock but the
//! record's read lock.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Key, Row};
use serde_bytes::ByteBuf;

use super::filled::Filled;
use super::identity::Identity;
use crate::backend::{Backend, Error, ErrorKind, Reader, Result, Snapshot};

/// Rows fetched from the source per batch (bounds the memory one fill holds).
const FILL_CHUNK: usize = 1024;

/// Placeholder rows appended to the cache per call while it grows to a far row.
const GROW_CHUNK: u64 = 1 << 16;

/// What the cached backend and its readers share.
pub(super) struct Shared {
    pub(super) source: Arc<dyn Reader>,
    /// The cache backend; its mutex also serialises fills and source writes.
    pub(super) cache: Mutex<Box<dyn Backend>>,
    pub(super) cache_reader: Arc<dyn Reader>,
    pub(super) filled: RwLock<Filled>,
    pub(super) identity: Identity,
    /// Rows copied from the source into the cache since open (for `status` and tests).
    pub(super) fetched: Arc<AtomicU64>,
}

impl Shared {
    pub(super) fn cache(&self) -> MutexGuard<'_, Box<dyn Backend>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn filled(&self) -> RwLockReadGuard<'_, Filled> {
        self.filled.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn filled_mut(&self) -> RwLockWriteGuard<'_, Filled> {
        self.filled.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the cached rows if the source is no longer what they were read from (a
    /// read-only file rewritten on disk).
    fn check_identity(&self) -> Result<()> {
        let Some(now) = self.identity.current() else {
            return Ok(());
        };
        if self.filled().identity() == now {
            return Ok(());
        }
        let _cache = self.cache();
        let mut filled = self.filled_mut();
        if filled.identity() != now {
            log::info!(
                "{}: the source changed; its cache starts over",
                self.identity.key()
            );
            filled.reset(now)?;
        }
        Ok(())
    }

    /// The rows of `at` the cache does not hold (sorted, unique), given the cache's length.
    fn missing(&self, at: &[u64], cache_len: u64) -> Vec<u64> {
        let filled = self.filled();
        let mut out: Vec<u64> = at
            .iter()
            .copied()
            .filter(|&i| i >= cache_len || !filled.has(i))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Copies the rows `at` that the cache lacks from the source into the cache, in one
    /// source read and one cache transaction.
    fn fill(&self, at: &[u64]) -> Result<()> {
        let mut cache = self.cache();
        let cache_len = self.cache_reader.snapshot()?.len()?;
        let missing = self.missing(at, cache_len);
        let Some(&last) = missing.last() else {
            // Filled by a concurrent reader while this one waited for the lock.
            return Ok(());
        };
        let source = self.source.snapshot()?;
        let len = source.len()?;
        if last >= len {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {last} out of range [0, {len})"),
            ));
        }
        let mut rows: Vec<Option<Row>> = Vec::with_capacity(missing.len());
        source.visit_rows(&missing, None, &mut |row| {
            rows.push(row.map(owned));
            ControlFlow::Continue(())
        })?;
        drop(source);
        if rows.len() != missing.len() {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("source returned {} rows for {}", rows.len(), missing.len()),
            ));
        }
        cache.write(&mut |w| {
            let mut n = w.len()?;
            while n <= last {
                let add = (last + 1 - n).min(GROW_CHUNK);
                n = w.extend(vec![None; add as usize])?;
            }
            for (&i, row) in missing.iter().zip(&rows) {
                w.set(i, row.clone())?;
            }
            Ok(())
        })?;
        self.filled_mut().mark(&missing)?;
        self.fetched
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Lends rows `at` to `f` from the cache, filling what it lacks first; `true` when
    /// `f` stopped the walk.
    fn visit(
        &self,
        at: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<bool> {
        let mut snap = self.cache_reader.snapshot()?;
        if !self.missing(at, snap.len()?).is_empty() {
            drop(snap);
            self.fill(at)?;
            snap = self.cache_reader.snapshot()?;
        }
        let mut stopped = false;
        snap.visit_rows(at, keys, &mut |row| {
            let flow = f(row);
            stopped = flow.is_break();
            flow
        })?;
        Ok(stopped)
    }

    fn column(&self, key: &Key, at: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut snap = self.cache_reader.snapshot()?;
        if !self.missing(at, snap.len()?).is_empty() {
            drop(snap);
            self.fill(at)?;
            snap = self.cache_reader.snapshot()?;
        }
        snap.get_column(key, at)
    }
}

fn owned(fields: &[FieldRef<'_>]) -> Row {
    fields
        .iter()
        .map(|(k, v)| (ByteBuf::from(*k), ByteBuf::from(*v)))
        .collect()
}

/// The cached backend's reader: each snapshot checks the source's identity first.
pub(super) struct CachedReader {
    pub(super) shared: Arc<Shared>,
}

impl Reader for CachedReader {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        self.shared.check_identity()?;
        Ok(Box::new(CachedSnapshot {
            shared: &self.shared,
            source: self.shared.source.snapshot()?,
        }))
    }

    fn space(&self) -> Option<(u64, u64)> {
        self.shared.cache_reader.space()
    }

    fn rows_fetched(&self) -> Option<u64> {
        Some(self.shared.fetched.load(Ordering::Relaxed))
    }
}

/// The length and schema of the source; rows from the cache.
struct CachedSnapshot<'a> {
    shared: &'a Shared,
    source: Box<dyn Snapshot + 'a>,
}

impl Snapshot for CachedSnapshot<'_> {
    fn len(&self) -> Result<u64> {
        self.source.len()
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        let mut out = None;
        self.shared.visit(&[index], keys, &mut |row| {
            out = row.map(owned);
            ControlFlow::Break(())
        })?;
        Ok(out)
    }

    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        for chunk in indices.chunks(FILL_CHUNK) {
            if self.shared.visit(chunk, keys, f)? {
                break;
            }
        }
        Ok(())
    }

    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(indices.len());
        for chunk in indices.chunks(FILL_CHUNK) {
            out.extend(self.shared.column(key, chunk)?);
        }
        Ok(out)
    }

    fn schema(&self) -> Result<Vec<Key>> {
        self.source.schema()
    }
}
