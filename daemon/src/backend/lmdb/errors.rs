//! LMDB's errors as the backend's: what a user can act on, and who holds a store open.

use std::path::Path;

use heed::MdbError;

use super::super::{Error, ErrorKind};

/// Converts a heed error into the backend error, classifying what a user can act on.
pub(crate) fn map_heed_err(e: heed::Error) -> Error {
    use heed::Error as H;
    let (kind, what) = match &e {
        H::Mdb(MdbError::MapFull) => (
            ErrorKind::Unavailable,
            "the LMDB map is full and could not grow (ceiling: ASEBYTES_LMDB_MAX_MAP_SIZE)",
        ),
        H::Mdb(MdbError::ReadersFull) => (
            ErrorKind::Unavailable,
            "every LMDB reader slot is taken; raise ASEBYTES_LMDB_MAX_READERS (takes effect when the lock file is recreated)",
        ),
        H::Mdb(MdbError::MapResized) => (
            ErrorKind::Unavailable,
            "another process grew the LMDB map; retry",
        ),
        // heed builds LMDB's mdb.master branch (lock file format 2); py-lmdb, and with it the
        // reference `asebytes`, uses the 0.9 releases (format 1). The data files are the
        // same, but the two cannot have one environment open at the same time.
        H::Mdb(MdbError::VersionMismatch) => (
            ErrorKind::Unavailable,
            "the LMDB environment is open in another program whose LMDB build is incompatible \
             (for example the reference asebytes / py-lmdb), or was written by an unsupported LMDB \
             version; close it there (use it through the daemon only) and retry",
        ),
        H::Mdb(
            MdbError::Corrupted
            | MdbError::PageNotFound
            | MdbError::Invalid
            | MdbError::Incompatible
            | MdbError::Panic,
        ) => (
            ErrorKind::Corrupt,
            "the LMDB environment is damaged or not an LMDB file",
        ),
        H::Mdb(MdbError::BadValSize) => (ErrorKind::InvalidArgument, "a key is too long for LMDB"),
        H::Mdb(_) => (ErrorKind::Unexpected, "LMDB failed"),
        H::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            (ErrorKind::NotFound, "LMDB file not found")
        }
        H::Io(_) => (
            ErrorKind::Unavailable,
            "LMDB I/O failed (disk full or permissions?)",
        ),
        H::Decoding(_) => (ErrorKind::Corrupt, "an LMDB value could not be decoded"),
        H::Encoding(_) => (
            ErrorKind::InvalidArgument,
            "an LMDB value could not be encoded",
        ),
        H::EnvAlreadyOpened => (
            ErrorKind::AlreadyExists,
            "this LMDB environment is already open in the daemon with other options",
        ),
    };
    Error::new(kind, what).with_source(e)
}

/// The environment in `dir` is open in a program whose LMDB cannot share it with ours
/// (`MDB_VERSION_MISMATCH`): names the store and, from `/proc/locks`, who holds its lock
/// file.
pub(super) fn held_elsewhere(dir: &Path, lock: &Path) -> Error {
    let holders = crate::procinfo::lock_holders(lock);
    let who = if holders.is_empty() {
        "another program (no holder of its lock file is visible here: it may run in another \
         container or on another host)"
            .to_string()
    } else {
        holders
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "the LMDB store {} is open in {who}, whose LMDB build is incompatible with the \
             daemon's (the reference asebytes / py-lmdb use an older lock-file format); close \
             it there and retry (the daemon itself lets go of a store after \
             ASEBYTES_STORE_IDLE_SECS without requests)",
            dir.display()
        ),
    )
}

pub(super) fn io_err(context: String, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ErrorKind::DiskFull,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, context).with_source(e)
}
