//! One client connection, on its own thread: handshake, then a loop of
//! read frame → decode → dispatch → answer, until the peer leaves or the daemon shuts down.
//!
//! Layer: run by [`crate::server`] for every accepted peer; calls [`crate::registry`] to
//! open, find and close stores and [`crate::store::StoreHandle::execute`] for everything
//! else. Frames go through [`FrameStream`], whose bounded busy-poll before blocking keeps a
//! conversation on two CPUs at a few microseconds per round trip.
//!
//! Bad input never takes the daemon down: an oversized or undecodable frame before the
//! handshake gets `Refused` and a close; after it, an oversized frame closes the
//! connection, an undecodable body with a readable id gets `Error(BadRequest)`, one
//! without closes the connection, and a panic while handling a request becomes
//! `Error(Unexpected)`.
//!
//! Nor can a peer exhaust it: receive buffers grow with the bytes that arrive, within one
//! budget for all connections ([`Context::budget`]); a peer that does not complete the
//! handshake in time, or stalls inside a frame, is disconnected. A connection counts as a
//! client (and keeps the daemon from idle exit) only once its handshake is done.

use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use asebytes_protocol::budget::MemoryBudget;
use asebytes_protocol::frame::{self, HANDSHAKE_MAX_FRAME_LEN};
use asebytes_protocol::published::Publisher;
use asebytes_protocol::request::StoreId;
use asebytes_protocol::response::Status;
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::version::{self, CURRENT, MIN_SUPPORTED, PACKAGE_VERSION};
use asebytes_protocol::{ErrorCode, Hello, HelloReply, Request, Response, Welcome, WireError};
use serde::de::IgnoredAny;

use crate::clients::Clients;
use crate::config::Config;
use crate::idle::IdleTimer;
use crate::registry::{self, ConnId, Registry};
use crate::shutdown::{Reason, Shutdown};
use crate::store::encode_answer;

/// A response this large keeps its buffer only until the next request; smaller ones keep
/// it for the connection's lifetime.
const KEEP_BUFFER: usize = 4 << 20;

/// What every connection thread shares.
#[derive(Debug)]
pub struct Context {
    /// Open stores (shared with the thread that releases idle ones).
    pub registry: Arc<Registry>,
    /// Connected clients (reported by `Status`).
    pub clients: Clients,
    /// Checked between frames; triggered by a `Shutdown` request.
    pub shutdown: Shutdown,
    /// Live connections (reported by `Status`).
    pub idle: IdleTimer,
    /// Socket path, for `Status`.
    pub socket: PathBuf,
    /// Idle timeout in seconds, for `Status`.
    pub idle_timeout_secs: u64,
    /// Store idle time in seconds, for `Status`.
    pub store_idle_secs: u64,
    /// Frame cap after the handshake.
    pub max_frame: usize,
    /// Shared by the receive buffers of all connections.
    pub budget: MemoryBudget,
    /// Time a new connection has to complete the handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for more bytes of a started frame.
    pub stall_timeout: Duration,
    /// Start time, for uptime.
    pub started: Instant,
    /// Start time in seconds since the Unix epoch, for `Welcome`.
    pub started_at: u64,
}

impl Context {
    /// A context for a daemon started now with `config`.
    pub fn new(shutdown: Shutdown, idle: IdleTimer, config: &Config) -> Self {
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Self {
            registry: Arc::new(registry_for(&config.socket)),
            clients: Clients::default(),
            shutdown,
            idle,
            socket: config.socket.clone(),
            idle_timeout_secs: config.idle_timeout.as_secs(),
            store_idle_secs: config.store_idle.as_secs(),
            max_frame: config.max_frame,
            budget: MemoryBudget::new(config.max_buffered),
            handshake_timeout: config.handshake_timeout,
            stall_timeout: config.stall_timeout,
            started: Instant::now(),
            started_at,
        }
    }

    fn status(&self) -> Status {
        let stores_of = self.registry.stores_by_connection();
        let mut connections = self.clients.list();
        for c in &mut connections {
            c.stores = stores_of.get(&c.conn).copied().unwrap_or_default();
        }
        Status {
            version: PACKAGE_VERSION.to_string(),
            protocol: CURRENT,
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            clients: self.idle.active() as u64,
            socket: self.socket.display().to_string(),
            idle_timeout_secs: self.idle_timeout_secs,
            stores: self.registry.status(),
            store_idle_secs: self.store_idle_secs,
            connections,
        }
    }
}

/// Serves one accepted peer (process `pid`, 0 if unknown) until it leaves; then releases
/// every store it used.
pub fn serve(sock: UnixStream, conn: ConnId, pid: u32, ctx: &Arc<Context>) {
    let mut stream = FrameStream::new(sock);
    stream.set_budget(ctx.budget.clone());
    stream.set_stall_timeout(Some(ctx.stall_timeout));
    if handshake(&mut stream, ctx).is_some() {
        let _client = ctx.idle.busy();
        let _listed = ctx.clients.register(conn, pid);
        serve_requests(&mut stream, conn, ctx);
    }
    ctx.registry.connection_closed(conn);
    log::debug!("connection {conn} closed");
}

/// Reads `Hello`, answers `Welcome` or `Refused`; returns the negotiated version.
fn handshake(stream: &mut FrameStream, ctx: &Context) -> Option<u32> {
    let deadline = Instant::now() + ctx.handshake_timeout;
    let body = match stream.recv_by(HANDSHAKE_MAX_FRAME_LEN, Some(deadline)) {
        Ok(body) => body,
        Err(asebytes_protocol::Error::Closed) => return None,
        Err(e @ asebytes_protocol::Error::FrameTooLarge { .. }) => {
            let msg = format!("the first frame must be a Hello handshake: {e}");
            refuse(stream, 0, WireError::new(ErrorCode::BadRequest, msg));
            return None;
        }
        Err(e) => {
            log::debug!("handshake read failed: {e}");
            return None;
        }
    };
    let hello = match frame::decode::<Hello>(body) {
        Ok(env) => env,
        Err(e) => {
            let id = peek_id(body).unwrap_or(0);
            let msg = format!(
                "expected a Hello handshake as the first frame (is this an asebytes client?): {e}"
            );
            refuse(stream, id, WireError::new(ErrorCode::BadRequest, msg));
            return None;
        }
    };
    let Hello {
        protocol,
        min_protocol,
        client_version,
        ..
    } = hello.body;
    let Some(negotiated) = version::negotiate(min_protocol, protocol) else {
        let msg = format!(
            "protocol version mismatch: the client (asebytes {client_version}) speaks protocols \
             {min_protocol}..={protocol}, this daemon (asebytes {PACKAGE_VERSION}, pid {}) speaks \
             {MIN_SUPPORTED}..={CURRENT}; run `asebytesd stop` and retry",
            std::process::id()
        );
        log::warn!("{msg}");
        refuse(
            stream,
            hello.id,
            WireError::new(ErrorCode::VersionMismatch, msg),
        );
        return None;
    };
    let welcome = HelloReply::Welcome(Welcome {
        protocol: negotiated,
        daemon_version: PACKAGE_VERSION.to_string(),
        build_id: crate::BUILD_ID.to_string(),
        pid: std::process::id(),
        started_at: ctx.started_at,
    });
    let frame = frame::encode(hello.id, &welcome).ok()?;
    stream.send(&frame).ok()?;
    Some(negotiated)
}

/// Refuses a peer the daemon cannot serve (out of descriptors) with `Unavailable` and
/// `message`: the `Hello` it sent, if any yet, is read and dropped first, so the close does
/// not reset the connection before the client has read why.
pub fn refuse_unserved(sock: UnixStream, message: String) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut stream = FrameStream::new(sock);
    stream.set_spin(Duration::ZERO);
    let id = stream
        .recv(HANDSHAKE_MAX_FRAME_LEN)
        .ok()
        .and_then(peek_id)
        .unwrap_or(0);
    log::warn!("refused a client: {message}");
    refuse(
        &mut stream,
        id,
        WireError::new(ErrorCode::Unavailable, message),
    );
}

fn refuse(stream: &mut FrameStream, id: u64, error: WireError) {
    log::debug!("refusing a connection: {}", error.message);
    if let Ok(frame) = frame::encode(id, &HelloReply::Refused(error)) {
        let _ = stream.send(&frame);
    }
}

/// The request id of a frame whose body did not decode, if its envelope did.
fn peek_id(body: &[u8]) -> Option<u64> {
    frame::decode::<IgnoredAny>(body).ok().map(|env| env.id)
}

fn serve_requests(stream: &mut FrameStream, conn: ConnId, ctx: &Context) {
    let mut out = Vec::new();
    while !ctx.shutdown.is_triggered() {
        let body = match stream.recv(ctx.max_frame) {
            Ok(body) => body,
            Err(asebytes_protocol::Error::Closed) => return,
            Err(asebytes_protocol::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::OutOfMemory | std::io::ErrorKind::TimedOut
                ) =>
            {
                log::warn!("connection {conn}: {e}; closing it");
                return;
            }
            Err(e) => {
                // Oversized frame, or the peer vanished inside one: nothing sensible can
                // follow on this stream.
                log::debug!("connection {conn}: {e}; closing it");
                return;
            }
        };
        if out.capacity() > KEEP_BUFFER {
            out = Vec::new();
        }
        out.clear();
        let shutdown = match frame::decode::<Request>(body) {
            Ok(env) => {
                let shutdown = matches!(env.body, Request::Shutdown);
                answer_guarded(env.body, env.id, conn, ctx, &mut out);
                shutdown
            }
            Err(e) => match peek_id(body) {
                Some(id) => {
                    let msg = format!("cannot decode the request: {e}");
                    let err = Response::Error(WireError::new(ErrorCode::BadRequest, msg));
                    encode_answer(&mut out, id, &err);
                    false
                }
                None => {
                    log::debug!("connection {conn}: undecodable frame ({e}); closing it");
                    return;
                }
            },
        };
        if stream.send(&out).is_err() {
            return;
        }
        if shutdown {
            log::info!("shutdown requested by connection {conn}");
            ctx.shutdown.trigger(Reason::Requested);
        }
    }
}

/// [`answer`], with a panic turned into `Error(Unexpected)` so one bad request cannot
/// take other clients' daemon down.
fn answer_guarded(req: Request, id: u64, conn: ConnId, ctx: &Context, out: &mut Vec<u8>) {
    let op = req.name();
    let start = out.len();
    if catch_unwind(AssertUnwindSafe(|| answer(req, id, conn, ctx, out))).is_err() {
        log::error!("connection {conn}: internal error while handling '{op}'");
        out.truncate(start);
        let msg = format!(
            "internal error in the asebytes daemon while handling '{op}'; see the daemon log"
        );
        encode_answer(
            out,
            id,
            &Response::Error(WireError::new(ErrorCode::Unexpected, msg)),
        );
    }
}

/// The registry of a daemon on `socket`: its stores publish their commit generations in
/// `<socket>.gen` ([`asebytes_protocol::published`]), or, if that file cannot be made,
/// nowhere (clients then ask for every read, as before).
fn registry_for(socket: &std::path::Path) -> Registry {
    let path = crate::paths::gen_path(socket);
    match Publisher::create(&path) {
        Ok(publisher) => Registry::with_publisher(publisher),
        Err(e) => {
            log::warn!(
                "cannot map {} ({e}); clients will ask the daemon for every length and row",
                path.display()
            );
            Registry::new()
        }
    }
}

/// Appends the response frame to `req` to `out`. Store requests are answered by the
/// store, which writes read results straight into the frame.
fn answer(req: Request, id: u64, conn: ConnId, ctx: &Context, out: &mut Vec<u8>) {
    let store = match &req {
        Request::Close(_) | Request::Remove(_) => None,
        other => store_of(other),
    };
    let Some(store) = store else {
        return encode_answer(out, id, &dispatch(req, conn, ctx));
    };
    match ctx.registry.lookup(store) {
        Ok((handle, readonly)) => handle.execute_into(req, readonly, id, out),
        Err(e) => encode_answer(out, id, &Response::Error(e.to_wire())),
    }
}

fn dispatch(req: Request, conn: ConnId, ctx: &Context) -> Response {
    match req {
        Request::Ping => Response::Pong,
        Request::Status => Response::Status(ctx.status()),
        Request::Shutdown => Response::Ok,
        Request::Open(open) => match ctx.registry.open(conn, &open) {
            Ok(opened) => Response::Opened(opened),
            Err(e) => Response::Error(e.to_wire()),
        },
        Request::Close(r) => {
            ctx.registry.close(conn, r.store);
            Response::Ok
        }
        Request::ListGroups(l) => match registry::list_groups(&l.location) {
            Ok(groups) => Response::Groups(groups),
            Err(e) => Response::Error(e.to_wire()),
        },
        req => {
            let Some(id) = store_of(&req) else {
                let msg = format!("'{}' is not supported by this daemon", req.name());
                return Response::Error(WireError::new(ErrorCode::BadRequest, msg));
            };
            let (handle, readonly) = match ctx.registry.lookup(id) {
                Ok(found) => found,
                Err(e) => return Response::Error(e.to_wire()),
            };
            let remove = matches!(req, Request::Remove(_));
            let response = handle.execute(req, readonly);
            if remove && !matches!(response, Response::Error(_)) {
                ctx.registry.removed(id);
            }
            response
        }
    }
}

/// The store a store request is about.
fn store_of(req: &Request) -> Option<StoreId> {
    Some(match req {
        Request::Len(r)
        | Request::Schema(r)
        | Request::Clear(r)
        | Request::Remove(r)
        | Request::Close(r) => r.store,
        Request::Get(r) => r.store,
        Request::GetMany(r) => r.store,
        Request::GetColumn(r) => r.store,
        Request::Keys(r) => r.store,
        Request::Extend(r) => r.store,
        Request::Insert(r) => r.store,
        Request::Set(r) => r.store,
        Request::SetMany(r) => r.store,
        Request::Update(r) => r.store,
        Request::UpdateMany(r) => r.store,
        Request::Delete(r) => r.store,
        Request::DeleteRange(r) => r.store,
        Request::DropKeys(r) => r.store,
        Request::Reserve(r) => r.store,
        Request::Follow(r) => r.store,
        Request::Ping
        | Request::Status
        | Request::Shutdown
        | Request::Open(_)
        | Request::ListGroups(_) => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_id_recovers_the_id_of_an_unknown_request() {
        #[derive(serde::Serialize)]
        enum Future {
            Teleport { to: u32 },
        }
        let frame = frame::encode(42, &Future::Teleport { to: 1 }).unwrap();
        let body = &frame[frame::HEADER_LEN..];
        assert!(frame::decode::<Request>(body).is_err());
        assert_eq!(peek_id(body), Some(42));
        assert_eq!(peek_id(b"\xc1garbage"), None);
    }

    #[test]
    fn store_of_names_the_store_of_store_requests_only() {
        use asebytes_protocol::request::{Get, StoreRef};
        assert_eq!(
            store_of(&Request::Get(Get {
                store: 7,
                index: 0,
                keys: None
            })),
            Some(7)
        );
        assert_eq!(store_of(&Request::Len(StoreRef { store: 3 })), Some(3));
        assert_eq!(store_of(&Request::Ping), None);
    }
}
