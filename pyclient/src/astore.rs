//! `AsyncStore` and `Call`: the native half of the asyncio client.
//!
//! The asyncio transport (pure Python: one Unix-socket connection per event loop,
//! requests pipelined by envelope id) does all I/O. This half does everything else, with
//! the same code as the sync `Store`: both are [`StoreOps`], so an `AsyncStore` operation
//! validates its arguments exactly as `Store`'s and returns a `Call` without touching the
//! network; the transport asks the `Call` for its wire frame (`frame`) and hands the
//! reply body back (`finish`), which decodes it into exactly what the sync method returns,
//! or raises the same exception. When to re-open or resend is asked of the `Call` too
//! (`may_reopen`, `may_resend`): the sync client's [`Attempts`].
//!
//! Reads while nothing changed follow the sync client's rules too ([`crate::local`]): once
//! the transport has told the handle where its store's generation is published
//! (`attach`, after an `Open`), a `len` or a cached row is answered when the operation is
//! planned (`Call.local`, nothing to send), and a missed row of a walk becomes a batched
//! `GetMany` whose `finish` fills the handle's read-ahead cache.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use asebytes_protocol::published::SlotRef;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::args;
use crate::client::{self, Attempts, Reply};
use crate::errors::ClientError;
use crate::follow;
use crate::generation::{Seen, Watch};
use crate::local::{self, Fetch, Fill, Route};
use crate::ops::{self, Finish, Plan, Spec};
use crate::pool;
use crate::readahead::{Limits, ReadAhead};
use crate::surface::{Mode, StoreOps};
use crate::tier::{Outgoing, Tier};

/// A handle on one store for the asyncio client: [`StoreOps`] as `Call`s, plus `open`,
/// `close` and `attach`.
#[pyclass(frozen, subclass, extends = StoreOps, module = "asebytes._native", name = "AsyncStore")]
#[derive(Debug)]
pub struct AsyncStore;

/// What an `AsyncStore` keeps to answer reads locally: where its store's generation is
/// published (from the last `Open` the transport made, on any connection: the slot is the
/// store's, whichever connection opened it) and its read-ahead cache.
#[derive(Debug, Default)]
pub struct AsyncState {
    watched: Mutex<Option<Watched>>,
    ahead: Arc<ReadAhead>,
}

/// A store's published slot, and whether its backend decodes values (the tier its rows
/// are read in).
#[derive(Debug)]
struct Watched {
    watch: Watch,
    typed_values: bool,
}

impl AsyncState {
    fn lock(&self) -> MutexGuard<'_, Option<Watched>> {
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store was opened with `Opened.published` = `slot`.
    fn attach(&self, slot: Option<SlotRef>, typed_values: bool) {
        let watch = Watch::of(slot.filter(|_| Limits::get().shared));
        *self.lock() = watch.map(|watch| Watched {
            watch,
            typed_values,
        });
    }

    /// Forgets the slot (the store was removed; the next `attach` names the new one).
    pub(crate) fn forget(&self) {
        *self.lock() = None;
    }

    /// The store's published state now and whether it decodes values, if it can be trusted.
    fn published(&self) -> Option<(Seen, bool)> {
        let guard = self.lock();
        let w = guard.as_ref()?;
        Some((w.watch.now()?, w.typed_values))
    }

    /// The `Call` that carries out `plan`: answered already, a fetch that fills the
    /// cache, or the plan as it is.
    pub(crate) fn call(&self, py: Python<'_>, spec: &Spec, plan: Plan) -> PyResult<Call> {
        let Some((now, typed_values)) = self.published() else {
            return Ok(Call::new(plan, spec.tier));
        };
        match local::route(py, &self.ahead, now, spec.tier.on(typed_values), &plan) {
            Route::Done(done) => {
                let answer = PyTuple::new(py, [done?])?.unbind();
                let mut call = Call::new(plan, spec.tier);
                call.local = Some(answer);
                Ok(call)
            }
            Route::Fetch(fetch) => Ok(Call::fetching(plan, fetch, spec.tier)),
            Route::Send => Ok(Call::new(plan, spec.tier)),
        }
    }
}

/// One planned request of an `AsyncStore` and how to read its reply.
#[pyclass(frozen, module = "asebytes._native", name = "Call")]
#[derive(Debug)]
pub struct Call {
    /// `(result,)` when the call was answered without the daemon.
    local: Option<Py<PyTuple>>,
    finish: Finish,
    /// Behind a lock only because `frame` aims the request at a store before encoding; a
    /// call may be framed again (after a reconnect, with a new id and store).
    sending: Mutex<Sending>,
}

/// What a `Call` sends, and its state between attempts.
#[derive(Debug)]
struct Sending {
    out: Outgoing,
    /// The retry policy's state for this call, the sync client's ([`Attempts`]).
    attempts: Attempts,
    /// A read-ahead fetch: where its rows go.
    fill: Option<Fill>,
    /// A read-ahead batch: the `get` as planned, sent instead should the batch fail.
    planned: Option<Outgoing>,
}

impl Call {
    /// A call of `plan` for rows of `tier`.
    pub(crate) fn new(plan: Plan, tier: Tier) -> Self {
        Call {
            local: None,
            finish: plan.finish,
            sending: Mutex::new(Sending {
                out: Outgoing::new(plan.req, tier),
                attempts: Attempts::default(),
                fill: None,
                planned: None,
            }),
        }
    }

    /// A call that sends `fetch` for the `get` of `plan` and fills the cache.
    fn fetching(plan: Plan, fetch: Fetch, tier: Tier) -> Self {
        let Fetch { req, fill } = fetch;
        let planned = fill.is_batch().then(|| Outgoing::new(plan.req, tier));
        Call {
            local: None,
            finish: plan.finish,
            sending: Mutex::new(Sending {
                out: Outgoing::new(req, tier),
                attempts: Attempts::default(),
                fill: Some(fill),
                planned,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sending> {
        self.sending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The state of an `AsyncStore` (always built in async mode).
fn state<'a>(slf: &'a Bound<'_, AsyncStore>) -> &'a AsyncState {
    match &slf.as_super().get().mode {
        Mode::Async(state) => state,
        Mode::Sync(_) => unreachable!("AsyncStore is only constructed in async mode"),
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
    ) -> PyResult<PyClassInitializer<Self>> {
        let mode = Mode::Async(AsyncState::default());
        let base = StoreOps::from_args(location, group, readonly, map_size, options, tier, mode)?;
        Ok(PyClassInitializer::from(base).add_subclass(AsyncStore))
    }

    fn open(slf: &Bound<'_, Self>) -> Call {
        let spec = &slf.as_super().get().spec;
        Call::new(spec.open(), spec.tier)
    }

    fn close(slf: &Bound<'_, Self>) -> Call {
        let spec = &slf.as_super().get().spec;
        Call::new(spec.close(), spec.tier)
    }

    /// The transport opened the store: `published` is the `published` of `open()`'s
    /// result (`(index, tag, epoch)` or `None`), `typed_values` its capability. From now
    /// on `len` and cached rows are answered without the daemon while the store's
    /// generation is unchanged (unless `ASEBYTES_SHARED_GEN=0`).
    #[pyo3(signature = (published, typed_values))]
    fn attach(slf: &Bound<'_, Self>, published: Option<(u32, u64, u64)>, typed_values: bool) {
        let slot = published.map(|(index, tag, epoch)| SlotRef { index, tag, epoch });
        state(slf).attach(slot, typed_values);
    }
}

#[pymethods]
impl Call {
    /// `(result,)` if this call was answered without the daemon (the published length, a
    /// cached row): nothing to send. `None`: send it.
    #[getter]
    fn local<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyTuple>> {
        self.local.as_ref().map(|t| t.bind(py).clone())
    }

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
        let mut sending = self.lock();
        sending.out.aim(typed_values)?;
        let req = sending.out.req_mut();
        ops::set_store(req, store);
        let mut out = Vec::new();
        client::encode_request(&mut out, id, req, max)?;
        client::count_request();
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
            // The cache is filled under the lock; the result is built without it.
            let (tier, reply) = {
                let sending = self.lock();
                let reply = match &sending.fill {
                    None => reply,
                    Some(fill) => fill.take(reply)?,
                };
                (sending.out.tier(), reply)
            };
            self.finish.run(py, tier, reply)
        })
    }

    /// After this call failed: whether it was a read-ahead batch, now turned into the
    /// `get` as planned, to be sent again with a fresh retry policy (the sync client falls
    /// back the same way). Once per call.
    fn fall_back(&self) -> bool {
        let mut sending = self.lock();
        let Some(planned) = sending.planned.take() else {
            return false;
        };
        if let Some(fill) = sending.fill.take() {
            fill.missed();
        }
        sending.out = planned;
        sending.attempts = Attempts::default();
        true
    }

    /// Whether the request changes nothing, so resending it after a lost reply is safe.
    #[getter]
    fn is_read(&self) -> bool {
        client::is_read(self.lock().out.req())
    }

    /// Whether to re-open the store and send again after the daemon answered
    /// `UnknownStore` (once per call: the sync client's policy).
    fn may_reopen(&self) -> bool {
        self.lock().attempts.may_reopen()
    }

    /// Whether to send again on a fresh connection after the connection failed:
    /// `refused` when the daemon answered without running the request (shutting down);
    /// otherwise only a read may be resent. Once per call: the sync client's policy.
    fn may_resend(&self, refused: bool) -> bool {
        let mut guard = self.lock();
        let Sending { out, attempts, .. } = &mut *guard;
        attempts.may_resend_after(out.req(), refused)
    }

    /// Raises `UnsupportedOperationError` unless a daemon that negotiated `protocol`
    /// understands this request (checked by the transport before sending).
    fn check_protocol(&self, protocol: u32) -> PyResult<()> {
        follow::check_protocol(self.lock().out.req(), protocol)
    }

    /// The request's name (`get_many`, `extend`, ...), for messages.
    #[getter]
    fn name(&self) -> &'static str {
        self.lock().out.req().name()
    }

    fn __repr__(&self) -> String {
        format!("<Call {}>", self.name())
    }
}
