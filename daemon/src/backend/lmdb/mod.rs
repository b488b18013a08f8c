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

pub mod config;
pub mod durability;
pub mod layout;
pub mod reader;
pub mod space;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use asebytes_protocol::Capabilities;
use heed::types::Bytes as RawBytes;
use heed::{CommitOrAbort, Env, EnvFlags, EnvOpenOptions, MdbError, RoTxn, WithoutTls};

use self::config::LmdbConfig;
use self::durability::{Durability, Flusher};
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

/// How long growing ahead of need waits for open snapshots (new snapshots wait meanwhile).
const GROW_AHEAD_WAIT: Duration = Duration::from_millis(20);

/// How long to leave the map alone after growing ahead gave up.
const GROW_AHEAD_BACKOFF: Duration = Duration::from_secs(1);

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
fn held_elsewhere(dir: &Path, lock: &Path) -> Error {
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

fn io_err(context: String, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ErrorKind::DiskFull,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, context).with_source(e)
}

/// Admits transactions while the map is not being resized, and lets a resize wait until
/// none is open. Entering and leaving are two atomic operations; the mutex is only taken
/// while a resize is pending.
#[derive(Debug, Default)]
pub(crate) struct MapGate {
    active: AtomicUsize,
    resizing: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
    /// One resize at a time.
    resizer: Mutex<()>,
}

/// An admitted transaction; leaving the gate on drop.
#[derive(Debug)]
pub(crate) struct GateGuard<'a>(&'a MapGate);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl MapGate {
    /// Waits while a resize runs, then admits one transaction.
    fn enter(&self) -> GateGuard<'_> {
        loop {
            // Increment first, then check: a resizer sets its flag first, then reads the
            // count, so at least one of the two sees the other (both are SeqCst).
            self.active.fetch_add(1, Ordering::SeqCst);
            if !self.resizing.load(Ordering::SeqCst) {
                return GateGuard(self);
            }
            self.leave();
            let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            while self.resizing.load(Ordering::SeqCst) {
                held = self
                    .changed
                    .wait(held)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    fn leave(&self) {
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 && self.resizing.load(Ordering::SeqCst) {
            let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.changed.notify_all();
        }
    }

    /// Runs `f` while no transaction is admitted, waiting up to `wait` for open ones to
    /// end; `None` if they did not.
    fn exclusive<R>(&self, wait: Duration, f: impl FnOnce() -> R) -> Option<R> {
        let _one = self.resizer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.resizing.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + wait;
        let mut result = None;
        loop {
            if self.active.load(Ordering::SeqCst) == 0 {
                result = Some(f());
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            held = self
                .changed
                .wait_timeout(held, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        self.resizing.store(false, Ordering::SeqCst);
        self.changed.notify_all();
        drop(held);
        result
    }
}

/// State shared by the backend (writer side) and its readers.
#[derive(Debug)]
pub(crate) struct Shared {
    env: Env<WithoutTls>,
    pub store: Store,
    pub cache: IndexCache,
    gate: MapGate,
    cfg: LmdbConfig,
    page_size: u64,
    removed: AtomicBool,
    canonical: String,
    /// After a grow-ahead gave up waiting for snapshots, the next try waits until then.
    grow_ahead_not_before: Mutex<Option<Instant>>,
}

impl Shared {
    fn check_present(&self) -> Result<()> {
        if self.removed.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{} was removed", self.canonical),
            ));
        }
        Ok(())
    }

    /// Opens a read transaction inside the gate.
    pub(crate) fn begin_read(&self) -> Result<(GateGuard<'_>, RoTxn<'_, WithoutTls>)> {
        let mut cleared_stale = false;
        let mut adopted = 0;
        loop {
            self.check_present()?;
            let guard = self.gate.enter();
            match self.env.read_txn() {
                Ok(txn) => return Ok((guard, txn)),
                Err(heed::Error::Mdb(MdbError::MapResized)) if adopted < 3 => {
                    drop(guard);
                    adopted += 1;
                    self.adopt_map_size()?;
                }
                // Slots of crashed processes are only reclaimed when someone asks.
                Err(heed::Error::Mdb(MdbError::ReadersFull)) if !cleared_stale => {
                    drop(guard);
                    cleared_stale = true;
                    self.env.clear_stale_readers().map_err(map_heed_err)?;
                }
                Err(e) => return Err(map_heed_err(e)),
            }
        }
    }

    /// `(bytes in use, map size)`.
    fn usage(&self) -> (u64, u64) {
        let info = self.env.info();
        (
            (info.last_page_number as u64 + 1) * self.page_size,
            info.map_size as u64,
        )
    }

    fn round_to_page(&self, n: u64) -> u64 {
        n.div_ceil(self.page_size) * self.page_size
    }

    /// Resizes the map to `target` once no transaction is open; `false` if snapshots
    /// stayed open longer than `wait`.
    fn resize(&self, target: u64, wait: Duration) -> Result<bool> {
        let size = usize::try_from(self.round_to_page(target)).map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                "LMDB map size exceeds the address space",
            )
        })?;
        // SAFETY: `exclusive` runs this only while no transaction of this process is open
        // (every transaction is opened inside the gate), which is what
        // `mdb_env_set_mapsize` requires.
        match self
            .gate
            .exclusive(wait, || unsafe { self.env.resize(size) })
        {
            None => Ok(false),
            Some(r) => r.map(|()| true).map_err(map_heed_err),
        }
    }

    /// Grows the map ahead of need when it is three quarters used. It waits only briefly
    /// for open snapshots (new ones queue meanwhile) and, if they outlast that, leaves the
    /// map alone for a second so a long snapshot does not slow every write.
    fn grow_ahead(&self) -> Result<()> {
        let (used, map) = self.usage();
        if used.saturating_mul(4) < map.saturating_mul(3) || map >= self.cfg.max_map_size {
            return Ok(());
        }
        let mut not_before = self
            .grow_ahead_not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if not_before.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let target = map.saturating_mul(2).min(self.cfg.max_map_size);
        let wait = GROW_AHEAD_WAIT.min(self.cfg.resize_wait);
        if !self.resize(target, wait)? {
            *not_before = Some(Instant::now() + GROW_AHEAD_BACKOFF);
        }
        Ok(())
    }

    /// Grows the map after a write ran out of space having put `attempted` bytes.
    fn grow(&self, attempted: u64) -> Result<()> {
        let (used, map) = self.usage();
        if map >= self.cfg.max_map_size {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the LMDB map of {} reached its ceiling of {} bytes; raise ASEBYTES_LMDB_MAX_MAP_SIZE",
                    self.canonical, self.cfg.max_map_size
                ),
            ));
        }
        let wanted = map
            .saturating_mul(2)
            .max(used.saturating_add(attempted.saturating_mul(2)));
        if !self.resize(wanted.min(self.cfg.max_map_size), self.cfg.resize_wait)? {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the LMDB map of {} is full and could not grow: snapshots stayed open for {:?} \
                     (ASEBYTES_LMDB_RESIZE_WAIT_MS); retry the write",
                    self.canonical, self.cfg.resize_wait
                ),
            ));
        }
        Ok(())
    }

    /// Maps as much of the file as another process has written (`MDB_MAP_RESIZED`).
    fn adopt_map_size(&self) -> Result<()> {
        let (used, map) = self.usage();
        let target = map
            .max(used.saturating_mul(2).min(self.cfg.max_map_size))
            .max(used);
        if !self.resize(target, self.cfg.resize_wait)? {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "another process grew {} and snapshots stayed open too long to follow; retry",
                    self.canonical
                ),
            ));
        }
        Ok(())
    }
}

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
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn test_exclusive_gives_up_at_once_while_a_transaction_is_open() {
        let gate = MapGate::default();
        let guard = gate.enter();
        assert_eq!(gate.exclusive(Duration::ZERO, || 1), None);
        drop(guard);
        assert_eq!(gate.exclusive(Duration::ZERO, || 2), Some(2));
        // The gate admits again after both attempts.
        drop(gate.enter());
        assert_eq!(gate.active.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn test_exclusive_waits_for_open_transactions_to_end() {
        let gate = Arc::new(MapGate::default());
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let holder = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let _guard = gate.enter();
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        };
        entered_rx.recv().unwrap();
        let resizer = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.exclusive(Duration::from_secs(60), || {
                    gate.active.load(Ordering::SeqCst)
                })
            })
        };
        // Wait until the resizer has closed the gate, then let the holder finish.
        while !gate.resizing.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(
            resizer.join().unwrap(),
            Some(0),
            "ran while a transaction was open"
        );
        assert!(!gate.resizing.load(Ordering::SeqCst));
    }

    #[test]
    fn test_heed_errors_map_to_actionable_kinds() {
        let kind = |e| map_heed_err(e).kind;
        assert_eq!(
            kind(heed::Error::Mdb(MdbError::MapFull)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(heed::Error::Mdb(MdbError::ReadersFull)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(heed::Error::Mdb(MdbError::Corrupted)),
            ErrorKind::Corrupt
        );
        assert_eq!(
            kind(heed::Error::Mdb(MdbError::VersionMismatch)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(heed::Error::Mdb(MdbError::BadValSize)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(heed::Error::Io(std::io::ErrorKind::NotFound.into())),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(heed::Error::Io(std::io::ErrorKind::StorageFull.into())),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(heed::Error::EnvAlreadyOpened),
            ErrorKind::AlreadyExists
        );
        let err = map_heed_err(heed::Error::Mdb(MdbError::MapFull));
        assert!(
            err.to_string().contains("ASEBYTES_LMDB_MAX_MAP_SIZE"),
            "{err}"
        );
    }

    /// Commits `puts` bypassing our writer and its cache, as another process would.
    fn foreign_write(b: &LmdbBackend, puts: &[(&[u8], &[u8])]) {
        let shared = &b.shared;
        let mut txn = shared.env.write_txn().unwrap();
        for (k, v) in puts {
            shared.store.db.put(&mut txn, k, v).unwrap();
        }
        txn.commit().unwrap();
    }

    fn rows(b: &LmdbBackend) -> Vec<Option<asebytes_protocol::Row>> {
        let reader = b.reader();
        let snap = reader.snapshot().unwrap();
        let n = snap.len().unwrap();
        (0..n).map(|i| snap.get(i, None).unwrap()).collect()
    }

    #[test]
    fn test_snapshots_and_writes_follow_commits_of_other_processes() {
        use asebytes_protocol::value::row;

        use self::layout::*;

        let dir = tempfile::tempdir().unwrap();
        let opts = OpenOptions {
            path: dir.path().join("x.lmdb").to_str().unwrap().into(),
            group: "default".into(),
            ..OpenOptions::default()
        };
        let mut b = LmdbBackend::open(&opts).unwrap();
        b.write(&mut |w| {
            w.extend(vec![Some(row([("a", "1")])), Some(row([("a", "2")]))])
                .map(drop)
        })
        .unwrap();
        assert_eq!(rows(&b).len(), 2);
        let warm = b.shared.cache.get().expect("a cached index");

        // Row data only: the blocks are unchanged, so the cached index is kept.
        foreign_write(&b, &[(b"1-a", b"changed")]);
        assert_eq!(
            rows(&b),
            vec![Some(row([("a", "1")])), Some(row([("a", "changed")]))]
        );
        let kept = b.shared.cache.get().unwrap();
        assert!(Arc::ptr_eq(&warm.index, &kept.index), "index was reloaded");
        assert!(kept.txnid > warm.txnid);

        // The reference inserting a row at 0: sort key 2 in front of block 0.
        foreign_write(
            &b,
            &[
                (b"2-a", b"new"),
                (&block_key(0), &encode_block(&[2, 0, 1])),
                (BLOCK_SIZES_KEY, &encode_sizes([3])),
                (NEXT_SORT_KEY_KEY, b"3"),
                (COUNT_KEY, b"3"),
            ],
        );
        assert_eq!(
            rows(&b),
            vec![
                Some(row([("a", "new")])),
                Some(row([("a", "1")])),
                Some(row([("a", "changed")]))
            ]
        );

        // Our writer starts from that state too: the next sort key is 3, not 2.
        b.write(&mut |w| w.extend(vec![Some(row([("b", "3")]))]).map(drop))
            .unwrap();
        assert_eq!(rows(&b)[3], Some(row([("b", "3")])));
        let txn = b.shared.env.read_txn().unwrap();
        assert_eq!(
            b.shared.store.db.get(&txn, b"3-b").unwrap(),
            Some(&b"3"[..])
        );
        assert_eq!(
            b.shared.store.db.get(&txn, b"2-a").unwrap(),
            Some(&b"new"[..])
        );
    }

    #[test]
    fn test_a_sort_key_at_or_above_the_counter_refuses_writes() {
        use asebytes_protocol::value::row;

        let dir = tempfile::tempdir().unwrap();
        let opts = OpenOptions {
            path: dir.path().join("x.lmdb").to_str().unwrap().into(),
            group: "default".into(),
            ..OpenOptions::default()
        };
        let mut b = LmdbBackend::open(&opts).unwrap();
        b.write(&mut |w| w.extend(vec![None]).map(drop)).unwrap();
        // A damaged counter would hand out sort key 0 a second time.
        foreign_write(&b, &[(layout::NEXT_SORT_KEY_KEY, b"0")]);
        let err = b
            .write(&mut |w| w.extend(vec![Some(row([("a", "1")]))]).map(drop))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Corrupt, "{err}");
        assert_eq!(rows(&b), vec![None], "reads still work");
    }

    #[test]
    fn test_visit_rows_lends_what_get_returns_across_cursor_walks() {
        use std::ops::ControlFlow;

        use asebytes_protocol::value::{key, row};

        let dir = tempfile::tempdir().unwrap();
        let opts = OpenOptions {
            path: dir.path().join("x.lmdb").to_str().unwrap().into(),
            group: "default".into(),
            ..OpenOptions::default()
        };
        let mut b = LmdbBackend::open(&opts).unwrap();
        // Sort keys of one to four digits, placeholders, rows of one to four fields, and a
        // deleted row (sort keys then no longer follow positions one to one).
        let data: Vec<_> = (0..1200usize)
            .map(|i| {
                (i % 7 != 3).then(|| {
                    let fields = ["pos", "e", "cell", "z"];
                    row(fields[..1 + i % 4].iter().map(|f| (*f, format!("{f}{i}"))))
                })
            })
            .collect();
        b.write(&mut |w| {
            w.extend(data.clone())?;
            w.delete_range(40, 41)
        })
        .unwrap();
        let reader = b.reader();
        let snap = reader.snapshot().unwrap();
        let n = snap.len().unwrap();
        let patterns: Vec<Vec<u64>> = vec![
            (0..n).collect(),
            (0..n).rev().collect(),
            vec![
                5, 50, 500, 1000, 51, 52, 52, 1198, 0, 0, 9, 10, 99, 100, 999, 1000,
            ],
            (0..n).step_by(3).collect(),
        ];
        for keys in [None, Some(vec![key("e"), key("pos")])] {
            for positions in &patterns {
                let mut lent = Vec::new();
                snap.visit_rows(positions, keys.as_deref(), &mut |r| {
                    lent.push(r.map(|fields| row(fields.iter().copied())));
                    ControlFlow::Continue(())
                })
                .unwrap();
                let got: Vec<_> = positions
                    .iter()
                    .map(|&i| snap.get(i, keys.as_deref()).unwrap())
                    .collect();
                assert_eq!(lent, got);
            }
        }
        // LMDB returns a row's fields in key order.
        let mut want = data[41].clone().unwrap();
        want.sort();
        assert_eq!(snap.get(40, None).unwrap(), Some(want));
    }
}
