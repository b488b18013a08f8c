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

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::args;
use crate::client::{self, Attempts, Reply};
use crate::errors::ClientError;
use crate::follow;
use crate::ops::{self, Finish, Plan};
use crate::pool;
use crate::surface::{Mode, StoreOps};
use crate::tier::{Outgoing, Tier};

/// A handle on one store for the asyncio client: [`StoreOps`] as `Call`s, plus `open`
/// and `close`.
#[pyclass(frozen, subclass, extends = StoreOps, module = "asebytes._native", name = "AsyncStore")]
#[derive(Debug)]
pub struct AsyncStore;

/// One planned request of an `AsyncStore` and how to read its reply.
#[pyclass(frozen, module = "asebytes._native", name = "Call")]
#[derive(Debug)]
pub struct Call {
    /// Behind a lock only because `frame` aims it at a store before encoding; a call
    /// may be framed again (after a reconnect, with a new id and store).
    out: Mutex<Outgoing>,
    finish: Finish,
    /// The retry policy's state for this call, the sync client's ([`Attempts`]).
    attempts: Mutex<Attempts>,
}

impl Call {
    /// A call of `plan` for rows of `tier`.
    pub(crate) fn new(plan: Plan, tier: Tier) -> Self {
        Call {
            out: Mutex::new(Outgoing::new(plan.req, tier)),
            finish: plan.finish,
            attempts: Mutex::new(Attempts::default()),
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
    ) -> PyResult<PyClassInitializer<Self>> {
        let base = StoreOps::from_args(
            location,
            group,
            readonly,
            map_size,
            options,
            tier,
            Mode::Async,
        )?;
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

    /// Whether to re-open the store and send again after the daemon answered
    /// `UnknownStore` (once per call: the sync client's policy).
    fn may_reopen(&self) -> bool {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .may_reopen()
    }

    /// Whether to send again on a fresh connection after the connection failed:
    /// `refused` when the daemon answered without running the request (shutting down);
    /// otherwise only a read may be resent. Once per call: the sync client's policy.
    fn may_resend(&self, refused: bool) -> bool {
        let out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .may_resend_after(out.req(), refused)
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
