//! The shards of one aselmdb dataset: each an LMDB file (`subdir=False`) holding rows
//! under the ASCII keys `"1"`, `"2"`, ... (zlib-compressed JSON), the next id under
//! `"nextid"` and removed ids under `"deleted_ids"`, as ase-db-backends 0.11 writes them.
//! A global index walks the shards in sorted file-name order, each shard's ids ascending
//! with deleted ids skipped (what `LMDBDatabase._load_ids` lists).
//!
//! Layer: part of the aselmdb backend; opened read-only and without LMDB's lock file, as
//! fairchem opens them for training.

use std::io::Read;
use std::path::{Path, PathBuf};

use heed::types::Bytes as RawBytes;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, WithoutTls};

use crate::backend::frames::json;
use crate::backend::{Error, ErrorKind, Result};

/// One open shard.
pub struct Shard {
    /// Its file.
    pub path: PathBuf,
    env: Env<WithoutTls>,
    db: Database<'static, RawBytes, RawBytes>,
    /// Row ids in order (only materialised when ids were deleted).
    ids: Ids,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("path", &self.path).finish()
    }
}

enum Ids {
    /// `1..=n`.
    Dense(u64),
    /// Explicit ids.
    Listed(Vec<u64>),
}

fn lmdb_err(path: &Path, e: heed::Error) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("cannot read the aselmdb shard {}: {e}", path.display()),
    )
}

/// Decompresses and parses one stored value.
pub fn decode(path: &Path, raw: &[u8]) -> Result<asebytes_protocol::codec::Value> {
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(raw)
        .read_to_string(&mut text)
        .map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{}: a value is not zlib-compressed UTF-8: {e}",
                    path.display()
                ),
            )
        })?;
    json::parse(&text)
        .map_err(|e| Error::new(ErrorKind::Corrupt, format!("{}: {e}", path.display())))
}

impl Shard {
    /// Opens one shard read-only and lists its ids.
    pub fn open(path: &Path) -> Result<Self> {
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io("open", path, e))?
            .len();
        options.map_size((size as usize).max(1 << 20).next_multiple_of(1 << 20));
        // SAFETY: NO_SUB_DIR, READ_ONLY and NO_LOCK only change how the file is mapped: it
        // is never written, and a dataset's shards are not changed while they are read.
        unsafe { options.flags(EnvFlags::NO_SUB_DIR | EnvFlags::READ_ONLY | EnvFlags::NO_LOCK) };
        // SAFETY: as above; heed refuses a second open of the same path in this process.
        let env = unsafe { options.open(path) }.map_err(|e| lmdb_err(path, e))?;
        let rtxn = env.read_txn().map_err(|e| lmdb_err(path, e))?;
        let opened = env
            .open_databases_and_commit(rtxn, |opener, rtxn| {
                opener
                    .open_database::<RawBytes, RawBytes>(rtxn, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(|e| lmdb_err(path, e))?;
        let CommitOrAbort::Commit(Some(db)) = opened else {
            return Err(Error::corrupt(format!(
                "{} has no main LMDB database",
                path.display()
            )));
        };
        let mut shard = Self {
            path: path.to_path_buf(),
            env,
            db,
            ids: Ids::Dense(0),
        };
        shard.ids = shard.load_ids()?;
        Ok(shard)
    }

    fn meta(&self, key: &str) -> Result<Option<asebytes_protocol::codec::Value>> {
        let rtxn = self.env.read_txn().map_err(|e| lmdb_err(&self.path, e))?;
        match self
            .db
            .get(&rtxn, key.as_bytes())
            .map_err(|e| lmdb_err(&self.path, e))?
        {
            Some(raw) => decode(&self.path, raw).map(Some),
            None => Ok(None),
        }
    }

    fn load_ids(&self) -> Result<Ids> {
        use asebytes_protocol::codec::Value;
        let next = match self.meta("nextid")? {
            None => 1,
            Some(Value::Int(i)) if i >= 1 => i as u64,
            Some(other) => {
                return Err(Error::corrupt(format!(
                    "{}: nextid is {other:?}",
                    self.path.display()
                )));
            }
        };
        let mut deleted: Vec<u64> = match self.meta("deleted_ids")? {
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Int(i) if *i >= 1 => Some(*i as u64),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        deleted.sort_unstable();
        deleted.dedup();
        deleted.retain(|&d| d < next);
        if deleted.is_empty() {
            return Ok(Ids::Dense(next - 1));
        }
        let mut gone = deleted.iter().peekable();
        let ids = (1..next)
            .filter(|i| {
                if gone.peek() == Some(&i) {
                    gone.next();
                    false
                } else {
                    true
                }
            })
            .collect();
        Ok(Ids::Listed(ids))
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        match &self.ids {
            Ids::Dense(n) => *n,
            Ids::Listed(ids) => ids.len() as u64,
        }
    }

    /// Whether the shard has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The decoded row at position `i` (`< len()`).
    pub fn row(&self, i: u64) -> Result<asebytes_protocol::codec::Value> {
        let id = match &self.ids {
            Ids::Dense(_) => i + 1,
            Ids::Listed(ids) => ids[i as usize],
        };
        let rtxn = self.env.read_txn().map_err(|e| lmdb_err(&self.path, e))?;
        let raw = self
            .db
            .get(&rtxn, id.to_string().as_bytes())
            .map_err(|e| lmdb_err(&self.path, e))?
            .ok_or_else(|| {
                Error::corrupt(format!("Id {id} missing from {}", self.path.display()))
            })?;
        decode(&self.path, raw)
    }
}

/// The shard files a location names: the file itself, a directory's `*.aselmdb` entries
/// in sorted order, or a list of files joined by `:` in the order given.
pub fn shard_paths(location: &Path) -> Result<Vec<PathBuf>> {
    let text = location.to_string_lossy();
    if !location.exists() && text.contains(':') {
        return Ok(text.split(':').map(PathBuf::from).collect());
    }
    if !location.is_dir() {
        return Ok(vec![location.to_path_buf()]);
    }
    let entries = std::fs::read_dir(location).map_err(|e| Error::io("list", location, e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "aselmdb") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::new(
            ErrorKind::FileNotFound,
            format!("{} holds no *.aselmdb shards", location.display()),
        ));
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_names_a_file_a_folder_or_a_list() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.aselmdb", "a.aselmdb", "a.aselmdb-lock", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let a = dir.path().join("a.aselmdb");
        let b = dir.path().join("b.aselmdb");
        assert_eq!(shard_paths(dir.path()).unwrap(), [a.clone(), b.clone()]);
        assert_eq!(shard_paths(&a).unwrap(), std::slice::from_ref(&a));
        let list = PathBuf::from(format!("{}:{}", b.display(), a.display()));
        assert_eq!(shard_paths(&list).unwrap(), [b, a]);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            shard_paths(empty.path()).unwrap_err().kind,
            ErrorKind::FileNotFound
        );
    }
}
