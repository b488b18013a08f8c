//! The read-ahead cache of one handle (sync `Store` or asyncio `AsyncStore`): rows of an
//! in-order or strided walk of `db[i]` / `get(i, keys)` fetched in one batched request, and
//! rows already read, served without a round trip — only while the store's published
//! generation ([`crate::generation`]) is the one they were read under. A commit anywhere
//! (from any process) changes the generation before it is acknowledged, so a later read
//! never sees a row older than an acknowledged write. When to use it is
//! [`crate::local`]'s business; this file only keeps the rows and watches the walk.
//!
//! Bounded: at most `ASEBYTES_READAHEAD_ROWS` rows per batched request and
//! `ASEBYTES_READAHEAD_BYTES` bytes of cached rows per handle (oldest dropped first); either
//! set to 0 turns the cache off. `ASEBYTES_SHARED_GEN=0` ignores the published generation
//! altogether (every `len` and read asks the daemon, as without it), for comparison. One
//! batch per handle is tracked in flight: a read of a row it will bring (concurrent reads
//! of an asyncio walk, or threads) fetches that row alone instead of another batch.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use asebytes_protocol::Key;

use crate::client::RowsRef;
use crate::generation::Stamp;

/// Rows in the first batch of a walk; each further batch doubles, up to the row limit.
const FIRST_BATCH: usize = 16;
/// Default most rows per batched request.
const DEFAULT_ROWS: usize = 256;
/// Default most bytes of cached rows per handle.
const DEFAULT_BYTES: usize = 16 << 20;

/// The limits read from the environment at first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most rows per batched request; 0: no cache.
    pub rows: usize,
    /// Most bytes of cached rows per handle; 0: no cache.
    pub bytes: usize,
    /// Whether the published generation is used at all.
    pub shared: bool,
}

impl Limits {
    fn from_env() -> Self {
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Self {
            rows: var("ASEBYTES_READAHEAD_ROWS", DEFAULT_ROWS),
            bytes: var("ASEBYTES_READAHEAD_BYTES", DEFAULT_BYTES),
            shared: var("ASEBYTES_SHARED_GEN", 1) != 0,
        }
    }

    /// This process's limits.
    pub fn get() -> Self {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        *LIMITS.get_or_init(Self::from_env)
    }

    fn caching(self) -> bool {
        self.shared && self.rows > 0 && self.bytes > 0
    }
}

/// One cached row: its fields' bytes back to back, and where each key and value ends.
#[derive(Debug)]
pub struct CachedRow {
    data: Vec<u8>,
    /// `(end of key, end of value)` per field; `None` for a placeholder.
    ends: Option<Vec<(usize, usize)>>,
}

impl CachedRow {
    fn copy(fields: Option<&[(&[u8], &[u8])]>) -> Self {
        let Some(fields) = fields else {
            return Self {
                data: Vec::new(),
                ends: None,
            };
        };
        let size = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut data = Vec::with_capacity(size);
        let mut ends = Vec::with_capacity(fields.len());
        for (k, v) in fields {
            data.extend_from_slice(k);
            let key_end = data.len();
            data.extend_from_slice(v);
            ends.push((key_end, data.len()));
        }
        Self {
            data,
            ends: Some(ends),
        }
    }

    /// The row as a one-row reply, borrowing from the cache entry.
    pub fn rows_ref(&self) -> RowsRef<'_> {
        let Some(ends) = &self.ends else {
            return RowsRef {
                fields: Vec::new(),
                rows: vec![None],
            };
        };
        let mut start = 0;
        let fields = ends
            .iter()
            .map(|&(key_end, end)| {
                let field = (&self.data[start..key_end], &self.data[key_end..end]);
                start = end;
                field
            })
            .collect();
        RowsRef {
            fields,
            rows: vec![Some(0..ends.len())],
        }
    }

    /// Whether this row can answer a `Get` for `keys`: without keys any row can; with keys
    /// only a row that has every one of them (a placeholder or a row lacking a key gets
    /// its answer — `None` or `KeyError` — from the daemon).
    fn answers(&self, keys: Option<&[Key]>) -> bool {
        let Some(keys) = keys else {
            return true;
        };
        let Some(ends) = &self.ends else {
            return false;
        };
        ends.len() == keys.len()
    }

    fn bytes(&self) -> usize {
        // The fields' bytes plus their bookkeeping.
        self.data.len() + self.ends.as_ref().map_or(0, |e| e.len() * 16) + 64
    }
}

/// What the cache holds for one handle.
#[derive(Debug, Default)]
struct Cache {
    /// The version every cached row was read under.
    stamp: Stamp,
    /// The keys every cached row was read with.
    keys: Option<Vec<Key>>,
    rows: HashMap<u64, Arc<CachedRow>>,
    /// Insertion order, for dropping the oldest first.
    order: VecDeque<u64>,
    bytes: usize,
    /// The walk: last index read, the step from the one before, the next batch's size.
    last: Option<u64>,
    step: i64,
    /// How many accesses in a row went by `step`.
    repeats: u32,
    batch: usize,
    /// The last batch requested and not yet answered, if any.
    in_flight: Option<InFlight>,
    /// The id of the last batch handed out.
    batches: u64,
}

/// A batch on its way: rows `first + k * step` for `k < n`.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: u64,
    first: u64,
    step: i64,
    n: u64,
}

impl InFlight {
    fn covers(&self, index: u64) -> bool {
        let offset = i128::from(index) - i128::from(self.first);
        let step = i128::from(self.step);
        step != 0 && offset % step == 0 && (0..i128::from(self.n)).contains(&(offset / step))
    }
}

/// Rows to fetch in one request for a walk (see [`ReadAhead::batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Names the batch while it is in flight ([`ReadAhead::settle`]).
    pub id: u64,
    /// The rows, the missed one first.
    pub indices: Vec<u64>,
}

impl Cache {
    fn clear_rows(&mut self) {
        self.rows.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// Drops everything read under another version or with other keys.
    fn align(&mut self, stamp: Stamp, keys: Option<&[Key]>) {
        if self.stamp != stamp || self.keys.as_deref() != keys {
            self.clear_rows();
            self.in_flight = None;
            self.stamp = stamp;
            self.keys = keys.map(<[Key]>::to_vec);
        }
    }

    /// Whether the cache already holds a later generation of the same slot than `stamp`
    /// (a reply that was overtaken by a commit while it was on its way).
    fn is_newer_than(&self, stamp: Stamp) -> bool {
        self.stamp.epoch == stamp.epoch
            && self.stamp.tag == stamp.tag
            && self.stamp.generation > stamp.generation
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct ReadAhead {
    cache: Mutex<Cache>,
}

impl ReadAhead {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this process caches rows at all.
    pub fn enabled() -> bool {
        Limits::get().caching()
    }

    /// The row at `index` read with `keys`, if it is cached under `stamp`. Counts as
    /// an access of the walk either way.
    pub fn lookup(&self, stamp: Stamp, keys: Option<&[Key]>, index: u64) -> Option<Arc<CachedRow>> {
        let mut c = self.lock();
        c.align(stamp, keys);
        let step = c.last.map(|last| index.wrapping_sub(last) as i64);
        if step == Some(c.step) {
            c.repeats = c.repeats.saturating_add(1);
        } else {
            c.step = step.unwrap_or(0);
            c.repeats = 0;
            c.batch = FIRST_BATCH;
        }
        c.last = Some(index);
        c.rows.get(&index).filter(|r| r.answers(keys)).cloned()
    }

    /// The rows to fetch in one request for a missed `index` of a store with `len` rows:
    /// `index` and the rows the walk will read next, when the last accesses went in equal
    /// non-zero steps and no batch in flight brings `index`; `None` otherwise (fetch the
    /// one row). The batch counts as in flight until [`ReadAhead::settle`]d.
    pub fn batch(&self, index: u64, len: u64) -> Option<Batch> {
        let limits = Limits::get();
        let mut c = self.lock();
        if c.step == 0 || c.repeats == 0 || c.last != Some(index) {
            return None;
        }
        if c.in_flight.is_some_and(|f| f.covers(index)) {
            return None;
        }
        // The bytes limit bounds the batch too, from the rows cached so far.
        let per_row = if c.rows.is_empty() {
            1
        } else {
            (c.bytes / c.rows.len()).max(1)
        };
        let n = c.batch.clamp(1, limits.rows).min(limits.bytes / per_row);
        if n < 2 {
            return None;
        }
        c.batch = (c.batch * 2).min(limits.rows);
        let step = c.step;
        let indices: Vec<u64> = (0..n as i64)
            .map_while(|k| {
                let i = i64::try_from(index)
                    .ok()?
                    .checked_add(k.checked_mul(step)?)?;
                u64::try_from(i).ok().filter(|&i| i < len)
            })
            .collect();
        if indices.len() < 2 {
            return None;
        }
        c.batches += 1;
        let id = c.batches;
        c.in_flight = Some(InFlight {
            id,
            first: index,
            step,
            n: indices.len() as u64,
        });
        Some(Batch { id, indices })
    }

    /// Batch `id` was answered, failed or abandoned: it is no longer in flight.
    pub fn settle(&self, id: u64) {
        let mut c = self.lock();
        if c.in_flight.is_some_and(|f| f.id == id) {
            c.in_flight = None;
        }
    }

    /// Keeps `rows` (the answer for `indices`, read with `keys`) as read under
    /// `stamp`, dropping the oldest rows beyond the bytes limit.
    pub fn store(&self, stamp: Stamp, keys: Option<&[Key]>, indices: &[u64], rows: &RowsRef) {
        self.store_within(Limits::get().bytes, stamp, keys, indices, rows);
    }

    fn store_within(
        &self,
        max_bytes: usize,
        stamp: Stamp,
        keys: Option<&[Key]>,
        indices: &[u64],
        rows: &RowsRef,
    ) {
        let mut c = self.lock();
        if c.is_newer_than(stamp) {
            return;
        }
        c.align(stamp, keys);
        for (k, &index) in indices.iter().enumerate() {
            let row = Arc::new(CachedRow::copy(rows.row(k)));
            c.bytes += row.bytes();
            if let Some(old) = c.rows.insert(index, row) {
                c.bytes -= old.bytes();
            } else {
                c.order.push_back(index);
            }
        }
        while c.bytes > max_bytes {
            let Some(oldest) = c.order.pop_front() else {
                break;
            };
            if let Some(old) = c.rows.remove(&oldest) {
                c.bytes -= old.bytes();
            }
        }
    }

    /// A batched fetch failed: stop guessing until the walk shows itself again.
    pub fn forget_walk(&self) {
        let mut c = self.lock();
        c.last = None;
        c.step = 0;
        c.repeats = 0;
        c.in_flight = None;
    }

    /// Rows and bytes cached now (tests).
    pub fn held(&self) -> (usize, usize) {
        let c = self.lock();
        (c.rows.len(), c.bytes)
    }
}

/// `index` (negative from the end) as a row of a store with `len` rows, if in range.
pub fn normalize(index: i64, len: u64) -> Option<u64> {
    let i = if index < 0 {
        i128::from(index) + i128::from(len)
    } else {
        i128::from(index)
    };
    u64::try_from(i).ok().filter(|&i| i < len)
}

#[cfg(test)]
mod tests {
    use asebytes_protocol::value::key;

    use super::*;

    /// Generation `g` of one slot of one daemon.
    fn at(g: u64) -> Stamp {
        Stamp {
            epoch: 1,
            tag: 1,
            generation: g,
        }
    }

    fn rows(n: usize) -> RowsRef<'static> {
        let mut r = RowsRef::default();
        for i in 0..n {
            let start = r.fields.len();
            r.fields.push((b"k".as_slice(), b"value".as_slice()));
            if i % 2 == 1 {
                r.fields.push((b"j".as_slice(), b"v".as_slice()));
            }
            r.rows.push(Some(start..r.fields.len()));
        }
        r
    }

    #[test]
    fn a_cached_row_reads_back_as_it_came() {
        let r = rows(2);
        let cached = CachedRow::copy(r.row(1));
        let back = cached.rows_ref();
        assert_eq!(back.row(0), r.row(1));
        let none = CachedRow::copy(None);
        assert_eq!(none.rows_ref().rows, vec![None]);
    }

    #[test]
    fn rows_are_served_only_under_their_generation_and_keys() {
        let ra = ReadAhead::default();
        ra.store(at(7), None, &[0, 1], &rows(2));
        assert!(ra.lookup(at(7), None, 1).is_some());
        let keys = vec![key("k")];
        assert!(ra.lookup(at(7), Some(&keys), 1).is_none(), "other keys");
        ra.store(at(7), None, &[0, 1], &rows(2));
        assert!(ra.lookup(at(8), None, 1).is_none(), "a commit happened");
        assert_eq!(ra.held().0, 0, "and the old rows are gone");
        ra.store(at(7), None, &[0, 1], &rows(2));
        let restarted = Stamp { epoch: 2, ..at(7) };
        assert!(
            ra.lookup(restarted, None, 1).is_none(),
            "another daemon's generation 7"
        );
        ra.store(at(7), None, &[0, 1], &rows(2));
        let reopened = Stamp { tag: 2, ..at(7) };
        assert!(
            ra.lookup(reopened, None, 1).is_none(),
            "another slot's generation 7"
        );
    }

    #[test]
    fn a_row_lacking_a_requested_key_is_left_to_the_daemon() {
        let ra = ReadAhead::default();
        let keys = vec![key("k"), key("j")];
        ra.store(at(1), Some(&keys), &[0, 1], &rows(2));
        assert!(
            ra.lookup(at(1), Some(&keys), 0).is_none(),
            "row 0 has only k"
        );
        assert!(ra.lookup(at(1), Some(&keys), 1).is_some());
    }

    #[test]
    fn an_in_order_or_strided_walk_asks_for_growing_batches_within_the_store() {
        let ra = ReadAhead::default();
        assert!(ra.lookup(at(1), None, 0).is_none());
        assert_eq!(ra.batch(0, 100), None, "one access is no walk");
        ra.lookup(at(1), None, 3);
        assert_eq!(ra.batch(3, 100), None, "one step is no walk yet");
        ra.lookup(at(1), None, 6);
        let first = ra.batch(6, 100).unwrap().indices;
        assert_eq!(first.len(), FIRST_BATCH);
        assert_eq!(&first[..3], &[6, 9, 12]);
        // The walk reads the batch's rows (hits, once stored), then misses the next one.
        for i in (9..=6 + 3 * 16).step_by(3) {
            ra.lookup(at(1), None, i);
        }
        let second = ra.batch(6 + 3 * 16, 100).unwrap().indices;
        assert_eq!(second.first(), Some(&54));
        assert!(second.iter().all(|&i| i < 100), "never past the end");
        // Backwards.
        let back = ReadAhead::default();
        for i in [50, 49, 48] {
            back.lookup(at(1), None, i);
        }
        assert_eq!(&back.batch(48, 100).unwrap().indices[..3], &[48, 47, 46]);
    }

    #[test]
    fn a_row_a_batch_in_flight_brings_is_fetched_alone() {
        let ra = ReadAhead::default();
        for i in 0..3 {
            ra.lookup(at(1), None, i);
        }
        let batch = ra.batch(2, 100).unwrap();
        assert_eq!(batch.indices.len(), FIRST_BATCH);
        // Concurrent reads of the same walk, planned before the batch is answered.
        for i in 3..18 {
            ra.lookup(at(1), None, i);
            assert_eq!(ra.batch(i, 100), None, "row {i} is on its way");
        }
        ra.lookup(at(1), None, 18);
        let next = ra.batch(18, 100).unwrap();
        assert_eq!(
            next.indices.first(),
            Some(&18),
            "row 18 is not: the walk goes on"
        );
        // Only the latest batch is tracked; settling an older one leaves it in flight.
        ra.settle(batch.id);
        ra.lookup(at(1), None, 19);
        assert_eq!(ra.batch(19, 100), None);
        ra.settle(next.id);
        ra.lookup(at(1), None, 20);
        assert!(ra.batch(20, 100).is_some());
    }

    #[test]
    fn rows_overtaken_by_a_commit_are_not_kept() {
        let ra = ReadAhead::default();
        ra.store(at(8), None, &[0], &rows(1));
        ra.store(at(7), None, &[1], &rows(1));
        assert!(
            ra.lookup(at(8), None, 0).is_some(),
            "generation 8 rows stay"
        );
        assert_eq!(ra.held().0, 1, "the late generation 7 reply was dropped");
        let restarted = Stamp { epoch: 2, ..at(1) };
        ra.store(restarted, None, &[1], &rows(1));
        assert!(
            ra.lookup(restarted, None, 1).is_some(),
            "another daemon: no order"
        );
    }

    #[test]
    fn random_access_fetches_one_row() {
        let ra = ReadAhead::default();
        for i in [5, 80, 12, 40] {
            ra.lookup(at(1), None, i);
            assert_eq!(ra.batch(i, 100), None);
        }
    }

    #[test]
    fn the_cache_keeps_to_its_byte_limit() {
        let ra = ReadAhead::default();
        let max = 10_000;
        let n = 1000;
        let many: Vec<u64> = (0..n as u64).collect();
        ra.store_within(max, at(1), None, &many, &rows(n));
        let (held, bytes) = ra.held();
        assert!(bytes <= max, "{bytes}");
        assert!(held > 10, "{held}");
        assert!(held < n);
        assert!(ra.lookup(at(1), None, 0).is_none(), "the oldest went first");
        assert!(ra.lookup(at(1), None, n as u64 - 1).is_some());
    }

    #[test]
    fn negative_indices_count_from_the_end() {
        assert_eq!(normalize(-1, 10), Some(9));
        assert_eq!(normalize(9, 10), Some(9));
        assert_eq!(normalize(10, 10), None);
        assert_eq!(normalize(-11, 10), None);
        assert_eq!(normalize(i64::MIN, u64::MAX), Some(u64::MAX / 2));
    }
}
