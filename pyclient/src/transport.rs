//! What the asyncio transport needs besides `Call`s: the handshake frames, a cheap look
//! at a reply's header, and a running daemon's socket.
//!
//! Each reuses the sync client's own piece (the launcher's `Hello`, the pool's socket and
//! frame limit, the launcher's error mapping), so both clients speak and fail alike.

use asebytes_daemon::launcher::{self, LaunchError};
use asebytes_protocol::frame::{self, HANDSHAKE_MAX_FRAME_LEN};
use asebytes_protocol::{Hello, HelloReply};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::args::with_bytes;
use crate::client;
use crate::errors::ClientError;
use crate::pool;

/// The complete `Hello` frame (length prefix included), exactly what the sync client sends.
#[pyfunction]
pub fn hello_frame(py: Python<'_>) -> PyResult<Bound<'_, PyBytes>> {
    let hello = Hello::current(asebytes_daemon::BUILD_ID);
    let bytes = frame::encode(0, &hello)
        .map_err(|e| ClientError::Protocol(format!("cannot encode Hello: {e}")))?;
    Ok(PyBytes::new(py, &bytes))
}

/// The daemon's answer to `Hello` (body without its prefix): a dict with `max_frame` (the
/// frame limit to use from now on), `protocol`, `daemon_version`, `build_id`, `pid`,
/// `started_at` and `epoch` (`(pid, started_at)`: another value means another daemon, whose
/// store ids are meaningless). A refusal raises what the sync client raises.
#[pyfunction]
pub fn finish_hello<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let reply = with_bytes(frame, |body| {
        if body.len() > HANDSHAKE_MAX_FRAME_LEN {
            return Err(handshake_broken(asebytes_protocol::Error::FrameTooLarge {
                len: body.len(),
                max: HANDSHAKE_MAX_FRAME_LEN,
            }));
        }
        frame::decode::<HelloReply>(body).map_err(handshake_broken)
    })?;
    let welcome = match reply.body {
        HelloReply::Welcome(w) => w,
        HelloReply::Refused(e) => return Err(pool::launch_error(LaunchError::Refused(e)).into()),
    };
    let d = PyDict::new(py);
    d.set_item("max_frame", pool::max_frame())?;
    d.set_item("protocol", welcome.protocol)?;
    d.set_item("daemon_version", welcome.daemon_version)?;
    d.set_item("build_id", welcome.build_id)?;
    d.set_item("pid", welcome.pid)?;
    d.set_item("started_at", welcome.started_at)?;
    d.set_item("epoch", (welcome.pid, welcome.started_at))?;
    Ok(d)
}

/// A handshake reply that is not one, reported as the sync client's launcher does.
fn handshake_broken(source: asebytes_protocol::Error) -> PyErr {
    let socket = pool::socket();
    let log = launcher::log_path(&socket);
    pool::launch_error(LaunchError::Protocol {
        socket,
        log,
        source,
    })
    .into()
}

/// `(envelope id, is an UnknownStore error)` of a reply body, without decoding the rest.
#[pyfunction]
pub fn reply_header(frame: &Bound<'_, PyAny>) -> PyResult<(u64, bool)> {
    with_bytes(frame, |body| {
        client::reply_header(body).map_err(|e| ClientError::Protocol(e.0).into())
    })
}

/// Makes sure a daemon answers on this process's socket (starting one as the sync client
/// does) and returns the socket's absolute path.
#[pyfunction]
pub fn ensure_daemon(py: Python<'_>) -> PyResult<String> {
    client::ping(py)?;
    let socket = asebytes_daemon::paths::absolute(&pool::socket());
    Ok(socket.to_string_lossy().into_owned())
}
