//! Every store operation in two halves, shared by the sync `Store` and the async
//! `AsyncStore`, so both accept the same arguments and return the same results. This file
//! is the first half; the second is [`crate::finish`].
//!
//! - *plan* ([`Spec`]'s methods): Python arguments → a validated [`Request`] (store id 0
//!   until it is sent) and a [`Finish`] saying how to read the reply. Bad arguments raise
//!   here, before anything is sent.
//! - *finish* ([`Finish::run`]): the reply → the Python result, with the GIL held and the
//!   reply still borrowed from the receive buffer.
//!
//! Who sends the request in between is the caller's business: `Store` through the pooled
//! blocking connections, `AsyncStore` by handing a `Call` to the asyncio transport.

use asebytes_protocol::request::{
    Delete, DeleteRange, DropKeys, Extend, Get, GetColumn, GetMany, Insert, Keys, Open, Reserve,
    Set, SetMany, StoreId, StoreRef, Update, UpdateMany,
};
use asebytes_protocol::{Bytes, Key, OptionMap, Request, Row};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::args::{self, Positions, index_arg, indices_arg, keys_list, opt_indices_arg};
use crate::errors::{AsebytesTypeError, AsebytesValueError, IndexOutOfRangeError};
pub use crate::finish::{Finish, capabilities_dict, expect_len, expect_opened, unexpected};
pub use crate::tier::Tier;
use crate::{atoms_row, codec};

/// Which store a handle means and how its rows are typed: everything a handle needs to
/// plan requests, nothing about connections.
#[derive(Debug)]
pub struct Spec {
    /// Absolute path or URI.
    pub location: String,
    /// Group inside the location (`None`: the backend's default).
    pub group: Option<String>,
    /// Refuse writes.
    pub readonly: bool,
    /// Initial LMDB map size.
    pub map_size: Option<u64>,
    /// Backend options (`compressor`, `clevel`, ...); the daemon refuses names the
    /// backend does not take.
    pub options: OptionMap,
    /// Row typing.
    pub tier: Tier,
}

/// A request ready to send and how to read its reply.
#[derive(Debug)]
pub struct Plan {
    /// The request, aimed at store 0 until the sender sets the real id.
    pub req: Request,
    /// How to decode the reply.
    pub finish: Finish,
}

/// Points a request at a store id (after a re-open the id changes).
pub fn set_store(req: &mut Request, id: StoreId) {
    match req {
        Request::Close(r)
        | Request::Len(r)
        | Request::Schema(r)
        | Request::Clear(r)
        | Request::Remove(r) => r.store = id,
        Request::Get(r) => r.store = id,
        Request::GetMany(r) => r.store = id,
        Request::GetColumn(r) => r.store = id,
        Request::Keys(r) => r.store = id,
        Request::Extend(r) => r.store = id,
        Request::Insert(r) => r.store = id,
        Request::Set(r) => r.store = id,
        Request::SetMany(r) => r.store = id,
        Request::Update(r) => r.store = id,
        Request::UpdateMany(r) => r.store = id,
        Request::Delete(r) => r.store = id,
        Request::DeleteRange(r) => r.store = id,
        Request::DropKeys(r) => r.store = id,
        Request::Reserve(r) => r.store = id,
        Request::Follow(r) => r.store = id,
        Request::Ping
        | Request::Status
        | Request::Shutdown
        | Request::Open(_)
        | Request::ListGroups(_) => {}
    }
}

impl Plan {
    fn new(req: Request, finish: Finish) -> Self {
        Self { req, finish }
    }
}

impl Spec {
    /// The constructor arguments of `Store` and `AsyncStore`.
    pub fn from_args(
        location: &Bound<'_, PyAny>,
        group: Option<String>,
        readonly: bool,
        map_size: Option<u64>,
        options: Option<&Bound<'_, PyDict>>,
        tier: &str,
    ) -> PyResult<Self> {
        let tier = Tier::parse(tier)?;
        Ok(Self {
            location: args::normalize_location(location)?,
            group,
            readonly,
            map_size,
            options: options
                .map(args::options_arg)
                .transpose()?
                .unwrap_or_default(),
            tier,
        })
    }

    /// The `Open` request for this store.
    pub fn open_request(&self) -> Request {
        Request::Open(Open {
            location: self.location.clone(),
            group: self.group.clone(),
            readonly: self.readonly,
            map_size: self.map_size,
            options: self.options.clone(),
        })
    }

    /// Pickles a handle of class `cls` as "open the same store again": absolute location,
    /// group, flags, tier. `partial` because the flags are keyword-only; it pickles by
    /// reference to the class, so Python subclasses pickle too.
    pub fn reduce<'py>(&self, cls: Bound<'py, PyType>) -> PyResult<Bound<'py, PyTuple>> {
        let py = cls.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item("group", self.group.as_deref())?;
        kwargs.set_item("readonly", self.readonly)?;
        kwargs.set_item("map_size", self.map_size)?;
        if !self.options.is_empty() {
            kwargs.set_item("options", args::options_dict(py, &self.options)?)?;
        }
        kwargs.set_item("tier", self.tier.name())?;
        let partial = py.import("functools")?.getattr("partial")?;
        let ctor = partial.call((cls, self.location.as_str()), Some(&kwargs))?;
        PyTuple::new(py, [ctor.into_any(), PyTuple::empty(py).into_any()])
    }

    /// `Class('location', group='g', tier='object', readonly=True)`.
    pub fn repr(&self, class: &str) -> String {
        let group = self
            .group
            .as_deref()
            .map(|g| format!(", group={g:?}"))
            .unwrap_or_default();
        let cache = match self.options.get("cache_to") {
            Some(asebytes_protocol::OptionValue::Str(c)) => {
                format!(", cache_to={:?}", asebytes_protocol::redact::redact(c))
            }
            _ => String::new(),
        };
        format!(
            "{class}({:?}{group}, tier={:?}{}{cache})",
            asebytes_protocol::redact::redact(&self.location),
            self.tier.name(),
            if self.readonly { ", readonly=True" } else { "" }
        )
    }

    // -- plan: reads ------------------------------------------------------------------

    /// `open()`: join the store on the daemon.
    pub fn open(&self) -> Plan {
        Plan::new(self.open_request(), Finish::Opened)
    }

    /// `close()`: this connection no longer uses the store.
    pub fn close(&self) -> Plan {
        Plan::new(Request::Close(StoreRef { store: 0 }), Finish::Ok)
    }

    /// `len()`.
    pub fn len(&self) -> Plan {
        Plan::new(Request::Len(StoreRef { store: 0 }), Finish::Len)
    }

    /// `get(index, keys=None)`.
    pub fn get(&self, index: &Bound<'_, PyAny>, keys: Option<&Bound<'_, PyAny>>) -> PyResult<Plan> {
        Ok(Plan::new(self.get_request(index, keys)?, Finish::Row))
    }

    /// `get_many(indices, keys=None, missing_ok=True)`.
    pub fn get_many(
        &self,
        indices: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Plan> {
        let keys = self.keys_arg(keys)?;
        let (req, n) = get_many_request(indices, keys, missing_ok)?;
        Ok(Plan::new(req, Finish::Rows { n }))
    }

    /// `get_atoms(index, keys=None)`.
    pub fn get_atoms(
        &self,
        index: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Plan> {
        self.check_object_tier("ase.Atoms can only be read from an object-tier store")?;
        Ok(Plan::new(self.get_request(index, keys)?, Finish::Atoms))
    }

    /// `get_atoms_many(indices, keys=None, missing_ok=False)`.
    pub fn get_atoms_many(
        &self,
        indices: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Plan> {
        self.check_object_tier("ase.Atoms can only be read from an object-tier store")?;
        let keys = self.keys_arg(keys)?;
        let column = if missing_ok { keys.clone() } else { None };
        let (req, n) = get_many_request(indices, keys, missing_ok)?;
        Ok(Plan::new(req, Finish::AtomsMany { n, column }))
    }

    /// `get_column(key, indices=None)`.
    pub fn get_column(
        &self,
        key: &Bound<'_, PyAny>,
        indices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Plan> {
        let indices = opt_indices_arg(indices)?;
        let want = indices.as_ref().map(Vec::len);
        let req = Request::GetColumn(GetColumn {
            store: 0,
            key: Key::from(self.key(key)?),
            indices,
            packed: false,
        });
        Ok(Plan::new(req, Finish::Column { want }))
    }

    /// `get_column_numpy(key, indices=None)`.
    pub fn get_column_numpy(
        &self,
        key: &Bound<'_, PyAny>,
        indices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Plan> {
        self.check_object_tier(
            "get_column_numpy needs an object-tier store: to_numpy() packs msgpack-numpy values",
        )?;
        let key = self.key(key)?;
        let rows = opt_indices_arg(indices)?;
        let req = Request::GetColumn(GetColumn {
            store: 0,
            key: Key::from(key.clone()),
            indices: rows.clone(),
            packed: true,
        });
        let key = String::from_utf8_lossy(&key).into_owned();
        Ok(Plan::new(req, Finish::Numpy { key, rows }))
    }

    /// `keys(index)`.
    pub fn keys(&self, index: &Bound<'_, PyAny>) -> PyResult<Plan> {
        let req = Request::Keys(Keys {
            store: 0,
            index: index_arg(index)?,
        });
        Ok(Plan::new(req, Finish::Keys))
    }

    /// `schema_keys()`.
    pub fn schema_keys(&self) -> Plan {
        Plan::new(Request::Schema(StoreRef { store: 0 }), Finish::Keys)
    }

    // -- plan: writes -----------------------------------------------------------------

    /// `extend(rows)`.
    pub fn extend(&self, rows: &Bound<'_, PyAny>) -> PyResult<Plan> {
        let req = Request::Extend(Extend {
            store: 0,
            rows: self.rows_arg(rows)?,
        });
        Ok(Plan::new(req, Finish::Len))
    }

    /// `insert(index, row)`.
    pub fn insert(&self, index: &Bound<'_, PyAny>, row: &Bound<'_, PyAny>) -> PyResult<Plan> {
        let req = Request::Insert(Insert {
            store: 0,
            index: index_arg(index)?,
            row: self.row_arg(row)?,
        });
        Ok(Plan::new(req, Finish::Len))
    }

    /// `set(index, row)`.
    pub fn set(&self, index: &Bound<'_, PyAny>, row: &Bound<'_, PyAny>) -> PyResult<Plan> {
        let req = Request::Set(Set {
            store: 0,
            index: index_arg(index)?,
            row: self.row_arg(row)?,
        });
        Ok(Plan::new(req, Finish::Ok))
    }

    /// `set_many(start_or_indices, rows)`: one transaction.
    pub fn set_many(
        &self,
        start_or_indices: &Bound<'_, PyAny>,
        rows: &Bound<'_, PyAny>,
    ) -> PyResult<Plan> {
        let at = Positions::from_arg("set_many", start_or_indices)?;
        let rows = self.rows_arg(rows)?;
        let indices = at.resolve("set_many", rows.len(), "rows")?;
        let req = Request::SetMany(SetMany {
            store: 0,
            indices,
            rows,
        });
        Ok(Plan::new(req, Finish::Ok))
    }

    /// `update(index, data)`.
    pub fn update(&self, index: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<Plan> {
        let req = Request::Update(Update {
            store: 0,
            index: index_arg(index)?,
            data: to_row(self.data_arg(data)?),
        });
        Ok(Plan::new(req, Finish::Ok))
    }

    /// `update_many(start_or_indices, data)`: one transaction.
    pub fn update_many(
        &self,
        start_or_indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<Plan> {
        let at = Positions::from_arg("update_many", start_or_indices)?;
        let data: Vec<Row> = args::per_row_items(data, "data", "dicts")?
            .iter()
            .map(|d| Ok(to_row(self.data_arg(d)?)))
            .collect::<PyResult<_>>()?;
        let indices = at.resolve("update_many", data.len(), "rows")?;
        let req = Request::UpdateMany(UpdateMany {
            store: 0,
            indices,
            data,
        });
        Ok(Plan::new(req, Finish::Ok))
    }

    /// `set_column(key, start_or_indices, values)`: `values[j]` under `key` in row
    /// `start + j` (or `indices[j]`), as one `UpdateMany` of one-key rows.
    pub fn set_column(
        &self,
        key: &Bound<'_, PyAny>,
        start_or_indices: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<Plan> {
        let key = self.key(key)?;
        let at = Positions::from_arg("set_column", start_or_indices)?;
        let data: Vec<Row> = args::per_row_items(values, "values", "values, one per row")?
            .iter()
            .map(|v| {
                Ok(vec![(
                    Key::from(key.clone()),
                    Bytes::from(self.value_arg(&key, v)?),
                )])
            })
            .collect::<PyResult<_>>()?;
        let indices = at.resolve("set_column", data.len(), "values")?;
        let req = Request::UpdateMany(UpdateMany {
            store: 0,
            indices,
            data,
        });
        Ok(Plan::new(req, Finish::Ok))
    }

    /// `delete(index)`.
    pub fn delete(&self, index: &Bound<'_, PyAny>) -> PyResult<Plan> {
        let req = Request::Delete(Delete {
            store: 0,
            index: index_arg(index)?,
        });
        Ok(Plan::new(req, Finish::Len))
    }

    /// `delete_range(start, stop)` and its reference name `delete_many` (`what`).
    pub fn delete_range(
        &self,
        what: &str,
        start: &Bound<'_, PyAny>,
        stop: &Bound<'_, PyAny>,
    ) -> PyResult<Plan> {
        let (start, stop) = (index_arg(start)?, index_arg(stop)?);
        let (Ok(ustart), Ok(ustop)) = (u64::try_from(start), u64::try_from(stop)) else {
            return Err(IndexOutOfRangeError::new_err(format!(
                "{what}({start}, {stop}): bounds must be non-negative (normalise slices first)"
            )));
        };
        let req = Request::DeleteRange(DeleteRange {
            store: 0,
            start: ustart,
            stop: ustop,
        });
        Ok(Plan::new(req, Finish::Len))
    }

    /// `drop_keys(keys, indices=None)`.
    pub fn drop_keys(
        &self,
        keys: &Bound<'_, PyAny>,
        indices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Plan> {
        let keys = keys_list(keys, |k| self.key(k))?;
        let indices = opt_indices_arg(indices)?;
        let req = Request::DropKeys(DropKeys {
            store: 0,
            keys,
            indices,
        });
        Ok(Plan::new(req, Finish::Ok))
    }

    /// `reserve(n)`.
    pub fn reserve(&self, n: &Bound<'_, PyAny>) -> PyResult<Plan> {
        let n = index_arg(n)?;
        let n = u64::try_from(n)
            .map_err(|_| AsebytesValueError::new_err(format!("reserve({n}): n must be >= 0")))?;
        Ok(Plan::new(
            Request::Reserve(Reserve { store: 0, n }),
            Finish::Len,
        ))
    }

    /// `clear()`.
    pub fn clear(&self) -> Plan {
        Plan::new(Request::Clear(StoreRef { store: 0 }), Finish::Ok)
    }

    /// `remove()`.
    pub fn remove(&self) -> Plan {
        Plan::new(Request::Remove(StoreRef { store: 0 }), Finish::Ok)
    }

    // -- argument helpers -------------------------------------------------------------

    fn key(&self, k: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        match self.tier {
            Tier::Object => codec::object_key(k),
            Tier::Blob | Tier::TypedBlob => codec::blob_key(k),
        }
    }

    fn keys_arg(&self, keys: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<Key>>> {
        keys.filter(|k| !k.is_none())
            .map(|k| keys_list(k, |x| self.key(x)))
            .transpose()
    }

    /// The `Get` request of `get` and `get_atoms`.
    fn get_request(
        &self,
        index: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Request> {
        Ok(Request::Get(Get {
            store: 0,
            index: index_arg(index)?,
            keys: self.keys_arg(keys)?,
        }))
    }

    fn row_arg(&self, row: &Bound<'_, PyAny>) -> PyResult<Option<Row>> {
        if row.is_none() {
            return Ok(None);
        }
        Ok(Some(to_row(self.data_arg(row)?)))
    }

    fn data_arg(&self, data: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.tier {
            // `ASEIO` hands its `Atoms` over as they are: converted in Rust, no dict.
            Tier::Object if !data.is_instance_of::<PyDict>() && atoms_row::is_atoms(data)? => {
                atoms_row::encode_atoms(data)
            }
            Tier::Object => codec::encode_row(data),
            Tier::Blob | Tier::TypedBlob => codec::blob_row_in(data),
        }
    }

    /// One value stored under `key` (already validated for this tier).
    fn value_arg(&self, key: &[u8], v: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        match self.tier {
            Tier::Object => codec::encode(v, &String::from_utf8_lossy(key)),
            Tier::Blob | Tier::TypedBlob => codec::blob_field(key, v),
        }
    }

    fn rows_arg(&self, rows: &Bound<'_, PyAny>) -> PyResult<Vec<Option<Row>>> {
        args::per_row_items(rows, "rows", "dicts")?
            .iter()
            .map(|r| self.row_arg(r))
            .collect()
    }

    /// Atoms and packed columns are built from object-tier values (msgpack-numpy).
    fn check_object_tier(&self, message: &'static str) -> PyResult<()> {
        if self.tier != Tier::Object {
            return Err(AsebytesTypeError::new_err(message));
        }
        Ok(())
    }
}

/// The `GetMany` request of `get_many` and `get_atoms_many`, with the row count the answer
/// must have.
fn get_many_request(
    indices: &Bound<'_, PyAny>,
    keys: Option<Vec<Key>>,
    missing_ok: bool,
) -> PyResult<(Request, usize)> {
    let indices = indices_arg(indices)?;
    let n = indices.len();
    let req = Request::GetMany(GetMany {
        store: 0,
        indices,
        keys,
        missing_ok,
    });
    Ok((req, n))
}

fn to_row(fields: Vec<(Vec<u8>, Vec<u8>)>) -> Row {
    fields
        .into_iter()
        .map(|(k, v)| (Key::from(k), Bytes::from(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_store_aims_every_store_request_and_leaves_the_others() {
        let at = |store| StoreRef { store };
        let aimed = [
            Request::Close(at(0)),
            Request::Len(at(0)),
            Request::Schema(at(0)),
            Request::Clear(at(0)),
            Request::Remove(at(0)),
            Request::Get(Get {
                store: 0,
                index: 0,
                keys: None,
            }),
            Request::GetMany(GetMany {
                store: 0,
                indices: vec![],
                keys: None,
                missing_ok: true,
            }),
            Request::GetColumn(GetColumn {
                store: 0,
                key: Key::from(b"k".to_vec()),
                indices: None,
                packed: false,
            }),
            Request::Keys(Keys { store: 0, index: 0 }),
            Request::Extend(Extend {
                store: 0,
                rows: vec![],
            }),
            Request::Insert(Insert {
                store: 0,
                index: 0,
                row: None,
            }),
            Request::Set(Set {
                store: 0,
                index: 0,
                row: None,
            }),
            Request::SetMany(SetMany {
                store: 0,
                indices: vec![],
                rows: vec![],
            }),
            Request::Update(Update {
                store: 0,
                index: 0,
                data: vec![],
            }),
            Request::UpdateMany(UpdateMany {
                store: 0,
                indices: vec![],
                data: vec![],
            }),
            Request::Delete(Delete { store: 0, index: 0 }),
            Request::DeleteRange(DeleteRange {
                store: 0,
                start: 0,
                stop: 0,
            }),
            Request::DropKeys(DropKeys {
                store: 0,
                keys: vec![],
                indices: None,
            }),
            Request::Reserve(Reserve { store: 0, n: 0 }),
        ];
        for mut req in aimed {
            set_store(&mut req, 42);
            assert!(format!("{req:?}").contains("store: 42"), "{req:?}");
        }
        let open = Request::Open(Open::default());
        for req in [Request::Ping, open] {
            let mut aimed = req.clone();
            set_store(&mut aimed, 42);
            assert_eq!(aimed, req);
        }
    }
}
