//! The environment shared by the writer and the readers of one store, and its map size:
//! every transaction passes the [`MapGate`], so the map can be resized (grown ahead of
//! need, after `MDB_MAP_FULL`, or to follow another process) while none is open.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use heed::{Env, MdbError, RoTxn, WithoutTls};

use super::super::{Error, ErrorKind, Result};
use super::config::LmdbConfig;
use super::errors::map_heed_err;
use super::reader::{IndexCache, Store};

/// How long growing ahead of need waits for open snapshots (new snapshots wait meanwhile).
const GROW_AHEAD_WAIT: Duration = Duration::from_millis(20);

/// How long to leave the map alone after growing ahead gave up.
const GROW_AHEAD_BACKOFF: Duration = Duration::from_secs(1);

/// Admits transactions while the map is not being resized, and lets a resize wait until
/// none is open. Entering and leaving are two atomic operations; the mutex is only taken
/// while a resize is pending.
#[derive(Debug, Default)]
pub(crate) struct MapGate {
    pub(super) active: AtomicUsize,
    pub(super) resizing: AtomicBool,
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
    pub(super) fn enter(&self) -> GateGuard<'_> {
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

    pub(super) fn leave(&self) {
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 && self.resizing.load(Ordering::SeqCst) {
            let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.changed.notify_all();
        }
    }

    /// Runs `f` while no transaction is admitted, waiting up to `wait` for open ones to
    /// end; `None` if they did not.
    pub(super) fn exclusive<R>(&self, wait: Duration, f: impl FnOnce() -> R) -> Option<R> {
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
    pub(super) env: Env<WithoutTls>,
    pub store: Store,
    pub cache: IndexCache,
    pub(super) gate: MapGate,
    pub(super) cfg: LmdbConfig,
    pub(super) page_size: u64,
    pub(super) removed: AtomicBool,
    pub(super) canonical: String,
    /// After a grow-ahead gave up waiting for snapshots, the next try waits until then.
    pub(super) grow_ahead_not_before: Mutex<Option<Instant>>,
}

impl Shared {
    pub(super) fn check_present(&self) -> Result<()> {
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
    pub(super) fn usage(&self) -> (u64, u64) {
        let info = self.env.info();
        (
            (info.last_page_number as u64 + 1) * self.page_size,
            info.map_size as u64,
        )
    }

    pub(super) fn round_to_page(&self, n: u64) -> u64 {
        n.div_ceil(self.page_size) * self.page_size
    }

    /// Resizes the map to `target` once no transaction is open; `false` if snapshots
    /// stayed open longer than `wait`.
    pub(super) fn resize(&self, target: u64, wait: Duration) -> Result<bool> {
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
    pub(super) fn grow_ahead(&self) -> Result<()> {
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
    pub(super) fn grow(&self, attempted: u64) -> Result<()> {
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
    pub(super) fn adopt_map_size(&self) -> Result<()> {
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
