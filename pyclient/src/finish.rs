//! The second half of every store operation: a reply → the Python result, with the GIL
//! held and the reply still borrowed from the receive buffer. The first half (plans,
//! [`crate::ops`]) says which [`Finish`] a request's reply takes.

use asebytes_protocol::response::Opened;
use asebytes_protocol::{Capabilities, Key, Response};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::client::{Reply, RowsRef};
use crate::column::Column;
use crate::errors::{AsebytesTypeError, AsebytesValueError, ClientError, KeyNotFoundError};
use crate::tier::Tier;
use crate::{atoms, codec, tier};

/// How a reply becomes the Python result of one operation.
#[derive(Debug)]
pub enum Finish {
    /// `Len` → `int`.
    Len,
    /// `Ok` → `None`.
    Ok,
    /// `Row` → a row or `None`.
    Row,
    /// `Rows` of exactly `n` → list of rows or `None`.
    Rows {
        /// Rows asked for.
        n: usize,
    },
    /// `Row` → `ase.Atoms` or `None`.
    Atoms,
    /// `Rows` of exactly `n` → list of `ase.Atoms` or `None`.
    AtomsMany {
        /// Rows asked for.
        n: usize,
        /// With `missing_ok`: the requested keys, read under the column-view rules.
        column: Option<Vec<Key>>,
    },
    /// `Column` (of exactly `want` values if indices were given) → list.
    Column {
        /// Values asked for; `None` for every row.
        want: Option<usize>,
    },
    /// `Column` → one packed `numpy.ndarray`.
    Numpy {
        /// The key, for messages.
        key: String,
        /// The rows asked for (`None`: every row).
        rows: Option<Vec<i64>>,
    },
    /// `Keys` → list of keys.
    Keys,
    /// `Opened` → `dict(store, canonical, backend, capabilities)`.
    Opened,
    /// `Committed` → `(generation, len)` (live follow, see [`crate::follow`]).
    Committed,
}

/// A reply this operation does not expect: the daemon and client disagree.
pub fn unexpected(reply: &Reply<'_>) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {}", reply.name()))
}

/// The row count of a `Len` reply.
pub fn expect_len(reply: Reply<'_>) -> PyResult<usize> {
    match reply {
        Reply::Len(n) => usize::try_from(n).map_err(|_| {
            AsebytesValueError::new_err(format!("length {n} does not fit this platform"))
        }),
        other => Err(unexpected(&other).into()),
    }
}

/// The daemon's answer to `Open`.
pub fn expect_opened(reply: Reply<'_>) -> Result<Opened, ClientError> {
    match reply {
        Reply::Other(Response::Opened(o)) => Ok(o),
        Reply::Error(e) => Err(ClientError::Wire(e)),
        other => Err(unexpected(&other)),
    }
}

impl Finish {
    /// Decodes a successful (non-error) reply for a store whose rows take `tier`
    /// ([`Tier::on`] its capabilities).
    pub fn run<'py>(
        &self,
        py: Python<'py>,
        tier: Tier,
        reply: Reply<'_>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match (self, reply) {
            (Finish::Len, reply) => Ok(expect_len(reply)?.into_pyobject(py)?.into_any()),
            (Finish::Ok, Reply::Ok) => Ok(py.None().into_bound(py)),
            (Finish::Row, Reply::Row(rows)) if rows.rows.len() == 1 => row_out(py, tier, &rows, 0),
            (Finish::Rows { n }, Reply::Rows(rows)) if rows.rows.len() == *n => {
                Ok(new_list(py, *n, |i| row_out(py, tier, &rows, i))?.into_any())
            }
            (Finish::Atoms, Reply::Row(rows)) if rows.rows.len() == 1 => match rows.row(0) {
                None => Ok(py.None().into_bound(py)),
                Some(fields) => atoms::build(py, fields),
            },
            (Finish::AtomsMany { n, column }, Reply::Rows(rows)) if rows.rows.len() == *n => {
                Ok(atoms_many(py, &rows, column.as_deref())?.into_any())
            }
            (Finish::Column { want }, Reply::Column(values))
                if want.is_none_or(|n| n == values.len()) =>
            {
                Ok(new_list(py, values.len(), |i| value_out(py, tier, values[i]))?.into_any())
            }
            (Finish::Numpy { key, rows }, Reply::Column(values))
                if rows.as_ref().is_none_or(|r| r.len() == values.len()) =>
            {
                let column = Column {
                    key,
                    rows: rows.as_deref(),
                };
                column.pack(py, &values)
            }
            (Finish::Numpy { key, rows }, Reply::Other(Response::Packed(col)))
                if rows.as_ref().is_none_or(|r| r.len() as u64 == col.rows()) =>
            {
                let column = Column {
                    key,
                    rows: rows.as_deref(),
                };
                column.unpack(py, col)
            }
            (Finish::Keys, Reply::Other(Response::Keys(keys))) => {
                let list = PyList::empty(py);
                for k in keys {
                    match tier {
                        Tier::Object => list.append(codec::key_str(py, &k)?)?,
                        Tier::Blob | Tier::TypedBlob => list.append(PyBytes::new(py, &k))?,
                    }
                }
                Ok(list.into_any())
            }
            (Finish::Opened, reply) => Ok(opened_dict(py, expect_opened(reply)?)?.into_any()),
            (Finish::Committed, Reply::Other(Response::Committed(c))) => {
                Ok((c.generation, c.len).into_pyobject(py)?.into_any())
            }
            (_, other) => Err(unexpected(&other).into()),
        }
    }
}

/// The Python form of row `i`.
fn row_out<'py>(
    py: Python<'py>,
    tier: Tier,
    rows: &RowsRef<'_>,
    i: usize,
) -> PyResult<Bound<'py, PyAny>> {
    match rows.row(i) {
        None => Ok(py.None().into_bound(py)),
        Some(fields) => {
            let it = fields.iter().copied();
            Ok(match tier {
                Tier::Object => codec::decode_row(py, it)?.into_any(),
                Tier::Blob => codec::blob_row(py, it)?.into_any(),
                Tier::TypedBlob => {
                    codec::blob_row(py, it.map(|(k, v)| (k, tier::unwrap(v))))?.into_any()
                }
            })
        }
    }
}

fn value_out<'py>(py: Python<'py>, tier: Tier, v: Option<&[u8]>) -> PyResult<Bound<'py, PyAny>> {
    match (v, tier) {
        (None, _) => Ok(py.None().into_bound(py)),
        (Some(b), Tier::Object) => codec::decode(py, b),
        (Some(b), Tier::Blob) => Ok(PyBytes::new(py, b).into_any()),
        (Some(b), Tier::TypedBlob) => Ok(PyBytes::new(py, tier::unwrap(b)).into_any()),
    }
}

/// Rows as `ase.Atoms`; with `column` (the keys of a `missing_ok` read) the rules of ASEIO
/// column views apply.
fn atoms_many<'py>(
    py: Python<'py>,
    rows: &RowsRef<'_>,
    column: Option<&[Key]>,
) -> PyResult<Bound<'py, PyList>> {
    if let Some(keys) = column {
        missing_everywhere(keys, rows)?;
    }
    new_list(py, rows.rows.len(), |i| match rows.row(i) {
        None if column.is_some() => Err(AsebytesTypeError::new_err(
            "Cannot build ase.Atoms from a placeholder row.",
        )),
        Some([]) if column.is_some() => Ok(py.None().into_bound(py)),
        None => Ok(py.None().into_bound(py)),
        Some(fields) => atoms::build(py, fields),
    })
}

/// ASEIO column views: `KeyError(key)` for the first requested key that no real row has
/// (nothing when every row is a placeholder).
fn missing_everywhere(keys: &[Key], rows: &RowsRef<'_>) -> PyResult<()> {
    let real: Vec<_> = (0..rows.rows.len()).filter_map(|i| rows.row(i)).collect();
    if real.is_empty() {
        return Ok(());
    }
    for key in keys {
        let key: &[u8] = key.as_ref();
        if !real.iter().any(|row| row.iter().any(|(k, _)| *k == key)) {
            return Err(KeyNotFoundError::new_err(
                String::from_utf8_lossy(key).into_owned(),
            ));
        }
    }
    Ok(())
}

/// `Opened` as the dict `AsyncStore.open()` resolves to; `published` is
/// `(index, tag, epoch)` or `None`, for `AsyncStore.attach`.
fn opened_dict<'py>(py: Python<'py>, o: Opened) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("store", o.store)?;
    d.set_item("canonical", o.canonical)?;
    d.set_item("backend", o.backend)?;
    d.set_item("capabilities", capabilities_dict(py, &o.caps)?)?;
    d.set_item("published", o.published.map(|s| (s.index, s.tag, s.epoch)))?;
    Ok(d)
}

/// Capability flags by name.
pub fn capabilities_dict<'py>(py: Python<'py>, c: &Capabilities) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let Capabilities {
        read,
        read_with_keys,
        write,
        write_can_set,
        write_can_insert,
        write_can_delete,
        write_can_update,
        write_can_drop_keys,
        write_can_remove,
        concurrent_readers,
        snapshots,
        persistent,
        atomic_batches,
        packed_columns,
        typed_values,
        exclusive,
    } = *c;
    for (k, v) in [
        ("read", read),
        ("read_with_keys", read_with_keys),
        ("write", write),
        ("write_can_set", write_can_set),
        ("write_can_insert", write_can_insert),
        ("write_can_delete", write_can_delete),
        ("write_can_update", write_can_update),
        ("write_can_drop_keys", write_can_drop_keys),
        ("write_can_remove", write_can_remove),
        ("concurrent_readers", concurrent_readers),
        ("snapshots", snapshots),
        ("persistent", persistent),
        ("atomic_batches", atomic_batches),
        ("exclusive", exclusive),
        ("packed_columns", packed_columns),
        ("typed_values", typed_values),
    ] {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// A list of `n` items made by `item(i)` in order.
fn new_list<'py>(
    py: Python<'py>,
    n: usize,
    mut item: impl FnMut(usize) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    // SAFETY: a fresh list of `n` empty slots, each filled exactly once below before
    // anything else can see the list (on an error the list is dropped; its empty slots are
    // NULL, which deallocation skips).
    let list = unsafe {
        Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyList_New(n as pyo3::ffi::Py_ssize_t))?
    };
    for i in 0..n {
        let value = item(i)?;
        // SAFETY: PyList_SET_ITEM steals the reference into slot `i`, which is empty.
        unsafe {
            pyo3::ffi::PyList_SET_ITEM(list.as_ptr(), i as pyo3::ffi::Py_ssize_t, value.into_ptr())
        };
    }
    Ok(list.cast_into::<PyList>()?)
}
