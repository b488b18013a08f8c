//! One request/response exchange with the daemon: sessions on pooled connections, the
//! retry policy, and the round-trip count. Replies are read without copying by
//! [`crate::reply`] (re-exported here); the unit tests below pin its hand parser to what
//! `frame::encode` writes.
//!
//! Retry policy (in [`Session`] users): a request that never left this process may always
//! be retried on a fresh connection; one whose reply was lost is retried only if it is a
//! read (or `Open`), because a write may already have been applied.

use std::sync::atomic::{AtomicU64, Ordering};

use asebytes_protocol::codec::{Corrupt, Reader};
use asebytes_protocol::frame;
use asebytes_protocol::{Error as ProtoError, ErrorCode, Request, WireError};
use pyo3::prelude::*;

use crate::detach::blocking;
use crate::errors::ClientError;
use crate::pool::{self, Conn, Epoch};

pub use crate::reply::{Field, Reply, RowsRef, parse_reply};

/// How an exchange failed, for the retry decision.
#[derive(Debug)]
pub struct Failure {
    /// Whether the request may have reached the daemon.
    pub sent: bool,
    /// The failure itself.
    pub error: ClientError,
}

/// Requests this process has sent to the daemon, by sync handles and the asyncio client
/// (diagnostics: what `len()` and the read-ahead cache save is visible here).
static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

/// Requests this process has sent to the daemon.
pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(Ordering::Relaxed)
}

/// Counts one request sent (by [`Session::exchange`], or framed for the asyncio transport).
pub fn count_request() {
    ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
}

/// A connection checked out of the pool for one call; given back on drop unless it
/// failed (a connection in an unknown state is closed, never reused).
#[derive(Debug)]
pub struct Session {
    conn: Option<Conn>,
    healthy: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.healthy
            && let Some(c) = self.conn.take()
        {
            pool::give(c);
        }
    }
}

impl Session {
    /// A pooled connection (or a new one).
    pub fn take(py: Python<'_>) -> Result<Self, ClientError> {
        Ok(Self {
            conn: Some(pool::take(py)?),
            healthy: true,
        })
    }

    /// An idle pooled connection, if any: for best-effort messages that must not start a
    /// daemon just to deliver them.
    pub fn idle() -> Option<Self> {
        pool::take_idle().map(|c| Self {
            conn: Some(c),
            healthy: true,
        })
    }

    /// A brand-new connection, after the previous one failed; idle ones are dropped too,
    /// since a daemon restart kills them all.
    pub fn fresh(py: Python<'_>) -> Result<Self, ClientError> {
        Ok(Self {
            conn: Some(pool::take_fresh(py)?),
            healthy: true,
        })
    }

    /// Which daemon this connection talks to.
    pub fn epoch(&self) -> Epoch {
        self.conn.as_ref().expect("live session").epoch
    }

    /// The protocol negotiated with that daemon.
    pub fn protocol(&self) -> u32 {
        self.conn.as_ref().expect("live session").protocol
    }

    /// Sends `req` and waits (GIL released) for its reply.
    pub fn exchange<'s>(&'s mut self, py: Python<'_>, req: &Request) -> Result<Reply<'s>, Failure> {
        let conn = self.conn.as_mut().expect("live session");
        let id = conn.next_id();
        let max = conn.max_frame;
        if let Err(error) = encode_request(&mut conn.wbuf, id, req, max) {
            // Nothing was sent and the connection is untouched.
            return Err(Failure { sent: false, error });
        }
        let Conn { stream, wbuf, .. } = conn;
        count_request();
        let result = blocking(py, || {
            stream.send(wbuf).map_err(|e| (false, e))?;
            stream.recv(max).map_err(|e| (true, e))
        });
        let body = match result {
            Ok(body) => body,
            Err((sent, e)) => {
                self.healthy = false;
                return Err(Failure {
                    sent,
                    error: io_failure(req, sent, e),
                });
            }
        };
        match parse_reply(body) {
            Ok((got, Reply::Error(e))) if got == id && e.code == ErrorCode::ShuttingDown => {
                // Refused before doing anything: safe to repeat on a new daemon.
                self.healthy = false;
                Err(Failure {
                    sent: false,
                    error: error_reply(e),
                })
            }
            Ok((got, reply)) if got == id => Ok(reply),
            Ok((got, _)) => {
                self.healthy = false;
                Err(Failure {
                    sent: true,
                    error: ClientError::Protocol(format!(
                        "reply id {got} does not match request id {id}"
                    )),
                })
            }
            Err(e) => {
                self.healthy = false;
                Err(Failure {
                    sent: true,
                    error: ClientError::Protocol(e.0),
                })
            }
        }
    }
}

/// Writes `req` into `out` (cleared first) as one complete frame with envelope id `id`,
/// refusing a body over `max` bytes before it is sent: the daemon would drop the
/// connection on it.
pub fn encode_request(
    out: &mut Vec<u8>,
    id: u64,
    req: &Request,
    max: usize,
) -> Result<(), ClientError> {
    out.clear();
    frame::encode_into(out, id, req)
        .map_err(|e| ClientError::Protocol(format!("cannot encode request: {e}")))?;
    if out.len() - frame::HEADER_LEN > max {
        return Err(ClientError::Invalid(format!(
            "the '{}' request is {} bytes, over the frame limit of {max} bytes \
             (ASEBYTES_MAX_FRAME); split it into smaller batches",
            req.name(),
            out.len()
        )));
    }
    Ok(())
}

/// The envelope id of a reply body and whether the reply is an `UnknownStore` error,
/// without decoding the rest: what a pipelining transport needs to route a reply and to
/// notice that the daemon forgot the store.
pub fn reply_header(body: &[u8]) -> Result<(u64, bool), Corrupt> {
    let mut r = Reader::new(body);
    let n = r.read_map_len()?;
    let mut id = None;
    let mut unknown = None;
    for _ in 0..n {
        match r.read_str()? {
            "id" => id = Some(r.read_u64()?),
            "body" => {
                let flag = is_error_body(&r)? && unknown_store(body)?;
                if let Some(id) = id {
                    // The id comes first as envelopes are encoded: a big body is never walked.
                    return Ok((id, flag));
                }
                unknown = Some(flag);
                r.skip()?;
            }
            _ => r.skip()?,
        }
        if let (Some(id), Some(unknown)) = (id, unknown) {
            return Ok((id, unknown));
        }
    }
    Err(Corrupt("reply frame lacks id or body".into()))
}

/// Whether the body at `r` is `{"Error": ...}` (looked at, not consumed).
fn is_error_body(r: &Reader<'_>) -> Result<bool, Corrupt> {
    let mut r = r.clone();
    if r.peek_marker()? != rmp::Marker::FixMap(1) {
        return Ok(false);
    }
    r.marker()?;
    Ok(r.read_str()? == "Error")
}

/// Whether the error reply `body` is `UnknownStore` (errors are small: decoded whole).
fn unknown_store(body: &[u8]) -> Result<bool, Corrupt> {
    Ok(matches!(parse_reply(body)?.1, Reply::Error(e) if is_unknown_store(&e)))
}

/// An error reply as callers report it: `ShuttingDown` (refused before doing anything)
/// means the daemon is going away, like a lost connection; the rest are typed errors.
pub fn error_reply(e: WireError) -> ClientError {
    if e.code == ErrorCode::ShuttingDown {
        ClientError::unavailable(&pool::socket(), e.message)
    } else {
        ClientError::Wire(e)
    }
}

/// The daemon answers (starting it if needed).
pub fn ping(py: Python<'_>) -> Result<(), ClientError> {
    call(py, &Request::Ping, |reply| match reply {
        Reply::Pong => Ok(()),
        other => Err(ClientError::Protocol(format!(
            "unexpected reply {}",
            other.name()
        ))),
    })
}

fn io_failure(req: &Request, sent: bool, e: ProtoError) -> ClientError {
    let socket = pool::socket();
    let what = match e {
        ProtoError::Closed => "the daemon closed the connection".to_string(),
        other => other.to_string(),
    };
    let reason = if sent {
        format!(
            "{what} while waiting for the reply to '{}'{}",
            req.name(),
            if is_read(req) {
                ""
            } else {
                "; the write may or may not have been applied"
            }
        )
    } else {
        format!("{what} while sending '{}'", req.name())
    };
    ClientError::unavailable(&socket, reason)
}

/// Requests that change nothing, so repeating one after a lost reply is harmless.
/// `Open` counts: opening twice joins the same store.
pub fn is_read(req: &Request) -> bool {
    matches!(
        req,
        Request::Ping
            | Request::Status
            | Request::Open(_)
            | Request::Len(_)
            | Request::Get(_)
            | Request::GetMany(_)
            | Request::GetColumn(_)
            | Request::Keys(_)
            | Request::Schema(_)
            | Request::ListGroups(_)
            | Request::Follow(_)
    )
}

/// Whether a failed attempt may be repeated on a new connection.
pub fn retriable(req: &Request, f: &Failure) -> bool {
    matches!(f.error, ClientError::Unavailable { .. }) && may_repeat(req, f.sent)
}

/// Whether a request that failed on its connection may be sent again: it never reached
/// the daemon (`sent` false: refused while shutting down, or lost before sending), or it
/// changes nothing.
pub fn may_repeat(req: &Request, sent: bool) -> bool {
    !sent || is_read(req)
}

/// The retry policy of one store call, the same for the sync client and the asyncio
/// transport (which asks it through `Call.may_reopen` / `Call.may_resend`): re-open the
/// store once when the daemon no longer knows its id (a restart, a removal), and send the
/// request once more on a fresh connection when [`may_repeat`] allows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attempts {
    reopened: bool,
    resent: bool,
}

impl Attempts {
    /// Whether to re-open and try again after `UnknownStore` (once per call).
    pub fn may_reopen(&mut self) -> bool {
        !std::mem::replace(&mut self.reopened, true)
    }

    /// Whether to resend on a fresh connection after failure `f` (once per call).
    pub fn may_resend(&mut self, req: &Request, f: &Failure) -> bool {
        matches!(f.error, ClientError::Unavailable { .. }) && self.may_resend_after(req, !f.sent)
    }

    /// [`Attempts::may_resend`] after the connection failed: `refused` when the daemon
    /// answered without running the request (shutting down), else the request may have
    /// reached it.
    pub fn may_resend_after(&mut self, req: &Request, refused: bool) -> bool {
        let ok = !self.resent && may_repeat(req, !refused);
        self.resent |= ok;
        ok
    }
}

/// A request that names no store: one exchange, one transparent reconnect if allowed,
/// then `decode` runs on the reply with the GIL held.
pub fn call<R>(
    py: Python<'_>,
    req: &Request,
    decode: impl FnOnce(Reply<'_>) -> Result<R, ClientError>,
) -> Result<R, ClientError> {
    let first = {
        let mut session = Session::take(py)?;
        match session.exchange(py, req) {
            Ok(reply) => return decode(reply.into_result()?),
            Err(f) => f,
        }
    };
    if !retriable(req, &first) {
        return Err(first.error);
    }
    let mut session = Session::fresh(py)?;
    let reply = session.exchange(py, req).map_err(|f| f.error)?;
    decode(reply.into_result()?)
}

/// `UnknownStore` means "re-open and try again", never an error the user sees first.
pub fn is_unknown_store(e: &WireError) -> bool {
    e.code == ErrorCode::UnknownStore
}

#[cfg(test)]
mod tests {
    use super::*;
    use asebytes_protocol::Response;
    use asebytes_protocol::response::{Opened, Status};
    use asebytes_protocol::value::row;
    use asebytes_protocol::{Bytes, Capabilities};

    fn roundtrip(resp: &Response) -> Vec<u8> {
        let f = frame::encode(42, resp).unwrap();
        f[frame::HEADER_LEN..].to_vec()
    }

    #[test]
    fn hot_replies_parse_exactly_as_serde_writes_them() {
        let r = row([
            ("cell", b"\x01\x02".as_slice()),
            ("calc.energy", b"\xcb".as_slice()),
        ]);
        let body = roundtrip(&Response::Row(Some(r)));
        let (id, reply) = parse_reply(&body).unwrap();
        assert_eq!(id, 42);
        let Reply::Row(rows) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(
            rows.row(0).unwrap(),
            &[
                (b"cell".as_slice(), b"\x01\x02".as_slice()),
                (b"calc.energy".as_slice(), b"\xcb".as_slice())
            ]
        );

        let body = roundtrip(&Response::Row(None));
        assert_eq!(
            parse_reply(&body).unwrap().1,
            Reply::Row(RowsRef {
                fields: vec![],
                rows: vec![None]
            })
        );

        let rows = vec![
            Some(row([("a", b"1".as_slice())])),
            None,
            Some(vec![]),
            Some(row([("b", b"2".as_slice()), ("c", b"".as_slice())])),
        ];
        let body = roundtrip(&Response::Rows(rows));
        let Reply::Rows(got) = parse_reply(&body).unwrap().1 else {
            panic!()
        };
        assert_eq!(got.rows.len(), 4);
        assert_eq!(got.row(0).unwrap(), &[(b"a".as_slice(), b"1".as_slice())]);
        assert_eq!(got.row(1), None);
        assert_eq!(got.row(2).unwrap(), &[]);
        assert_eq!(got.row(3).unwrap()[1], (b"c".as_slice(), b"".as_slice()));

        let col = vec![Some(Bytes::from(vec![7u8; 300])), None];
        let body = roundtrip(&Response::Column(col));
        assert_eq!(
            parse_reply(&body).unwrap().1,
            Reply::Column(vec![Some(&[7u8; 300][..]), None])
        );

        for (resp, want) in [
            (Response::Ok, Reply::Ok),
            (Response::Pong, Reply::Pong),
            (Response::Len(1 << 40), Reply::Len(1 << 40)),
        ] {
            assert_eq!(parse_reply(&roundtrip(&resp)).unwrap().1, want);
        }
    }

    #[test]
    fn other_replies_fall_back_to_serde() {
        let opened = Response::Opened(Opened {
            store: 3,
            canonical: "memory://x#default".into(),
            backend: "memory".into(),
            caps: Capabilities::all(),
            len: 5,
            published: None,
        });
        assert_eq!(
            parse_reply(&roundtrip(&opened)).unwrap().1,
            Reply::Other(opened)
        );
        let status = Response::Status(Status {
            pid: 9,
            ..Status::default()
        });
        assert_eq!(
            parse_reply(&roundtrip(&status)).unwrap().1,
            Reply::Other(status)
        );
        let err = WireError::index_out_of_range(5, 3);
        assert_eq!(
            parse_reply(&roundtrip(&Response::Error(err.clone())))
                .unwrap()
                .1,
            Reply::Error(err)
        );
        let keys = Response::Keys(vec![Bytes::from(b"a".to_vec())]);
        assert_eq!(
            parse_reply(&roundtrip(&keys)).unwrap().1,
            Reply::Other(keys)
        );
    }

    #[test]
    fn reply_header_reads_the_id_and_spots_unknown_store() {
        let unknown = WireError::new(ErrorCode::UnknownStore, "store 9 is not open");
        let header = |id, resp: &Response| {
            let f = frame::encode(id, resp).unwrap();
            reply_header(&f[frame::HEADER_LEN..]).unwrap()
        };
        assert_eq!(header(7, &Response::Error(unknown.clone())), (7, true));
        let other = Response::Error(WireError::index_out_of_range(5, 3));
        assert_eq!(header(8, &other), (8, false));
        let big = Response::Rows(vec![Some(row([("k", [0u8; 4096].as_slice())])); 64]);
        assert_eq!(header(u64::MAX, &big), (u64::MAX, false));
        assert_eq!(header(1, &Response::Ok), (1, false));

        // Body before id (not how envelopes are encoded, but valid): still found.
        let mut body = vec![0x82, 0xa4];
        body.extend_from_slice(b"body");
        let env = roundtrip(&Response::Error(unknown));
        let at = env.windows(4).position(|w| w == b"body").unwrap() + 4;
        body.extend_from_slice(&env[at..]);
        body.extend_from_slice(&[0xa2, b'i', b'd', 0x05]);
        assert_eq!(reply_header(&body).unwrap(), (5, true));

        assert!(reply_header(b"").is_err());
        assert!(
            reply_header(&[0x81, 0xa2, b'i', b'd', 0x01]).is_err(),
            "no body"
        );
    }

    #[test]
    fn encode_request_writes_one_frame_and_refuses_oversized_ones() {
        let req = Request::Extend(asebytes_protocol::request::Extend {
            store: 3,
            rows: vec![Some(row([("big", [1u8; 1000].as_slice())]))],
        });
        let mut out = vec![9, 9, 9];
        encode_request(&mut out, 11, &req, 1 << 20).unwrap();
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(
            len,
            out.len() - frame::HEADER_LEN,
            "the buffer was cleared first"
        );
        let env = frame::decode::<Request>(&out[frame::HEADER_LEN..]).unwrap();
        assert_eq!((env.id, env.body), (11, req.clone()));

        let err = encode_request(&mut out, 12, &req, 500).unwrap_err();
        let ClientError::Invalid(msg) = err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains("'extend' request") && msg.contains("smaller batches"),
            "{msg}"
        );
    }

    #[test]
    fn garbage_is_refused_not_misread() {
        assert!(parse_reply(b"").is_err());
        assert!(
            parse_reply(&[0x81, 0xa2, b'i', b'd', 0x01]).is_err(),
            "no body"
        );
        let mut body = roundtrip(&Response::Row(Some(row([("k", b"v")]))));
        body.truncate(body.len() - 1);
        assert!(parse_reply(&body).is_err(), "truncated value");
    }

    #[test]
    fn only_unsent_writes_are_retried() {
        let lost = |sent| Failure {
            sent,
            error: ClientError::unavailable(std::path::Path::new("/s"), "x"),
        };
        let get = Request::Get(asebytes_protocol::request::Get {
            store: 1,
            index: 0,
            keys: None,
        });
        let extend = Request::Extend(asebytes_protocol::request::Extend {
            store: 1,
            rows: vec![],
        });
        assert!(retriable(&get, &lost(true)));
        assert!(retriable(&extend, &lost(false)));
        assert!(!retriable(&extend, &lost(true)));
        let proto = Failure {
            sent: true,
            error: ClientError::Protocol("bad".into()),
        };
        assert!(!retriable(&get, &proto), "a confused daemon is not retried");
    }
}
