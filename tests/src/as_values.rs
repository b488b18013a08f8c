//! Runs the contract suite on stores that understand values (Zarr, HDF5): the suite's
//! values are arbitrary bytes, which such a store cannot hold, so this wrapper stores each
//! one as a msgpack-numpy `str` (its hex digits) and turns it back on the way out.
//!
//! Layer: test-only, between the suite's [`StoreHandle`](asebytes_daemon::store::StoreHandle)
//! and a value-interpreting backend. Every store rule the suite checks (indices, keys,
//! placeholders, set/update/drop, concurrency, errors) runs through the real backend; the
//! typed-value round trips are checked by the backends' own tests and the Python suite.

use std::ops::ControlFlow;
use std::sync::Arc;

use asebytes_daemon::backend::{
    self, Backend, BackendInfo, Error, ErrorKind, Reader, Snapshot, Writer,
};
use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Key, Row};
use serde_bytes::ByteBuf;

/// msgpack `str` of the hex digits of `v`.
pub fn wrap(v: &[u8]) -> Vec<u8> {
    let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = Vec::with_capacity(hex.len() + 5);
    let n = hex.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n < 65536 {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(hex.as_bytes());
    out
}

/// The bytes [`wrap`] was given.
pub fn unwrap(v: &[u8]) -> backend::Result<Vec<u8>> {
    let bad = || {
        Error::new(
            ErrorKind::Corrupt,
            format!("not a wrapped test value: {v:?}"),
        )
    };
    let (&first, rest) = v.split_first().ok_or_else(bad)?;
    let hex = match first {
        0xa0..=0xbf => rest,
        0xd9 => rest.get(1..).ok_or_else(bad)?,
        0xda => rest.get(2..).ok_or_else(bad)?,
        0xdb => rest.get(4..).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    hex.chunks(2)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

fn wrap_row(r: Row) -> Row {
    r.into_iter()
        .map(|(k, v)| (k, ByteBuf::from(wrap(&v))))
        .collect()
}

fn unwrap_row(r: Row) -> backend::Result<Row> {
    r.into_iter()
        .map(|(k, v)| Ok((k, ByteBuf::from(unwrap(&v)?))))
        .collect()
}

/// A value-interpreting backend seen with the suite's opaque values.
pub struct AsValues {
    inner: Box<dyn Backend>,
}

impl AsValues {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Backend>) -> Self {
        Self { inner }
    }
}

impl std::fmt::Debug for AsValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsValues")
            .field("info", self.inner.info())
            .finish_non_exhaustive()
    }
}

impl Backend for AsValues {
    fn info(&self) -> &BackendInfo {
        self.inner.info()
    }
    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(AsValuesReader(self.inner.reader()))
    }
    fn write(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Writer) -> backend::Result<()>,
    ) -> backend::Result<()> {
        self.inner.write(&mut |w| f(&mut AsValuesWriter(w)))
    }
    fn remove(&mut self) -> backend::Result<()> {
        self.inner.remove()
    }
    fn close(&mut self) -> backend::Result<()> {
        self.inner.close()
    }
}

struct AsValuesReader(Arc<dyn Reader>);

impl Reader for AsValuesReader {
    fn snapshot(&self) -> backend::Result<Box<dyn Snapshot + '_>> {
        Ok(Box::new(AsValuesSnapshot(self.0.snapshot()?)))
    }
}

struct AsValuesSnapshot<'a>(Box<dyn Snapshot + 'a>);

/// The read half, shared by snapshots and writers.
fn get(s: &dyn Snapshot, index: u64, keys: Option<&[Key]>) -> backend::Result<Option<Row>> {
    s.get(index, keys)?.map(unwrap_row).transpose()
}

/// A row's fields, owned.
type OwnedFields = Vec<(Vec<u8>, Vec<u8>)>;

fn visit(
    s: &dyn Snapshot,
    indices: &[u64],
    keys: Option<&[Key]>,
    f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
) -> backend::Result<()> {
    let mut failure = None;
    s.visit_rows(indices, keys, &mut |fields| {
        let owned: Result<Option<OwnedFields>, Error> = fields
            .map(|fs| {
                fs.iter()
                    .map(|(k, v)| Ok((k.to_vec(), unwrap(v)?)))
                    .collect()
            })
            .transpose();
        match owned {
            Ok(o) => {
                let refs: Option<Vec<FieldRef<'_>>> = o
                    .as_ref()
                    .map(|fs| fs.iter().map(|(k, v)| (&k[..], &v[..])).collect());
                f(refs.as_deref())
            }
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

fn column(s: &dyn Snapshot, key: &Key, indices: &[u64]) -> backend::Result<Vec<Option<Vec<u8>>>> {
    s.get_column(key, indices)?
        .into_iter()
        .map(|v| v.map(|v| unwrap(&v)).transpose())
        .collect()
}

impl Snapshot for AsValuesSnapshot<'_> {
    fn len(&self) -> backend::Result<u64> {
        self.0.len()
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> backend::Result<Option<Row>> {
        get(&*self.0, index, keys)
    }
    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> backend::Result<()> {
        visit(&*self.0, indices, keys, f)
    }
    fn get_column(&self, key: &Key, indices: &[u64]) -> backend::Result<Vec<Option<Vec<u8>>>> {
        column(&*self.0, key, indices)
    }
    fn keys(&self, index: u64) -> backend::Result<Vec<Key>> {
        self.0.keys(index)
    }
    fn schema(&self) -> backend::Result<Vec<Key>> {
        self.0.schema()
    }
}

struct AsValuesWriter<'a>(&'a mut dyn Writer);

impl Snapshot for AsValuesWriter<'_> {
    fn len(&self) -> backend::Result<u64> {
        self.0.len()
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> backend::Result<Option<Row>> {
        get(self.0, index, keys)
    }
    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> backend::Result<()> {
        visit(self.0, indices, keys, f)
    }
    fn get_column(&self, key: &Key, indices: &[u64]) -> backend::Result<Vec<Option<Vec<u8>>>> {
        column(self.0, key, indices)
    }
    fn keys(&self, index: u64) -> backend::Result<Vec<Key>> {
        self.0.keys(index)
    }
    fn schema(&self) -> backend::Result<Vec<Key>> {
        self.0.schema()
    }
}

impl Writer for AsValuesWriter<'_> {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> backend::Result<u64> {
        self.0
            .extend(rows.into_iter().map(|r| r.map(wrap_row)).collect())
    }
    fn insert(&mut self, index: u64, row: Option<Row>) -> backend::Result<()> {
        self.0.insert(index, row.map(wrap_row))
    }
    fn set(&mut self, index: u64, row: Option<Row>) -> backend::Result<()> {
        self.0.set(index, row.map(wrap_row))
    }
    fn update(&mut self, index: u64, data: Row) -> backend::Result<()> {
        self.0.update(index, wrap_row(data))
    }
    fn delete_range(&mut self, start: u64, stop: u64) -> backend::Result<()> {
        self.0.delete_range(start, stop)
    }
    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> backend::Result<()> {
        self.0.drop_keys(keys, indices)
    }
    fn clear(&mut self) -> backend::Result<()> {
        self.0.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_any_length() {
        for n in [0usize, 1, 15, 16, 200, 40000] {
            let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
            assert_eq!(unwrap(&wrap(&v)).unwrap(), v);
        }
    }
}
