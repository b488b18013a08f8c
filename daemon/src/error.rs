//! The daemon's error type: what the layers above the store (server, connection, registry,
//! configuration) fail with, and its one mapping to a wire [`ErrorCode`].
//!
//! Backend failures arrive already classified ([`crate::backend::Error`]) and keep their
//! kind; store-layer failures arrive as [`WireError`]s and pass through unchanged.

use std::io;
use std::path::PathBuf;

use asebytes_protocol::request::StoreId;
use asebytes_protocol::{ErrorCode, WireError};

/// Everything that can go wrong above the store layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed; `context` says what the daemon was doing.
    #[error("{context}: {source}")]
    Io {
        /// What the daemon was doing.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Framing or (de)serialization failed.
    #[error(transparent)]
    Protocol(#[from] asebytes_protocol::Error),
    /// A backend failed to open or list a location.
    #[error(transparent)]
    Backend(#[from] crate::backend::Error),
    /// The store layer answered with an error.
    #[error("{}", .0.message)]
    Store(WireError),
    /// A setting (environment variable or flag) has an invalid value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The socket directory is not private to this user.
    #[error(
        "refusing to use {dir}: {reason}; point ASEBYTES_SOCKET at a socket in a directory only you can write"
    )]
    InsecureDir {
        /// The directory.
        dir: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// No backend handles this location.
    #[error("No backend registered for '{location}'; known: {known}")]
    UnknownBackend {
        /// The location as the client sent it.
        location: String,
        /// What this build can open (from the backend table).
        known: String,
    },
    /// `Open` carried options the backend does not take.
    #[error(
        "unexpected option(s) for the {backend} backend: {}; it accepts: {}",
        .unknown.join(", "),
        if .accepted.is_empty() { "no options".to_string() } else { .accepted.join(", ") }
    )]
    UnknownOptions {
        /// The backend's label.
        backend: &'static str,
        /// The names it does not know, sorted.
        unknown: Vec<String>,
        /// What it accepts.
        accepted: &'static [&'static str],
    },
    /// The location is malformed (relative path, empty name, ...).
    #[error("invalid location '{location}': {reason}")]
    InvalidLocation {
        /// The location as the client sent it.
        location: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A store id that is not (or no longer) open.
    #[error(
        "store {0} is not open in this daemon (it was closed or the daemon restarted); open it again"
    )]
    UnknownStore(StoreId),
    /// A writable open of a store the daemon could only open read-only.
    #[error("{canonical} can only be opened read-only: {reason}")]
    ReadOnlyStore {
        /// Canonical store key.
        canonical: String,
        /// Why a writable open failed.
        reason: String,
    },
    /// The daemon is shutting down and takes no new work.
    #[error("the asebytes daemon is shutting down; retry in a moment")]
    ShuttingDown,
}

impl Error {
    /// An [`Error::Io`] with what the daemon was doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The wire code a client sees for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Io { .. } => ErrorCode::Unexpected,
            Error::Protocol(asebytes_protocol::Error::FrameTooLarge { .. }) => {
                ErrorCode::FrameTooLarge
            }
            Error::Protocol(_) => ErrorCode::BadRequest,
            Error::Backend(e) => e.kind.code(),
            Error::Store(e) => e.code,
            Error::Config(_) | Error::InvalidLocation { .. } => ErrorCode::InvalidArgument,
            Error::InsecureDir { .. } => ErrorCode::Unavailable,
            Error::UnknownBackend { .. } => ErrorCode::NotFound,
            Error::UnknownOptions { .. } => ErrorCode::TypeMismatch,
            Error::UnknownStore(_) => ErrorCode::UnknownStore,
            Error::ReadOnlyStore { .. } => ErrorCode::ReadOnly,
            Error::ShuttingDown => ErrorCode::ShuttingDown,
        }
    }

    /// The error as it travels; store errors keep their structured fields.
    pub fn to_wire(&self) -> WireError {
        match self {
            Error::Store(e) => e.clone(),
            other => WireError::new(other.code(), other.to_string()),
        }
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Error::Store(e)
    }
}

/// Result with the daemon [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ErrorKind;

    #[test]
    fn code_keeps_backend_kind_and_store_fields() {
        let e = Error::from(crate::backend::Error::new(ErrorKind::ReadOnly, "no"));
        assert_eq!(e.code(), ErrorCode::ReadOnly);
        let wire = Error::from(WireError::index_out_of_range(5, 2)).to_wire();
        assert_eq!(wire.code, ErrorCode::IndexOutOfRange);
        assert_eq!((wire.index, wire.len), (Some(5), Some(2)));
    }

    #[test]
    fn unknown_backend_names_location_and_known_schemes() {
        let e = Error::UnknownBackend {
            location: "/x.foo".into(),
            known: "*.lmdb, memory://".into(),
        };
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(
            e.to_string(),
            "No backend registered for '/x.foo'; known: *.lmdb, memory://"
        );
    }

    #[test]
    fn unknown_options_list_what_the_backend_accepts() {
        let e = Error::UnknownOptions {
            backend: "LMDB",
            unknown: vec!["clevel".into()],
            accepted: &["map_size"],
        };
        assert_eq!(e.code(), ErrorCode::TypeMismatch);
        assert_eq!(
            e.to_string(),
            "unexpected option(s) for the LMDB backend: clevel; it accepts: map_size"
        );
    }
}
