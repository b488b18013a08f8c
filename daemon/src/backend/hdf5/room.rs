//! A full disk seen coming. HDF5 writes chunks and its own metadata in place, and a write
//! that meets `ENOSPC` half-way can leave a chunk it already counts as written damaged:
//! on a full 8 MiB filesystem the append after the failed one read `inflate() failed`.
//! So the engine refuses a write with `DiskFull` while the filesystem still has room for
//! the transaction twice over (compressed chunks move when rewritten) plus [`HEADROOM`]
//! for the chunks an append rewrites and libhdf5's metadata; nothing of the refused write
//! reaches the file and the rows committed before stay readable.
//!
//! Layer: part of the HDF5 engine ([`super::engine`]).

use std::path::Path;

use crate::backend::space::free_bytes;
use crate::backend::{Error, ErrorKind, Result};

/// Free bytes an HDF5 store keeps beyond twice what a transaction writes.
pub const HEADROOM: u64 = 4 << 20;

/// `Ok` when the filesystem holding `path` has room for a transaction that has written
/// `staged` bytes (this write included); `DiskFull` naming the file otherwise. An
/// unknown amount of free space is not a reason to refuse.
pub fn ensure_room(path: &Path, staged: u64) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(free) = free_bytes(dir) else {
        return Ok(());
    };
    let need = staged.saturating_mul(2).saturating_add(HEADROOM);
    if free >= need {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::DiskFull,
        format!(
            "the disk holding {} is full (ENOSPC: {free} bytes free, {need} needed to write \
             {staged} bytes safely): nothing of this write was stored; rows written before \
             are intact. Free some space on {} and retry",
            path.display(),
            dir.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_write_fits_and_an_impossible_one_is_disk_full() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.h5");
        ensure_room(&path, 1).unwrap();
        let e = ensure_room(&path, u64::MAX / 4).unwrap_err();
        assert_eq!(e.kind, ErrorKind::DiskFull);
        assert!(
            e.message.contains("x.h5") && e.message.contains("ENOSPC"),
            "{e}"
        );
    }
}
