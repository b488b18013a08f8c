//! `Store`: a sync handle on one daemon-served store (location + group), the native
//! backend under the Python facades.
//!
//! A handle holds no file and no connection: it remembers how to open the store and the
//! daemon's answer (store id, canonical name, capabilities), opens lazily on first use, and
//! re-opens by itself when the daemon restarted (another epoch) or forgot the store
//! (`UnknownStore`). That is what lets handles pickle and survive `fork`.
//!
//! Its operations are [`StoreOps`]'s, shared with `AsyncStore`; a sync handle's
//! [`SyncState`] carries them out: the shared plan of [`crate::ops`], answered locally or
//! turned into a cache-filling fetch by the shared [`crate::local`] rules, sent through
//! [`SyncState::call`] over a pooled blocking connection, then the shared finish.

use std::sync::{Arc, Mutex};

use asebytes_protocol::request::StoreId;
use asebytes_protocol::{Capabilities, Request};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::client::{self, Attempts, Reply, Session, is_unknown_store, retriable};
use crate::finish::{Finish, expect_len};
use crate::follow;
use crate::generation::{Seen, Watch};
use crate::local::{self, Fetch, Route};
use crate::ops::{self, Plan, Spec};
use crate::pool::Epoch;
use crate::readahead::{Limits, ReadAhead};
use crate::surface::{Mode, StoreOps};
use crate::tier::{Outgoing, Tier};

/// The daemon's answer to `Open`, valid for one daemon epoch.
#[derive(Debug)]
struct OpenState {
    id: StoreId,
    canonical: String,
    backend: String,
    caps: Capabilities,
    epoch: Epoch,
    /// Where the daemon publishes the store's generation and length, if it does.
    watch: Option<Watch>,
}

/// Why a store could not be opened on a session.
enum OpenFail {
    /// The connection failed (maybe retriable).
    Conn(client::Failure),
    /// The daemon refused, or Python raised.
    Py(PyErr),
}

/// The open state of a sync handle: the daemon's answer to `Open`, kept while the
/// daemon's epoch lasts.
#[derive(Debug, Default)]
pub struct SyncState {
    opened: Mutex<Option<Arc<OpenState>>>,
    /// Rows read ahead or already read, served while the generation is unchanged.
    ahead: Arc<ReadAhead>,
}

impl SyncState {
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

    /// Forgets whatever open state there is (the store was removed).
    pub(crate) fn forget_current(&self) {
        if let Some(st) = self.cached() {
            self.forget(st.id);
        }
    }

    /// The open state valid on `session`'s daemon, opening the store if needed.
    fn ensure_open(
        &self,
        py: Python<'_>,
        spec: &Spec,
        session: &mut Session,
    ) -> Result<Arc<OpenState>, OpenFail> {
        if let Some(st) = self.cached()
            && st.epoch == session.epoch()
        {
            return Ok(st);
        }
        let epoch = session.epoch();
        let opened = match session.exchange(py, &spec.open_request()) {
            Ok(reply) => ops::expect_opened(reply).map_err(|e| OpenFail::Py(e.into()))?,
            Err(f) => return Err(OpenFail::Conn(f)),
        };
        let st = Arc::new(OpenState {
            id: opened.store,
            canonical: opened.canonical,
            backend: opened.backend,
            caps: opened.caps,
            epoch,
            watch: Watch::of(opened.published.filter(|_| Limits::get().shared)),
        });
        *self.opened.lock().unwrap_or_else(|p| p.into_inner()) = Some(st.clone());
        Ok(st)
    }

    /// Runs one store request: opens lazily, then follows the retry policy of
    /// [`Attempts`] (re-open once on `UnknownStore` or a new daemon, reconnect once when
    /// allowed), then `decode`s the reply with the GIL held, in the tier the store's rows
    /// take ([`Tier::on`]).
    fn call<'py, R>(
        &self,
        py: Python<'py>,
        spec: &Spec,
        req: Request,
        decode: impl FnOnce(Python<'py>, Tier, Reply<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut decode = Some(decode);
        let mut out = Outgoing::new(req, spec.tier);
        let mut attempts = Attempts::default();
        let mut session = Session::take(py)?;
        loop {
            let st = match self.ensure_open(py, spec, &mut session) {
                Ok(st) => st,
                Err(OpenFail::Conn(f)) if attempts.may_resend(&spec.open_request(), &f) => {
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
                Ok(Reply::Error(e)) if is_unknown_store(&e) && attempts.may_reopen() => {
                    self.forget(st.id);
                }
                Ok(reply) => {
                    let reply = reply.into_result()?;
                    return (decode.take().expect("decoded once"))(py, tier, reply);
                }
                Err(f) if attempts.may_resend(req, &f) => {
                    session = Session::fresh(py)?;
                }
                Err(f) => return Err(f.error.into()),
            }
        }
    }

    /// Sends a planned request and finishes its reply, unless [`local::route`] answers it
    /// here or sends a fetch that fills the read-ahead cache instead.
    pub(crate) fn run<'py>(
        &self,
        py: Python<'py>,
        spec: &Spec,
        plan: Plan,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some((st, now)) = self.published() {
            let tier = spec.tier.on(st.caps.typed_values);
            match local::route(py, &self.ahead, now, tier, &plan) {
                Route::Done(done) => return done,
                Route::Fetch(fetch) => {
                    if let Some(done) = self.fetch(py, spec, &plan.finish, fetch) {
                        return done;
                    }
                }
                Route::Send => {}
            }
        }
        let Plan { req, finish } = plan;
        self.call(py, spec, req, |py, tier, reply| finish.run(py, tier, reply))
    }

    /// The store's published generation and length now, if the daemon publishes them for
    /// this open and they can be trusted (see [`crate::generation`]).
    fn published(&self) -> Option<(Arc<OpenState>, Seen)> {
        let st = self.cached()?;
        let now = st.watch.as_ref()?.now()?;
        Some((st, now))
    }

    /// Sends `fetch` for a `get` and finishes the `get` from its reply; `None` when a
    /// batch failed (the `get` is then sent as planned).
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        spec: &Spec,
        finish: &Finish,
        fetch: Fetch,
    ) -> Option<PyResult<Bound<'py, PyAny>>> {
        let Fetch { req, fill } = fetch;
        let done = self.call(py, spec, req, |py, tier, reply| match fill.take(reply) {
            Ok(row) => finish.run(py, tier, row).map(Some),
            Err(_) if fill.is_batch() => Ok(None),
            Err(e) => Err(e.into()),
        });
        match done {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) | Err(_) if fill.is_batch() => {
                fill.missed();
                None
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn open_state(&self, py: Python<'_>, spec: &Spec) -> PyResult<Arc<OpenState>> {
        let mut session = Session::take(py)?;
        match self.ensure_open(py, spec, &mut session) {
            Ok(st) => Ok(st),
            Err(OpenFail::Conn(f)) if retriable(&spec.open_request(), &f) => {
                let mut session = Session::fresh(py)?;
                match self.ensure_open(py, spec, &mut session) {
                    Ok(st) => Ok(st),
                    Err(OpenFail::Conn(f)) => Err(f.error.into()),
                    Err(OpenFail::Py(e)) => Err(e),
                }
            }
            Err(OpenFail::Conn(f)) => Err(f.error.into()),
            Err(OpenFail::Py(e)) => Err(e),
        }
    }

    /// Tells the daemon this handle is done (best effort).
    fn close(&self, py: Python<'_>, spec: &Spec) {
        let Some(st) = self.opened.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let Some(mut session) = Session::idle() else {
            return;
        };
        if session.epoch() == st.epoch {
            let mut req = spec.close().req;
            ops::set_store(&mut req, st.id);
            let _ = session.exchange(py, &req);
        }
    }
}

/// A sync handle on one store served by the daemon: [`StoreOps`] sent at once, plus the
/// open state. See the `.pyi` for the Python contract.
#[pyclass(frozen, subclass, extends = StoreOps, module = "asebytes._native", name = "Store")]
#[derive(Debug)]
pub struct Store;

/// The base of a `Store` with its sync state (a `Store` is always built in sync mode).
fn parts<'a>(slf: &'a Bound<'_, Store>) -> (&'a Spec, &'a SyncState) {
    let ops: &StoreOps = slf.as_super().get();
    match &ops.mode {
        Mode::Sync(state) => (&ops.spec, state),
        Mode::Async(_) => unreachable!("Store is only constructed in sync mode"),
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
    ) -> PyResult<PyClassInitializer<Self>> {
        let mode = Mode::Sync(SyncState::default());
        let base = StoreOps::from_args(location, group, readonly, map_size, options, tier, mode)?;
        Ok(PyClassInitializer::from(base).add_subclass(Store))
    }

    #[getter]
    fn canonical(slf: &Bound<'_, Self>) -> PyResult<String> {
        let (spec, state) = parts(slf);
        Ok(state.open_state(slf.py(), spec)?.canonical.clone())
    }

    #[getter]
    fn backend_name(slf: &Bound<'_, Self>) -> PyResult<String> {
        let (spec, state) = parts(slf);
        Ok(state.open_state(slf.py(), spec)?.backend.clone())
    }

    #[getter]
    fn capabilities<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let (spec, state) = parts(slf);
        ops::capabilities_dict(slf.py(), &state.open_state(slf.py(), spec)?.caps)
    }

    fn __len__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let (spec, state) = parts(slf);
        if let Some((_, now)) = state.published() {
            return expect_len(Reply::Len(now.len));
        }
        state.call(slf.py(), spec, spec.len().req, |_, _, reply| {
            ops::expect_len(reply)
        })
    }

    /// Tells the daemon this handle is done (best effort: a daemon that is gone has
    /// nothing to release). The handle stays usable; the next call re-opens.
    fn close(slf: &Bound<'_, Self>) {
        let (spec, state) = parts(slf);
        state.close(slf.py(), spec);
    }
}
