//! Crash-safe writes for Zarr: a zarrs store that stages every write of a transaction in
//! memory and commits them all through a journal.
//!
//! Layer: under the Zarr engine ([`super::layout`]), which builds its zarrs arrays for
//! writing on a [`StagedStore`]. `commit` is:
//! 1. every staged file is written under `.asebytes-staging/<n>` (flushed with one
//!    `syncfs`);
//! 2. the journal `.asebytes-journal` (what to erase, which staged file goes where) is
//!    written to a temporary name, fsynced and renamed into place: **the commit point**;
//! 3. the journal is applied (erases, then renames; the group `zarr.json` last), then
//!    removed with the staging directory.
//!
//! A crash before step 2 leaves only the staging directory, which the next open deletes:
//! the store is as before the batch. A crash after it leaves the journal, which the next
//! open applies again (every step is idempotent): the store is as after the batch. Each
//! file is replaced by a rename, so a reader never sees a torn chunk.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits,
    StorageError, StoreKey, StorePrefix, WritableStorageTraits,
};

/// The journal file, relative to the group directory.
pub const JOURNAL: &str = ".asebytes-journal";
/// The staging directory, relative to the group directory.
pub const STAGING: &str = ".asebytes-staging";

/// What a transaction changes.
#[derive(Debug, Default)]
struct Staged {
    sets: BTreeMap<String, Bytes>,
    erased: BTreeSet<String>,
    erased_prefixes: Vec<String>,
}

impl Staged {
    fn hidden(&self, key: &str) -> bool {
        self.erased.contains(key)
            || self
                .erased_prefixes
                .iter()
                .any(|p| key.starts_with(p.as_str()))
    }
}

/// The journal as written to disk.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    erase_prefixes: Vec<String>,
    erase: Vec<String>,
    /// `(staged file number, key)`, applied in order.
    sets: Vec<(u64, String)>,
}

/// A zarrs store over a group directory whose writes wait in memory until [`commit`].
///
/// [`commit`]: StagedStore::commit
#[derive(Debug)]
pub struct StagedStore {
    root: PathBuf,
    fs: Arc<FilesystemStore>,
    staged: Mutex<Staged>,
    fsync: bool,
}

impl StagedStore {
    /// A store over `root` (reads fall through to `fs`, which is rooted there too).
    pub fn new(root: PathBuf, fs: Arc<FilesystemStore>, fsync: bool) -> Self {
        Self {
            root,
            fs,
            staged: Mutex::default(),
            fsync,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stages `bytes` under `key` (a path relative to the group directory).
    pub fn stage(&self, key: &str, bytes: Bytes) {
        let mut s = self.lock();
        s.erased.remove(key);
        s.sets.insert(key.to_string(), bytes);
    }

    /// Stages the removal of everything under `prefix` (`"name/"`).
    pub fn stage_erase_prefix(&self, prefix: &str) {
        let mut s = self.lock();
        s.sets.retain(|k, _| !k.starts_with(prefix));
        s.erased.retain(|k| !k.starts_with(prefix));
        s.erased_prefixes.push(prefix.to_string());
    }

    /// Forgets every staged change.
    pub fn rollback(&self) {
        *self.lock() = Staged::default();
    }

    /// Makes every staged change durable and visible (see the module docs).
    pub fn commit(&self) -> std::io::Result<()> {
        let staged = std::mem::take(&mut *self.lock());
        if staged.sets.is_empty() && staged.erased.is_empty() && staged.erased_prefixes.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.root)?;
        let staging = self.root.join(STAGING);
        if staging.exists() {
            fs::remove_dir_all(&staging)?;
        }
        fs::create_dir_all(&staging)?;
        let mut journal = Journal {
            erase_prefixes: staged.erased_prefixes,
            erase: staged.erased.into_iter().collect(),
            sets: Vec::new(),
        };
        // The group document goes last, so other programs see it after the data.
        let mut sets: Vec<(String, Bytes)> = staged.sets.into_iter().collect();
        sets.sort_by_key(|(k, _)| k == "zarr.json");
        for (n, (key, bytes)) in sets.into_iter().enumerate() {
            write_file(&staging.join(n.to_string()), &bytes, false)?;
            journal.sets.push((n as u64, key));
        }
        if self.fsync {
            // One flush for every staged file and the staging directory (a commit stages
            // one file per changed chunk: an fsync each cost one device flush each).
            sync_filesystem(&staging)?;
        }
        let text = serde_json::to_vec(&journal).map_err(std::io::Error::other)?;
        let tmp = self.root.join(format!("{JOURNAL}.tmp"));
        write_file(&tmp, &text, true)?;
        fs::rename(&tmp, self.root.join(JOURNAL))?;
        sync_dir(&self.root)?;
        apply_journal(&self.root)
    }
}

fn write_file(path: &Path, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    if fsync {
        f.sync_all()?;
    }
    Ok(())
}

/// Flushes the whole filesystem that holds `path` (`syncfs`): the staged files of a
/// commit in one device flush instead of one per file.
fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = fs::File::open(path)?;
    // SAFETY: `dir` is an open file descriptor for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Finishes a committed journal, or throws away an uncommitted staging directory.
/// Idempotent; called by `commit` and at every open.
pub fn apply_journal(root: &Path) -> std::io::Result<()> {
    let jpath = root.join(JOURNAL);
    let staging = root.join(STAGING);
    let text = match fs::read(&jpath) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if staging.exists() {
                fs::remove_dir_all(&staging)?;
            }
            return ignore_missing(fs::remove_file(root.join(format!("{JOURNAL}.tmp"))));
        }
        Err(e) => return Err(e),
    };
    let journal: Journal = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
    for prefix in &journal.erase_prefixes {
        let p = prefix.trim_end_matches('/');
        if p.is_empty() {
            for entry in fs::read_dir(root)? {
                let entry = entry?;
                let name = entry.file_name();
                if name == STAGING || name == JOURNAL {
                    continue;
                }
                if entry.file_type()?.is_dir() {
                    ignore_missing(fs::remove_dir_all(entry.path()))?;
                } else {
                    ignore_missing(fs::remove_file(entry.path()))?;
                }
            }
        } else {
            ignore_missing(fs::remove_dir_all(root.join(p)))?;
        }
    }
    for key in &journal.erase {
        ignore_missing(fs::remove_file(root.join(key)))?;
    }
    for (n, key) in &journal.sets {
        let from = staging.join(n.to_string());
        if !from.exists() {
            continue; // renamed before a crash
        }
        let to = root.join(key);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&from, &to)?;
    }
    sync_dir(root)?;
    fs::remove_file(&jpath)?;
    ignore_missing(fs::remove_dir_all(&staging))
}

impl ReadableStorageTraits for StagedStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let found: Option<MaybeBytes> = {
            let s = self.lock();
            match s.sets.get(key.as_str()) {
                Some(b) => Some(Some(b.clone())),
                None if s.hidden(key.as_str()) => Some(None),
                None => None,
            }
        };
        match found {
            None => self.fs.get_partial_many(key, byte_ranges),
            Some(None) => Ok(None),
            Some(Some(data)) => Ok(Some(Box::new(byte_ranges.map(move |r| {
                let len = data.len() as u64;
                let (start, end) = (r.start(len), r.end(len));
                if end > len || start > end {
                    return Err(StorageError::Other(format!(
                        "byte range {start}..{end} beyond {len} bytes"
                    )));
                }
                Ok(data.slice(start as usize..end as usize))
            })))),
        }
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        {
            let s = self.lock();
            if let Some(b) = s.sets.get(key.as_str()) {
                return Ok(Some(b.len() as u64));
            }
            if s.hidden(key.as_str()) {
                return Ok(None);
            }
        }
        self.fs.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        false
    }
}

impl WritableStorageTraits for StagedStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.stage(key.as_str(), value);
        Ok(())
    }

    fn set_partial_many(
        &self,
        _key: &StoreKey,
        _offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        Err(StorageError::Unsupported(
            "partial writes (whole chunks are staged)".into(),
        ))
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        let mut s = self.lock();
        s.sets.remove(key.as_str());
        s.erased.insert(key.as_str().to_string());
        Ok(())
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.stage_erase_prefix(prefix.as_str());
        Ok(())
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}
