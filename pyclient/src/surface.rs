//! `StoreOps`: every store operation, written once, for both native handles.
//!
//! `Store` (sync) and `AsyncStore` (asyncio) are two Python classes over this one base.
//! Each operation here plans its request with the shared [`crate::ops`] code and hands the
//! [`Plan`] to [`StoreOps::dispatch`]: a sync handle sends it and returns the result, an
//! async handle returns it as a [`Call`] for the asyncio transport to send. So both
//! surfaces accept the same arguments, raise the same errors before sending, and a new
//! operation is one method here (plus its line in the stub's `StoreOps`).
//!
//! What differs stays in the subclasses: `Store` has `__len__`, the open state
//! (`canonical`, `capabilities`) and a best-effort `close`; `AsyncStore` has `open` and
//! `close` as calls.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::astore::AsyncState;
use crate::ops::{Plan, Spec};
use crate::store::SyncState;

/// How a handle carries out a planned operation.
#[derive(Debug)]
pub enum Mode {
    /// Send it now over a pooled blocking connection (`Store`).
    Sync(SyncState),
    /// Return it as a `Call` for the asyncio transport (`AsyncStore`).
    Async(AsyncState),
}

/// The operations `Store` and `AsyncStore` share. See the `.pyi` for the Python contract.
#[pyclass(frozen, subclass, module = "asebytes._native", name = "StoreOps")]
#[derive(Debug)]
pub struct StoreOps {
    pub(crate) spec: Spec,
    pub(crate) mode: Mode,
}

impl StoreOps {
    /// A handle from the constructor arguments both subclasses take.
    pub(crate) fn from_args(
        location: &Bound<'_, PyAny>,
        group: Option<String>,
        readonly: bool,
        map_size: Option<u64>,
        options: Option<&Bound<'_, PyDict>>,
        tier: &str,
        mode: Mode,
    ) -> PyResult<Self> {
        Ok(Self {
            spec: Spec::from_args(location, group, readonly, map_size, options, tier)?,
            mode,
        })
    }

    /// Runs `plan` (sync) or returns it as a `Call` (async).
    fn dispatch<'py>(&self, py: Python<'py>, plan: Plan) -> PyResult<Bound<'py, PyAny>> {
        match &self.mode {
            Mode::Sync(state) => state.run(py, &self.spec, plan),
            Mode::Async(state) => Ok(Bound::new(py, state.call(py, &self.spec, plan)?)?.into_any()),
        }
    }

    fn class_name(&self) -> &'static str {
        match self.mode {
            Mode::Sync(_) => "Store",
            Mode::Async(_) => "AsyncStore",
        }
    }
}

#[pymethods]
impl StoreOps {
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

    fn len<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.len())
    }

    /// Waits up to `timeout` seconds (at most a minute, the daemon's cap) for the store to
    /// have more than `seen` rows; `(generation, len)` as soon as a commit makes it so, or
    /// at the timeout (then `len <= seen`). One `Follow` request.
    fn follow_wait<'py>(
        &self,
        py: Python<'py>,
        seen: u64,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.follow(seen, timeout)?)
    }

    #[pyo3(signature = (index, keys=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.get(index, keys)?)
    }

    #[pyo3(signature = (indices, keys=None, missing_ok=true))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        indices: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.get_many(indices, keys, missing_ok)?)
    }

    #[pyo3(signature = (index, keys=None))]
    fn get_atoms<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.get_atoms(index, keys)?)
    }

    #[pyo3(signature = (indices, keys=None, missing_ok=false))]
    fn get_atoms_many<'py>(
        &self,
        py: Python<'py>,
        indices: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.get_atoms_many(indices, keys, missing_ok)?)
    }

    #[pyo3(signature = (key, indices=None))]
    fn get_column<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        indices: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.get_column(key, indices)?)
    }

    #[pyo3(signature = (key, indices=None))]
    fn get_column_numpy<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        indices: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.get_column_numpy(key, indices)?)
    }

    fn keys<'py>(&self, py: Python<'py>, index: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.keys(index)?)
    }

    fn schema_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.schema_keys())
    }

    fn extend<'py>(
        &self,
        py: Python<'py>,
        rows: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.extend(rows)?)
    }

    fn insert<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        row: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.insert(index, row)?)
    }

    fn set<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        row: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.set(index, row)?)
    }

    fn set_many<'py>(
        &self,
        py: Python<'py>,
        start_or_indices: &Bound<'py, PyAny>,
        rows: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.set_many(start_or_indices, rows)?)
    }

    fn update<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.update(index, data)?)
    }

    fn update_many<'py>(
        &self,
        py: Python<'py>,
        start_or_indices: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.update_many(start_or_indices, data)?)
    }

    fn set_column<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        start_or_indices: &Bound<'py, PyAny>,
        values: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.set_column(key, start_or_indices, values)?)
    }

    fn delete<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.delete(index)?)
    }

    fn delete_range<'py>(
        &self,
        py: Python<'py>,
        start: &Bound<'py, PyAny>,
        stop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.delete_range("delete_range", start, stop)?)
    }

    fn delete_many<'py>(
        &self,
        py: Python<'py>,
        start: &Bound<'py, PyAny>,
        stop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.delete_range("delete_many", start, stop)?)
    }

    #[pyo3(signature = (keys, indices=None))]
    fn drop_keys<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        indices: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.drop_keys(keys, indices)?)
    }

    fn reserve<'py>(&self, py: Python<'py>, n: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.reserve(n)?)
    }

    fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dispatch(py, self.spec.clear())
    }

    /// Removes the container. The daemon closes the store id, so a sync handle forgets its
    /// open state (the next use opens, i.e. re-creates, it afresh); the asyncio transport
    /// does the same for its connection when the call completes. Either forgets where the
    /// store's generation was published.
    fn remove<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let done = self.dispatch(py, self.spec.remove())?;
        match &self.mode {
            Mode::Sync(state) => state.forget_current(),
            Mode::Async(state) => state.forget(),
        }
        Ok(done)
    }

    /// Pickles as "open the same store again"; `type(self)`, so subclasses pickle too.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        slf.get().spec.reduce(slf.get_type())
    }

    fn __repr__(&self) -> String {
        self.spec.repr(self.class_name())
    }
}
