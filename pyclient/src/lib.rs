//! `asebytes._native`: the Rust half of the Python package.
//!
//! - [`store`]: `Store`, the daemon-backed backend under the Python facades.
//! - [`astore`] / [`transport`]: `AsyncStore` and `Call`, the native half of the asyncio
//!   client (plans and decodes; the asyncio transport does the I/O).
//! - [`ops`]: every operation as plan (arguments → request) and finish (reply → result),
//!   shared by both; [`args`] parses arguments, [`column`] packs columns for `to_numpy()`.
//! - [`tier`]: object and blob rows, and the blob tier on stores that decode values.
//! - [`codec`]: the msgpack-numpy field codec (byte-compatible with the reference).
//! - [`atoms`]: `ase.Atoms` built natively from stored rows (what ASEIO reads return).
//! - [`client`] / [`pool`] / [`reply`]: request/response over pooled, fork-safe connections,
//!   replies read without copying.
//! - [`follow`]: the live-follow request and its protocol check.
//! - [`generation`] / [`readahead`] / [`local`]: `len` and rows without a round trip while
//!   the store's published commit generation is unchanged, for both clients.
//! - [`errors`]: the one mapping from failures to the exceptions of `asebytes.exceptions`.
//! - [`detach`]: GIL release around blocking I/O.
//!
//! The daemon itself is linked in too (`daemon_main`), so `python -m asebytes.daemon run`
//! runs the same code as the standalone `asebytesd` and a wheel is self-contained.

pub mod args;
pub mod ase_api;
pub mod astore;
pub mod atoms;
pub mod atoms_row;
pub mod client;
pub mod codec;
pub mod column;
pub mod detach;
pub mod errors;
pub mod finish;
pub mod follow;
pub mod generation;
pub mod local;
pub mod ops;
pub mod pool;
pub mod readahead;
pub mod reply;
pub mod store;
pub mod surface;
pub mod tier;
pub mod transport;

use std::borrow::Cow;
use std::ffi::OsString;

use asebytes_protocol::Request;
use asebytes_protocol::Response;
use asebytes_protocol::request::ListGroups;
use asebytes_protocol::response::Status;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::client::Reply;
use crate::errors::{AsebytesTypeError, ClientError};

fn unexpected(reply: &Reply<'_>) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {}", reply.name()))
}

/// Groups that exist at a location.
#[pyfunction]
fn list_groups(py: Python<'_>, location: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let req = Request::ListGroups(ListGroups {
        location: args::normalize_location(location)?,
    });
    Ok(client::call(py, &req, |reply| match reply {
        Reply::Other(Response::Groups(g)) => Ok(g),
        other => Err(unexpected(&other)),
    })?)
}

/// The backend table of the daemon this extension carries: one dict per backend with
/// `scheme`, `label`, `patterns`, `location` (`"file"`, `"name"` or `"url"`) and `options`, in
/// matching order. The Python registry resolves locations from it.
#[pyfunction]
fn backends(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    use asebytes_daemon::backend::{BACKENDS, LocationKind};
    let out = PyList::empty(py);
    for e in BACKENDS {
        let d = PyDict::new(py);
        d.set_item("scheme", e.scheme)?;
        d.set_item("label", e.label)?;
        d.set_item("patterns", e.patterns.to_vec())?;
        let kind = match e.location {
            LocationKind::File => "file",
            LocationKind::Name => "name",
            LocationKind::Url => "url",
            LocationKind::Shards => "shards",
        };
        d.set_item("location", kind)?;
        d.set_item("options", e.options.to_vec())?;
        d.set_item("sniffed_patterns", e.sniffed_patterns.to_vec())?;
        out.append(d)?;
    }
    Ok(out)
}

/// Whether backend `scheme` claims the existing file `path` by its content (the table's
/// sniff, e.g. H5MD content in a `*.h5`); `False` for backends without one.
#[pyfunction]
fn sniff(py: Python<'_>, scheme: &str, path: &str) -> bool {
    use asebytes_daemon::backend::table;
    py.detach(|| {
        table::by_scheme(scheme)
            .and_then(|e| e.sniff)
            .is_some_and(|f| f(std::path::Path::new(path)))
    })
}

/// One value in the msgpack-numpy layout; errors name `key`.
#[pyfunction]
#[pyo3(signature = (value, key=""))]
fn encode_value<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    key: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &codec::encode(value, key)?))
}

/// One stored value back to Python (writable numpy arrays, never unpickles).
#[pyfunction]
fn decode_value<'py>(py: Python<'py>, data: Cow<'_, [u8]>) -> PyResult<Bound<'py, PyAny>> {
    codec::decode(py, &data)
}

/// `dict[str, Any]` → `dict[bytes, bytes]`, field by field.
#[pyfunction]
fn encode_row<'py>(py: Python<'py>, row: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (k, v) in codec::encode_row(row)? {
        out.set_item(PyBytes::new(py, &k), PyBytes::new(py, &v))?;
    }
    Ok(out)
}

/// `ase.Atoms` → `dict[bytes, bytes]` (the stored row), converted in Rust from the Atoms'
/// arrays: byte-identical to `encode_row(atoms_to_dict(atoms))`.
#[pyfunction]
fn encode_atoms<'py>(py: Python<'py>, atoms: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (k, v) in atoms_row::encode_atoms(atoms)? {
        out.set_item(PyBytes::new(py, &k), PyBytes::new(py, &v))?;
    }
    Ok(out)
}

/// `dict[bytes, bytes]` → `dict[str, Any]`, field by field (str keys are accepted too).
#[pyfunction]
fn decode_row<'py>(py: Python<'py>, row: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    with_row_fields(row, "decode_row", |fields| {
        codec::decode_row(py, fields.iter().copied())
    })
}

/// `dict[bytes, bytes]` (an encoded ASE row) → `ase.Atoms`, built natively.
#[pyfunction]
fn decode_atoms<'py>(py: Python<'py>, row: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    with_row_fields(row, "decode_atoms", |fields| atoms::build(py, fields))
}

/// Runs `f` on the fields of an encoded row given as a dict (bytes or str keys).
fn with_row_fields<R>(
    row: &Bound<'_, PyAny>,
    what: &str,
    f: impl FnOnce(&[(&[u8], &[u8])]) -> PyResult<R>,
) -> PyResult<R> {
    let dict = row
        .cast::<PyDict>()
        .map_err(|_| AsebytesTypeError::new_err(format!("{what} expects a dict[bytes, bytes]")))?;
    type Owned<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);
    let mut fields: Vec<Owned<'_>> = Vec::with_capacity(dict.len());
    let items: Vec<_> = dict.iter().collect();
    for (k, v) in &items {
        let key: Cow<'_, [u8]> = if let Ok(b) = k.cast::<PyBytes>() {
            Cow::Borrowed(b.as_bytes())
        } else if let Ok(s) = k.cast::<PyString>() {
            Cow::Owned(codec::key_utf8(s)?.to_vec())
        } else {
            return Err(AsebytesTypeError::new_err(format!(
                "row keys must be bytes, got {}",
                k.get_type().name()?
            )));
        };
        let value: Cow<'_, [u8]> = v.extract().map_err(|_| {
            AsebytesTypeError::new_err(format!(
                "row values must be bytes, got {}",
                v.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        fields.push((key, value));
    }
    let borrowed: Vec<(&[u8], &[u8])> = fields
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    f(&borrowed)
}

/// Round trip to the daemon (starting it if needed).
#[pyfunction]
fn ping(py: Python<'_>) -> PyResult<()> {
    Ok(client::ping(py)?)
}

/// The daemon's status as a dict (what `asebytesd status` prints).
#[pyfunction]
fn daemon_status<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let status = client::call(py, &Request::Status, |reply| match reply {
        Reply::Other(Response::Status(s)) => Ok(s),
        other => Err(unexpected(&other)),
    })?;
    status_dict(py, status)
}

fn status_dict<'py>(py: Python<'py>, s: Status) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", s.version)?;
    d.set_item("protocol", s.protocol)?;
    d.set_item("pid", s.pid)?;
    d.set_item("uptime_secs", s.uptime_secs)?;
    d.set_item("clients", s.clients)?;
    d.set_item("socket", s.socket)?;
    d.set_item("idle_timeout_secs", s.idle_timeout_secs)?;
    let stores = PyList::empty(py);
    for st in s.stores {
        let e = PyDict::new(py);
        e.set_item("canonical", st.canonical)?;
        e.set_item("backend", st.backend)?;
        e.set_item("len", st.len)?;
        e.set_item("clients", st.clients)?;
        e.set_item("commits", st.commits)?;
        e.set_item("released", st.released)?;
        e.set_item("idle_secs", st.idle_secs)?;
        e.set_item("in_flight", st.in_flight)?;
        e.set_item("queued", st.queued)?;
        e.set_item("followers", st.followers)?;
        e.set_item("space_used", st.space_used)?;
        e.set_item("space_reserved", st.space_reserved)?;
        e.set_item("cache_fills", st.cache_fills)?;
        stores.append(e)?;
    }
    d.set_item("stores", stores)?;
    d.set_item("store_idle_secs", s.store_idle_secs)?;
    let connections = PyList::empty(py);
    for c in s.connections {
        let e = PyDict::new(py);
        e.set_item("conn", c.conn)?;
        e.set_item("pid", c.pid)?;
        e.set_item("program", c.program)?;
        e.set_item("since", c.since)?;
        e.set_item("stores", c.stores)?;
        connections.append(e)?;
    }
    d.set_item("connections", connections)?;
    Ok(d)
}

/// Runs the daemon CLI (`argv[0]` is the program name) with the GIL released; blocks for
/// `run` until the daemon exits. Returns the exit status. `start` and `install-service` run
/// the daemon as `<sys.executable> -m asebytes.daemon`, never as `current_exe()`, which in
/// a virtualenv resolves to the base interpreter.
#[pyfunction]
fn daemon_main(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    let command = pool::interpreter_daemon_command();
    detach::blocking(py, move || {
        asebytes_daemon::cli::main_with_args_as(argv, &command)
    })
}

/// Requests this process has sent to the daemon, over sync handles and asyncio calls (a
/// diagnostic: `len()` and rows served while nothing changed send none).
#[pyfunction]
fn round_trips() -> u64 {
    client::round_trips()
}

/// The socket this process talks to.
#[pyfunction]
fn socket_path() -> String {
    pool::socket().to_string_lossy().into_owned()
}

/// `location` with passwords and tokens hidden, as every message and `repr` shows it.
#[pyfunction]
fn redact_location(location: &str) -> String {
    asebytes_protocol::redact::redact(location).into_owned()
}

/// The command that starts a daemon when none answers; `--socket <path>` is appended
/// unless it is already there.
#[pyfunction]
fn set_daemon_command(argv: Vec<OsString>) -> PyResult<()> {
    if argv.is_empty() {
        return Err(errors::AsebytesValueError::new_err(
            "the daemon command must not be empty",
        ));
    }
    pool::set_daemon_command(argv);
    Ok(())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    if let Ok(exe) = py
        .import("sys")?
        .getattr("executable")?
        .extract::<OsString>()
        && !exe.is_empty()
    {
        pool::set_default_interpreter(exe);
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The stub's `Tier` alias, present at runtime too so annotations can use it.
    // Spelled as a Union of one-value Literals, which is what the stub's alias means.
    let typing = py.import("typing")?;
    let literal = typing.getattr("Literal")?;
    let tier = typing
        .getattr("Union")?
        .get_item((literal.get_item("object")?, literal.get_item("blob")?))?;
    m.add("Tier", tier)?;
    m.add_class::<surface::StoreOps>()?;
    m.add_class::<store::Store>()?;
    m.add_class::<astore::AsyncStore>()?;
    m.add_class::<astore::Call>()?;
    m.add_function(wrap_pyfunction!(transport::hello_frame, m)?)?;
    m.add_function(wrap_pyfunction!(transport::finish_hello, m)?)?;
    m.add_function(wrap_pyfunction!(transport::reply_header, m)?)?;
    m.add_function(wrap_pyfunction!(transport::ensure_daemon, m)?)?;
    m.add_function(wrap_pyfunction!(list_groups, m)?)?;
    m.add_function(wrap_pyfunction!(sniff, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add_function(wrap_pyfunction!(encode_value, m)?)?;
    m.add_function(wrap_pyfunction!(decode_value, m)?)?;
    m.add_function(wrap_pyfunction!(encode_row, m)?)?;
    m.add_function(wrap_pyfunction!(encode_atoms, m)?)?;
    m.add_function(wrap_pyfunction!(decode_row, m)?)?;
    m.add_function(wrap_pyfunction!(decode_atoms, m)?)?;
    m.add_function(wrap_pyfunction!(ping, m)?)?;
    m.add_function(wrap_pyfunction!(daemon_status, m)?)?;
    m.add_function(wrap_pyfunction!(daemon_main, m)?)?;
    m.add_function(wrap_pyfunction!(socket_path, m)?)?;
    m.add_function(wrap_pyfunction!(round_trips, m)?)?;
    m.add_function(wrap_pyfunction!(redact_location, m)?)?;
    m.add_function(wrap_pyfunction!(set_daemon_command, m)?)?;
    Ok(())
}
