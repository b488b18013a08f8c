//! `LmdbWriter`: the [`Writer`] over one LMDB write transaction, producing exactly the
//! keys and values the reference `asebytes` writes for the same operations.
//!
//! Row data is written as each method runs, so reads inside the transaction see it. The
//! metadata (blocks, `__blk_count__`, `__blk_sizes__`, `__meta__count`,
//! `__meta__next_sort_key`, `__schema__`) is kept in memory and written once in
//! `LmdbWriter::finish`: a group-committed batch of many small writes then rewrites the
//! last block once instead of once per command. Each metadata key is written if some
//! operation of the transaction would have written it in the reference, so the final state
//! is the reference's, key for key.
//!
//! Every method validates before it mutates. An LMDB failure half way through a method
//! (a full map, an I/O error) poisons the transaction: later calls fail and
//! [`super::LmdbBackend`] aborts instead of committing, even if the caller swallowed the
//! error; a full map is then grown and the whole batch retried.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use asebytes_protocol::{Key, Row};
use heed::{RoTxn, RwTxn};

use super::block_index::{BlockIndex, Touched};
use super::layout;
use super::map_heed_err;
use super::reader::{self, IndexCache, IndexState, Markers, Store};
use crate::backend::{Error, ErrorKind, Result, Snapshot, Writer};

/// Why a transaction cannot commit.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The map ran out of space: grow it and run the batch again.
    pub map_full: bool,
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn to_error(&self) -> Error {
        Error::new(self.kind, self.message.clone())
    }
}

/// What a successful transaction leaves behind for the index cache.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Something was put or deleted, so the commit creates a new LMDB transaction id.
    pub wrote: bool,
    /// The index after the transaction (its `txnid` is filled in after commit).
    pub state: IndexState,
}

/// The LMDB calls that change the store, with bookkeeping for the map-growth policy.
struct Io<'t, 'e> {
    txn: &'t mut RwTxn<'e>,
    store: Store,
    wrote: bool,
    bytes_put: u64,
}

impl Io<'_, '_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> heed::Result<()> {
        self.wrote = true;
        self.bytes_put += (key.len() + value.len()) as u64;
        self.store.db.put(self.txn, key, value)
    }

    fn delete(&mut self, key: &[u8]) -> heed::Result<()> {
        if key.len() <= self.store.max_key && self.store.db.delete(self.txn, key)? {
            self.wrote = true;
        }
        Ok(())
    }

    /// Deletes every key in `[start, end)`.
    fn delete_range(&mut self, start: &[u8], end: &[u8]) -> heed::Result<()> {
        let range = (Bound::Included(start), Bound::Excluded(end));
        if self.store.db.delete_range(self.txn, &range)? > 0 {
            self.wrote = true;
        }
        Ok(())
    }

    /// Deletes every data key of one row; `prefix` is `{sort_key}-`.
    fn delete_row(&mut self, prefix: &[u8]) -> heed::Result<()> {
        let mut end = [0u8; 24];
        end[..prefix.len()].copy_from_slice(prefix);
        // `.` follows `-`, so this bounds exactly the keys starting with the prefix.
        end[prefix.len() - 1] = b'.';
        self.delete_range(prefix, &end[..prefix.len()])
    }
}

/// Mutations of one write transaction.
pub(crate) struct LmdbWriter<'t, 'e> {
    io: Io<'t, 'e>,
    index: BlockIndex,
    markers: Markers,
    next_sort_key: u64,
    sort_keys_fresh: bool,
    /// Blocks that exist in the store at the start of the transaction.
    persisted_blocks: usize,
    /// Loaded on first use; `__schema__` only ever grows.
    schema: Option<BTreeSet<Vec<u8>>>,
    schema_grown: bool,
    blocks_touched: bool,
    /// Blocks changed in place...
    dirty: BTreeSet<usize>,
    /// ...and the first block whose number moved (this one and all later are rewritten).
    dirty_from: usize,
    count_touched: bool,
    next_touched: bool,
    failure: Option<Failure>,
    buf: Vec<u8>,
}

impl<'t, 'e> LmdbWriter<'t, 'e> {
    /// Starts from the cached block index when it matches the state `txn` sees.
    pub fn begin(txn: &'t mut RwTxn<'e>, store: Store, cache: &IndexCache) -> Result<Self> {
        // A write transaction's id is the committed state it starts from, plus one.
        let txnid = txn.id();
        let state = cache.resolve(txn, store, txnid.saturating_sub(1))?;
        let index = BlockIndex::clone(&state.index);
        Ok(Self {
            io: Io {
                txn,
                store,
                wrote: false,
                bytes_put: 0,
            },
            persisted_blocks: index.n_blocks(),
            index,
            markers: state.markers.clone(),
            next_sort_key: state.next_sort_key,
            sort_keys_fresh: state.sort_keys_fresh,
            schema: None,
            schema_grown: false,
            blocks_touched: false,
            dirty: BTreeSet::new(),
            dirty_from: usize::MAX,
            count_touched: false,
            next_touched: false,
            failure: None,
            buf: Vec::with_capacity(64),
        })
    }

    /// The error that poisoned this transaction, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Bytes of keys and values put so far; sizes the next map growth.
    pub fn bytes_put(&self) -> u64 {
        self.io.bytes_put
    }

    /// Writes the deferred metadata. On error the transaction is poisoned (see
    /// [`LmdbWriter::failure`]).
    pub fn finish(&mut self) -> Result<Finished> {
        self.usable()?;
        let result = self.write_metadata();
        self.track(result)?;
        Ok(Finished {
            wrote: self.io.wrote,
            state: IndexState {
                txnid: 0,
                markers: self.markers.clone(),
                index: Arc::new(self.index.clone()),
                next_sort_key: self.next_sort_key,
                sort_keys_fresh: self.sort_keys_fresh,
            },
        })
    }

    fn write_metadata(&mut self) -> heed::Result<()> {
        if self.blocks_touched {
            let n = self.index.n_blocks();
            let in_place = self
                .dirty
                .iter()
                .copied()
                .filter(|&b| b < self.dirty_from.min(n));
            let blocks: Vec<usize> = in_place.chain(self.dirty_from.min(n)..n).collect();
            for b in blocks {
                self.io.put(
                    &layout::block_key(b as u32),
                    &layout::encode_block(self.index.block(b)),
                )?;
            }
            for b in n..self.persisted_blocks {
                self.io.delete(&layout::block_key(b as u32))?;
            }
            let count = layout::encode_u32(n as u32);
            self.io.put(layout::BLOCK_COUNT_KEY, &count)?;
            self.markers.blk_count = Some(count.to_vec());
            if n > 0 {
                let sizes = layout::encode_sizes(self.index.sizes());
                self.io.put(layout::BLOCK_SIZES_KEY, &sizes)?;
                self.markers.sizes = Some(sizes);
            } else {
                self.io.delete(layout::BLOCK_SIZES_KEY)?;
                self.markers.sizes = None;
            }
            self.persisted_blocks = n;
            self.dirty.clear();
            self.dirty_from = usize::MAX;
            self.blocks_touched = false;
        }
        if self.schema_grown
            && let Some(schema) = &self.schema
        {
            self.io
                .put(layout::SCHEMA_KEY, &layout::encode_schema(schema))?;
            self.schema_grown = false;
        }
        if self.count_touched {
            self.io
                .put(layout::COUNT_KEY, &layout::encode_decimal(self.index.len()))?;
            self.count_touched = false;
        }
        if self.next_touched {
            let next = layout::encode_decimal(self.next_sort_key);
            self.io.put(layout::NEXT_SORT_KEY_KEY, &next)?;
            self.markers.next = Some(next);
            self.next_touched = false;
        }
        Ok(())
    }

    /// Fails once the transaction is poisoned.
    fn usable(&self) -> Result<()> {
        match &self.failure {
            None => Ok(()),
            Some(f) => Err(Error::new(
                f.kind,
                format!(
                    "an earlier LMDB error aborted this transaction: {}",
                    f.message
                ),
            )),
        }
    }

    /// Records an LMDB failure so the transaction is never committed.
    fn track<T>(&mut self, result: heed::Result<T>) -> Result<T> {
        result.map_err(|e| {
            let map_full = matches!(e, heed::Error::Mdb(heed::MdbError::MapFull));
            let err = map_heed_err(e);
            if self.failure.is_none() {
                self.failure = Some(Failure {
                    map_full,
                    kind: err.kind,
                    message: err.to_string(),
                });
            }
            err
        })
    }

    fn check_index(&self, pos: u64, bound: u64) -> Result<()> {
        if pos >= bound {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {pos} out of range [0, {})", self.index.len()),
            ));
        }
        Ok(())
    }

    /// Refuses to allocate sort keys from a counter that does not lie above every key in
    /// use, which would silently merge two rows.
    fn check_allocatable(&self) -> Result<()> {
        if self.sort_keys_fresh {
            return Ok(());
        }
        Err(Error::corrupt(format!(
            "corrupt LMDB layout: a block holds a sort key >= __meta__next_sort_key ({}); refusing to write",
            self.next_sort_key
        )))
    }

    fn check_fields<'r>(&self, fields: impl IntoIterator<Item = &'r Key>) -> Result<()> {
        fields
            .into_iter()
            .try_for_each(|k| layout::check_field(k, self.io.store.max_key))
    }

    fn mark(&mut self, touched: Touched) {
        self.blocks_touched = true;
        match touched {
            Touched::Blocks(range) => self.dirty.extend(range),
            Touched::From(b) => self.dirty_from = self.dirty_from.min(b),
        }
    }

    /// Allocates the next sort key.
    fn allocate(&mut self) -> u64 {
        let sk = self.next_sort_key;
        self.next_sort_key += 1;
        self.next_touched = true;
        sk
    }

    /// Puts the fields of `row` under `sort_key` and grows the schema.
    fn put_fields(&mut self, sort_key: u64, row: &Row) -> heed::Result<()> {
        for (k, v) in row {
            layout::write_data_key(&mut self.buf, sort_key, k);
            self.io.put(&self.buf, v)?;
        }
        self.merge_schema(row.iter().map(|(k, _)| k))
    }

    fn merge_schema<'r>(&mut self, keys: impl IntoIterator<Item = &'r Key>) -> heed::Result<()> {
        let mut keys = keys.into_iter().peekable();
        if keys.peek().is_none() {
            return Ok(());
        }
        let schema = match &mut self.schema {
            Some(schema) => schema,
            None => {
                let raw = self.io.store.db.get(self.io.txn, layout::SCHEMA_KEY)?;
                self.schema.insert(layout::decode_schema(raw))
            }
        };
        for k in keys {
            if !schema.contains(k.as_slice()) {
                schema.insert(k.to_vec());
                self.schema_grown = true;
            }
        }
        Ok(())
    }

    fn delete_row(&mut self, sort_key: u64) -> heed::Result<()> {
        layout::write_row_prefix(&mut self.buf, sort_key);
        self.io.delete_row(&self.buf)
    }

    fn txn(&self) -> &RoTxn<'e> {
        self.io.txn
    }
}

impl Snapshot for LmdbWriter<'_, '_> {
    fn len(&self) -> Result<u64> {
        Ok(self.index.len())
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        reader::read_row(
            self.txn(),
            self.io.store,
            &self.index,
            index,
            keys,
            &mut Vec::with_capacity(64),
        )
    }

    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        reader::read_column(self.txn(), self.io.store, &self.index, key, indices)
    }

    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        reader::read_keys(self.txn(), self.io.store, &self.index, index)
    }

    fn schema(&self) -> Result<Vec<Key>> {
        match &self.schema {
            Some(schema) => Ok(schema.iter().map(|k| Key::from(k.clone())).collect()),
            None => reader::read_schema(self.txn(), self.io.store),
        }
    }
}

impl Writer for LmdbWriter<'_, '_> {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> Result<u64> {
        self.usable()?;
        if rows.is_empty() {
            return Ok(self.index.len());
        }
        self.check_allocatable()?;
        for row in rows.iter().flatten() {
            self.check_fields(row.iter().map(|(k, _)| k))?;
        }
        let result = (|| {
            for row in &rows {
                let sk = self.allocate();
                let touched = self.index.push(sk);
                self.mark(touched);
                if let Some(row) = row {
                    self.put_fields(sk, row)?;
                }
            }
            Ok(())
        })();
        self.count_touched = true;
        self.track(result)?;
        Ok(self.index.len())
    }

    fn insert(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        self.usable()?;
        self.check_index(index, self.index.len() + 1)?;
        self.check_allocatable()?;
        if let Some(row) = &row {
            self.check_fields(row.iter().map(|(k, _)| k))?;
        }
        let sk = self.allocate();
        let touched = self.index.insert(index, sk);
        self.mark(touched);
        self.count_touched = true;
        let result = match &row {
            Some(row) => self.put_fields(sk, row),
            None => Ok(()),
        };
        self.track(result)
    }

    fn set(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        self.usable()?;
        let sk = reader::sort_key_at(&self.index, index)?;
        if let Some(row) = &row {
            self.check_fields(row.iter().map(|(k, _)| k))?;
        }
        let result = self.delete_row(sk).and_then(|()| match &row {
            Some(row) => self.put_fields(sk, row),
            None => Ok(()),
        });
        self.track(result)
    }

    fn update(&mut self, index: u64, data: Row) -> Result<()> {
        self.usable()?;
        let sk = reader::sort_key_at(&self.index, index)?;
        self.check_fields(data.iter().map(|(k, _)| k))?;
        let result = self.put_fields(sk, &data);
        self.track(result)
    }

    fn delete_range(&mut self, start: u64, stop: u64) -> Result<()> {
        self.usable()?;
        if start > stop || stop > self.index.len() {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!(
                    "range {start}..{stop} out of range [0, {}]",
                    self.index.len()
                ),
            ));
        }
        if start == stop {
            return Ok(());
        }
        let (removed, touched) = self.index.remove_range(start, stop);
        self.mark(touched);
        self.count_touched = true;
        let result = removed.into_iter().try_for_each(|sk| self.delete_row(sk));
        self.track(result)
    }

    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> Result<()> {
        self.usable()?;
        let len = self.index.len();
        let targets: Vec<u64> = match indices {
            Some(ix) => ix
                .iter()
                .map(|&i| reader::sort_key_at(&self.index, i))
                .collect::<Result<_>>()?,
            None if keys.is_empty() => Vec::new(),
            None => self.index.sort_keys(0, len).collect(),
        };
        let result = targets.into_iter().try_for_each(|sk| {
            keys.iter().try_for_each(|k| {
                layout::write_data_key(&mut self.buf, sk, k);
                self.io.delete(&self.buf)
            })
        });
        self.track(result)
    }

    /// Deletes every row and block but keeps `__schema__` and `__meta__next_sort_key`,
    /// which is what the reference's row-by-row clear leaves: the schema only grows and
    /// sort keys are never reused.
    fn clear(&mut self) -> Result<()> {
        self.usable()?;
        // The reference deletes row by row, which on an empty store writes nothing at all.
        if self.index.is_empty() {
            return Ok(());
        }
        let touched = self.index.clear();
        self.mark(touched);
        self.count_touched = true;
        let result = self
            .io
            .delete_range(layout::DATA_KEYS_START, layout::DATA_KEYS_END);
        self.track(result)
    }
}
