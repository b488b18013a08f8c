//! The `lmdb://` backend: one LMDB environment per group in `<path>/<group>/`, laid out
//! byte-compatibly with the reference `asebytes` 0.3.3 (`asebytes-behaviour.md` §4.1), so
//! its files open here and ours open there.
//!
//! Layer: below [`crate::store`], beside the other backends. [`layout`] is the key schema,
//! [`reader`] the snapshots, [`writer`] the write transaction, [`config`] the tuning,
//! [`durability`] when a commit is acknowledged (`durability="disk"` or `"os"`).
//!
//! Sharing with the reference. heed compiles LMDB's mdb.master branch, whose lock file
//! (format 2) differs from the 0.9 releases py-lmdb ships (format 1); the data file is the
//! same. So a store moves freely between the reference and us, but not while both have it
//! open: whoever opens second gets `MDB_VERSION_MISMATCH` (here: `Unavailable`, naming the
//! store and, from `/proc/locks`, the holder). The daemon lets go of idle stores, so the
//! two take turns. Any number of our own processes share a store as LMDB intends.
//!
//! Map growth. LMDB refuses writes past its map size (`MDB_MAP_FULL`), and changing the
//! map size is only allowed while no transaction of this process is open. Every
//! transaction we open (snapshots on connection threads, the actor's write transaction)
//! therefore passes a `MapGate`; resizing closes the gate and waits for the open ones to
//! end. Before each write the map is doubled ahead of need once it is three quarters
//! used, waiting at most 20 ms for open snapshots (and, if they outlast that, not trying
//! again for a second). If a write still hits a full map, the transaction is aborted, the
//! map grown (at least doubled, waiting up to `resize_wait` for open snapshots) and the
//! batch run again, which is why [`Backend::write`] takes an `FnMut`. A user sees
//! `MDB_MAP_FULL` only as `Unavailable`, once the ceiling `max_map_size` is reached or
//! snapshots stayed open too long. When another process grew the file beyond our map
//! (`MDB_MAP_RESIZED`), we adopt the larger size the same way. Callers must therefore not
//! hold a snapshot while waiting for a write of the same store.

pub mod block_index;
pub mod config;
pub mod durability;
mod env;
mod errors;
pub mod layout;
pub mod reader;
pub mod space;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use asebytes_protocol::Capabilities;
use heed::types::Bytes as RawBytes;
use heed::{CommitOrAbort, EnvFlags, EnvOpenOptions, MdbError};

use self::config::LmdbConfig;
use self::durability::{Durability, Flusher};
pub(crate) use self::env::{GateGuard, MapGate, Shared};
pub(crate) use self::errors::map_heed_err;
use self::errors::{held_elsewhere, io_err};
use self::reader::{IndexCache, LmdbReader, Store};
use self::writer::LmdbWriter;
use super::{
    Backend, BackendEntry, BackendInfo, Error, ErrorKind, LocationKind, OpenOptions, Reader,
    Result, Writer,
};

/// URI scheme and backend name.
pub const SCHEME: &str = "lmdb";

/// The LMDB backend's line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "LMDB",
    patterns: &["*.lmdb"],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::File,
    options: &["map_size", durability::OPTION],
    open: |opts| Ok(Box::new(LmdbBackend::open(opts)?)),
    list_groups,
};

/// Files that make a directory an LMDB environment.
const ENV_FILES: [&str; 2] = ["data.mdb", "lock.mdb"];

/// How often one batch may grow the map before we call it a bug rather than a big batch
/// (each growth at least doubles the map).
const MAX_GROWTHS_PER_WRITE: usize = 48;

/// An open LMDB store (one group).
#[derive(Debug)]
pub struct LmdbBackend {
    info: BackendInfo,
    shared: Arc<Shared>,
    reader: Arc<LmdbReader>,
    /// The group directory (or, for the empty group, the store directory itself).
    dir: PathBuf,
    group: String,
    /// Flushes `durability="os"` commits now and then and at close.
    flusher: Flusher,
}

/// What one attempt at a write transaction came to.
enum Attempt {
    Committed,
    /// Out of map space after putting this many bytes.
    MapFull(u64),
    /// Another process grew the file past our map.
    MapResized,
}

impl LmdbBackend {
    /// Opens (creating unless read-only) `opts.path/opts.group`, tuned by the
    /// `ASEBYTES_LMDB_*` variables (see [`config`]) and the options `map_size` and
    /// `durability`.
    pub fn open(opts: &OpenOptions) -> Result<Self> {
        let mut cfg = LmdbConfig::from_env()?.with_map_size(opts.options.u64("map_size")?);
        cfg.durability = Durability::from_options(&opts.options)?;
        Self::open_with(opts, cfg)
    }

    /// [`LmdbBackend::open`] with explicit settings (options are not consulted).
    pub fn open_with(opts: &OpenOptions, cfg: LmdbConfig) -> Result<Self> {
        let group = opts.group.as_str();
        if group.contains('/') || group.contains('\0') || group == "." || group == ".." {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("LMDB group name {group:?} must be a plain directory name"),
            ));
        }
        if opts.path.is_empty() {
            return Err(Error::new(ErrorKind::InvalidArgument, "LMDB path is empty"));
        }
        let base = std::path::absolute(&opts.path)
            .map_err(|e| io_err(format!("bad LMDB path {:?}", opts.path), e))?;
        let dir = base.join(group);
        // What this open creates, so a failed open leaves nothing behind.
        let created = [&base, &dir].into_iter().find(|p| !p.exists()).cloned();
        let opened = Self::open_env(opts, cfg, base, group);
        if let (Err(_), Some(created)) = (&opened, created) {
            let _ = std::fs::remove_dir_all(created);
        }
        opened
    }

    /// The body of [`Self::open_with`], after the names are checked.
    fn open_env(opts: &OpenOptions, cfg: LmdbConfig, base: PathBuf, group: &str) -> Result<Self> {
        let dir = base.join(group);
        if opts.readonly {
            if !dir.join(ENV_FILES[0]).is_file() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "no LMDB store at {} (group {group:?}) to open read-only",
                        base.display()
                    ),
                ));
            }
        } else {
            std::fs::create_dir_all(&dir)
                .map_err(|e| io_err(format!("cannot create {}", dir.display()), e))?;
        }
        // Symlinks resolved, so two spellings of one path name one store.
        let base = std::fs::canonicalize(&base)
            .map_err(|e| io_err(format!("cannot resolve {}", base.display()), e))?;
        let dir = base.join(group);
        let page_size = page_size();
        let map_size = usize::try_from(cfg.map_size.max(page_size).div_ceil(page_size) * page_size)
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    "LMDB map size exceeds the address space",
                )
            })?;

        let lock = dir.join(ENV_FILES[1]);
        let full = |e: std::io::Error| {
            if space::is_disk_full(&e, &dir) {
                space::disk_full(
                    &base.display().to_string(),
                    &dir,
                    "the LMDB lock file cannot be allocated, so the store was not opened",
                )
                .with_source(e)
            } else {
                io_err(format!("cannot allocate {}", lock.display()), e)
            }
        };
        // LMDB maps the lock file read-write; every page of it must be backed by disk
        // blocks before it is touched, or a full disk is a SIGBUS (see `space`).
        space::preallocate_lock(&lock, cfg.max_readers).map_err(full)?;

        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(map_size).max_readers(cfg.max_readers);
        // SAFETY: READ_ONLY only restricts what this handle may do; NO_SYNC (`os`
        // durability) only skips the flush of each commit, which `Flusher` does instead.
        if opts.readonly {
            unsafe { options.flags(EnvFlags::READ_ONLY) };
        } else {
            unsafe { options.flags(cfg.durability.env_flags()) };
        }
        // SAFETY: the files are only ever changed through LMDB (here or in other processes,
        // which LMDB's lock file coordinates), and heed refuses a second open of the same
        // path in this process.
        let env = unsafe { options.open(&dir) }.map_err(|e| {
            if space::is_disk_full(&e, &dir) {
                let doing = "the store could not be created, so it was not opened";
                space::disk_full(&base.display().to_string(), &dir, doing).with_source(e)
            } else if matches!(e, heed::Error::Mdb(MdbError::VersionMismatch)) {
                held_elsewhere(&dir, &lock).with_source(e)
            } else {
                map_heed_err(e)
            }
        })?;
        // LMDB may have grown the lock file it found; allocate what it grew.
        space::allocate_open_lock(&lock).map_err(full)?;
        match env.clear_stale_readers() {
            Ok(_) => {}
            // A read-only user may lack write access to the lock file; stale slots then stay
            // until a writer opens the store.
            Err(_) if opts.readonly => {}
            Err(e) => return Err(map_heed_err(e)),
        }
        let rtxn = env.read_txn().map_err(map_heed_err)?;
        let opened = env
            .open_databases_and_commit(rtxn, |opener, rtxn| {
                opener
                    .open_database::<RawBytes, RawBytes>(rtxn, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(map_heed_err)?;
        let db = match opened {
            CommitOrAbort::Commit(Some(db)) => db,
            _ => {
                return Err(Error::corrupt(format!(
                    "{} has no main LMDB database",
                    dir.display()
                )));
            }
        };

        let canonical = format!("{SCHEME}://{}#{group}", base.display());
        let flusher = Flusher::new(cfg.durability, cfg.os_sync_interval);
        if cfg.durability == Durability::Os && !opts.readonly {
            log::info!("{canonical}: durability=os (commits acknowledged once in the OS)");
        }
        let mut caps = Capabilities::all();
        // Values are stored as msgpack bytes per field; nothing to pack.
        caps.packed_columns = false;
        if opts.readonly {
            caps = caps.read_only();
        }
        let shared = Arc::new(Shared {
            store: Store {
                db,
                max_key: env.max_key_size(),
            },
            env,
            cache: IndexCache::default(),
            gate: MapGate::default(),
            cfg,
            page_size,
            removed: AtomicBool::new(false),
            canonical: canonical.clone(),
            grow_ahead_not_before: Mutex::new(None),
        });
        Ok(Self {
            info: BackendInfo {
                scheme: SCHEME,
                canonical,
                caps,
            },
            reader: Arc::new(LmdbReader {
                shared: shared.clone(),
            }),
            shared,
            dir,
            group: group.to_owned(),
            flusher,
        })
    }

    /// Frees reader slots that processes which died mid-read still hold (done at open
    /// and whenever the reader table is full); returns how many were freed.
    pub fn clear_stale_readers(&self) -> Result<usize> {
        self.shared.env.clear_stale_readers().map_err(map_heed_err)
    }

    /// The durability the environment really runs with (from LMDB's own flags).
    pub fn durability(&self) -> Result<Durability> {
        let flags = self.shared.env.get_flags().map_err(map_heed_err)?;
        Ok(if flags & EnvFlags::NO_SYNC.bits() != 0 {
            Durability::Os
        } else {
            Durability::Disk
        })
    }

    fn check_writable(&self) -> Result<()> {
        self.shared.check_present()?;
        if !self.info.caps.write {
            return Err(Error::new(ErrorKind::ReadOnly, "Backend is read-only"));
        }
        Ok(())
    }

    /// One write transaction: runs `f`, writes the deferred metadata, commits.
    fn attempt(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<Attempt> {
        let shared = &*self.shared;
        let _guard = shared.gate.enter();
        let mut txn = match shared.env.write_txn() {
            Ok(txn) => txn,
            Err(heed::Error::Mdb(MdbError::MapResized)) => return Ok(Attempt::MapResized),
            Err(e) => return Err(map_heed_err(e)),
        };
        let txnid = txn.id();
        let finished = {
            let mut w = LmdbWriter::begin(&mut txn, shared.store, &shared.cache)?;
            let outcome = f(&mut w);
            // A poisoned transaction never commits, whatever `f` made of the error.
            let finished = match outcome {
                Ok(()) if w.failure().is_none() => w.finish(),
                Ok(()) => Err(Error::new(ErrorKind::Unexpected, "poisoned")),
                Err(e) => Err(e),
            };
            match (w.failure(), finished) {
                (Some(failure), _) if failure.map_full => {
                    return Ok(Attempt::MapFull(w.bytes_put()));
                }
                (Some(failure), _) => return Err(failure.to_error()),
                (None, Err(e)) => return Err(e),
                (None, Ok(finished)) => finished,
            }
        };
        match txn.commit() {
            Ok(()) => {}
            Err(heed::Error::Mdb(MdbError::MapFull)) => return Ok(Attempt::MapFull(0)),
            Err(e) => return Err(map_heed_err(e)),
        }
        // Tag the new index with the id readers will see; an empty commit does not create
        // a new id, and then the next reader validates by the metadata instead.
        if finished.wrote && shared.env.info().last_txn_id == txnid {
            let mut state = finished.state;
            state.txnid = txnid;
            shared.cache.publish(Arc::new(state));
        }
        Ok(Attempt::Committed)
    }

    /// Runs the batch, growing the map as often as it needs (see the module docs).
    fn write_growing(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        let mut growths = 0;
        loop {
            self.shared.grow_ahead()?;
            match self.attempt(f)? {
                Attempt::Committed => return Ok(()),
                Attempt::MapFull(attempted) if growths < MAX_GROWTHS_PER_WRITE => {
                    growths += 1;
                    self.shared.grow(attempted)?;
                }
                Attempt::MapFull(_) => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "the LMDB map of {} kept filling up while growing",
                            self.info.canonical
                        ),
                    ));
                }
                Attempt::MapResized => self.shared.adopt_map_size()?,
            }
        }
    }
}

impl Backend for LmdbBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn reader(&self) -> Arc<dyn Reader> {
        self.reader.clone()
    }

    fn write(&mut self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        self.check_writable()?;
        self.write_growing(f).map_err(|e| {
            if e.kind != ErrorKind::DiskFull && space::is_disk_full(&e, &self.dir) {
                let doing = "nothing of this write was stored";
                space::disk_full(&self.info.canonical, &self.dir, doing).with_source(e)
            } else {
                e
            }
        })?;
        // The commit stands whatever the flush does: it is in the OS, as `os` promises.
        if let Err(e) = self.flusher.committed(&self.shared.env) {
            log::warn!("{}: periodic flush failed: {e}", self.info.canonical);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.flusher.flush(&self.shared.env)
    }

    fn remove(&mut self) -> Result<()> {
        self.check_writable()?;
        self.shared.removed.store(true, Ordering::SeqCst);
        // Open snapshots keep reading the unlinked files; new ones fail with NotFound.
        let result = if self.group.is_empty() {
            // The environment sits in the store directory itself, beside other groups.
            ENV_FILES
                .iter()
                .try_for_each(|f| remove_if_present(&self.dir.join(f)))
        } else {
            match std::fs::remove_dir_all(&self.dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        };
        result.map_err(|e| io_err(format!("cannot remove {}", self.dir.display()), e))
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Groups at `path`: sorted names of sub-directories holding `data.mdb` or `lock.mdb`
/// (like the reference); a missing path has none.
pub fn list_groups(path: &str) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(io_err(format!("cannot list {path}"), e)),
    };
    let mut groups = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(format!("cannot list {path}"), e))?;
        let dir = entry.path();
        if dir.is_dir()
            && ENV_FILES.iter().any(|f| dir.join(f).exists())
            && let Ok(name) = entry.file_name().into_string()
        {
            groups.push(name);
        }
    }
    groups.sort();
    Ok(groups)
}

#[cfg(test)]
mod tests;
