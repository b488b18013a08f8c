//! The backend contract: one synchronous trait pair every storage engine implements, plus
//! the backend table ([`table`]) that opens a backend from a location.
//!
//! Rows travel as `(key, value)` pairs whose values are msgpack-numpy documents. Row
//! stores (LMDB, memory) keep them as opaque bytes; stores that hold values as arrays
//! (Zarr, HDF5) decode on write and encode on read with the protocol crate's codec, so a
//! client cannot tell which kind served it. Index normalisation, bounds checks, key strictness and capability checks happen once,
//! above this layer, in [`crate::store`]; a backend receives only indices already checked
//! against the length it reports inside the same transaction.
//!
//! The trait is synchronous on purpose: LMDB, HDF5 and Zarr are blocking libraries. The
//! store actor's own thread absorbs writes; concurrent readers run on connection threads.

#[cfg(feature = "asefiles")]
pub mod aselmdb;
pub mod cached;
pub mod columnar;
pub mod error;
#[cfg(feature = "asefiles")]
pub mod extxyz;
#[cfg(feature = "asefiles")]
pub mod frames;
#[cfg(any(feature = "mongodb", feature = "redis"))]
pub mod guess;
#[cfg(feature = "hdf5")]
pub mod h5md;
#[cfg(feature = "hdf5")]
pub mod hdf5;
#[cfg(feature = "hub")]
pub mod hub;
#[cfg(feature = "lmdb")]
pub mod lmdb;
pub mod memory;
#[cfg(feature = "mongodb")]
pub mod mongodb;
pub mod options;
#[cfg(feature = "redis")]
pub mod redis;
pub mod row;
pub mod space;
pub mod table;
#[cfg(feature = "asefiles")]
pub mod traj;
#[cfg(feature = "zarr")]
pub mod zarr;

use std::ops::ControlFlow;
use std::sync::Arc;

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Bytes, Capabilities, Key, PackedColumn, Row};

pub use error::{Error, ErrorKind, Result};
pub use options::Options;
pub use table::{BACKENDS, BackendEntry, LocationKind, open};

/// What a backend is and what it can do.
#[derive(Clone, Debug)]
pub struct BackendInfo {
    /// Short name and URI scheme (`lmdb`, `memory`).
    pub scheme: &'static str,
    /// Canonical location including the group, e.g. `lmdb:///abs/x.lmdb#default`.
    pub canonical: String,
    /// Capabilities of this open store.
    pub caps: Capabilities,
}

/// How to open a store (parsed from an `Open` request by the registry).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenOptions {
    /// Backend-specific location: an absolute path for file backends, a name for memory.
    pub path: String,
    /// Group name (already defaulted to `"default"`).
    pub group: String,
    /// Open without write capabilities.
    pub readonly: bool,
    /// Backend options; only names the backend's table entry lists.
    pub options: Options,
}

/// A consistent read view of a store.
///
/// # Behavior
/// - Indices passed in are `< len()` of this same view (checked above this layer), unless
///   [`Snapshot::checks_bounds`] says the backend checks them itself.
/// - `get` with `keys` returns only the requested keys the row has (absent ones are simply
///   left out; strictness is decided above). A placeholder row is `Ok(None)`.
/// - Field order within a row is stable (the order written, or sorted, per backend).
pub trait Snapshot {
    /// Number of rows.
    fn len(&self) -> Result<u64>;
    /// Whether [`Snapshot::visit_rows`], [`Snapshot::get_column`] and [`Snapshot::keys`]
    /// check their indices against the length themselves, in the same server call that
    /// reads (an index `>= len` is `IndexOutOfRange` "Index i out of range [0, len)"), so
    /// the layer above may pass non-negative indices without asking `len()` first: one
    /// round trip per read instead of two for a server store (Redis).
    fn checks_bounds(&self) -> bool {
        false
    }
    /// Whether there are no rows.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// One row, or `None` for a placeholder.
    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>>;
    /// Rows `indices` (duplicates allowed, in order), lent to `f` one at a time instead of
    /// copied out: `f` sees each row's fields borrowed from the snapshot (`None` for a
    /// placeholder) and may stop the walk early with `Break`. The daemon answers `Get` and
    /// `GetMany` through it, copying stored bytes straight into the response frame.
    /// The default reads each row with [`Snapshot::get`].
    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        for &i in indices {
            let row = self.get(i, keys)?;
            let fields: Option<Vec<FieldRef<'_>>> = row
                .as_ref()
                .map(|r| r.iter().map(|(k, v)| (&k[..], &v[..])).collect());
            if f(fields.as_deref()).is_break() {
                break;
            }
        }
        Ok(())
    }
    /// The value of `key` in each row, `None` where absent or placeholder.
    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys = std::slice::from_ref(key);
        indices
            .iter()
            .map(|&i| {
                Ok(self.get(i, Some(keys))?.and_then(|row| {
                    row.into_iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.into_vec())
                }))
            })
            .collect()
    }
    /// The value of `key` in each row as one array, where the store holds the key as an
    /// array (requires [`Capabilities::packed_columns`]); `None` where it does not (the
    /// caller then reads [`Snapshot::get_column`]). A key no row has is `NotFound`.
    fn get_column_packed(&self, key: &Key, indices: &[u64]) -> Result<Option<PackedColumn>> {
        let _ = (key, indices);
        Ok(None)
    }
    /// The keys of one row (empty for a placeholder).
    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        Ok(self
            .get(index, None)?
            .map(|r| r.into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default())
    }
    /// Every key some row has (sorted). Backends that keep a schema (LMDB, memory, the
    /// columnar stores) also list keys no row has any more; Redis keeps none.
    fn schema(&self) -> Result<Vec<Key>>;
}

/// Read access that many threads may use at once (only used when
/// [`Capabilities::concurrent_readers`] is set; otherwise reads go through the actor).
pub trait Reader: Send + Sync {
    /// Opens a consistent snapshot of the latest committed state.
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>>;

    /// `(bytes in use, bytes reserved)` where the backend has such a notion (LMDB: the
    /// pages in use and the map size), for `asebytesd status`; `None` otherwise. Must be
    /// cheap: no I/O, no transaction.
    fn space(&self) -> Option<(u64, u64)> {
        None
    }

    /// Rows copied from a source into a read-through cache since the store opened
    /// ([`cached`]); `None` for a store that is not a cache. For `asebytesd status`.
    fn rows_fetched(&self) -> Option<u64> {
        None
    }
}

/// Mutations inside one write transaction. Reads through the [`Snapshot`] supertrait see
/// this transaction's own uncommitted writes.
///
/// # Behavior
/// - Every method validates before it mutates: a method that returns an error has
///   changed nothing (so one bad command in a group-committed batch spoils nothing).
/// - Indices are already normalised and bounds-checked against `len()` of this transaction.
/// - A row of `None`, or an empty row, is stored as a placeholder.
pub trait Writer: Snapshot {
    /// Appends rows; returns the new length.
    fn extend(&mut self, rows: Vec<Option<Row>>) -> Result<u64>;
    /// Inserts one row before `index` (`index <= len`). Requires `write_can_insert`.
    fn insert(&mut self, index: u64, row: Option<Row>) -> Result<()>;
    /// Replaces a row. Requires `write_can_set`.
    fn set(&mut self, index: u64, row: Option<Row>) -> Result<()>;
    /// Merges keys into a row (a placeholder becomes a row). Requires `write_can_update`.
    fn update(&mut self, index: u64, data: Row) -> Result<()>;
    /// Writes one key into several rows (a column write); `values[j]` goes to row
    /// `indices[j]`. Requires `write_can_update`. Columnar stores write array slices;
    /// the default merges row by row.
    fn update_column(&mut self, key: &Key, indices: &[u64], values: Vec<Bytes>) -> Result<()> {
        for (&i, v) in indices.iter().zip(values) {
            self.update(i, vec![(key.clone(), v)])?;
        }
        Ok(())
    }
    /// Deletes rows `start..stop`, shifting later rows. Requires `write_can_delete`.
    fn delete_range(&mut self, start: u64, stop: u64) -> Result<()>;
    /// Removes keys from the given rows (every row when `None`); a row left with no keys
    /// becomes a placeholder. Requires `write_can_drop_keys`.
    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> Result<()>;
    /// Removes every row.
    fn clear(&mut self) -> Result<()>;
}

/// An open store, owned by exactly one writer actor: `&mut self` methods are never called
/// concurrently.
pub trait Backend: Send + 'static {
    /// Scheme, canonical location, capabilities.
    fn info(&self) -> &BackendInfo;
    /// A reader that may be used from other threads while this backend writes.
    fn reader(&self) -> Arc<dyn Reader>;
    /// Runs `f` inside one write transaction and commits if it returns `Ok`; aborts (changes
    /// nothing) if it returns `Err`. A backend may run `f` more than once (e.g. LMDB after
    /// growing a full map), so `f` must reset any state it collects at its start.
    fn write(&mut self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()>;
    /// Deletes the container (the group's files). The backend is unusable afterwards.
    /// Requires `write_can_remove`.
    fn remove(&mut self) -> Result<()>;
    /// Flushes and releases resources; called once at shutdown.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
