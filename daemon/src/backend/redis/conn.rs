//! Connections to one Redis server: a small pool shared by a store's writer and readers,
//! reconnecting by itself after the server went away, and the one place where driver
//! errors become backend errors.
//!
//! Layer: inside [`super`] (the Redis backend). A connection that failed is dropped, never
//! reused; the next call opens a new one. A connection that sat idle is checked with a
//! PING before a write trusts it (a restarted server closed it meanwhile), so the first
//! call after a restart works instead of failing on the stale socket. Errors name the
//! server as `host:port`, never the location (it may carry a password).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::{Connection, RedisError, ServerErrorKind};

use super::config::RedisConfig;
use crate::backend::{Error, ErrorKind, Result};

/// Idle connections kept per store.
const MAX_IDLE: usize = 8;
/// A connection unused for this long is PINGed before it is trusted.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(500);

/// The connections of one store.
pub struct Pool {
    cfg: Arc<RedisConfig>,
    client: redis::Client,
    idle: Mutex<Vec<(Connection, Instant)>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.cfg.server())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("server", &self.pool.cfg.server())
            .field("broken", &self.conn.is_none())
            .finish()
    }
}

/// A connection taken from the pool; goes back on drop unless it failed.
pub struct Conn<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
    /// Whether it came from the pool (and so may have gone stale while idle).
    reused: bool,
}

impl Pool {
    /// A pool for `cfg`'s server; connects once, so a server that is down or refuses the
    /// credentials is reported at open, naming host and port.
    pub fn connect(cfg: Arc<RedisConfig>) -> Result<Self> {
        let info = cfg.connection_info()?;
        let client = match cfg.tls_certificates()? {
            Some(certs) => redis::Client::build_with_tls(info, certs),
            None => redis::Client::open(info),
        }
        .map_err(|e| map_err(&cfg.server(), e))?;
        let pool = Self {
            cfg,
            client,
            idle: Mutex::new(Vec::new()),
        };
        let first = pool.open_one()?;
        pool.give_back(first);
        Ok(pool)
    }

    /// The server as `host:port`, for messages.
    pub fn server(&self) -> String {
        self.cfg.server()
    }

    fn open_one(&self) -> Result<Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.cfg.connect_timeout)
            .map_err(|e| self.err(e))?;
        conn.set_read_timeout(Some(self.cfg.timeout))
            .and_then(|()| conn.set_write_timeout(Some(self.cfg.timeout)))
            .map_err(|e| self.err(e))?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    /// A connection: an idle one (PINGed first if it idled long), else a new one.
    pub fn take(&self) -> Result<Conn<'_>> {
        loop {
            let popped = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some((mut conn, since)) = popped else {
                return Ok(Conn {
                    pool: self,
                    conn: Some(self.open_one()?),
                    reused: false,
                });
            };
            if since.elapsed() >= IDLE_CHECK_AFTER
                && redis::cmd("PING").query::<()>(&mut conn).is_err()
            {
                // The server went away while this one idled; try the next.
                continue;
            }
            return Ok(Conn {
                pool: self,
                conn: Some(conn),
                reused: true,
            });
        }
    }

    /// A driver error as a backend error naming this server.
    pub fn err(&self, e: RedisError) -> Error {
        map_err(&self.server(), e)
    }
}

impl Conn<'_> {
    /// Runs `f` on the connection; a failure that leaves the connection unusable drops it.
    pub fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None => {
                self.conn = Some(self.pool.open_one()?);
                self.reused = false;
                self.conn.as_mut().expect("just set")
            }
        };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                if drops_connection(&e) {
                    self.conn = None;
                }
                Err(self.pool.err(e))
            }
        }
    }

    /// [`Conn::run`] for reads, which are safe to repeat: a pooled connection that turns
    /// out to be dead (the server restarted) is replaced and `f` tried once more.
    pub fn read<T>(
        &mut self,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let reused = self.reused;
        match self.run(&mut f) {
            Err(e) if reused && self.conn.is_none() && e.kind == ErrorKind::Unavailable => {
                self.run(f)
            }
            other => other,
        }
    }
}

impl Conn<'_> {
    /// Drops the connection instead of giving it back (it is in a state the next user
    /// must not inherit); the next call opens a new one.
    pub fn discard(&mut self) {
        self.conn = None;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

/// Whether the connection must be replaced after `e` (I/O trouble, a reply we could not
/// read); a plain error reply leaves it usable.
fn drops_connection(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        || e.kind() == redis::ErrorKind::Parse
}

/// The classification every Redis failure goes through.
pub fn map_err(server: &str, e: RedisError) -> Error {
    let (kind, what) = match e.kind() {
        _ if e.is_connection_refusal() => (
            ErrorKind::Unavailable,
            format!("cannot connect to the Redis server {server} (is it running?)"),
        ),
        _ if e.is_timeout() => (
            ErrorKind::Unavailable,
            format!(
                "the Redis server {server} did not answer in time; a write in flight was \
                 applied entirely or not at all"
            ),
        ),
        _ if e.is_io_error() || e.is_connection_dropped() => (
            ErrorKind::Unavailable,
            format!(
                "lost the connection to the Redis server {server}; a write in flight was \
                 applied entirely or not at all, and the next call reconnects"
            ),
        ),
        redis::ErrorKind::AuthenticationFailed
        | redis::ErrorKind::Server(ServerErrorKind::NoPerm) => (
            ErrorKind::Unavailable,
            format!("the Redis server {server} refused the credentials of the location"),
        ),
        redis::ErrorKind::Server(ServerErrorKind::ResponseError) if is_auth_reply(&e) => (
            ErrorKind::Unavailable,
            format!("the Redis server {server} refused the credentials of the location"),
        ),
        redis::ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => (
            ErrorKind::Unavailable,
            format!("the Redis server {server} cannot take this request now"),
        ),
        _ if e.code() == Some("WRONGTYPE") => (
            ErrorKind::Corrupt,
            format!(
                "a key of this group on the Redis server {server} holds another kind of value \
                 than the asebytes layout (sort_keys LIST, next_sk STRING, row HASH)"
            ),
        ),
        _ if is_oom(&e) => (
            ErrorKind::Unavailable,
            format!("the Redis server {server} is out of memory (maxmemory); nothing was written"),
        ),
        _ => (
            ErrorKind::Unexpected,
            format!("the Redis server {server} failed the request"),
        ),
    };
    Error::new(kind, what).with_source(e)
}

fn is_auth_reply(e: &RedisError) -> bool {
    matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
}

fn is_oom(e: &RedisError) -> bool {
    e.code() == Some("OOM")
}
