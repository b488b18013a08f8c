//! The backend error: a kind that classifies the failure plus a message, in opendal's
//! style. Each backend maps its native errors into it in one small function.

use asebytes_protocol::ErrorCode;

/// How a backend failure is classified; becomes a wire [`ErrorCode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Key, column, group or store missing.
    NotFound,
    /// Index outside `[0, len)`.
    IndexOutOfRange,
    /// A value or argument of the wrong type.
    TypeMismatch,
    /// A value that breaks a rule.
    InvalidArgument,
    /// The backend cannot do this.
    Unsupported,
    /// Write to a read-only store.
    ReadOnly,
    /// Must not exist yet, does.
    AlreadyExists,
    /// Temporary failure (remote down, map could not grow).
    Unavailable,
    /// Stored data is not in the expected layout.
    Corrupt,
    /// The filesystem is full (`ENOSPC`); nothing of the failed operation was stored.
    DiskFull,
    /// The remote refused access (credentials missing or not allowed).
    PermissionDenied,
    /// A file the store reads is not there (a read-only source deleted or never created).
    FileNotFound,
    /// Anything else.
    Unexpected,
}

impl ErrorKind {
    /// The wire code for this kind.
    pub fn code(self) -> ErrorCode {
        match self {
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::IndexOutOfRange => ErrorCode::IndexOutOfRange,
            ErrorKind::TypeMismatch => ErrorCode::TypeMismatch,
            ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
            ErrorKind::Unsupported => ErrorCode::Unsupported,
            ErrorKind::ReadOnly => ErrorCode::ReadOnly,
            ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
            ErrorKind::Unavailable => ErrorCode::Unavailable,
            ErrorKind::Corrupt => ErrorCode::Corrupt,
            ErrorKind::DiskFull => ErrorCode::DiskFull,
            ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
            ErrorKind::FileNotFound => ErrorCode::FileNotFound,
            ErrorKind::Unexpected => ErrorCode::Unexpected,
        }
    }
}

/// A backend failure.
#[derive(Debug)]
pub struct Error {
    /// Classification.
    pub kind: ErrorKind,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
    /// The native error, if any.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// For [`ErrorKind::IndexOutOfRange`] found by the backend itself: the index and the
    /// length it was checked against (they travel in the wire error's fields).
    pub range: Option<(u64, u64)>,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            range: None,
        }
    }

    /// A failed filesystem call (`what`: "open", "stat", "read") on a file the store reads:
    /// a missing file is `FileNotFound`, one the daemon may not read `PermissionDenied`, a
    /// full disk `DiskFull`; the message names the file.
    pub fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::FileNotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                ErrorKind::DiskFull
            }
            _ => ErrorKind::Unexpected,
        };
        Self::new(kind, format!("cannot {what} {}: {e}", path.display()))
    }

    /// `IndexOutOfRange` for `index` checked against `len`, worded as the layer above
    /// words its own check.
    pub fn out_of_range(index: u64, len: u64) -> Self {
        Self {
            range: Some((index, len)),
            ..Self::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {index} out of range [0, {len})"),
            )
        }
    }

    /// Attaches the native error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// `Unsupported`, naming the backend and the operation.
    pub fn unsupported(backend: &str, operation: &str) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            format!("the {backend} backend does not support {operation}"),
        )
    }

    /// `Corrupt` with a message.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Result with the backend [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
