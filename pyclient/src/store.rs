//! `Store`: a handle on one daemon-served store (location + group), the native backend
//! under the Python facades.
//!
//! A handle holds no file and no connection: it remembers how to open the store and the
//! daemon's answer (store id, canonical name, capabilities), opens lazily on first use, and
//! re-opens by itself when the daemon restarted (another epoch) or forgot the store
//! (`UnknownStore`). That is what lets handles pickle and survive `fork`.

use std::sync::{Arc, Mutex};

use asebytes_protocol::request::{
    Delete, DeleteRange, DropKeys, Extend, Get, GetColumn, GetMany, Insert, Keys, Open, Reserve,
    Set, SetMany, StoreId, StoreRef, Update, UpdateMany,
};
use asebytes_protocol::response::Opened;
use asebytes_protocol::{Bytes, Capabilities, Key, Request, Response, Row};
use numpy::npyffi::{self, NPY_TYPES, PY_ARRAY_API, PyArrayObject};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::client::{self, Reply, RowsRef, Session, is_unknown_store, retriable};
use crate::errors::{
    AsebytesTypeError, AsebytesValueError, ClientError, IndexOutOfRangeError, KeyNotFoundError,
};
use crate::pool::Epoch;
use crate::{atoms, codec};

/// How rows are typed on the Python side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// `dict[str, Any]`, values in the msgpack-numpy layout.
    Object,
    /// `dict[bytes, bytes]`, stored as given.
    Blob,
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Object => "object",
            Tier::Blob => "blob",
        }
    }
}

/// The daemon's answer to `Open`, valid for one daemon epoch.
#[derive(Debug)]
struct OpenState {
    id: StoreId,
    canonical: String,
    backend: String,
    caps: Capabilities,
    epoch: Epoch,
}

/// Why a store could not be opened on a session.
enum OpenFail {
    /// The connection failed (maybe retriable).
    Conn(client::Failure),
    /// The daemon refused, or Python raised.
    Py(PyErr),
}

/// A handle on one store served by the daemon. See the `.pyi` for the Python contract.
#[pyclass(frozen, subclass, module = "asebytes._native", name = "Store")]
#[derive(Debug)]
pub struct Store {
    location: String,
    group: Option<String>,
    readonly: bool,
    map_size: Option<u64>,
    tier: Tier,
    opened: Mutex<Option<Arc<OpenState>>>,
}

/// `memory://x`, `lmdb:///p` and other URIs pass through; a plain path is made absolute
/// against the current directory now (as `os.path.abspath`, symlinks untouched), because
/// the daemon has another working directory.
pub fn normalize_location(location: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = location.py();
    let os = py.import(pyo3::intern!(py, "os"))?;
    let text: String = os
        .call_method1(pyo3::intern!(py, "fspath"), (location,))?
        .extract()
        .map_err(|_| {
            AsebytesTypeError::new_err(format!(
                "location must be a str path or URI, got '{}'",
                type_name(location)
            ))
        })?;
    if text.contains("://") {
        return Ok(text);
    }
    if text.is_empty() {
        return Err(AsebytesValueError::new_err("location must not be empty"));
    }
    os.getattr(pyo3::intern!(py, "path"))?
        .call_method1(pyo3::intern!(py, "abspath"), (text,))?
        .extract()
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// An index as the user gave it: any int or numpy integer (`__index__`), bools included.
fn index_arg(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(i) => Ok(i),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(obj.py()) => Err(
            IndexOutOfRangeError::new_err(format!("Index {} out of range", obj.str()?)),
        ),
        Err(_) => Err(AsebytesTypeError::new_err(format!(
            "indices must be integers, not '{}'",
            type_name(obj)
        ))),
    }
}

/// A sequence of indices: list, tuple, range, or a numpy integer array (read in one go).
fn indices_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    let py = obj.py();
    // SAFETY: PyArray_Check only inspects the type.
    if unsafe { npyffi::PyArray_Check(py, obj.as_ptr()) } != 0 {
        return int_array(obj);
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(AsebytesTypeError::new_err(format!(
            "indices must be a sequence of integers, not '{}'",
            type_name(obj)
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        AsebytesTypeError::new_err(format!(
            "indices must be a sequence of integers, not '{}'",
            type_name(obj)
        ))
    })?;
    let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
    for item in iter {
        out.push(index_arg(&item?)?);
    }
    Ok(out)
}

/// A 1-d integer (or bool) array as i64, converted by numpy in C.
fn int_array(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    let py = obj.py();
    // SAFETY: `obj` is an ndarray; we read its descriptor and dimensions while holding it,
    // and PyArray_FromAny returns a new aligned C-contiguous int64 array or NULL.
    unsafe {
        let arr = obj.as_ptr() as *mut PyArrayObject;
        let descr = Bound::from_borrowed_ptr(py, (*arr).fields.descr.cast())
            .cast_into_unchecked::<numpy::PyArrayDescr>();
        use numpy::PyArrayDescrMethods;
        if !matches!(descr.kind(), b'i' | b'u' | b'b') {
            return Err(AsebytesTypeError::new_err(format!(
                "indices must be integers, not an array of dtype {}",
                descr.str()?
            )));
        }
        if (*arr).fields.nd != 1 {
            return Err(AsebytesTypeError::new_err("indices must be a 1-d array"));
        }
        let i64_descr = PY_ARRAY_API.PyArray_DescrFromType(py, NPY_TYPES::NPY_LONGLONG as i32);
        let conv = PY_ARRAY_API.PyArray_FromAny(
            py,
            obj.as_ptr(),
            i64_descr,
            1,
            1,
            npyffi::NPY_ARRAY_C_CONTIGUOUS
                | npyffi::NPY_ARRAY_ALIGNED
                | npyffi::NPY_ARRAY_FORCECAST,
            std::ptr::null_mut(),
        );
        let conv = Bound::from_owned_ptr_or_err(py, conv)?;
        let c = conv.as_ptr() as *mut PyArrayObject;
        let n = *(*c).fields.dimensions as usize;
        if n == 0 {
            return Ok(Vec::new());
        }
        let data = std::slice::from_raw_parts((*c).fields.data as *const i64, n);
        Ok(data.to_vec())
    }
}

/// A key list argument; a bare `str`/`bytes` is refused rather than split into characters.
fn keys_list(
    obj: &Bound<'_, PyAny>,
    one: impl Fn(&Bound<'_, PyAny>) -> PyResult<Vec<u8>>,
) -> PyResult<Vec<Key>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(AsebytesTypeError::new_err(format!(
            "keys must be a list of keys, not a single '{}' (wrap it in a list)",
            type_name(obj)
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        AsebytesTypeError::new_err(format!(
            "keys must be a list of keys, not '{}'",
            type_name(obj)
        ))
    })?;
    iter.map(|k| one(&k?).map(Key::from)).collect()
}

fn to_row(fields: Vec<(Vec<u8>, Vec<u8>)>) -> Row {
    fields
        .into_iter()
        .map(|(k, v)| (Key::from(k), Bytes::from(v)))
        .collect()
}

/// Points a request at a store id (after a re-open the id changes).
fn set_store(req: &mut Request, id: StoreId) {
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
        Request::Ping
        | Request::Status
        | Request::Shutdown
        | Request::Open(_)
        | Request::ListGroups(_) => {}
    }
}

fn unexpected(reply: &Reply<'_>) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {}", reply.name()))
}

fn expect_len(reply: Reply<'_>) -> Result<u64, ClientError> {
    match reply {
        Reply::Len(n) => Ok(n),
        other => Err(unexpected(&other)),
    }
}

fn expect_ok(reply: Reply<'_>) -> Result<(), ClientError> {
    match reply {
        Reply::Ok => Ok(()),
        other => Err(unexpected(&other)),
    }
}

impl Store {
    fn open_request(&self) -> Request {
        Request::Open(Open {
            location: self.location.clone(),
            group: self.group.clone(),
            readonly: self.readonly,
            map_size: self.map_size,
        })
    }

    fn cached(&self) -> Option<Arc<OpenState>> {
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets the open state if it is still `id` (another thread may have re-opened).
    fn forget(&self, id: StoreId) {
        let mut g = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if g.as_ref().is_some_and(|s| s.id == id) {
            *g = None;
        }
    }

    /// The open state valid on `session`'s daemon, opening the store if needed.
    fn ensure_open(
        &self,
        py: Python<'_>,
        session: &mut Session,
    ) -> Result<Arc<OpenState>, OpenFail> {
        if let Some(st) = self.cached()
            && st.epoch == session.epoch()
        {
            return Ok(st);
        }
        let epoch = session.epoch();
        let opened = match session.exchange(py, &self.open_request()) {
            Ok(Reply::Other(Response::Opened(o))) => o,
            Ok(Reply::Error(e)) => return Err(OpenFail::Py(ClientError::Wire(e).into())),
            Ok(other) => return Err(OpenFail::Py(unexpected(&other).into())),
            Err(f) => return Err(OpenFail::Conn(f)),
        };
        let Opened {
            store,
            canonical,
            backend,
            caps,
            ..
        } = opened;
        let st = Arc::new(OpenState {
            id: store,
            canonical,
            backend,
            caps,
            epoch,
        });
        *self.opened.lock().unwrap_or_else(|p| p.into_inner()) = Some(st.clone());
        Ok(st)
    }

    /// Runs one store request: opens lazily, re-opens once on `UnknownStore` or a new
    /// daemon, reconnects once when allowed (see [`client`]), then `decode`s the reply
    /// with the GIL held.
    fn call<'py, R>(
        &self,
        py: Python<'py>,
        mut req: Request,
        decode: impl FnOnce(Python<'py>, Reply<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut decode = Some(decode);
        let mut reconnected = false;
        let mut reopened = false;
        let mut session = Session::take(py)?;
        loop {
            let st = match self.ensure_open(py, &mut session) {
                Ok(st) => st,
                Err(OpenFail::Conn(f)) if !reconnected && retriable(&self.open_request(), &f) => {
                    reconnected = true;
                    session = Session::fresh(py)?;
                    continue;
                }
                Err(OpenFail::Conn(f)) => return Err(f.error.into()),
                Err(OpenFail::Py(e)) => return Err(e),
            };
            set_store(&mut req, st.id);
            match session.exchange(py, &req) {
                Ok(Reply::Error(e)) if is_unknown_store(&e) && !reopened => {
                    reopened = true;
                    self.forget(st.id);
                }
                Ok(reply) => {
                    let reply = reply.into_result()?;
                    return (decode.take().expect("decoded once"))(py, reply);
                }
                Err(f) if !reconnected && retriable(&req, &f) => {
                    reconnected = true;
                    session = Session::fresh(py)?;
                }
                Err(f) => return Err(f.error.into()),
            }
        }
    }

    fn open_state(&self, py: Python<'_>) -> PyResult<Arc<OpenState>> {
        let mut session = Session::take(py)?;
        match self.ensure_open(py, &mut session) {
            Ok(st) => Ok(st),
            Err(OpenFail::Conn(f)) if retriable(&self.open_request(), &f) => {
                let mut session = Session::fresh(py)?;
                match self.ensure_open(py, &mut session) {
                    Ok(st) => Ok(st),
                    Err(OpenFail::Conn(f)) => Err(f.error.into()),
                    Err(OpenFail::Py(e)) => Err(e),
                }
            }
            Err(OpenFail::Conn(f)) => Err(f.error.into()),
            Err(OpenFail::Py(e)) => Err(e),
        }
    }

    fn key(&self, k: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        match self.tier {
            Tier::Object => codec::object_key(k),
            Tier::Blob => codec::blob_key(k),
        }
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

    /// The `GetMany` request of `get_many` and `get_atoms_many`, with the row count the
    /// answer must have.
    fn get_many_request(
        &self,
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

    fn keys_arg(&self, keys: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<Key>>> {
        keys.filter(|k| !k.is_none())
            .map(|k| keys_list(k, |x| self.key(x)))
            .transpose()
    }

    fn row_arg(&self, row: &Bound<'_, PyAny>) -> PyResult<Option<Row>> {
        if row.is_none() {
            return Ok(None);
        }
        Ok(Some(to_row(self.data_arg(row)?)))
    }

    fn data_arg(&self, data: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.tier {
            Tier::Object => codec::encode_row(data),
            Tier::Blob => codec::blob_row_in(data),
        }
    }

    fn rows_arg(&self, rows: &Bound<'_, PyAny>) -> PyResult<Vec<Option<Row>>> {
        if rows.is_instance_of::<PyDict>() {
            return Err(AsebytesTypeError::new_err(
                "rows must be a sequence of dicts, not a single dict",
            ));
        }
        let iter = rows.try_iter().map_err(|_| {
            AsebytesTypeError::new_err(format!(
                "rows must be a sequence of dicts, not '{}'",
                type_name(rows)
            ))
        })?;
        iter.map(|r| self.row_arg(&r?)).collect()
    }

    /// The Python form of one row.
    fn row_out<'py>(
        &self,
        py: Python<'py>,
        rows: &RowsRef<'_>,
        i: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        match rows.row(i) {
            None => Ok(py.None().into_bound(py)),
            Some(fields) => {
                let it = fields.iter().copied();
                Ok(match self.tier {
                    Tier::Object => codec::decode_row(py, it)?.into_any(),
                    Tier::Blob => codec::blob_row(py, it)?.into_any(),
                })
            }
        }
    }

    fn value_out<'py>(&self, py: Python<'py>, v: Option<&[u8]>) -> PyResult<Bound<'py, PyAny>> {
        match (v, self.tier) {
            (None, _) => Ok(py.None().into_bound(py)),
            (Some(b), Tier::Object) => codec::decode(py, b),
            (Some(b), Tier::Blob) => Ok(PyBytes::new(py, b).into_any()),
        }
    }

    fn keys_out<'py>(&self, py: Python<'py>, reply: Reply<'_>) -> PyResult<Bound<'py, PyList>> {
        let Reply::Other(Response::Keys(keys)) = reply else {
            return Err(unexpected(&reply).into());
        };
        let list = PyList::empty(py);
        for k in keys {
            match self.tier {
                Tier::Object => list.append(codec::key_str(py, &k)?)?,
                Tier::Blob => list.append(PyBytes::new(py, &k))?,
            }
        }
        Ok(list)
    }

    /// Atoms are built from object-tier rows (msgpack-numpy values under `str` keys).
    fn check_atoms_tier(&self) -> PyResult<()> {
        if self.tier != Tier::Object {
            return Err(AsebytesTypeError::new_err(
                "ase.Atoms can only be read from an object-tier store",
            ));
        }
        Ok(())
    }

    fn new_store(
        location: String,
        group: Option<String>,
        readonly: bool,
        map_size: Option<u64>,
        tier: Tier,
    ) -> Self {
        Self {
            location,
            group,
            readonly,
            map_size,
            tier,
            opened: Mutex::new(None),
        }
    }
}

fn capabilities_dict<'py>(py: Python<'py>, c: &Capabilities) -> PyResult<Bound<'py, PyDict>> {
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

fn len_out(n: u64) -> PyResult<usize> {
    usize::try_from(n)
        .map_err(|_| AsebytesValueError::new_err(format!("length {n} does not fit this platform")))
}

fn check_same_len(what: &str, a: usize, b: usize) -> PyResult<()> {
    if a != b {
        return Err(AsebytesValueError::new_err(format!(
            "{what}: {a} indices but {b} rows"
        )));
    }
    Ok(())
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (location, *, group=None, readonly=false, map_size=None, tier="object"))]
    fn py_new(
        location: &Bound<'_, PyAny>,
        group: Option<String>,
        readonly: bool,
        map_size: Option<u64>,
        tier: &str,
    ) -> PyResult<Self> {
        let tier = match tier {
            "object" => Tier::Object,
            "blob" => Tier::Blob,
            other => {
                return Err(AsebytesValueError::new_err(format!(
                    "tier must be 'object' or 'blob', got {other:?}"
                )));
            }
        };
        Ok(Self::new_store(
            normalize_location(location)?,
            group,
            readonly,
            map_size,
            tier,
        ))
    }

    #[getter]
    fn location(&self) -> &str {
        &self.location
    }

    #[getter]
    fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    #[getter]
    fn tier(&self) -> &'static str {
        self.tier.name()
    }

    #[getter]
    fn canonical(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.open_state(py)?.canonical.clone())
    }

    #[getter]
    fn backend_name(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.open_state(py)?.backend.clone())
    }

    #[getter]
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        capabilities_dict(py, &self.open_state(py)?.caps)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.len(py)
    }

    fn len(&self, py: Python<'_>) -> PyResult<usize> {
        let n = self.call(py, Request::Len(StoreRef { store: 0 }), |_, r| {
            Ok(expect_len(r)?)
        })?;
        len_out(n)
    }

    #[pyo3(signature = (index, keys=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = self.get_request(index, keys)?;
        self.call(py, req, |py, reply| match reply {
            Reply::Row(rows) if rows.rows.len() == 1 => self.row_out(py, &rows, 0),
            other => Err(unexpected(&other).into()),
        })
    }

    #[pyo3(signature = (indices, keys=None, missing_ok=false))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        indices: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let (req, n) = self.get_many_request(indices, self.keys_arg(keys)?, missing_ok)?;
        self.call(py, req, |py, reply| match reply {
            Reply::Rows(rows) if rows.rows.len() == n => {
                new_list(py, n, |i| self.row_out(py, &rows, i))
            }
            other => Err(unexpected(&other).into()),
        })
    }

    /// Row `index` as `ase.Atoms` built natively (`None` for a placeholder), equal to
    /// `dict_to_atoms(self.get(index, keys), copy=False)`.
    #[pyo3(signature = (index, keys=None))]
    fn get_atoms<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_atoms_tier()?;
        let req = self.get_request(index, keys)?;
        self.call(py, req, |py, reply| match reply {
            Reply::Row(rows) if rows.rows.len() == 1 => match rows.row(0) {
                None => Ok(py.None().into_bound(py)),
                Some(fields) => atoms::build(py, fields),
            },
            other => Err(unexpected(&other).into()),
        })
    }

    /// Rows as `ase.Atoms` (`None` for placeholders) in one request. With `keys` and
    /// `missing_ok=True` the rules of ASEIO column views apply instead: `KeyError(key)` for
    /// a requested key that no real row has, `TypeError` for a placeholder row, `None` for
    /// a row that has none of the keys.
    #[pyo3(signature = (indices, keys=None, missing_ok=false))]
    fn get_atoms_many<'py>(
        &self,
        py: Python<'py>,
        indices: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        self.check_atoms_tier()?;
        let keys = self.keys_arg(keys)?;
        let column = if missing_ok { keys.clone() } else { None };
        let (req, n) = self.get_many_request(indices, keys, missing_ok)?;
        self.call(py, req, |py, reply| match reply {
            Reply::Rows(rows) if rows.rows.len() == n => {
                if let Some(keys) = &column {
                    missing_everywhere(keys, &rows)?;
                }
                new_list(py, n, |i| match rows.row(i) {
                    None if column.is_some() => Err(AsebytesTypeError::new_err(
                        "Cannot build ase.Atoms from a placeholder row.",
                    )),
                    Some([]) if column.is_some() => Ok(py.None().into_bound(py)),
                    None => Ok(py.None().into_bound(py)),
                    Some(fields) => atoms::build(py, fields),
                })
            }
            other => Err(unexpected(&other).into()),
        })
    }

    #[pyo3(signature = (key, indices=None))]
    fn get_column<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        indices: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let indices = indices
            .filter(|i| !i.is_none())
            .map(indices_arg)
            .transpose()?;
        let want = indices.as_ref().map(Vec::len);
        let req = Request::GetColumn(GetColumn {
            store: 0,
            key: Key::from(self.key(key)?),
            indices,
        });
        self.call(py, req, |py, reply| match reply {
            Reply::Column(values) if want.is_none_or(|n| n == values.len()) => {
                let list = PyList::empty(py);
                for v in values {
                    list.append(self.value_out(py, v)?)?;
                }
                Ok(list)
            }
            other => Err(unexpected(&other).into()),
        })
    }

    fn keys<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let req = Request::Keys(Keys {
            store: 0,
            index: index_arg(index)?,
        });
        self.call(py, req, |py, reply| self.keys_out(py, reply))
    }

    fn schema_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.call(py, Request::Schema(StoreRef { store: 0 }), |py, reply| {
            self.keys_out(py, reply)
        })
    }

    fn extend(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<usize> {
        let req = Request::Extend(Extend {
            store: 0,
            rows: self.rows_arg(rows)?,
        });
        len_out(self.call(py, req, |_, r| Ok(expect_len(r)?))?)
    }

    fn insert(
        &self,
        py: Python<'_>,
        index: &Bound<'_, PyAny>,
        row: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let req = Request::Insert(Insert {
            store: 0,
            index: index_arg(index)?,
            row: self.row_arg(row)?,
        });
        len_out(self.call(py, req, |_, r| Ok(expect_len(r)?))?)
    }

    fn set(
        &self,
        py: Python<'_>,
        index: &Bound<'_, PyAny>,
        row: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let req = Request::Set(Set {
            store: 0,
            index: index_arg(index)?,
            row: self.row_arg(row)?,
        });
        self.call(py, req, |_, r| Ok(expect_ok(r)?))
    }

    fn set_many(
        &self,
        py: Python<'_>,
        indices: &Bound<'_, PyAny>,
        rows: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let indices = indices_arg(indices)?;
        let rows = self.rows_arg(rows)?;
        check_same_len("set_many", indices.len(), rows.len())?;
        let req = Request::SetMany(SetMany {
            store: 0,
            indices,
            rows,
        });
        self.call(py, req, |_, r| Ok(expect_ok(r)?))
    }

    fn update(
        &self,
        py: Python<'_>,
        index: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let req = Request::Update(Update {
            store: 0,
            index: index_arg(index)?,
            data: to_row(self.data_arg(data)?),
        });
        self.call(py, req, |_, r| Ok(expect_ok(r)?))
    }

    fn update_many(
        &self,
        py: Python<'_>,
        indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let indices = indices_arg(indices)?;
        if data.is_instance_of::<PyDict>() {
            return Err(AsebytesTypeError::new_err(
                "data must be a sequence of dicts, one per index",
            ));
        }
        let data: Vec<Row> = data
            .try_iter()
            .map_err(|_| {
                AsebytesTypeError::new_err(format!(
                    "data must be a sequence of dicts, not '{}'",
                    type_name(data)
                ))
            })?
            .map(|d| Ok(to_row(self.data_arg(&d?)?)))
            .collect::<PyResult<_>>()?;
        check_same_len("update_many", indices.len(), data.len())?;
        let req = Request::UpdateMany(UpdateMany {
            store: 0,
            indices,
            data,
        });
        self.call(py, req, |_, r| Ok(expect_ok(r)?))
    }

    fn delete(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<usize> {
        let req = Request::Delete(Delete {
            store: 0,
            index: index_arg(index)?,
        });
        len_out(self.call(py, req, |_, r| Ok(expect_len(r)?))?)
    }

    fn delete_range(
        &self,
        py: Python<'_>,
        start: &Bound<'_, PyAny>,
        stop: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let (start, stop) = (index_arg(start)?, index_arg(stop)?);
        let (Ok(ustart), Ok(ustop)) = (u64::try_from(start), u64::try_from(stop)) else {
            return Err(IndexOutOfRangeError::new_err(format!(
                "delete_range({start}, {stop}): bounds must be non-negative (normalise slices first)"
            )));
        };
        let req = Request::DeleteRange(DeleteRange {
            store: 0,
            start: ustart,
            stop: ustop,
        });
        len_out(self.call(py, req, |_, r| Ok(expect_len(r)?))?)
    }

    #[pyo3(signature = (keys, indices=None))]
    fn drop_keys(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        indices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let keys = keys_list(keys, |k| self.key(k))?;
        let indices = indices
            .filter(|i| !i.is_none())
            .map(indices_arg)
            .transpose()?;
        let req = Request::DropKeys(DropKeys {
            store: 0,
            keys,
            indices,
        });
        self.call(py, req, |_, r| Ok(expect_ok(r)?))
    }

    fn reserve(&self, py: Python<'_>, n: &Bound<'_, PyAny>) -> PyResult<usize> {
        let n = index_arg(n)?;
        let n = u64::try_from(n)
            .map_err(|_| AsebytesValueError::new_err(format!("reserve({n}): n must be >= 0")))?;
        let req = Request::Reserve(Reserve { store: 0, n });
        len_out(self.call(py, req, |_, r| Ok(expect_len(r)?))?)
    }

    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, Request::Clear(StoreRef { store: 0 }), |_, r| {
            Ok(expect_ok(r)?)
        })
    }

    fn remove(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, Request::Remove(StoreRef { store: 0 }), |_, r| {
            Ok(expect_ok(r)?)
        })?;
        // The daemon closed the store id; the next use opens (re-creates) it afresh.
        if let Some(st) = self.cached() {
            self.forget(st.id);
        }
        Ok(())
    }

    /// Tells the daemon this handle is done (best effort: a daemon that is gone has
    /// nothing to release). The handle stays usable; the next call re-opens.
    fn close(&self, py: Python<'_>) {
        let Some(st) = self.opened.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let Some(mut session) = Session::idle() else {
            return;
        };
        if session.epoch() == st.epoch {
            let _ = session.exchange(py, &Request::Close(StoreRef { store: st.id }));
        }
    }

    /// Pickles as "open the same store again": absolute location, group, flags, tier.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.get();
        let kwargs = PyDict::new(py);
        kwargs.set_item("group", this.group.as_deref())?;
        kwargs.set_item("readonly", this.readonly)?;
        kwargs.set_item("map_size", this.map_size)?;
        kwargs.set_item("tier", this.tier.name())?;
        // `partial` because the flags are keyword-only; it pickles by reference to the class.
        let partial = py.import("functools")?.getattr("partial")?;
        let ctor = partial.call((slf.get_type(), this.location.as_str()), Some(&kwargs))?;
        PyTuple::new(py, [ctor.into_any(), PyTuple::empty(py).into_any()])
    }

    fn __repr__(&self) -> String {
        let group = self
            .group
            .as_deref()
            .map(|g| format!(", group={g:?}"))
            .unwrap_or_default();
        format!(
            "Store({:?}{group}, tier={:?}{})",
            self.location,
            self.tier.name(),
            if self.readonly { ", readonly=True" } else { "" }
        )
    }
}
