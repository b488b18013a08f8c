//! Which rows of a cache hold their source row: a bitmap, kept in memory and, for a cache
//! in a file, persisted in a sidecar next to it, together with the identity of the source
//! it was filled from.
//!
//! Layer: inside [`super`] (the cached backend). The sidecar is `<magic><identity
//! length: u32 LE><identity><bits>`; bit `i` (byte `i / 8`, bit `i % 8`) says row `i` is
//! cached. A bit is set only after the row's bytes were committed to the cache, and
//! cleared (and synced) before a write to the source commits, so after a crash or `kill
//! -9` every set bit names a row the cache really holds for this source; a lost set bit
//! only costs a refill. Bytes past the end of the file are zero: a source that grows
//! needs no rewrite.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::backend::{Error, ErrorKind, Result};

/// First bytes of a sidecar (format version 1).
const MAGIC: &[u8; 16] = b"asebytes-cache1\n";

/// Bits of the rows that are cached, and where they are persisted.
#[derive(Debug)]
pub(super) struct Filled {
    bits: Vec<u8>,
    identity: String,
    sidecar: Option<Sidecar>,
}

#[derive(Debug)]
struct Sidecar {
    path: PathBuf,
    file: File,
    /// Offset of the first bitmap byte.
    start: u64,
}

impl Filled {
    /// The record for a cache whose rows are not persisted (a memory cache): empty.
    pub(super) fn in_memory(identity: String) -> Self {
        Self {
            bits: Vec::new(),
            identity,
            sidecar: None,
        }
    }

    /// The record persisted at `path`; started afresh (nothing cached) when the file is
    /// missing, unreadable as a sidecar, or was filled from a source of another identity.
    pub(super) fn load(path: &Path, identity: String) -> Result<Self> {
        match read_sidecar(path) {
            Ok(Some((stored, bits))) if stored == identity => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| io_error(path, "open", e))?;
                let start = header_len(&identity);
                Ok(Self {
                    bits,
                    identity,
                    sidecar: Some(Sidecar {
                        path: path.to_path_buf(),
                        file,
                        start,
                    }),
                })
            }
            Ok(_) | Err(_) => {
                let mut filled = Self {
                    bits: Vec::new(),
                    identity: String::new(),
                    sidecar: None,
                };
                filled.restart(Some(path), identity)?;
                Ok(filled)
            }
        }
    }

    /// The identity of the source the cached rows came from.
    pub(super) fn identity(&self) -> &str {
        &self.identity
    }

    /// Forgets every cached row and records a new source identity (the source changed).
    pub(super) fn reset(&mut self, identity: String) -> Result<()> {
        let path = self.sidecar.as_ref().map(|s| s.path.clone());
        self.restart(path.as_deref(), identity)
    }

    fn restart(&mut self, path: Option<&Path>, identity: String) -> Result<()> {
        self.bits.clear();
        if let Some(path) = path {
            // Written whole to a temporary file and renamed over the old one, so a crash
            // leaves the old record or the new empty one, never old bits under a new
            // identity.
            let tmp = path.with_extension("tmp-cache");
            let mut f = File::create(&tmp).map_err(|e| io_error(&tmp, "create", e))?;
            f.write_all(&header(&identity))
                .and_then(|()| f.sync_data())
                .map_err(|e| io_error(&tmp, "write", e))?;
            std::fs::rename(&tmp, path).map_err(|e| io_error(path, "replace", e))?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| io_error(path, "open", e))?;
            self.sidecar = Some(Sidecar {
                path: path.to_path_buf(),
                file,
                start: header_len(&identity),
            });
        }
        self.identity = identity;
        Ok(())
    }

    /// Whether row `i` is cached.
    pub(super) fn has(&self, i: u64) -> bool {
        let byte = usize::try_from(i / 8).unwrap_or(usize::MAX);
        self.bits.get(byte).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Marks `rows` cached (their bytes are committed in the cache).
    pub(super) fn mark(&mut self, rows: &[u64]) -> Result<()> {
        self.change(rows.iter().copied(), true, false)
    }

    /// Marks `rows` not cached, durably, before the source changes them.
    pub(super) fn unmark(&mut self, rows: impl Iterator<Item = u64>) -> Result<()> {
        self.change(rows, false, true)
    }

    /// Marks every row from `start` on not cached, durably (rows shifted or removed).
    pub(super) fn unmark_from(&mut self, start: u64) -> Result<()> {
        let first = usize::try_from(start / 8).unwrap_or(usize::MAX);
        if first >= self.bits.len() {
            return Ok(());
        }
        let keep = (1u8 << (start % 8)) - 1;
        self.bits[first] &= keep;
        for b in &mut self.bits[first + 1..] {
            *b = 0;
        }
        self.persist(first, self.bits.len(), true)
    }

    fn change(&mut self, rows: impl Iterator<Item = u64>, set: bool, sync: bool) -> Result<()> {
        let mut dirty: Option<(usize, usize)> = None;
        for i in rows {
            let byte = usize::try_from(i / 8).map_err(|_| too_many(i))?;
            if byte >= self.bits.len() {
                if !set {
                    continue;
                }
                self.bits.resize(byte + 1, 0);
            }
            let mask = 1u8 << (i % 8);
            if set {
                self.bits[byte] |= mask;
            } else {
                self.bits[byte] &= !mask;
            }
            dirty = Some(dirty.map_or((byte, byte + 1), |(lo, hi)| {
                (lo.min(byte), hi.max(byte + 1))
            }));
        }
        match dirty {
            Some((lo, hi)) => self.persist(lo, hi, sync),
            None => Ok(()),
        }
    }

    /// Writes bitmap bytes `lo..hi` to the sidecar (each byte lands whole or not at all).
    fn persist(&self, lo: usize, hi: usize, sync: bool) -> Result<()> {
        let Some(s) = &self.sidecar else {
            return Ok(());
        };
        s.file
            .write_all_at(&self.bits[lo..hi], s.start + lo as u64)
            .and_then(|()| if sync { s.file.sync_data() } else { Ok(()) })
            .map_err(|e| io_error(&s.path, "write", e))
    }
}

fn header(identity: &str) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    out.extend_from_slice(identity.as_bytes());
    out
}

fn header_len(identity: &str) -> u64 {
    (MAGIC.len() + 4 + identity.len()) as u64
}

/// `(identity, bits)` of an existing sidecar; `None` when there is none or it is not one.
fn read_sidecar(path: &Path) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Ok(None);
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Ok(None);
    }
    let (identity, bits) = rest.split_at(len);
    Ok(String::from_utf8(identity.to_vec())
        .ok()
        .map(|id| (id, bits.to_vec())))
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    let kind = if e.raw_os_error() == Some(28) {
        ErrorKind::DiskFull
    } else {
        ErrorKind::Unexpected
    };
    Error::new(
        kind,
        format!("cannot {what} the cache record {}: {e}", path.display()),
    )
}

fn too_many(i: u64) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("row {i} is beyond what a cache can record"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_marks_survive_a_reload_with_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.lmdb.cached-rows");
        let mut f = Filled::load(&path, "src A".into()).unwrap();
        f.mark(&[0, 9, 17]).unwrap();
        drop(f);
        let f = Filled::load(&path, "src A".into()).unwrap();
        assert!(f.has(0) && f.has(9) && f.has(17));
        assert!(!f.has(1) && !f.has(16) && !f.has(1_000_000));
    }

    #[test]
    fn test_another_identity_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cached-rows");
        let mut f = Filled::load(&path, "src A".into()).unwrap();
        f.mark(&[3]).unwrap();
        drop(f);
        let f = Filled::load(&path, "src B".into()).unwrap();
        assert!(!f.has(3));
        assert_eq!(f.identity(), "src B");
        // And the file now records B: A's bits are gone for good.
        let f = Filled::load(&path, "src A".into()).unwrap();
        assert!(!f.has(3));
    }

    #[test]
    fn test_unmark_from_clears_the_tail_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cached-rows");
        let mut f = Filled::load(&path, "s".into()).unwrap();
        f.mark(&(0..40).collect::<Vec<_>>()).unwrap();
        f.unmark_from(13).unwrap();
        f.unmark([2].into_iter()).unwrap();
        drop(f);
        let f = Filled::load(&path, "s".into()).unwrap();
        let have: Vec<u64> = (0..40).filter(|&i| f.has(i)).collect();
        let want: Vec<u64> = (0..13).filter(|&i| i != 2).collect();
        assert_eq!(have, want);
    }

    #[test]
    fn test_garbage_sidecar_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cached-rows");
        std::fs::write(&path, b"not a sidecar at all").unwrap();
        let mut f = Filled::load(&path, "s".into()).unwrap();
        assert!(!f.has(0));
        f.mark(&[0]).unwrap();
        assert!(Filled::load(&path, "s".into()).unwrap().has(0));
    }
}
