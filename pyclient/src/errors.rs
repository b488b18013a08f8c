//! The one place where failures become Python exceptions.
//!
//! The exception classes live in pure Python (`asebytes/exceptions.py`) so they can inherit
//! from both `AsebytesError` and the builtin a user catches (`KeyError`, `IndexError`, ...);
//! the extension imports them instead of defining its own.

use std::path::{Path, PathBuf};

use asebytes_protocol::codec::Corrupt;
use asebytes_protocol::{ErrorCode, WireError};
use pyo3::{PyErr, PyResult};

pyo3::import_exception!(asebytes.exceptions, AsebytesError);
pyo3::import_exception!(asebytes.exceptions, KeyNotFoundError);
pyo3::import_exception!(asebytes.exceptions, IndexOutOfRangeError);
pyo3::import_exception!(asebytes.exceptions, AsebytesTypeError);
pyo3::import_exception!(asebytes.exceptions, AsebytesValueError);
pyo3::import_exception!(asebytes.exceptions, UnsupportedOperationError);
pyo3::import_exception!(asebytes.exceptions, ReadOnlyError);
pyo3::import_exception!(asebytes.exceptions, DaemonUnavailableError);
pyo3::import_exception!(asebytes.exceptions, ProtocolVersionError);
pyo3::import_exception!(asebytes.exceptions, DiskFullError);
pyo3::import_exception!(asebytes.exceptions, PermissionDeniedError);
pyo3::import_exception!(asebytes.exceptions, SourceNotFoundError);

/// `errno.ENOSPC` on Linux and macOS, which a `DiskFullError` carries as its `errno`.
const ENOSPC: i32 = 28;
/// `errno.ENOENT`, which a `SourceNotFoundError` carries.
const ENOENT: i32 = 2;

/// The reference's wording, which users' code and tests match on.
pub const READ_ONLY_MESSAGE: &str = "Backend is read-only";

/// Everything a daemon call can fail with, before it becomes a Python exception.
#[derive(Debug)]
pub enum ClientError {
    /// The daemon answered with a typed error.
    Wire(WireError),
    /// The daemon cannot be reached, started, or was lost mid-call.
    Unavailable {
        /// The socket we tried.
        socket: PathBuf,
        /// What went wrong, for the message.
        reason: String,
    },
    /// No connection could be made or the daemon could not be started; the message
    /// (from the launcher) names the socket and the log.
    Launch(String),
    /// The daemon sent something this client does not understand.
    Protocol(String),
    /// The request itself is unacceptable (refused before sending).
    Invalid(String),
}

impl ClientError {
    /// A connection failure on `socket`.
    pub fn unavailable(socket: &Path, reason: impl Into<String>) -> Self {
        Self::Unavailable {
            socket: socket.to_path_buf(),
            reason: reason.into(),
        }
    }
}

impl From<WireError> for ClientError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

impl From<ClientError> for PyErr {
    fn from(e: ClientError) -> Self {
        to_pyerr(e)
    }
}

/// Stored bytes that are not the msgpack-numpy layout: `AsebytesValueError`.
pub fn stored_corrupt(e: Corrupt) -> PyErr {
    AsebytesValueError::new_err(format!("cannot decode stored value: {}", e.0))
}

/// `?` for the protocol codec's [`Corrupt`] in code that returns `PyResult`.
pub trait OrRaise<T> {
    /// The value, or [`stored_corrupt`] of the error.
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for Result<T, Corrupt> {
    #[inline]
    fn or_raise(self) -> PyResult<T> {
        self.map_err(stored_corrupt)
    }
}

/// The mapping: one match over every error code and client failure.
pub fn to_pyerr(e: ClientError) -> PyErr {
    match e {
        ClientError::Wire(w) => match w.code {
            ErrorCode::NotFound => KeyNotFoundError::new_err(not_found_arg(&w)),
            ErrorCode::IndexOutOfRange => IndexOutOfRangeError::new_err(w.message),
            ErrorCode::TypeMismatch => AsebytesTypeError::new_err(w.message),
            ErrorCode::InvalidArgument => AsebytesValueError::new_err(w.message),
            ErrorCode::Unsupported => UnsupportedOperationError::new_err(w.message),
            ErrorCode::ReadOnly => ReadOnlyError::new_err(READ_ONLY_MESSAGE),
            ErrorCode::Unavailable => DaemonUnavailableError::new_err(w.message),
            ErrorCode::VersionMismatch => {
                ProtocolVersionError::new_err(version_message(&w.message))
            }
            // OSError(errno, strerror): `e.errno == errno.ENOSPC`, the message names the store.
            ErrorCode::DiskFull => DiskFullError::new_err((ENOSPC, w.message)),
            ErrorCode::PermissionDenied => PermissionDeniedError::new_err(w.message),
            ErrorCode::FileNotFound => SourceNotFoundError::new_err((ENOENT, w.message)),
            ErrorCode::AlreadyExists
            | ErrorCode::Corrupt
            | ErrorCode::Unexpected
            | ErrorCode::BadRequest
            | ErrorCode::UnknownStore
            | ErrorCode::FrameTooLarge
            | ErrorCode::ShuttingDown
            | ErrorCode::Unknown => AsebytesError::new_err(w.message),
        },
        ClientError::Unavailable { socket, reason } => {
            let log = asebytes_daemon::launcher::log_path(&socket);
            DaemonUnavailableError::new_err(format!(
                "asebytes daemon at socket {} is unavailable: {reason}. Its log is {}; \
                 `asebytesd status` shows whether it runs (set ASEBYTES_SOCKET to use another socket).",
                socket.display(),
                log.display()
            ))
        }
        ClientError::Launch(msg) => DaemonUnavailableError::new_err(msg),
        ClientError::Invalid(msg) => AsebytesValueError::new_err(msg),
        ClientError::Protocol(msg) => {
            AsebytesError::new_err(format!("unexpected reply from the asebytes daemon: {msg}"))
        }
    }
}

fn version_message(msg: &str) -> String {
    format!("{msg} (restart the daemon with `asebytesd stop`; the next use starts a matching one)")
}

/// `KeyError`'s argument: the key itself for one missing key, so `str(e)` is the quoted
/// key as with a dict; the full message for "Invalid keys at index i: [...]" and others.
fn not_found_arg(w: &WireError) -> String {
    match w.keys.as_deref() {
        Some([key]) if !w.message.starts_with("Invalid keys") => key.clone(),
        _ => w.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_missing_key_is_the_argument() {
        let w = WireError::not_found("column 'calc.x' not found", vec!["calc.x".into()]);
        assert_eq!(not_found_arg(&w), "calc.x");
    }

    #[test]
    fn invalid_keys_message_is_kept_whole() {
        let msg = "Invalid keys at index 3: ['a']";
        let w = WireError::not_found(msg, vec!["a".into()]);
        assert_eq!(not_found_arg(&w), msg);
        let w = WireError::not_found(
            "Invalid keys at index 0: ['a', 'b']",
            vec!["a".into(), "b".into()],
        );
        assert_eq!(not_found_arg(&w), "Invalid keys at index 0: ['a', 'b']");
        let w = WireError::new(ErrorCode::NotFound, "group 'g' not found");
        assert_eq!(not_found_arg(&w), "group 'g' not found");
    }
}
