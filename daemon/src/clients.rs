//! The connected clients, for `asebytesd status`: which process (pid from
//! `SO_PEERCRED`) is connected since when.
//!
//! Layer: beside [`crate::idle`]; a connection registers itself once its handshake is
//! done and is forgotten when its guard drops. Only connects and disconnects take the
//! lock; the program name is read from `/proc` when `status` asks, not at connect.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use asebytes_protocol::response::ClientStatus;

use crate::procinfo;
use crate::registry::ConnId;

/// The live clients, by connection number.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    live: Arc<Mutex<BTreeMap<ConnId, Client>>>,
}

#[derive(Clone, Copy, Debug)]
struct Client {
    pid: u32,
    since: u64,
}

/// Keeps one client listed until dropped.
#[derive(Debug)]
pub struct Listed {
    clients: Clients,
    conn: ConnId,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<ConnId, Client>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists connection `conn` from process `pid` (0 if unknown) as connected now.
    pub fn register(&self, conn: ConnId, pid: u32) -> Listed {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.lock().insert(conn, Client { pid, since });
        Listed {
            clients: self.clone(),
            conn,
        }
    }

    /// Every listed client, oldest connection first, with its program name; `stores` is
    /// filled in by the caller.
    pub fn list(&self) -> Vec<ClientStatus> {
        let live: Vec<(ConnId, Client)> = self.lock().iter().map(|(k, v)| (*k, *v)).collect();
        live.into_iter()
            .map(|(conn, c)| ClientStatus {
                conn,
                pid: c.pid,
                program: if c.pid == 0 {
                    String::new()
                } else {
                    procinfo::program(c.pid)
                },
                since: c.since,
                stores: 0,
            })
            .collect()
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_listed_until_its_guard_drops() {
        let clients = Clients::default();
        let a = clients.register(1, std::process::id());
        let b = clients.register(2, 0);
        let list = clients.list();
        assert_eq!(list.iter().map(|c| c.conn).collect::<Vec<_>>(), [1, 2]);
        assert!(!list[0].program.is_empty());
        assert_eq!(list[1].program, "");
        drop(a);
        assert_eq!(clients.list().len(), 1);
        drop(b);
        assert!(clients.list().is_empty());
    }
}
