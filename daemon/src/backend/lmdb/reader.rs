//! Reads from an LMDB environment: the block-index cache every transaction starts from,
//! the row readers shared by snapshots and the write transaction, and `LmdbSnapshot`,
//! one read transaction.
//!
//! Reading a row never scans the store: its position maps to a sort key through the cached
//! [`BlockIndex`], and the row's keys `{sort_key}-*` are contiguous, so one prefix scan (or
//! one point get per requested key) reads it.
//!
//! Cache validity: LMDB's transaction id names a committed state exactly, so an index
//! tagged with the id a read transaction sees is used as is. Other processes (a reference
//! `asebytes` user) may commit too; then the raw `__blk_count__`, `__blk_sizes__` and
//! `__meta__next_sort_key` values decide. They change whenever the blocks do: a new row
//! always takes a fresh sort key (so the next sort key grows), and without a new row only
//! removals remain, which shrink the sizes. Only when they differ is the index reloaded.

use std::cell::RefCell;
use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, PoisonError, RwLock};

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Bytes, Key, Row};
use heed::types::Bytes as RawBytes;
use heed::{RoRange, RoTxn, WithoutTls};

use super::block_index::BlockIndex;
use super::layout;
use super::{GateGuard, Shared, map_heed_err};
use crate::backend::{Error, ErrorKind, Reader, Result, Snapshot};

/// The unnamed database, keys and values as raw bytes.
pub(crate) type Db = heed::Database<'static, RawBytes, RawBytes>;

/// The database plus the limit every key lookup has to respect.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Store {
    pub db: Db,
    /// LMDB's maximum key size; a longer key cannot exist, and asking for it is an error.
    pub max_key: usize,
}

/// Raw values of the metadata keys that change whenever the blocks change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Markers {
    pub blk_count: Option<Vec<u8>>,
    pub sizes: Option<Vec<u8>>,
    pub next: Option<Vec<u8>>,
}

impl Markers {
    fn read(txn: &RoTxn, store: Store) -> heed::Result<Self> {
        let get = |k: &[u8]| store.db.get(txn, k).map(|v| v.map(<[u8]>::to_vec));
        Ok(Self {
            blk_count: get(layout::BLOCK_COUNT_KEY)?,
            sizes: get(layout::BLOCK_SIZES_KEY)?,
            next: get(layout::NEXT_SORT_KEY_KEY)?,
        })
    }

    /// Compares with the values in `txn` without copying them.
    fn matches(&self, txn: &RoTxn, store: Store) -> heed::Result<bool> {
        Ok(
            store.db.get(txn, layout::NEXT_SORT_KEY_KEY)? == self.next.as_deref()
                && store.db.get(txn, layout::BLOCK_SIZES_KEY)? == self.sizes.as_deref()
                && store.db.get(txn, layout::BLOCK_COUNT_KEY)? == self.blk_count.as_deref(),
        )
    }
}

/// The block index of one committed state.
#[derive(Clone, Debug)]
pub(crate) struct IndexState {
    /// LMDB transaction id of the committed state this describes.
    pub txnid: usize,
    pub markers: Markers,
    pub index: Arc<BlockIndex>,
    pub next_sort_key: u64,
    /// Every sort key is below `next_sort_key`, so allocating from it cannot reuse one.
    pub sort_keys_fresh: bool,
}

impl IndexState {
    /// Loads the index from `txn`, which sees committed state `txnid`.
    fn load(txn: &RoTxn, store: Store, txnid: usize) -> Result<Self> {
        let markers = Markers::read(txn, store).map_err(map_heed_err)?;
        let n_blocks = layout::decode_u32(layout::BLOCK_COUNT_KEY, markers.blk_count.as_deref())?;
        let sizes = if n_blocks == 0 {
            Vec::new()
        } else {
            layout::decode_sizes(markers.sizes.as_deref(), n_blocks)?
        };
        let next_sort_key =
            layout::decode_decimal(layout::NEXT_SORT_KEY_KEY, markers.next.as_deref())?;
        let mut blocks = Vec::with_capacity(sizes.len());
        let mut sort_keys_fresh = true;
        for (b, &size) in sizes.iter().enumerate() {
            let raw = store
                .db
                .get(txn, &layout::block_key(b as u32))
                .map_err(map_heed_err)?;
            let block = layout::decode_block(b as u32, raw, size)?;
            sort_keys_fresh &= block.iter().all(|&sk| sk < next_sort_key);
            blocks.push(block);
        }
        let index = BlockIndex::from_blocks(blocks);
        let count_raw = store.db.get(txn, layout::COUNT_KEY).map_err(map_heed_err)?;
        let count = layout::decode_decimal(layout::COUNT_KEY, count_raw)?;
        if count != index.len() {
            return Err(Error::corrupt(format!(
                "corrupt LMDB metadata: __meta__count is {count} but the blocks hold {} rows",
                index.len()
            )));
        }
        Ok(Self {
            txnid,
            markers,
            index: Arc::new(index),
            next_sort_key,
            sort_keys_fresh,
        })
    }
}

/// The most recent [`IndexState`] anyone in this process loaded or committed.
#[derive(Debug, Default)]
pub(crate) struct IndexCache {
    current: RwLock<Option<Arc<IndexState>>>,
}

impl IndexCache {
    pub(crate) fn get(&self) -> Option<Arc<IndexState>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stores `state` unless a newer one is already there (an old snapshot reloading must
    /// not push out the index of a later commit).
    pub fn publish(&self, state: Arc<IndexState>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_none_or(|c| c.txnid <= state.txnid) {
            *current = Some(state);
        }
    }

    /// The index as seen by `txn`, whose committed state is `txnid`.
    pub fn resolve(&self, txn: &RoTxn, store: Store, txnid: usize) -> Result<Arc<IndexState>> {
        if let Some(cached) = self.get() {
            if cached.txnid == txnid {
                return Ok(cached);
            }
            if cached.markers.matches(txn, store).map_err(map_heed_err)? {
                let state = Arc::new(IndexState {
                    txnid,
                    ..IndexState::clone(&cached)
                });
                self.publish(state.clone());
                return Ok(state);
            }
        }
        let state = Arc::new(IndexState::load(txn, store, txnid)?);
        self.publish(state.clone());
        Ok(state)
    }
}

/// The sort key of the row at `pos`.
pub(crate) fn sort_key_at(index: &BlockIndex, pos: u64) -> Result<u64> {
    index.sort_key(pos).ok_or_else(|| {
        Error::new(
            ErrorKind::IndexOutOfRange,
            format!("Index {pos} out of range [0, {})", index.len()),
        )
    })
}

/// One row; with `keys`, the requested keys it has, in the requested order.
pub(crate) fn read_row(
    txn: &RoTxn,
    store: Store,
    index: &BlockIndex,
    pos: u64,
    keys: Option<&[Key]>,
    buf: &mut Vec<u8>,
) -> Result<Option<Row>> {
    // Rows of atomistic data have around ten fields; avoids regrowing as they arrive.
    let mut fields = Vec::with_capacity(16);
    if !lend_row(txn, store, index, pos, keys, buf, &mut None, &mut fields)? {
        return Ok(None);
    }
    Ok(Some(
        fields
            .into_iter()
            .map(|(k, v)| (Key::from(k), Bytes::from(v)))
            .collect(),
    ))
}

/// Lends the rows at `positions` to `f` as fields borrowed from `txn`, without copying
/// (see [`Snapshot::visit_rows`]); the same rows [`read_row`] returns.
pub(crate) fn visit_rows(
    txn: &RoTxn,
    store: Store,
    index: &BlockIndex,
    positions: &[u64],
    keys: Option<&[Key]>,
    buf: &mut Vec<u8>,
    f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
) -> Result<()> {
    let mut fields = Vec::with_capacity(16);
    let mut walk = None;
    for &pos in positions {
        let real = lend_row(txn, store, index, pos, keys, buf, &mut walk, &mut fields)?;
        if f(real.then_some(&fields[..])).is_break() {
            break;
        }
    }
    Ok(())
}

/// A cursor walking forward through the data keys, and the entry it stopped on.
struct Walk<'a> {
    range: RoRange<'a, RawBytes, RawBytes>,
    next: Option<FieldRef<'a>>,
}

impl<'a> Walk<'a> {
    fn start(txn: &'a RoTxn, store: Store, from: &[u8]) -> Result<Self> {
        let range = (Bound::Included(from), Bound::Unbounded);
        let mut range = store.db.range(txn, &range).map_err(map_heed_err)?;
        let next = range.next().transpose().map_err(map_heed_err)?;
        Ok(Self { range, next })
    }

    /// The entry under the cursor, if its key starts with `prefix`; moves past it.
    fn take_if(&mut self, prefix: &[u8]) -> Result<Option<FieldRef<'a>>> {
        match self.next {
            Some((k, v)) if k.starts_with(prefix) => {
                self.next = self.range.next().transpose().map_err(map_heed_err)?;
                Ok(Some((k, v)))
            }
            _ => Ok(None),
        }
    }
}

/// Replaces `fields` with the fields of the row at `pos`, borrowed from `txn` (with `keys`,
/// the requested keys it has, in the requested order); `false` for a placeholder.
///
/// The row's keys `{sort_key}-*` are contiguous, so without `keys` one forward scan reads
/// it. `walk` carries the cursor from row to row: it stops on the first key after the row,
/// and when the next row asked for starts there (neighbouring sort keys of equal digit
/// count are neighbours in key order too, so mostly it does) no new cursor or tree search
/// is needed.
#[allow(clippy::too_many_arguments)]
fn lend_row<'a>(
    txn: &'a RoTxn,
    store: Store,
    index: &BlockIndex,
    pos: u64,
    keys: Option<&'a [Key]>,
    buf: &mut Vec<u8>,
    walk: &mut Option<Walk<'a>>,
    fields: &mut Vec<FieldRef<'a>>,
) -> Result<bool> {
    fields.clear();
    layout::write_row_prefix(buf, sort_key_at(index, pos)?);
    let plen = buf.len();
    let Some(keys) = keys else {
        let prefix = &buf[..];
        let here = walk
            .as_ref()
            .is_some_and(|w| w.next.is_some_and(|(k, _)| k.starts_with(prefix)));
        if !here {
            *walk = Some(Walk::start(txn, store, prefix)?);
        }
        let cursor = walk.as_mut().expect("set above");
        while let Some((k, v)) = cursor.take_if(prefix)? {
            fields.push((&k[plen..], v));
        }
        return Ok(!fields.is_empty());
    };
    for key in keys {
        if plen + key.len() > store.max_key {
            continue;
        }
        buf.truncate(plen);
        buf.extend_from_slice(key);
        if let Some(v) = store.db.get(txn, buf).map_err(map_heed_err)? {
            fields.push((key, v));
        }
    }
    // Only an empty answer needs telling "row lacks these keys" from "placeholder".
    Ok(!fields.is_empty() || row_has_data(txn, store, &buf[..plen])?)
}

fn row_has_data(txn: &RoTxn, store: Store, prefix: &[u8]) -> Result<bool> {
    Ok(store
        .db
        .prefix_iter(txn, prefix)
        .map_err(map_heed_err)?
        .next()
        .transpose()
        .map_err(map_heed_err)?
        .is_some())
}

/// The value of `key` in each row at `positions`, `None` where absent.
pub(crate) fn read_column(
    txn: &RoTxn,
    store: Store,
    index: &BlockIndex,
    key: &[u8],
    positions: &[u64],
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut buf = Vec::with_capacity(24 + key.len());
    positions
        .iter()
        .map(|&pos| {
            let sk = sort_key_at(index, pos)?;
            layout::write_data_key(&mut buf, sk, key);
            if buf.len() > store.max_key {
                return Ok(None);
            }
            Ok(store
                .db
                .get(txn, &buf)
                .map_err(map_heed_err)?
                .map(<[u8]>::to_vec))
        })
        .collect()
}

/// The keys of the row at `pos`, in byte order.
pub(crate) fn read_keys(
    txn: &RoTxn,
    store: Store,
    index: &BlockIndex,
    pos: u64,
) -> Result<Vec<Key>> {
    let mut buf = Vec::with_capacity(24);
    layout::write_row_prefix(&mut buf, sort_key_at(index, pos)?);
    let iter = store
        .db
        .remap_data_type::<heed::types::DecodeIgnore>()
        .prefix_iter(txn, &buf)
        .map_err(map_heed_err)?;
    iter.map(|item| {
        item.map(|(k, ())| Key::from(k[buf.len()..].to_vec()))
            .map_err(map_heed_err)
    })
    .collect()
}

/// `__schema__` as stored.
pub(crate) fn read_schema(txn: &RoTxn, store: Store) -> Result<Vec<Key>> {
    let raw = store
        .db
        .get(txn, layout::SCHEMA_KEY)
        .map_err(map_heed_err)?;
    Ok(layout::decode_schema(raw)
        .into_iter()
        .map(Key::from)
        .collect())
}

/// Hands out snapshots; shared with connection threads through `Arc<dyn Reader>`.
#[derive(Debug)]
pub(crate) struct LmdbReader {
    pub shared: Arc<Shared>,
}

impl Reader for LmdbReader {
    fn space(&self) -> Option<(u64, u64)> {
        Some(self.shared.usage())
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        let (guard, txn) = self.shared.begin_read()?;
        let state = self
            .shared
            .cache
            .resolve(&txn, self.shared.store, txn.id())?;
        Ok(Box::new(LmdbSnapshot {
            txn,
            state,
            store: self.shared.store,
            buf: RefCell::new(Vec::with_capacity(64)),
            _guard: guard,
        }))
    }
}

/// One read transaction and the block index of the state it sees.
pub(crate) struct LmdbSnapshot<'a> {
    // Declared before the guard: the transaction must end before the map may be resized.
    txn: RoTxn<'a, WithoutTls>,
    state: Arc<IndexState>,
    store: Store,
    /// Key buffer reused by every read of this snapshot.
    buf: RefCell<Vec<u8>>,
    _guard: GateGuard<'a>,
}

impl Snapshot for LmdbSnapshot<'_> {
    fn len(&self) -> Result<u64> {
        Ok(self.state.index.len())
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        read_row(
            &self.txn,
            self.store,
            &self.state.index,
            index,
            keys,
            &mut self.buf.borrow_mut(),
        )
    }

    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        visit_rows(
            &self.txn,
            self.store,
            &self.state.index,
            indices,
            keys,
            &mut self.buf.borrow_mut(),
            f,
        )
    }

    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        read_column(&self.txn, self.store, &self.state.index, key, indices)
    }

    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        read_keys(&self.txn, self.store, &self.state.index, index)
    }

    fn schema(&self) -> Result<Vec<Key>> {
        read_schema(&self.txn, self.store)
    }
}
