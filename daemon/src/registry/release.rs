//! Releasing idle stores: a persistent store that no request used for the store idle time
//! (`ASEBYTES_STORE_IDLE_SECS`) commits and closes its backend, so other programs (py-lmdb,
//! the Python `asebytes`, h5py, zarr-python) can open its files. Its ids and users stay in
//! the registry; the next request on it re-opens the backend ([`Registry::lookup`]).
//!
//! Layer: inside [`super`]; the server starts the [`Releaser`] thread and stops it before
//! closing every store. Memory stores (capability `persistent == false`) are never
//! released: closing them would lose their rows.
//!
//! The hot path pays nothing for this: a look-up sets a flag under the registry lock it
//! takes anyway, and the releaser reads and clears the flags every quarter of the idle
//! time, so a store is released between one and one and a quarter idle times after its
//! last request. A store is only released while no request holds its handle (the
//! handle's clone count equals the registry's own), checked and published under the
//! lock, so a request never sees its store close under it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use asebytes_protocol::published;
use asebytes_protocol::request::StoreId;

use super::{ConnId, Entry, Gate, Inner, Registry, Slot, start};
use crate::backend::OpenOptions;
use crate::backend::table::BackendEntry;
use crate::error::{Error, Result};
use crate::store::StoreHandle;

/// Shortest interval between two looks at the stores.
const MIN_TICK: Duration = Duration::from_millis(10);

/// Tells the releaser thread there is something to watch, or to stop.
#[derive(Debug, Default)]
pub(super) struct Signal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    /// A releasable store was installed since the releaser last looked.
    armed: bool,
    stopped: bool,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A store the releaser may release is open (called on the cold open path only).
    pub(super) fn arm(&self) {
        let mut st = self.lock();
        if !st.armed {
            st.armed = true;
            self.changed.notify_all();
        }
    }
}

/// The thread that releases idle stores; stop it with [`Releaser::stop`].
#[derive(Debug)]
pub struct Releaser {
    registry: Arc<Registry>,
    thread: Option<JoinHandle<()>>,
}

impl Releaser {
    /// Starts releasing the idle stores of `registry` after `idle` without requests;
    /// `None` when `idle` is zero (never release).
    pub fn spawn(registry: Arc<Registry>, idle: Duration) -> std::io::Result<Option<Self>> {
        if idle.is_zero() {
            return Ok(None);
        }
        let r = registry.clone();
        let thread = std::thread::Builder::new()
            .name("asebytesd-release".into())
            .spawn(move || r.run_releaser(idle))?;
        Ok(Some(Self {
            registry,
            thread: Some(thread),
        }))
    }

    /// Ends the thread (it releases nothing more) and waits for it.
    pub fn stop(mut self) {
        let signal = &self.registry.release;
        signal.lock().stopped = true;
        signal.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A released store: everything but the backend.
#[derive(Debug)]
pub(super) struct Dormant {
    pub(super) opts: OpenOptions,
    pub(super) entry: &'static BackendEntry,
    pub(super) rw_id: Option<StoreId>,
    pub(super) ro_id: Option<StoreId>,
    pub(super) users: HashMap<ConnId, u32>,
    pub(super) last_use: Instant,
    /// Rows when it was released (shown by `status`; other programs may change it since).
    pub(super) len: u64,
    /// Its published slot, withdrawn while released; re-published with a new generation on
    /// re-open.
    pub(super) published: Option<Arc<published::Slot>>,
}

impl Entry {
    /// Splits off the handle, keeping what re-opening needs.
    fn into_dormant(self, len: u64) -> (StoreHandle, Dormant) {
        let dormant = Dormant {
            opts: self.opts,
            entry: self.entry,
            rw_id: self.rw_id,
            ro_id: self.ro_id,
            users: self.users,
            last_use: self.last_use,
            len,
            published: self.published,
        };
        (self.handle, dormant)
    }
}

impl Dormant {
    fn wake(self, handle: StoreHandle) -> Entry {
        Entry {
            handle,
            opts: self.opts,
            entry: self.entry,
            rw_id: self.rw_id,
            ro_id: self.ro_id,
            users: self.users,
            last_use: Instant::now(),
            published: self.published,
        }
    }
}

/// A store taken out of the map to be released outside the lock.
struct Releasing {
    key: String,
    entry: Entry,
    gate: Arc<Gate>,
}

impl Inner {
    /// Marks the ready store `key` busy and takes its handles out of its ids (which stay).
    fn begin_release(&mut self, key: &str) -> Releasing {
        let gate = Arc::new(Gate::default());
        let Some(Slot::Ready(entry)) = self.slots.insert(key.to_string(), Slot::Busy(gate.clone()))
        else {
            unreachable!("begin_release is only called on ready slots")
        };
        for id in [entry.rw_id, entry.ro_id].into_iter().flatten() {
            if let Some(slot) = self.ids.get_mut(&id) {
                slot.handle = None;
            }
        }
        Releasing {
            key: key.to_string(),
            entry,
            gate,
        }
    }

    /// `(handles the registry holds itself, some id was used since the last look)` for
    /// the ready entry `e`; clears the used flags when `clear`.
    pub(super) fn refs_and_use(&mut self, e: &Entry, clear: bool) -> (usize, bool) {
        let mut refs = 1;
        let mut used = false;
        for id in [e.rw_id, e.ro_id].into_iter().flatten() {
            if let Some(slot) = self.ids.get_mut(&id) {
                used |= slot.used;
                if clear {
                    slot.used = false;
                }
                refs += usize::from(slot.handle.is_some());
            }
        }
        (refs, used)
    }
}

impl Registry {
    fn run_releaser(&self, idle: Duration) {
        let tick = (idle / 4).max(MIN_TICK);
        loop {
            let watching = self.release_idle(idle);
            let mut st = self.release.lock();
            if st.stopped {
                return;
            }
            if watching || st.armed {
                st.armed = false;
                drop(
                    self.release
                        .changed
                        .wait_timeout(st, tick)
                        .unwrap_or_else(PoisonError::into_inner),
                );
            } else {
                while !st.armed && !st.stopped {
                    st = self
                        .release
                        .changed
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// Releases every persistent store that no request used for `idle` and that no
    /// request holds now; returns whether releasable stores remain open (to look again).
    pub(super) fn release_idle(&self, idle: Duration) -> bool {
        let now = Instant::now();
        let (releasing, watching) = {
            let mut inner = self.lock();
            let keys: Vec<String> = inner
                .slots
                .iter()
                .filter(|(_, slot)| matches!(slot, Slot::Ready(_)))
                .map(|(key, _)| key.clone())
                .collect();
            let mut due = Vec::new();
            let mut releasable = 0;
            for key in &keys {
                // Taken out and put back so the ids can be updated beside it.
                let Some(Slot::Ready(mut e)) = inner.slots.remove(key) else {
                    continue;
                };
                // Every store's last use is kept current (for `status`); only persistent
                // ones are released.
                let (refs, used) = inner.refs_and_use(&e, true);
                if used {
                    e.last_use = now;
                }
                let persistent = e.handle.info().caps.persistent;
                let idle_enough = now.saturating_duration_since(e.last_use) >= idle;
                let unheld = e.handle.holders() == refs;
                inner.slots.insert(key.clone(), Slot::Ready(e));
                if persistent {
                    releasable += 1;
                    if idle_enough && unheld {
                        due.push(key.clone());
                    }
                }
            }
            let watching = releasable > due.len();
            let releasing: Vec<Releasing> = due.iter().map(|k| inner.begin_release(k)).collect();
            (releasing, watching)
        };
        for r in releasing {
            self.finish_release(r, idle);
        }
        watching
    }

    /// Commits and closes a store taken out by [`Inner::begin_release`] and publishes it
    /// as released.
    fn finish_release(&self, r: Releasing, idle: Duration) {
        let Releasing { key, entry, gate } = r;
        let len = entry.handle.len().unwrap_or_default();
        let (handle, dormant): (_, Dormant) = entry.into_dormant(len);
        match handle.shutdown() {
            Ok(()) => log::info!(
                "released {key} (no requests for {}s; the next one re-opens it)",
                idle.as_secs_f32()
            ),
            Err(e) => log::warn!("releasing {key}: {e}"),
        }
        // The backend's files stay open until the last handle is gone.
        drop(handle);
        self.install_released(&key, &gate, dormant);
    }
}

impl Registry {
    /// Re-opens the released store `key` (or waits for whoever is opening or releasing
    /// it). On failure the store stays released, so a later request can try again (for
    /// example once another program let go of the file). `id` is the id a look-up came
    /// with: if it no longer names this store it is forgotten and `UnknownStore` returned.
    pub(super) fn wake(&self, key: &str, id: Option<StoreId>) -> Result<()> {
        let mut inner = self.lock();
        let dormant = match inner.slots.get(key) {
            Some(Slot::Busy(gate)) => {
                let gate = gate.clone();
                drop(inner);
                gate.wait();
                return Ok(());
            }
            Some(Slot::Released(_)) => {
                let gate = Arc::new(Gate::default());
                let Some(Slot::Released(d)) = inner
                    .slots
                    .insert(key.to_string(), Slot::Busy(gate.clone()))
                else {
                    unreachable!("the slot was released a moment ago")
                };
                (d, gate)
            }
            _ => {
                // Ready (someone else re-opened it) or gone: an id still without a handle
                // belongs to a store that no longer exists.
                if let Some(id) = id
                    && inner.ids.get(&id).is_some_and(|s| s.handle.is_none())
                {
                    inner.ids.remove(&id);
                    return Err(Error::UnknownStore(id));
                }
                return Ok(());
            }
        };
        drop(inner);
        let (dormant, gate) = dormant;
        let started = Instant::now();
        match start(dormant.entry, &dormant.opts) {
            Ok(handle) => {
                log::info!("re-opened {key} in {:?}", started.elapsed());
                self.install(key, &gate, Some(dormant.wake(handle)));
                Ok(())
            }
            Err(e) => {
                log::warn!("cannot re-open {key}: {e}");
                self.install_released(key, &gate, dormant);
                Err(e)
            }
        }
    }

    /// Publishes a released store (its ids lose their handles) and wakes its waiters.
    pub(super) fn install_released(&self, key: &str, gate: &Gate, dormant: Dormant) {
        let mut inner = self.lock();
        for id in [dormant.rw_id, dormant.ro_id].into_iter().flatten() {
            if let Some(slot) = inner.ids.get_mut(&id) {
                slot.handle = None;
            }
        }
        inner.slots.insert(key.to_string(), Slot::Released(dormant));
        drop(inner);
        gate.release();
    }
}
