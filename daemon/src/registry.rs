//! The open stores of this daemon: canonical key → one [`StoreHandle`], so every client
//! that opens the same file talks to the same writer actor.
//!
//! Layer: called by [`crate::connection`], calls [`crate::store`] and
//! the backend table ([`crate::backend::table`]). A key is `<scheme>://<canonical path>#<group>`
//! (`lmdb:///data/x.lmdb#default`, `memory://scratch#default`); [`location`] parses it.
//! Store ids are daemon-global and never reused; a read-only open gets its own id on the
//! same handle. The registry tracks which connections use which store: when the last one
//! lets go, the store's actor commits and closes (a later open starts it again). Memory
//! stores stay open until the daemon exits or the store is removed.
//!
//! A persistent store that no request used for a while is *released* ([`release`]): its
//! actor commits and closes the backend's files so other programs can open them, while
//! its ids and users stay here. The next request on such an id re-opens the backend
//! under the same id, so clients notice nothing but the re-open time.
//!
//! The registry lock is held only for map look-ups: opening a backend and shutting an
//! actor down happen outside it, while the key's slot is marked busy so a concurrent open
//! of the same key waits instead of opening the same file twice.

mod follow;
mod gate;
mod location;
mod release;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use asebytes_protocol::ErrorCode;
use asebytes_protocol::published::{self, Publisher, SlotRef};
use asebytes_protocol::request::{Open, StoreId};
use asebytes_protocol::response::Opened;

use crate::backend::table::BackendEntry;
use crate::backend::{self, OpenOptions};
use crate::error::{Error, Result};
use crate::store::StoreHandle;

use gate::Gate;
pub use location::{Location, list_groups};
use release::Dormant;
pub use release::Releaser;

/// Identifies one client connection (assigned by the server).
pub type ConnId = u64;

/// Group used when an open names none.
pub const DEFAULT_GROUP: &str = "default";

/// Every open store of the daemon.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Gives stores with capability `exclusive` a slot in shared memory for their commit
    /// generation (`<socket>.gen`); `None`: no store publishes (clients ask every time).
    publisher: Option<Arc<Publisher>>,
    /// Wakes the [`Releaser`] when a store it may release opens.
    release: release::Signal,
}

#[derive(Debug)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// Ids of ready and released stores; a closing store's ids are gone at once, so its
    /// users get `UnknownStore` and re-open. A released store's ids have no handle.
    ids: HashMap<StoreId, IdSlot>,
    next_id: StoreId,
    closed: bool,
}

#[derive(Debug)]
enum Slot {
    Ready(Entry),
    /// Being opened, closed, released or re-opened; wait on the gate, then look again.
    Busy(Arc<Gate>),
    /// Closed while idle; ids and users kept, re-opened by the next request.
    Released(Dormant),
}

#[derive(Debug)]
struct Entry {
    handle: StoreHandle,
    opts: OpenOptions,
    entry: &'static BackendEntry,
    rw_id: Option<StoreId>,
    ro_id: Option<StoreId>,
    /// Connection → number of opens it has not closed.
    users: HashMap<ConnId, u32>,
    /// Last use seen by the releaser (which folds in [`IdSlot::used`] on every tick).
    last_use: Instant,
    /// Where the store's generation is published, kept across releases and re-opens.
    published: Option<Arc<published::Slot>>,
}

#[derive(Debug)]
struct IdSlot {
    key: String,
    readonly: bool,
    /// `None` while the store is released (or being released or re-opened).
    handle: Option<StoreHandle>,
    /// Set by every look-up, cleared by the releaser: "used since the last tick". A plain
    /// flag under the lock the look-up takes anyway, so the hot path gains no clock read.
    used: bool,
}

/// A store taken out of the map, to be shut down outside the lock.
struct Closing {
    key: String,
    entry: Entry,
    gate: Arc<Gate>,
}

impl Inner {
    /// Marks the ready store `key` busy and takes its entry (and ids) out.
    fn begin_close(&mut self, key: &str) -> Closing {
        let gate = Arc::new(Gate::default());
        let Some(Slot::Ready(entry)) = self.slots.insert(key.to_string(), Slot::Busy(gate.clone()))
        else {
            unreachable!("begin_close is only called on ready slots")
        };
        for id in [entry.rw_id, entry.ro_id].into_iter().flatten() {
            self.ids.remove(&id);
        }
        Closing {
            key: key.to_string(),
            entry,
            gate,
        }
    }

    /// Adds `conn` as a user of the ready store `key`; returns the id for the mode asked,
    /// the handle and where its generation is published.
    fn join(&mut self, key: &str, conn: ConnId, readonly: bool) -> Joined {
        let Inner {
            slots,
            ids,
            next_id,
            ..
        } = self;
        let Some(Slot::Ready(entry)) = slots.get_mut(key) else {
            unreachable!("join is only called on ready slots")
        };
        let id_slot = if readonly {
            &mut entry.ro_id
        } else {
            &mut entry.rw_id
        };
        let id = *id_slot.get_or_insert_with(|| {
            *next_id += 1;
            ids.insert(
                *next_id,
                IdSlot {
                    key: key.to_string(),
                    readonly,
                    handle: Some(entry.handle.clone()),
                    used: true,
                },
            );
            *next_id
        });
        if let Some(slot) = ids.get_mut(&id) {
            slot.used = true;
        }
        *entry.users.entry(conn).or_default() += 1;
        let published = entry.published.as_ref().map(|s| s.slot_ref());
        (id, entry.handle.clone(), published)
    }

    /// Removes `conn` from the users of the store behind `id`; returns the store to close
    /// if that was its last user.
    fn release(&mut self, conn: ConnId, id: StoreId) -> Option<Closing> {
        let key = self.ids.get(&id)?.key.clone();
        let users = self.slots.get_mut(&key)?.users_mut()?;
        let n = users.get_mut(&conn)?;
        *n -= 1;
        if *n == 0 {
            users.remove(&conn);
        }
        self.close_if_unused(&key)
    }

    fn close_if_unused(&mut self, key: &str) -> Option<Closing> {
        match self.slots.get(key) {
            // A store that is not persistent lives in the daemon: it stays open until removed.
            Some(Slot::Ready(e)) if e.users.is_empty() && e.handle.info().caps.persistent => {
                Some(self.begin_close(key))
            }
            // Released: nothing is open, only the bookkeeping goes.
            Some(Slot::Released(d)) if d.users.is_empty() => {
                self.forget(key);
                None
            }
            _ => None,
        }
    }

    /// Drops the released store `key` and its ids.
    fn forget(&mut self, key: &str) {
        if let Some(Slot::Released(d)) = self.slots.remove(key) {
            for id in [d.rw_id, d.ro_id].into_iter().flatten() {
                self.ids.remove(&id);
            }
        }
    }
}

impl Slot {
    /// The users of a ready or released store.
    fn users_mut(&mut self) -> Option<&mut HashMap<ConnId, u32>> {
        match self {
            Slot::Ready(e) => Some(&mut e.users),
            Slot::Released(d) => Some(&mut d.users),
            Slot::Busy(_) => None,
        }
    }
}

/// A store joined: its id, handle, and published slot.
type Joined = (StoreId, StoreHandle, Option<SlotRef>);

enum Next {
    Wait(Arc<Gate>),
    Wake,
    Reopen,
    Join,
    Start,
}

impl Registry {
    /// An empty registry. Ids start at the current time in microseconds, so an id a
    /// client kept from a previous daemon is unknown here (and never names another
    /// store) rather than colliding with a fresh one; they stay below 2^53 for centuries.
    pub fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let inner = Inner {
            slots: HashMap::new(),
            ids: HashMap::new(),
            next_id: now.as_micros() as u64,
            closed: false,
        };
        Self {
            inner: Mutex::new(inner),
            publisher: None,
            release: release::Signal::default(),
        }
    }

    /// An empty registry whose stores publish their commit generation through
    /// `publisher` (those with capability `exclusive`, while slots last).
    pub fn with_publisher(publisher: Arc<Publisher>) -> Self {
        Self {
            publisher: Some(publisher),
            ..Self::new()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (or joins) the store `req` names, for connection `conn`.
    pub fn open(&self, conn: ConnId, req: &Open) -> Result<Opened> {
        let loc = Location::parse(&req.location)?;
        let options = loc.options(req)?;
        let fallback;
        let group = match req.group.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => g,
            None => {
                fallback = loc
                    .entry
                    .default_group
                    .map_or_else(|| DEFAULT_GROUP.to_string(), |f| f(&loc.path));
                fallback.as_str()
            }
        };
        let key = loc.store_key(group, &options);
        loop {
            let mut inner = self.lock();
            if inner.closed {
                return Err(Error::ShuttingDown);
            }
            let next = match inner.slots.get(&key) {
                Some(Slot::Busy(gate)) => Next::Wait(gate.clone()),
                Some(Slot::Released(_)) => Next::Wake,
                Some(Slot::Ready(e)) if !req.readonly && e.opts.readonly => Next::Reopen,
                Some(Slot::Ready(_)) => Next::Join,
                None => Next::Start,
            };
            match next {
                Next::Wait(gate) => {
                    drop(inner);
                    gate.wait();
                }
                Next::Wake => {
                    drop(inner);
                    self.wake(&key, None)?;
                }
                Next::Join => {
                    let joined = inner.join(&key, conn, req.readonly);
                    drop(inner);
                    return self.opened(conn, joined, key, req.readonly);
                }
                Next::Reopen => {
                    let closing = inner.begin_close(&key);
                    drop(inner);
                    self.reopen_writable(closing)?;
                }
                Next::Start => {
                    let gate = Arc::new(Gate::default());
                    inner.slots.insert(key.clone(), Slot::Busy(gate.clone()));
                    drop(inner);
                    let opts = OpenOptions {
                        path: loc.path.clone(),
                        group: group.to_string(),
                        readonly: req.readonly,
                        options: options.clone(),
                    };
                    match start(loc.entry, &opts) {
                        Ok(handle) => {
                            log::info!("opened {key}");
                            let published = self
                                .publisher
                                .as_ref()
                                .filter(|_| handle.info().caps.exclusive)
                                .and_then(Publisher::take)
                                .map(Arc::new);
                            let entry = Entry {
                                handle,
                                opts,
                                entry: loc.entry,
                                rw_id: None,
                                ro_id: None,
                                users: HashMap::new(),
                                last_use: Instant::now(),
                                published,
                            };
                            self.install(&key, &gate, Some(entry));
                        }
                        Err(e) => {
                            if e.code() == ErrorCode::DiskFull {
                                log::error!("cannot open {key}: {e}");
                            } else {
                                log::debug!("cannot open {key}: {e}");
                            }
                            self.install(&key, &gate, None);
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    /// Answers an open that joined `handle` as `id`.
    fn opened(&self, conn: ConnId, joined: Joined, key: String, readonly: bool) -> Result<Opened> {
        let (id, handle, published) = joined;
        let len = match handle.len() {
            Ok(len) => len,
            Err(e) => {
                self.close(conn, id);
                return Err(e.into());
            }
        };
        let info = handle.info();
        let caps = if readonly {
            info.caps.read_only()
        } else {
            info.caps
        };
        Ok(Opened {
            store: id,
            canonical: key,
            backend: info.scheme.to_string(),
            caps,
            len,
            published,
        })
    }

    /// Replaces a read-only-opened store by a writable one. If the location cannot be
    /// opened writable, the read-only store is restored for its users and the error names
    /// why.
    fn reopen_writable(&self, closing: Closing) -> Result<()> {
        let Closing { key, entry, gate } = closing;
        let Entry {
            handle,
            opts,
            entry: backend_entry,
            rw_id,
            ro_id,
            users,
            published,
            ..
        } = entry;
        if let Err(e) = handle.shutdown() {
            log::warn!("closing read-only {key} before reopening it writable: {e}");
        }
        // The backend's files stay open until the last handle is gone.
        drop(handle);
        let writable = OpenOptions {
            readonly: false,
            ..opts.clone()
        };
        let (reopened, outcome) = match start(backend_entry, &writable) {
            Ok(handle) => {
                log::info!("reopened {key} writable");
                (Some((handle, writable)), Ok(()))
            }
            Err(e) => {
                let refused = Error::ReadOnlyStore {
                    canonical: key.clone(),
                    reason: e.to_string(),
                };
                match start(backend_entry, &opts) {
                    Ok(handle) => (Some((handle, opts)), Err(refused)),
                    Err(again) => {
                        log::warn!("cannot reopen {key} read-only either: {again}");
                        (None, Err(refused))
                    }
                }
            }
        };
        let entry = reopened.map(|(handle, opts)| Entry {
            handle,
            opts,
            entry: backend_entry,
            rw_id,
            ro_id,
            users,
            last_use: Instant::now(),
            published,
        });
        self.install(&key, &gate, entry);
        outcome
    }

    /// Publishes the outcome of an open or reopen of `key` and wakes its waiters.
    fn install(&self, key: &str, gate: &Gate, entry: Option<Entry>) {
        // Published before any client gets the handle: a new generation, whatever changed
        // while the daemon did not hold the store.
        if let Some(e) = &entry
            && let Some(slot) = &e.published
            && let Err(err) = e.handle.publish_to(slot.clone())
        {
            log::warn!("cannot publish the length of {key}: {err}");
        }
        let mut inner = self.lock();
        match entry {
            Some(entry) => {
                for (id, readonly) in [(entry.rw_id, false), (entry.ro_id, true)] {
                    if let Some(id) = id {
                        let handle = Some(entry.handle.clone());
                        inner.ids.insert(
                            id,
                            IdSlot {
                                key: key.to_string(),
                                readonly,
                                handle,
                                used: true,
                            },
                        );
                    }
                }
                let releasable = entry.handle.info().caps.persistent;
                inner.slots.insert(key.to_string(), Slot::Ready(entry));
                if releasable {
                    self.release.arm();
                }
            }
            None => {
                inner.slots.remove(key);
            }
        }
        drop(inner);
        gate.release();
    }

    /// Shuts down a store taken out of the map and frees its key.
    fn finish_close(&self, closing: Closing) {
        let Closing { key, entry, gate } = closing;
        match entry.handle.shutdown() {
            Ok(()) => log::info!("closed {key}"),
            Err(e) => log::warn!("closing {key}: {e}"),
        }
        // The backend's files stay open until the last handle is gone; a waiting open
        // must not find them still open.
        drop(entry);
        self.install(&key, &gate, None);
    }

    /// The handle behind `id` and whether `id` is a read-only open; re-opens a released
    /// store first. The handle a caller holds keeps the store from being released.
    pub fn lookup(&self, id: StoreId) -> Result<(StoreHandle, bool)> {
        loop {
            let mut inner = self.lock();
            let slot = inner.ids.get_mut(&id).ok_or(Error::UnknownStore(id))?;
            slot.used = true;
            if let Some(handle) = &slot.handle {
                return Ok((handle.clone(), slot.readonly));
            }
            let key = slot.key.clone();
            drop(inner);
            self.wake(&key, Some(id))?;
        }
    }

    /// Connection `conn` no longer uses `id` (`Close`); closing an id that is not open, or
    /// that `conn` never opened, does nothing.
    pub fn close(&self, conn: ConnId, id: StoreId) {
        let closing = self.lock().release(conn, id);
        if let Some(c) = closing {
            self.finish_close(c);
        }
    }

    /// Connection `conn` is gone: it no longer uses any store.
    pub fn connection_closed(&self, conn: ConnId) {
        let closing: Vec<Closing> = {
            let mut inner = self.lock();
            let keys: Vec<String> = inner
                .slots
                .iter_mut()
                .filter_map(|(key, slot)| slot.users_mut()?.remove(&conn).map(|_| key.clone()))
                .collect();
            keys.iter()
                .filter_map(|k| inner.close_if_unused(k))
                .collect()
        };
        for c in closing {
            self.finish_close(c);
        }
    }

    /// The store behind `id` was removed (`Remove` succeeded): forget it for every client.
    pub fn removed(&self, id: StoreId) {
        let closing = {
            let mut inner = self.lock();
            let Some(key) = inner.ids.get(&id).map(|s| s.key.clone()) else {
                return;
            };
            match inner.slots.get(&key) {
                Some(Slot::Ready(_)) => inner.begin_close(&key),
                _ => return,
            }
        };
        log::info!("removed {}", closing.key);
        self.finish_close(closing);
    }

    /// Refuses new opens and commits and closes every store (waiting for opens and closes
    /// in progress to finish first).
    pub fn shutdown_all(&self) {
        loop {
            let (closing, busy) = {
                let mut inner = self.lock();
                inner.closed = true;
                let mut ready = Vec::new();
                let mut busy = Vec::new();
                let mut released = Vec::new();
                for (key, slot) in &inner.slots {
                    match slot {
                        Slot::Ready(_) => ready.push(key.clone()),
                        Slot::Busy(gate) => busy.push(gate.clone()),
                        Slot::Released(_) => released.push(key.clone()),
                    }
                }
                for key in &released {
                    inner.forget(key);
                }
                let closing: Vec<Closing> = ready.iter().map(|k| inner.begin_close(k)).collect();
                (closing, busy)
            };
            if closing.is_empty() && busy.is_empty() {
                return;
            }
            for c in closing {
                self.finish_close(c);
            }
            for gate in busy {
                gate.wait();
            }
        }
    }
}

/// How long an open retries while the backend reports the location still open: a
/// request that was running on a store's previous handle may hold it for a moment after
/// the store was closed.
const REOPEN_GRACE: Duration = Duration::from_secs(10);

/// Opens a backend (behind its read-through cache, if the options name one) and starts
/// its store actor.
fn start(entry: &'static BackendEntry, opts: &OpenOptions) -> Result<StoreHandle> {
    let deadline = Instant::now() + REOPEN_GRACE;
    let backend = loop {
        match backend::cached::open(entry, opts) {
            Ok(b) => break b,
            Err(e) if e.kind == backend::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                std::thread::park_timeout(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    };
    StoreHandle::spawn(backend).map_err(|e| Error::io("cannot start the store's writer thread", e))
}

#[cfg(test)]
mod tests;
