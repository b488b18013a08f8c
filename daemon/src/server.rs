//! The listener: accepts peers, checks that each runs as our user, gives each its own named
//! connection thread, and runs the graceful shutdown.
//!
//! Layer: below the CLI (which binds the socket and installs signal handlers), above
//! `connection`. [`run`] is the one entry point; tests call it on a socket in a
//! temporary directory.
//!
//! Shutdown (a `Shutdown` request, the idle timer, SIGTERM/SIGINT) goes: stop accepting
//! (the listener is closed, so new connects are refused), shut the read side of every
//! connection so idle ones wake up while busy ones finish their current request, wake the
//! followers waiting for commits, wait for the connection threads (bounded by
//! [`Config::drain_timeout`]), commit and close every store, remove the socket file.

use std::collections::HashMap;
use std::io;
use std::net::Shutdown as SocketShutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::connection::{self, Context};
use crate::error::{Error, Result};
use crate::idle::IdleTimer;
use crate::paths::effective_uid;
use crate::registry::{ConnId, Releaser};
use crate::shutdown::{Shutdown, wait_readable};

/// Serves `listener` until `shutdown` fires, then shuts down gracefully and removes the
/// socket file (if [`Config::unlink_socket`]).
pub fn run(listener: UnixListener, config: Config, shutdown: Shutdown) -> Result<()> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot configure the listener", e))?;
    let bound: Option<PathBuf> = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Into::into));
    let idle = IdleTimer::new(config.idle_limit());
    let ctx = Arc::new(Context::new(shutdown.clone(), idle.clone(), &config));
    let watcher = idle
        .spawn_watcher(shutdown.clone())
        .map_err(|e| Error::io("cannot start the idle timer", e))?;
    let releaser = Releaser::spawn(ctx.registry.clone(), config.store_idle)
        .map_err(|e| Error::io("cannot start the store releaser", e))?;
    let conns = Arc::new(Connections::default());
    let uid = effective_uid();
    // The count of spinning waiters shared with our clients starts at zero: a seat left
    // taken by a client killed while spinning is forgotten here.
    let spin = crate::paths::spin_path(&config.socket);
    if let Err(e) = asebytes_protocol::spin::attach(&spin, true) {
        log::warn!(
            "cannot map {} ({e}); each process counts its own spinning waiters",
            spin.display()
        );
    }
    log::info!(
        "asebytesd {} (pid {}) listening on {}",
        asebytes_protocol::version::PACKAGE_VERSION,
        std::process::id(),
        config.socket.display()
    );

    let mut next_conn: ConnId = 0;
    let mut reserve = Reserve::new();
    let accepted = loop {
        let ready = match wait_readable(&[listener.as_raw_fd(), shutdown.wake_fd()], -1) {
            Ok(ready) => ready,
            Err(e) => break Err(Error::io("waiting for connections failed", e)),
        };
        if ready[1] {
            shutdown.absorb_wakeups();
        }
        if shutdown.is_triggered() {
            break Ok(());
        }
        if ready[0] {
            accept_all(
                &listener,
                uid,
                &mut next_conn,
                &ctx,
                &conns,
                &shutdown,
                &mut reserve,
            );
        }
    };
    // Closing the listener first makes new connects fail at once instead of waiting in a
    // backlog nobody will accept; clients then start a fresh daemon.
    drop(listener);
    log::info!("shutting down ({:?})", shutdown.reason());
    if !shutdown.is_triggered() {
        // An accept-loop failure: everyone else must stop too.
        shutdown.trigger(crate::shutdown::Reason::Requested);
    }

    conns.wake_all();
    ctx.registry.stop_followers();
    if !conns.wait_empty(config.drain_timeout) {
        log::warn!(
            "connections still busy after {:?}; closing the stores anyway",
            config.drain_timeout
        );
    }
    idle.stop();
    if let Some(w) = watcher {
        let _ = w.join();
    }
    if let Some(r) = releaser {
        r.stop();
    }
    ctx.registry.shutdown_all();
    if config.unlink_socket
        && let Some(path) = &bound
        && let Err(e) = std::fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", path.display());
    }
    log::info!("stopped");
    accepted
}

/// Accepts every pending peer (the listener is non-blocking).
fn accept_all(
    listener: &UnixListener,
    uid: u32,
    next_conn: &mut ConnId,
    ctx: &Arc<Context>,
    conns: &Arc<Connections>,
    shutdown: &Shutdown,
    reserve: &mut Reserve,
) {
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                *next_conn += 1;
                start_connection(sock, uid, *next_conn, ctx, conns);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                log::warn!("accept failed: {e}");
                reserve.refuse_one(listener);
                // Back off instead of spinning on a listener that stays readable.
                let _ = wait_readable(&[shutdown.wake_fd()], 100);
                return;
            }
            Err(e) => {
                // Back off instead of spinning on a listener that stays readable.
                log::warn!("accept failed: {e}");
                let _ = wait_readable(&[shutdown.wake_fd()], 100);
                return;
            }
        }
    }
}

fn start_connection(
    sock: UnixStream,
    uid: u32,
    conn: ConnId,
    ctx: &Arc<Context>,
    conns: &Arc<Connections>,
) {
    let pid = match crate::procinfo::peer_cred(&sock) {
        Ok((pid, peer)) if peer_allowed(peer, uid) => pid,
        Ok((_, peer)) => {
            log::warn!("refused a connection from uid {peer} (this daemon serves uid {uid} only)");
            return;
        }
        Err(e) => {
            log::warn!("refused a connection whose credentials cannot be read: {e}");
            return;
        }
    };
    let prepared = sock.set_nonblocking(false).and_then(|()| sock.try_clone());
    let waker = match prepared {
        Ok(w) => w,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
            log::warn!("cannot set up connection {conn}: {e}");
            connection::refuse_unserved(sock, out_of_fds_message());
            return;
        }
        Err(e) => {
            log::warn!("cannot set up connection {conn}: {e}");
            return;
        }
    };
    conns.insert(conn, waker);
    let ctx2 = ctx.clone();
    let conns2 = conns.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("asebytesd-conn-{conn}"))
        .spawn(move || {
            connection::serve(sock, conn, pid, &ctx2);
            conns2.remove(conn);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a thread for connection {conn}: {e}");
        conns.remove(conn);
    }
}

/// One descriptor held back for the moment the daemon runs out: then it is given up to
/// accept one waiting peer, tell it so, and close it, instead of leaving every new client
/// to time out in a handshake nobody answers.
struct Reserve(Option<std::fs::File>);

impl Reserve {
    fn new() -> Self {
        Self(std::fs::File::open("/dev/null").ok())
    }

    /// Accepts one pending peer with the reserved descriptor and refuses it, saying why.
    fn refuse_one(&mut self, listener: &UnixListener) {
        if self.0.take().is_none() {
            return;
        }
        if let Ok((sock, _)) = listener.accept()
            && peer_uid(&sock).is_ok_and(|peer| peer_allowed(peer, effective_uid()))
        {
            connection::refuse_unserved(sock, out_of_fds_message());
        }
        *self = Self::new();
    }
}

/// What a client is told when the daemon has no descriptor left for it.
fn out_of_fds_message() -> String {
    let limit = crate::limits::fd_limits()
        .map(|(soft, _)| format!(" (limit {soft})"))
        .unwrap_or_default();
    format!(
        "the asebytes daemon (pid {}) is out of file descriptors{limit}; close some clients \
         or stores, or raise the limit (`ulimit -n`, LimitNOFILE= for systemd) and restart it \
         with `asebytesd stop`",
        std::process::id()
    )
}

/// The uid of the process on the other end of `sock` (`SO_PEERCRED`).
pub fn peer_uid(sock: &UnixStream) -> io::Result<u32> {
    crate::procinfo::peer_cred(sock).map(|(_, uid)| uid)
}

/// Whether a peer running as `peer` may talk to a daemon running as `ours`: only the same
/// user, because the daemon reads and writes files with our permissions.
pub fn peer_allowed(peer: u32, ours: u32) -> bool {
    peer == ours
}

/// Live connections, with a second handle on each socket so shutdown can wake them.
#[derive(Debug, Default)]
struct Connections {
    live: Mutex<HashMap<ConnId, UnixStream>>,
    emptied: Condvar,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, UnixStream>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, conn: ConnId, sock: UnixStream) {
        self.lock().insert(conn, sock);
    }

    fn remove(&self, conn: ConnId) {
        let mut live = self.lock();
        live.remove(&conn);
        if live.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Shuts the read side of every connection: a thread blocked waiting for a request
    /// sees end-of-stream; one busy with a request still sends its answer.
    fn wake_all(&self) {
        for sock in self.lock().values() {
            let _ = sock.shutdown(SocketShutdown::Read);
        }
    }

    /// Waits until every connection thread has finished; `false` on timeout.
    fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut live = self.lock();
        while !live.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            live = self
                .emptied
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_uid_reads_our_own_uid_from_a_socket_pair() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = peer_uid(&a).unwrap();
        assert_eq!(peer, effective_uid());
        assert!(peer_allowed(peer, effective_uid()));
    }

    #[test]
    fn peer_allowed_refuses_other_users() {
        assert!(!peer_allowed(1000, 1001));
        assert!(!peer_allowed(0, 1000), "root is another user too");
    }

    #[test]
    fn wake_all_unblocks_a_reader_and_wait_empty_sees_it_leave() {
        use std::io::Read;
        let conns = Arc::new(Connections::default());
        let (a, _b) = UnixStream::pair().unwrap();
        conns.insert(1, a.try_clone().unwrap());
        let c2 = conns.clone();
        let reader = std::thread::spawn(move || {
            let mut a = a;
            let n = a.read(&mut [0u8; 8]).unwrap();
            c2.remove(1);
            n
        });
        assert!(!conns.wait_empty(Duration::from_millis(20)));
        conns.wake_all();
        assert!(conns.wait_empty(Duration::from_secs(10)));
        assert_eq!(reader.join().unwrap(), 0);
    }
}
