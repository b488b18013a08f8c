//! `AsyncStore` and `Call`: the native half of the asyncio client.
//!
//! The asyncio transport (pure Python: one Unix-socket connection per event loop,
//! requests pipelined by envelope id) does all I/O. This half does everything else, with
//! the same code as the sync `Store` ([`crate::ops`]): an `AsyncStore` method validates
//! its arguments and returns a `Call` without touching the network; the transport asks
//! the `Call` for its wire frame (`frame`) and hands the reply body back (`finish`), which
//! decodes it into exactly what the sync method returns, or raises the same exception.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::args;
use crate::client::{self, Reply};
use crate::errors::ClientError;
use crate::follow;
use crate::ops::{self, Finish, Plan, Spec};
use crate::pool;
use crate::tier::Outgoing;

/// A handle on one store for the asyncio client: `Store`'s operations as `Call`s.
#[pyclass(frozen, subclass, module = "asebytes._native", name = "AsyncStore")]
#[derive(Debug)]
pub struct AsyncStore {
    spec: Spec,
}

/// One planned request of an `AsyncStore` and how to read its reply.
#[pyclass(frozen, module = "asebytes._native", name = "Call")]
#[derive(Debug)]
pub struct Call {
    /// Behind a lock only because `frame` aims it at a store before encoding; a call
    /// may be framed again (after a reconnect, with a new id and store).
    out: Mutex<Outgoing>,
    finish: Finish,
}

impl AsyncStore {
    fn call(&self, plan: Plan) -> Call {
        Call {
            out: Mutex::new(Outgoing::new(plan.req, self.spec.tier)),
            finish: plan.finish,
        }
    }
}

#[pymethods]
impl AsyncStore {
    #[new]
    #[pyo3(signature = (location, *, group=None, readonly=false, map_size=None, options=None, tier="object"))]
    fn py_new(
        location: &Bound<'_, PyAny>,
        group: Option<String>,
        readonly: bool,
        map_size: Option<u64>,
        options: Option<&Bound<'_, PyDict>>,
        tier: &str,
    ) -> PyResult<Self> {
        Ok(Self {
            spec: Spec::from_args(location, group, readonly, map_size, options, tier)?,
        })
    }

    #[getter]
    fn location(&self) -> &str {
        &self.spec.location
    }

    #[getter]
    fn group(&self) -> Option<&str> {
        self.spec.group.as_deref()
    }

    #[getter]
    fn readonly(&self) -> bool {
        self.spec.readonly
    }

    #[getter]
    fn tier(&self) -> &'static str {
        self.spec.tier.name()
    }

    fn open(&self) -> Call {
        self.call(self.spec.open())
    }

    fn close(&self) -> Call {
        self.call(self.spec.close())
    }

    fn len(&self) -> Call {
        self.call(self.spec.len())
    }

    fn follow_wait(&self, seen: u64, timeout: f64) -> PyResult<Call> {
        Ok(self.call(self.spec.follow(seen, timeout)?))
    }

    #[pyo3(signature = (index, keys=None))]
    fn get(&self, index: &Bound<'_, PyAny>, keys: Option<&Bound<'_, PyAny>>) -> PyResult<Call> {
        Ok(self.call(self.spec.get(index, keys)?))
    }

    #[pyo3(signature = (indices, keys=None, missing_ok=true))]
    fn get_many(
        &self,
        indices: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.get_many(indices, keys, missing_ok)?))
    }

    #[pyo3(signature = (index, keys=None))]
    fn get_atoms(
        &self,
        index: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.get_atoms(index, keys)?))
    }

    #[pyo3(signature = (indices, keys=None, missing_ok=false))]
    fn get_atoms_many(
        &self,
        indices: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.get_atoms_many(indices, keys, missing_ok)?))
    }

    #[pyo3(signature = (key, indices=None))]
    fn get_column(
        &self,
        key: &Bound<'_, PyAny>,
        indices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.get_column(key, indices)?))
    }

    #[pyo3(signature = (key, indices=None))]
    fn get_column_numpy(
        &self,
        key: &Bound<'_, PyAny>,
        indices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.get_column_numpy(key, indices)?))
    }

    fn keys(&self, index: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.keys(index)?))
    }

    fn schema_keys(&self) -> Call {
        self.call(self.spec.schema_keys())
    }

    fn extend(&self, rows: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.extend(rows)?))
    }

    fn insert(&self, index: &Bound<'_, PyAny>, row: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.insert(index, row)?))
    }

    fn set(&self, index: &Bound<'_, PyAny>, row: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.set(index, row)?))
    }

    fn set_many(
        &self,
        start_or_indices: &Bound<'_, PyAny>,
        rows: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.set_many(start_or_indices, rows)?))
    }

    fn update(&self, index: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.update(index, data)?))
    }

    fn update_many(
        &self,
        start_or_indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.update_many(start_or_indices, data)?))
    }

    fn set_column(
        &self,
        key: &Bound<'_, PyAny>,
        start_or_indices: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.set_column(key, start_or_indices, values)?))
    }

    fn delete(&self, index: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.delete(index)?))
    }

    fn delete_range(&self, start: &Bound<'_, PyAny>, stop: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.delete_range("delete_range", start, stop)?))
    }

    fn delete_many(&self, start: &Bound<'_, PyAny>, stop: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.delete_range("delete_many", start, stop)?))
    }

    #[pyo3(signature = (keys, indices=None))]
    fn drop_keys(
        &self,
        keys: &Bound<'_, PyAny>,
        indices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Call> {
        Ok(self.call(self.spec.drop_keys(keys, indices)?))
    }

    fn reserve(&self, n: &Bound<'_, PyAny>) -> PyResult<Call> {
        Ok(self.call(self.spec.reserve(n)?))
    }

    fn clear(&self) -> Call {
        self.call(self.spec.clear())
    }

    fn remove(&self) -> Call {
        self.call(self.spec.remove())
    }

    /// Pickles as "open the same store again"; `type(self)`, so subclasses pickle too.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        slf.get().spec.reduce(slf.get_type())
    }

    fn __repr__(&self) -> String {
        self.spec.repr("AsyncStore")
    }
}

#[pymethods]
impl Call {
    /// The complete wire frame (length prefix included) of this request with envelope id
    /// `id`, aimed at store `store` (ignored by `open`) whose capabilities say
    /// `typed_values` (blob values then travel as bins). Refused with the sync client's
    /// `ValueError` if its body is over `max_frame` (default: this process's limit).
    #[pyo3(signature = (id, store, max_frame=None, typed_values=false))]
    fn frame<'py>(
        &self,
        py: Python<'py>,
        id: u64,
        store: u64,
        max_frame: Option<usize>,
        typed_values: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let max = max_frame.unwrap_or_else(pool::max_frame);
        let mut pending = self.out.lock().unwrap_or_else(|p| p.into_inner());
        pending.aim(typed_values)?;
        let req = pending.req_mut();
        ops::set_store(req, store);
        let mut out = Vec::new();
        client::encode_request(&mut out, id, req, max)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The result of this call from its reply body (the frame without its length prefix),
    /// given as `bytes` or any C-contiguous byte buffer (`bytearray`, `memoryview`), which
    /// is read in place and must not change during the call.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        frame: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        args::with_bytes(frame, |body| {
            let (_, reply) = client::parse_reply(body).map_err(|e| ClientError::Protocol(e.0))?;
            let reply = match reply {
                Reply::Error(e) => return Err(client::error_reply(e).into()),
                other => other,
            };
            let tier = self.out.lock().unwrap_or_else(|p| p.into_inner()).tier();
            self.finish.run(py, tier, reply)
        })
    }

    /// Whether the request changes nothing, so resending it after a lost reply is safe.
    #[getter]
    fn is_read(&self) -> bool {
        client::is_read(self.out.lock().unwrap_or_else(|p| p.into_inner()).req())
    }

    /// Raises `UnsupportedOperationError` unless a daemon that negotiated `protocol`
    /// understands this request (checked by the transport before sending).
    fn check_protocol(&self, protocol: u32) -> PyResult<()> {
        follow::check_protocol(
            self.out.lock().unwrap_or_else(|p| p.into_inner()).req(),
            protocol,
        )
    }

    /// The request's name (`get_many`, `extend`, ...), for messages.
    #[getter]
    fn name(&self) -> &'static str {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .req()
            .name()
    }

    fn __repr__(&self) -> String {
        format!("<Call {}>", self.name())
    }
}
