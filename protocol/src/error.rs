//! Typed errors: [`WireError`] travels in responses; [`Error`] is what framing and codec
//! operations on either side can fail with.

use serde::{Deserialize, Serialize};

/// Classification of a failure, sent by name. The client maps each code to one Python
/// exception class; unknown codes (from a newer daemon) decode as [`ErrorCode::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// A key, column, group or store is missing (`KeyError`).
    NotFound,
    /// An index outside `[0, len)` (`IndexError`).
    IndexOutOfRange,
    /// A value or argument of the wrong type (`TypeError`).
    TypeMismatch,
    /// A value of the right type that breaks a rule (`ValueError`).
    InvalidArgument,
    /// The backend cannot do this operation (`NotImplementedError`).
    Unsupported,
    /// A write to a read-only store (`TypeError("Backend is read-only")`).
    ReadOnly,
    /// Something that must not exist yet does.
    AlreadyExists,
    /// A remote or resource is temporarily unavailable (`ConnectionError`).
    Unavailable,
    /// Stored data does not have the expected layout.
    Corrupt,
    /// Anything else; the message says what happened.
    Unexpected,
    /// The peers share no protocol version.
    VersionMismatch,
    /// The request could not be understood (decode failure, request before `Hello`).
    BadRequest,
    /// The store id is not (or no longer) open in this daemon; the client re-opens.
    UnknownStore,
    /// A frame exceeded the size cap; the connection closes.
    FrameTooLarge,
    /// The daemon is shutting down and takes no new work.
    ShuttingDown,
    /// The filesystem holding a store is full (`ENOSPC`); the write or open did not
    /// happen and what was stored before is intact (`OSError` with `errno.ENOSPC`). Added
    /// in 0.1 without a protocol bump: an older client decodes it as [`ErrorCode::Unknown`].
    DiskFull,
    /// The remote refused access (a gated or private dataset without a token that may read
    /// it; `PermissionError`). Added in 0.1 without a protocol bump, as [`ErrorCode::DiskFull`].
    PermissionDenied,
    /// A store's source file is missing: not there at open, or deleted or moved away while
    /// open (`FileNotFoundError` with `errno.ENOENT`). Added in 0.1 without a protocol bump,
    /// as [`ErrorCode::DiskFull`].
    FileNotFound,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

/// An error as it travels: a code plus the structured fields a client needs to raise the
/// exact exception (`KeyError(key)`, `IndexError("Index i out of range [0, n)")`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A human-readable message: what was wrong and what to do.
    pub message: String,
    /// The offending key or keys, for `NotFound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// The offending index as the caller gave it, for `IndexOutOfRange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
    /// The length the index was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

impl WireError {
    /// An error with a code and a message and no structured fields.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            keys: None,
            index: None,
            len: None,
        }
    }

    /// `IndexOutOfRange` with the reference's wording: `Index i out of range [0, n)`.
    pub fn index_out_of_range(index: i64, len: u64) -> Self {
        Self {
            code: ErrorCode::IndexOutOfRange,
            message: format!("Index {index} out of range [0, {len})"),
            keys: None,
            index: Some(index),
            len: Some(len),
        }
    }

    /// `NotFound` naming the missing keys.
    pub fn not_found(message: impl Into<String>, keys: Vec<String>) -> Self {
        Self {
            code: ErrorCode::NotFound,
            message: message.into(),
            keys: Some(keys),
            index: None,
            len: None,
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for WireError {}

/// Failures of framing and (de)serialization, on either side of the socket.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection between frames.
    #[error("connection closed by peer")]
    Closed,
    /// A frame announced more bytes than the cap allows.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// A frame body was not a valid message.
    #[error("cannot decode message: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Result with the protocol [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
