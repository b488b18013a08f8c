//! What `asebytesd status` shows about the stores: one line per open or released store,
//! and how many stores each connection has open.
//!
//! Layer: inside [`super`]; called by the connection that answers `Status`. Nothing here
//! counts as a use of a store: a store stays releasable while someone watches it. The
//! idle time is to the releaser's tick (a quarter of the store idle time) or to this
//! call, whichever folded the last use in.

use std::collections::HashMap;
use std::time::Instant;

use asebytes_protocol::response::StoreStatus;

use super::{ConnId, Registry, Slot};
use crate::store::StoreHandle;

/// A ready store's line, before its length is read outside the lock.
struct Open {
    line: StoreStatus,
    handle: StoreHandle,
}

impl Registry {
    /// One line per open or released store, sorted by key.
    pub fn status(&self) -> Vec<StoreStatus> {
        let now = Instant::now();
        let (open, mut out) = {
            let mut inner = self.lock();
            let keys: Vec<String> = inner.slots.keys().cloned().collect();
            let mut open = Vec::new();
            let mut out = Vec::new();
            for key in keys {
                match inner.slots.remove(&key) {
                    Some(Slot::Ready(mut e)) => {
                        // Folding the used flags in here loses nothing the releaser needs:
                        // it reads the same last use.
                        let (refs, used) = inner.refs_and_use(&e, true);
                        if used {
                            e.last_use = now;
                        }
                        let idle = now.saturating_duration_since(e.last_use).as_secs();
                        let line = StoreStatus {
                            canonical: key.clone(),
                            backend: e.handle.info().scheme.to_string(),
                            clients: e.users.len() as u64,
                            commits: e.handle.commits(),
                            idle_secs: idle,
                            in_flight: e.handle.holders().saturating_sub(refs) as u64,
                            queued: e.handle.queued(),
                            followers: e.handle.followers(),
                            ..StoreStatus::default()
                        };
                        open.push(Open {
                            line,
                            handle: e.handle.clone(),
                        });
                        inner.slots.insert(key, Slot::Ready(e));
                    }
                    Some(Slot::Released(d)) => {
                        out.push(StoreStatus {
                            canonical: key.clone(),
                            backend: d.entry.scheme.to_string(),
                            len: d.len,
                            clients: d.users.len() as u64,
                            released: true,
                            idle_secs: now.saturating_duration_since(d.last_use).as_secs(),
                            ..StoreStatus::default()
                        });
                        inner.slots.insert(key, Slot::Released(d));
                    }
                    Some(busy) => {
                        inner.slots.insert(key, busy);
                    }
                    None => {}
                }
            }
            (open, out)
        };
        for Open { mut line, handle } in open {
            line.len = handle.len().unwrap_or_default();
            (line.space_used, line.space_reserved) = handle.space().unwrap_or_default();
            line.cache_fills = handle.cache_fills().unwrap_or_default();
            out.push(line);
        }
        out.sort_by(|a, b| a.canonical.cmp(&b.canonical));
        out
    }

    /// How many stores (open or released) each connection uses.
    pub fn stores_by_connection(&self) -> HashMap<ConnId, u64> {
        let inner = self.lock();
        let mut counts: HashMap<ConnId, u64> = HashMap::new();
        for slot in inner.slots.values() {
            let users = match slot {
                Slot::Ready(e) => &e.users,
                Slot::Released(d) => &d.users,
                Slot::Busy(_) => continue,
            };
            for conn in users.keys() {
                *counts.entry(*conn).or_default() += 1;
            }
        }
        counts
    }
}
