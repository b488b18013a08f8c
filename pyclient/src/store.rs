//! `Store`: a sync handle on one daemon-served store (location + group), the native
//! backend under the Python facades.
//!
//! A handle holds no file and no connection: it remembers how to open the store and the
//! daemon's answer (store id, canonical name, capabilities), opens lazily on first use, and
//! re-opens by itself when the daemon restarted (another epoch) or forgot the store
//! (`UnknownStore`). That is what lets handles pickle and survive `fork`.
//!
//! Each method is the shared plan of [`crate::ops`], sent through [`Store::call`] over a
//! pooled blocking connection, then the shared finish.

use std::sync::{Arc, Mutex};

use asebytes_protocol::request::StoreId;
use asebytes_protocol::{Capabilities, Request};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::client::{self, Reply, Session, is_unknown_store, retriable};
use crate::follow;
use crate::ops::{self, Plan, Spec};
use crate::pool::Epoch;
use crate::tier::{Outgoing, Tier};

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
    spec: Spec,
    opened: Mutex<Option<Arc<OpenState>>>,
}

impl Store {
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
        let opened = match session.exchange(py, &self.spec.open_request()) {
            Ok(reply) => ops::expect_opened(reply).map_err(|e| OpenFail::Py(e.into()))?,
            Err(f) => return Err(OpenFail::Conn(f)),
        };
        let st = Arc::new(OpenState {
            id: opened.store,
            canonical: opened.canonical,
            backend: opened.backend,
            caps: opened.caps,
            epoch,
        });
        *self.opened.lock().unwrap_or_else(|p| p.into_inner()) = Some(st.clone());
        Ok(st)
    }

    /// Runs one store request: opens lazily, re-opens once on `UnknownStore` or a new
    /// daemon, reconnects once when allowed (see [`client`]), then `decode`s the reply
    /// with the GIL held, in the tier the store's rows take ([`Tier::on`]).
    fn call<'py, R>(
        &self,
        py: Python<'py>,
        req: Request,
        decode: impl FnOnce(Python<'py>, Tier, Reply<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut decode = Some(decode);
        let mut out = Outgoing::new(req, self.spec.tier);
        let mut reconnected = false;
        let mut reopened = false;
        let mut session = Session::take(py)?;
        loop {
            let st = match self.ensure_open(py, &mut session) {
                Ok(st) => st,
                Err(OpenFail::Conn(f))
                    if !reconnected && retriable(&self.spec.open_request(), &f) =>
                {
                    reconnected = true;
                    session = Session::fresh(py)?;
                    continue;
                }
                Err(OpenFail::Conn(f)) => return Err(f.error.into()),
                Err(OpenFail::Py(e)) => return Err(e),
            };
            let tier = out.aim(st.caps.typed_values)?;
            let req = out.req_mut();
            ops::set_store(req, st.id);
            follow::check_protocol(req, session.protocol())?;
            match session.exchange(py, req) {
                Ok(Reply::Error(e)) if is_unknown_store(&e) && !reopened => {
                    reopened = true;
                    self.forget(st.id);
                }
                Ok(reply) => {
                    let reply = reply.into_result()?;
                    return (decode.take().expect("decoded once"))(py, tier, reply);
                }
                Err(f) if !reconnected && retriable(req, &f) => {
                    reconnected = true;
                    session = Session::fresh(py)?;
                }
                Err(f) => return Err(f.error.into()),
            }
        }
    }

    /// Sends a planned request and finishes its reply.
    fn run<'py>(&self, py: Python<'py>, plan: Plan) -> PyResult<Bound<'py, PyAny>> {
        let Plan { req, finish } = plan;
        self.call(py, req, |py, tier, reply| finish.run(py, tier, reply))
    }

    fn open_state(&self, py: Python<'_>) -> PyResult<Arc<OpenState>> {
        let mut session = Session::take(py)?;
        match self.ensure_open(py, &mut session) {
            Ok(st) => Ok(st),
            Err(OpenFail::Conn(f)) if retriable(&self.spec.open_request(), &f) => {
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
}

#[pymethods]
impl Store {
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
            opened: Mutex::new(None),
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
        ops::capabilities_dict(py, &self.open_state(py)?.caps)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.call(py, self.spec.len().req, |_, _, reply| {
            ops::expect_len(reply)
        })
    }

    fn len<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.len())
    }

    #[pyo3(signature = (index, keys=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.get(index, keys)?)
    }

    #[pyo3(signature = (indices, keys=None, missing_ok=true))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        indices: &Bound<'py, PyAny>,
        keys: Option<&Bound<'py, PyAny>>,
        missing_ok: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.get_many(indices, keys, missing_ok)?)
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
        self.run(py, self.spec.get_atoms(index, keys)?)
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
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.get_atoms_many(indices, keys, missing_ok)?)
    }

    #[pyo3(signature = (key, indices=None))]
    fn get_column<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        indices: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.get_column(key, indices)?)
    }

    /// One column as one packed array (`to_numpy()`), from one `GetColumn` request.
    #[pyo3(signature = (key, indices=None))]
    fn get_column_numpy<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        indices: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.get_column_numpy(key, indices)?)
    }

    fn keys<'py>(&self, py: Python<'py>, index: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.keys(index)?)
    }

    fn schema_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.schema_keys())
    }

    fn extend<'py>(
        &self,
        py: Python<'py>,
        rows: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.extend(rows)?)
    }

    fn insert<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        row: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.insert(index, row)?)
    }

    fn set<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        row: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.set(index, row)?)
    }

    fn set_many<'py>(
        &self,
        py: Python<'py>,
        start_or_indices: &Bound<'py, PyAny>,
        rows: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.set_many(start_or_indices, rows)?)
    }

    fn update<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.update(index, data)?)
    }

    fn update_many<'py>(
        &self,
        py: Python<'py>,
        start_or_indices: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.update_many(start_or_indices, data)?)
    }

    fn set_column<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        start_or_indices: &Bound<'py, PyAny>,
        values: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.set_column(key, start_or_indices, values)?)
    }

    fn delete<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.delete(index)?)
    }

    fn delete_range<'py>(
        &self,
        py: Python<'py>,
        start: &Bound<'py, PyAny>,
        stop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.delete_range("delete_range", start, stop)?)
    }

    fn delete_many<'py>(
        &self,
        py: Python<'py>,
        start: &Bound<'py, PyAny>,
        stop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.delete_range("delete_many", start, stop)?)
    }

    #[pyo3(signature = (keys, indices=None))]
    fn drop_keys<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        indices: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.drop_keys(keys, indices)?)
    }

    fn reserve<'py>(&self, py: Python<'py>, n: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.reserve(n)?)
    }

    fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.clear())
    }

    fn remove<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let done = self.run(py, self.spec.remove())?;
        // The daemon closed the store id; the next use opens (re-creates) it afresh.
        if let Some(st) = self.cached() {
            self.forget(st.id);
        }
        Ok(done)
    }

    /// Waits up to `timeout` seconds (at most a minute, the daemon's cap) for the store to
    /// have more than `seen` rows; returns `(generation, len)` as soon as a commit makes it
    /// so, or at the timeout (then `len <= seen`). One `Follow` request.
    fn follow_wait<'py>(
        &self,
        py: Python<'py>,
        seen: u64,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, self.spec.follow(seen, timeout)?)
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
            let mut req = self.spec.close().req;
            ops::set_store(&mut req, st.id);
            let _ = session.exchange(py, &req);
        }
    }

    /// Pickles as "open the same store again"; `type(self)`, so subclasses pickle too.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        slf.get().spec.reduce(slf.get_type())
    }

    fn __repr__(&self) -> String {
        self.spec.repr("Store")
    }
}
