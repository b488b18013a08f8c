//! Writes to a cached source: each goes to the source, and the rows it changes are marked
//! not cached (durably) before the source commits, so the cache never serves a row the
//! source no longer has.
//!
//! Layer: inside [`super`] (the cached backend); wraps the source's [`Writer`].

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Bytes, Key, PackedColumn, Row};

use crate::backend::{Result, Snapshot, Writer};

/// The rows one write transaction changes.
#[derive(Debug, Default)]
pub(super) struct Touched {
    /// Rows changed in place.
    pub(super) rows: BTreeSet<u64>,
    /// Every row from here on moved or went (insert, delete, clear).
    pub(super) from: Option<u64>,
}

impl Touched {
    fn shift_from(&mut self, i: u64) {
        self.from = Some(self.from.map_or(i, |f| f.min(i)));
    }
}

/// The source's writer, noting which rows each call changes.
pub(super) struct Invalidating<'a> {
    pub(super) inner: &'a mut dyn Writer,
    pub(super) touched: &'a mut Touched,
}

impl Snapshot for Invalidating<'_> {
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        self.inner.get(index, keys)
    }
    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        self.inner.visit_rows(indices, keys, f)
    }
    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        self.inner.get_column(key, indices)
    }
    fn get_column_packed(&self, key: &Key, indices: &[u64]) -> Result<Option<PackedColumn>> {
        self.inner.get_column_packed(key, indices)
    }
    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        self.inner.keys(index)
    }
    fn schema(&self) -> Result<Vec<Key>> {
        self.inner.schema()
    }
}

impl Writer for Invalidating<'_> {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> Result<u64> {
        // Rows past the old end may be left in the cache from a longer past.
        let len = self.inner.len()?;
        self.touched.shift_from(len);
        self.inner.extend(rows)
    }
    fn insert(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        self.touched.shift_from(index);
        self.inner.insert(index, row)
    }
    fn set(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        self.touched.rows.insert(index);
        self.inner.set(index, row)
    }
    fn update(&mut self, index: u64, data: Row) -> Result<()> {
        self.touched.rows.insert(index);
        self.inner.update(index, data)
    }
    fn update_column(&mut self, key: &Key, indices: &[u64], values: Vec<Bytes>) -> Result<()> {
        self.touched.rows.extend(indices);
        self.inner.update_column(key, indices, values)
    }
    fn delete_range(&mut self, start: u64, stop: u64) -> Result<()> {
        self.touched.shift_from(start);
        self.inner.delete_range(start, stop)
    }
    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> Result<()> {
        match indices {
            Some(at) => self.touched.rows.extend(at),
            None => self.touched.shift_from(0),
        }
        self.inner.drop_keys(keys, indices)
    }
    fn clear(&mut self) -> Result<()> {
        self.touched.shift_from(0);
        self.inner.clear()
    }
}
