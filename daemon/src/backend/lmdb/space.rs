//! Disk space around LMDB: keeps the shared lock-file map backed by allocated blocks, and
//! recognises a full disk behind LMDB's I/O errors.
//!
//! Layer: part of the LMDB backend ([`super`]). LMDB maps `lock.mdb` read-write after
//! `ftruncate`, which leaves it sparse: the first touch of an unallocated page on a full
//! filesystem raises SIGBUS, which kills the whole daemon (every client, every `memory://`
//! store). Allocating the file's blocks with `posix_fallocate` before and after LMDB maps
//! it turns that into an `ENOSPC` at open. `data.mdb` needs nothing: without `WRITEMAP`
//! LMDB writes it with `pwrite` (a full disk is an error code) and reads only what it wrote.
//!
//! A full disk shows up as `ENOSPC`/`EDQUOT`, or as `EIO` when LMDB got a short write
//! ("filesystem full?" in its source); the latter counts as a full disk when the
//! filesystem has (almost) no space left.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::super::{Error, ErrorKind};

/// Bytes of one reader slot in `lock.mdb` (LMDB pads each to a 64-byte cache line).
const READER_SLOT: u64 = 64;

/// Bytes of the lock file's header beyond the slots: two cache lines of transaction info
/// and mutexes (`MDB_txninfo`, which embeds the first slot).
const LOCK_HEADER: u64 = 2 * 64;

/// Below this many free bytes an `EIO` from LMDB is taken for a full disk.
const NEARLY_FULL: u64 = 1 << 20;

/// The size LMDB gives a new `lock.mdb` with `max_readers` slots (`mdb_env_setup_locks`).
pub fn lock_file_size(max_readers: u32) -> u64 {
    u64::from(max_readers.max(1)) * READER_SLOT + LOCK_HEADER
}

/// Allocates every block of `lock` before LMDB maps it: an existing lock file keeps its
/// size (other processes may have it mapped; growing it would change their view), a new or
/// empty one is created at the size LMDB would give it.
pub fn preallocate_lock(lock: &Path, max_readers: u32) -> io::Result<()> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock)
    {
        Ok(f) => f,
        // A read-only user cannot touch the lock file; LMDB decides what that means.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let len = if size == 0 {
        lock_file_size(max_readers)
    } else {
        size
    };
    allocate(&file, len)
}

/// Allocates the blocks of the lock file at `lock` after LMDB has opened (and perhaps
/// grown) it, through LMDB's own descriptor: opening and closing another descriptor of the
/// file would drop every `fcntl` lock this process holds on it, which LMDB relies on to
/// tell live readers and processes from dead ones.
pub fn allocate_open_lock(lock: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(lock)?;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: plain data, overwritten by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on any fd number is safe; a closed one fails with EBADF.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        #[allow(clippy::unnecessary_cast)] // the field types differ between targets
        if st.st_dev as u64 != want.dev() || st.st_ino as u64 != want.ino() {
            continue;
        }
        let Ok(len) = libc::off_t::try_from(want.len()) else {
            continue;
        };
        // KEEP_SIZE: even if the descriptor were closed and reused meanwhile, no file's
        // size changes.
        // SAFETY: fallocate on an fd number; the worst case is EBADF.
        if unsafe { libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, 0, len) } != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENODEV) => Ok(()),
                _ => Err(e),
            };
        }
        return Ok(());
    }
    Ok(())
}

fn allocate(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid open fd; posix_fallocate returns the error number instead of setting
    // errno.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        // The filesystem cannot preallocate (nor emulate it): nothing to gain here.
        libc::EOPNOTSUPP | libc::EINVAL | libc::ENODEV => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

pub use crate::backend::space::free_bytes;

/// The OS error number somewhere in `e`'s chain of causes.
fn errno(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(n) = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(n);
        }
        if let Some(heed::Error::Io(io)) = err.downcast_ref::<heed::Error>()
            && let Some(n) = io.raw_os_error()
        {
            return Some(n);
        }
        cur = err.source();
    }
    None
}

/// Whether `e`, met while writing the files under `dir`, means the disk is full.
pub fn is_disk_full(e: &(dyn std::error::Error + 'static), dir: &Path) -> bool {
    match errno(e) {
        Some(libc::ENOSPC | libc::EDQUOT) => true,
        Some(libc::EIO) => free_bytes(dir).is_some_and(|free| free < NEARLY_FULL),
        _ => false,
    }
}

/// The `DiskFull` error for the store `what` (its canonical name or path) under `dir`.
pub fn disk_full(what: &str, dir: &Path, doing: &str) -> Error {
    let free = free_bytes(dir).map_or_else(String::new, |n| format!(", {n} bytes free"));
    Error::new(
        ErrorKind::DiskFull,
        format!(
            "the disk holding {what} is full (ENOSPC{free}): {doing}; rows written before are \
             intact. Free some space on {} and retry",
            dir.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_size_matches_what_lmdb_creates() {
        let tmp = tempfile::tempdir().unwrap();
        for readers in [126, 1024] {
            let dir = tmp.path().join(format!("r{readers}"));
            std::fs::create_dir(&dir).unwrap();
            let mut opts = heed::EnvOpenOptions::new();
            opts.max_readers(readers);
            // SAFETY: a fresh directory nobody else opens.
            let env = unsafe { opts.open(&dir) }.unwrap();
            let size = std::fs::metadata(dir.join("lock.mdb")).unwrap().len();
            assert_eq!(size, lock_file_size(readers), "{readers} readers");
            drop(env);
        }
    }

    #[test]
    fn preallocation_keeps_an_existing_size_and_sizes_a_new_file() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("lock.mdb");
        preallocate_lock(&fresh, 126).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().len(),
            lock_file_size(126)
        );
        let sparse = tmp.path().join("other.mdb");
        File::create(&sparse).unwrap().set_len(12_345).unwrap();
        preallocate_lock(&sparse, 1024).unwrap();
        let meta = std::fs::metadata(&sparse).unwrap();
        assert_eq!(meta.len(), 12_345);
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 >= 12_345, "blocks not allocated");
    }

    #[test]
    fn an_open_lock_file_is_allocated_through_the_descriptor_already_open() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock.mdb");
        let held = File::create(&path).unwrap();
        held.set_len(3 * 4096).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().blocks(),
            0,
            "sparse to begin with"
        );
        allocate_open_lock(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 3 * 4096);
        assert!(meta.blocks() * 512 >= 3 * 4096, "blocks not allocated");
    }

    #[test]
    fn errno_is_found_through_heed_and_backend_errors() {
        let dir = Path::new("/");
        let full = Error::new(ErrorKind::Unexpected, "x")
            .with_source(heed::Error::Io(io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_disk_full(&full, dir));
        let other = Error::new(ErrorKind::Unexpected, "x")
            .with_source(io::Error::from_raw_os_error(libc::EACCES));
        assert!(!is_disk_full(&other, dir));
        let msg =
            disk_full("lmdb:///d/x.lmdb#default", dir, "the batch was not written").to_string();
        assert!(
            msg.contains("lmdb:///d/x.lmdb#default") && msg.contains("ENOSPC"),
            "{msg}"
        );
    }
}
