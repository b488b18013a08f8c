//! The open stores of this daemon: canonical key → one [`StoreHandle`], so every client
//! that opens the same file talks to the same writer actor.
//!
//! Layer: called by [`crate::connection`], calls [`crate::store`] and
//! the backend table ([`crate::backend::table`]). A key is `<scheme>://<canonical path>#<group>`
//! (`lmdb:///data/x.lmdb#default`, `memory://scratch#default`). Store ids are daemon-global
//! and never reused; a read-only open gets its own id on the same handle. The registry
//! tracks which connections use which store: when the last one lets go, the store's actor
//! commits and closes (a later open starts it again). Memory stores stay open until the
//! daemon exits or the store is removed.
//!
//! The registry lock is held only for map look-ups: opening a backend and shutting an
//! actor down happen outside it, while the key's slot is marked busy so a concurrent open
//! of the same key waits instead of opening the same file twice.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use asebytes_protocol::ErrorCode;
use asebytes_protocol::request::{Open, StoreId};
use asebytes_protocol::response::{Opened, StoreStatus};

use asebytes_protocol::OptionValue;

use crate::backend::table::{self, BackendEntry, LocationKind};
use crate::backend::{self, OpenOptions, Options};
use crate::error::{Error, Result};
use crate::store::StoreHandle;

/// Identifies one client connection (assigned by the server).
pub type ConnId = u64;

/// Group used when an open names none.
pub const DEFAULT_GROUP: &str = "default";

/// A parsed `Open.location`: which backend, and its canonical path (or memory name).
#[derive(Clone, Debug)]
pub struct Location {
    /// The backend's table entry.
    pub entry: &'static BackendEntry,
    /// Canonical absolute path for file backends, the store name for named ones.
    pub path: String,
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        self.entry.scheme == other.entry.scheme && self.path == other.path
    }
}

impl Eq for Location {}

impl Location {
    /// Parses `<scheme>://<rest>` for a scheme in the backend table, or a plain absolute
    /// path that a table pattern matches (`/data/x.lmdb`), and canonicalises file paths
    /// (a path that does not exist yet is resolved through its nearest existing ancestor).
    pub fn parse(location: &str) -> Result<Self> {
        let unknown = || Error::UnknownBackend {
            location: location.to_string(),
            known: table::known(),
        };
        let (entry, rest) = match location.split_once("://") {
            Some((scheme, rest)) => (table::by_scheme(scheme).ok_or_else(unknown)?, rest),
            None => (table::by_pattern(location).ok_or_else(unknown)?, location),
        };
        let path = match entry.location {
            LocationKind::Name if rest.is_empty() => DEFAULT_GROUP.to_string(),
            LocationKind::Name => rest.to_string(),
            LocationKind::File => canonical_file(location, rest)?,
        };
        Ok(Self { entry, path })
    }

    /// Backend scheme (`lmdb`, `memory`).
    pub fn scheme(&self) -> &'static str {
        self.entry.scheme
    }

    /// The registry key for `group`.
    pub fn key(&self, group: &str) -> String {
        format!("{}://{}#{}", self.scheme(), self.path, group)
    }

    /// The backend's options from an `Open`, refusing names it does not take. Protocol 1
    /// carried `map_size` as a field; it joins the map here.
    fn options(&self, req: &Open) -> Result<Options> {
        let mut map = req.options.clone();
        if let Some(m) = req.map_size {
            map.entry("map_size".into())
                .or_insert(OptionValue::Int(i64::try_from(m).unwrap_or(i64::MAX)));
        }
        let accepted = self.entry.options;
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !accepted.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(Error::UnknownOptions {
                backend: self.entry.label,
                unknown,
                accepted,
            });
        }
        Ok(Options::new(map))
    }
}

fn canonical_file(location: &str, path: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(invalid(
            "the daemon needs an absolute path (the client resolves relative ones)".into(),
        ));
    }
    let canonical =
        canonicalize_lenient(p).map_err(|e| invalid(format!("cannot resolve the path: {e}")))?;
    canonical
        .into_os_string()
        .into_string()
        .map_err(|_| invalid("the path is not valid UTF-8".into()))
}

/// `fs::canonicalize`, except that components that do not exist yet are appended to the
/// canonical form of their nearest existing ancestor.
fn canonicalize_lenient(p: &Path) -> io::Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(c),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let Some(parent) = p.parent() else {
                return Err(e);
            };
            let base = canonicalize_lenient(parent)?;
            Ok(match p.components().next_back() {
                Some(Component::ParentDir) => base.parent().map(Path::to_path_buf).unwrap_or(base),
                Some(Component::Normal(name)) => base.join(name),
                _ => base,
            })
        }
        Err(e) => Err(e),
    }
}

/// Groups that exist at `location` (for `ListGroups`).
pub fn list_groups(location: &str) -> Result<Vec<String>> {
    let loc = Location::parse(location)?;
    Ok((loc.entry.list_groups)(&loc.path)?)
}

/// Every open store of the daemon.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// Only ids of ready stores are here; a closing store's ids are gone at once, so its
    /// users get `UnknownStore` and re-open.
    ids: HashMap<StoreId, IdSlot>,
    next_id: StoreId,
    closed: bool,
}

#[derive(Debug)]
enum Slot {
    Ready(Entry),
    /// Being opened or closed; wait on the gate, then look again.
    Busy(Arc<Gate>),
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
}

#[derive(Debug)]
struct IdSlot {
    key: String,
    readonly: bool,
    handle: StoreHandle,
}

#[derive(Debug, Default)]
struct Gate {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn release(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }
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

    /// Adds `conn` as a user of the ready store `key`; returns the id for the mode asked.
    fn join(&mut self, key: &str, conn: ConnId, readonly: bool) -> (StoreId, StoreHandle) {
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
                    handle: entry.handle.clone(),
                },
            );
            *next_id
        });
        *entry.users.entry(conn).or_default() += 1;
        (id, entry.handle.clone())
    }

    /// Removes `conn` from the users of the store behind `id`; returns the store to close
    /// if that was its last user.
    fn release(&mut self, conn: ConnId, id: StoreId) -> Option<Closing> {
        let key = self.ids.get(&id)?.key.clone();
        let Some(Slot::Ready(entry)) = self.slots.get_mut(&key) else {
            return None;
        };
        let n = entry.users.get_mut(&conn)?;
        *n -= 1;
        if *n == 0 {
            entry.users.remove(&conn);
        }
        self.close_if_unused(&key)
    }

    fn close_if_unused(&mut self, key: &str) -> Option<Closing> {
        match self.slots.get(key) {
            // A store that is not persistent lives in the daemon: it stays open until removed.
            Some(Slot::Ready(e)) if e.users.is_empty() && e.handle.info().caps.persistent => {
                Some(self.begin_close(key))
            }
            _ => None,
        }
    }
}

enum Next {
    Wait(Arc<Gate>),
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
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (or joins) the store `req` names, for connection `conn`.
    pub fn open(&self, conn: ConnId, req: &Open) -> Result<Opened> {
        let loc = Location::parse(&req.location)?;
        let options = loc.options(req)?;
        let group = req
            .group
            .as_deref()
            .filter(|g| !g.is_empty())
            .unwrap_or(DEFAULT_GROUP);
        let key = loc.key(group);
        loop {
            let mut inner = self.lock();
            if inner.closed {
                return Err(Error::ShuttingDown);
            }
            let next = match inner.slots.get(&key) {
                Some(Slot::Busy(gate)) => Next::Wait(gate.clone()),
                Some(Slot::Ready(e)) if !req.readonly && e.opts.readonly => Next::Reopen,
                Some(Slot::Ready(_)) => Next::Join,
                None => Next::Start,
            };
            match next {
                Next::Wait(gate) => {
                    drop(inner);
                    gate.wait();
                }
                Next::Join => {
                    let (id, handle) = inner.join(&key, conn, req.readonly);
                    drop(inner);
                    return self.opened(conn, id, key, req.readonly, &handle);
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
                            let entry = Entry {
                                handle,
                                opts,
                                entry: loc.entry,
                                rw_id: None,
                                ro_id: None,
                                users: HashMap::new(),
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
    fn opened(
        &self,
        conn: ConnId,
        id: StoreId,
        key: String,
        readonly: bool,
        handle: &StoreHandle,
    ) -> Result<Opened> {
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
        });
        self.install(&key, &gate, entry);
        outcome
    }

    /// Publishes the outcome of an open or reopen of `key` and wakes its waiters.
    fn install(&self, key: &str, gate: &Gate, entry: Option<Entry>) {
        let mut inner = self.lock();
        match entry {
            Some(entry) => {
                for (id, readonly) in [(entry.rw_id, false), (entry.ro_id, true)] {
                    if let Some(id) = id {
                        let handle = entry.handle.clone();
                        inner.ids.insert(
                            id,
                            IdSlot {
                                key: key.to_string(),
                                readonly,
                                handle,
                            },
                        );
                    }
                }
                inner.slots.insert(key.to_string(), Slot::Ready(entry));
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

    /// The handle behind `id` and whether `id` is a read-only open.
    pub fn lookup(&self, id: StoreId) -> Result<(StoreHandle, bool)> {
        let inner = self.lock();
        let slot = inner.ids.get(&id).ok_or(Error::UnknownStore(id))?;
        Ok((slot.handle.clone(), slot.readonly))
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
                .filter_map(|(key, slot)| match slot {
                    Slot::Ready(e) => e.users.remove(&conn).map(|_| key.clone()),
                    Slot::Busy(_) => None,
                })
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

    /// One line per open store, sorted by key.
    pub fn status(&self) -> Vec<StoreStatus> {
        let open: Vec<(String, usize, StoreHandle)> = {
            let inner = self.lock();
            inner
                .slots
                .iter()
                .filter_map(|(key, slot)| match slot {
                    Slot::Ready(e) => Some((key.clone(), e.users.len(), e.handle.clone())),
                    Slot::Busy(_) => None,
                })
                .collect()
        };
        let mut out: Vec<StoreStatus> = open
            .into_iter()
            .map(|(canonical, clients, handle)| StoreStatus {
                canonical,
                backend: handle.info().scheme.to_string(),
                len: handle.len().unwrap_or_default(),
                clients: clients as u64,
                commits: handle.commits(),
            })
            .collect();
        out.sort_by(|a, b| a.canonical.cmp(&b.canonical));
        out
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
                for (key, slot) in &inner.slots {
                    match slot {
                        Slot::Ready(_) => ready.push(key.clone()),
                        Slot::Busy(gate) => busy.push(gate.clone()),
                    }
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

/// Opens a backend and starts its store actor.
fn start(entry: &BackendEntry, opts: &OpenOptions) -> Result<StoreHandle> {
    let deadline = Instant::now() + REOPEN_GRACE;
    let backend = loop {
        match (entry.open)(opts) {
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
mod tests {
    use super::*;
    use asebytes_protocol::ErrorCode;
    use asebytes_protocol::request::{Extend, StoreRef};
    use asebytes_protocol::value::row;
    use asebytes_protocol::{Request, Response};

    /// Runs the request `make(id)` on the store behind `id`, as that id's client would.
    fn execute(reg: &Registry, id: StoreId, make: fn(StoreId) -> Request) -> Response {
        let (h, ro) = reg.lookup(id).unwrap();
        h.execute(make(id), ro)
    }

    fn extend_one(store: StoreId) -> Request {
        Request::Extend(Extend {
            store,
            rows: vec![Some(row([("k", "v")]))],
        })
    }

    fn len(store: StoreId) -> Request {
        Request::Len(StoreRef { store })
    }

    fn open_req(location: &str, readonly: bool) -> Open {
        Open {
            location: location.into(),
            group: None,
            readonly,
            map_size: None,
            options: Default::default(),
        }
    }

    /// A memory name no other test (in this process-global backend) uses.
    fn unique(name: &str) -> String {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("memory://registry-test-{name}-{}-{n}", std::process::id())
    }

    #[test]
    fn parses_memory_locations() {
        let loc = Location::parse("memory://").unwrap();
        assert_eq!(loc.key("default"), "memory://default#default");
        assert_eq!(
            Location::parse("memory://scratch").unwrap().key("g"),
            "memory://scratch#g"
        );
    }

    #[test]
    fn unknown_schemes_and_extensions_name_what_is_known() {
        for loc in ["nosuch:///d/x.foo", "/d/x.unknown", "x"] {
            let err = Location::parse(loc).unwrap_err();
            assert_eq!(err.code(), ErrorCode::NotFound, "{loc}");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("No backend registered for '{loc}'; known: ")),
                "{msg}"
            );
            assert!(msg.contains("memory://"), "{msg}");
        }
    }

    #[cfg(feature = "lmdb")]
    #[test]
    fn lmdb_locations_are_canonical_absolute_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(&real, real.join("link")).unwrap();
        let want = format!("lmdb://{}/x.lmdb", real.display());
        let spellings = [
            format!("lmdb://{}/x.lmdb", real.display()),
            format!("{}/x.lmdb", real.display()),
            format!("{}/link/./x.lmdb", real.display()),
            format!("{}/sub/../x.lmdb", real.display()),
        ];
        for s in &spellings {
            let loc = Location::parse(s).unwrap();
            assert_eq!(format!("{}://{}", loc.scheme(), loc.path), want, "{s}");
        }
        let err = Location::parse("lmdb://rel/x.lmdb").unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.to_string().contains("absolute"), "{err}");
        assert_eq!(
            Location::parse("rel/x.lmdb").unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn same_location_shares_one_store_and_readonly_gets_its_own_id() {
        let reg = Registry::new();
        let loc = unique("share");
        let a = reg.open(1, &open_req(&loc, false)).unwrap();
        let b = reg.open(2, &open_req(&loc, false)).unwrap();
        let r = reg.open(3, &open_req(&loc, true)).unwrap();
        assert_eq!(a.store, b.store);
        assert_ne!(a.store, r.store);
        assert_eq!(a.canonical, format!("{loc}#default"));
        assert_eq!(r.canonical, a.canonical);
        assert!(a.caps.write && !r.caps.write);

        assert_eq!(execute(&reg, a.store, extend_one), Response::Len(1));
        assert!(reg.lookup(r.store).unwrap().1);
        assert_eq!(execute(&reg, r.store, len), Response::Len(1));
        let (h, ro) = reg.lookup(r.store).unwrap();
        let refused = h.execute(Request::Clear(StoreRef { store: r.store }), ro);
        assert!(matches!(refused, Response::Error(e) if e.code == ErrorCode::ReadOnly));

        let st = reg.status();
        assert_eq!(st.len(), 1);
        assert_eq!((st[0].len, st[0].clients, st[0].commits), (1, 3, 1));
    }

    #[test]
    fn memory_stores_outlive_their_connections_until_removed() {
        let reg = Registry::new();
        let loc = unique("keep");
        let a = reg.open(1, &open_req(&loc, false)).unwrap();
        reg.close(1, a.store);
        reg.connection_closed(1);
        assert!(reg.lookup(a.store).is_ok());
        reg.removed(a.store);
        let err = reg.lookup(a.store).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownStore);
        let again = reg.open(1, &open_req(&loc, false)).unwrap();
        assert!(again.store > a.store, "ids are never reused");
    }

    #[test]
    fn shutdown_all_closes_everything_and_refuses_new_opens() {
        let reg = Registry::new();
        let a = reg.open(1, &open_req(&unique("down"), false)).unwrap();
        reg.shutdown_all();
        assert!(reg.status().is_empty());
        assert_eq!(
            reg.lookup(a.store).unwrap_err().code(),
            ErrorCode::UnknownStore
        );
        let err = reg.open(1, &open_req(&unique("late"), false)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ShuttingDown);
    }

    #[test]
    fn concurrent_opens_of_one_location_start_one_store() {
        let reg = Arc::new(Registry::new());
        let loc = unique("race");
        let ids: Vec<StoreId> = (0..8)
            .map(|conn| {
                let (reg, loc) = (reg.clone(), loc.clone());
                std::thread::spawn(move || reg.open(conn, &open_req(&loc, false)).unwrap().store)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
        assert_eq!(reg.status()[0].clients, 8);
    }

    #[cfg(feature = "lmdb")]
    #[test]
    fn a_file_store_closes_when_its_last_connection_leaves() {
        let tmp = tempfile::tempdir().unwrap();
        let loc = format!("{}/x.lmdb", tmp.path().display());
        let reg = Registry::new();
        let a = reg.open(1, &open_req(&loc, false)).unwrap();
        let b = reg.open(2, &open_req(&loc, false)).unwrap();
        assert_eq!(a.store, b.store);
        reg.connection_closed(1);
        assert!(reg.lookup(a.store).is_ok(), "connection 2 still uses it");
        reg.close(2, b.store);
        assert!(reg.status().is_empty());
        assert_eq!(
            reg.lookup(a.store).unwrap_err().code(),
            ErrorCode::UnknownStore
        );
        let again = reg.open(3, &open_req(&loc, false)).unwrap();
        assert_ne!(again.store, a.store);
    }

    #[cfg(feature = "lmdb")]
    #[test]
    fn a_writable_open_upgrades_a_read_only_store_and_keeps_its_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let loc = format!("{}/up.lmdb", tmp.path().display());
        let reg = Registry::new();
        let w = reg.open(1, &open_req(&loc, false)).unwrap();
        reg.close(1, w.store);
        let r = reg.open(2, &open_req(&loc, true)).unwrap();
        let w = reg.open(3, &open_req(&loc, false)).unwrap();
        assert!(w.caps.write);
        assert_eq!(execute(&reg, w.store, extend_one), Response::Len(1));
        assert!(reg.lookup(r.store).unwrap().1);
        assert_eq!(execute(&reg, r.store, len), Response::Len(1));
    }
}
