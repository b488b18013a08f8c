//! One open store: a cloneable [`StoreHandle`] in front of a writer actor that owns the
//! backend.
//!
//! Layer: below the registry and connections, above [`crate::backend`]. Connection threads
//! only ever see a `StoreHandle`. Writes become [`command::Command`]s on a bounded channel
//! and are group-committed by [`writer`] on the store's own OS thread; a write is answered
//! only after its transaction committed. When the backend allows concurrent readers, reads
//! run on the caller's thread from one snapshot and never queue behind writes; otherwise
//! they queue on the actor. Request semantics (indices, bounds, keys, capabilities) live in
//! [`ops`], the one place the contract's rules are applied.

mod command;
mod ops;
mod publish;
mod read;
mod watch;
mod window;
mod writer;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use asebytes_protocol::frame;
use asebytes_protocol::published::Slot;
use asebytes_protocol::request::{Follow, StoreRef};
use asebytes_protocol::response::Committed;
use asebytes_protocol::{ErrorCode, Request, Response, WireError};

use crate::backend::{Backend, BackendInfo, Reader};
use command::{Command, Reply};
use ops::{Route, WriteOp};
use writer::{CLOSING, FAILED, OPEN, REMOVED, Shared, WriterActor, guarded, into_response};

/// Commands that may wait for the actor before senders block (backpressure).
const QUEUE_CAPACITY: usize = 1024;

/// Longest one `Follow` waits, whatever the client asked: a follower that vanished holds
/// its connection thread no longer than this.
pub const MAX_FOLLOW_WAIT: Duration = Duration::from_secs(60);

/// A handle on one open store. Clones share the same actor; when the last clone is dropped
/// the actor commits, closes the backend and its thread is joined.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

struct Inner {
    info: BackendInfo,
    /// Emptied at shutdown and removal: a stale clone of this handle must not keep the
    /// backend's files open (LMDB refuses a second open of an environment still alive).
    reader: RwLock<Option<Arc<dyn Reader>>>,
    tx: SyncSender<Command>,
    shared: Arc<Shared>,
    /// Taken by the first shutdown; later ones find it empty and return at once.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl StoreHandle {
    /// Starts the writer actor on a dedicated named OS thread ("store-writer:<scheme>").
    pub fn spawn(backend: Box<dyn Backend>) -> std::io::Result<StoreHandle> {
        let info = backend.info().clone();
        let reader = backend.reader();
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let shared = Arc::new(Shared::default());
        let actor = WriterActor {
            backend,
            reader: reader.clone(),
            rx,
            shared: shared.clone(),
            window: window::GroupWindow::from_env(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("store-writer:{}", info.scheme))
            .spawn(move || actor.run())?;
        let inner = Inner {
            info,
            reader: RwLock::new(Some(reader)),
            tx,
            shared,
            thread: Mutex::new(Some(thread)),
        };
        Ok(StoreHandle {
            inner: Arc::new(inner),
        })
    }

    /// Scheme, canonical location and capabilities as opened.
    pub fn info(&self) -> &BackendInfo {
        &self.inner.info
    }

    /// Publishes this store's commit generation and length in `slot` from now on (the
    /// registry calls it once the store is opened, before any client has the handle): the
    /// slot gets a new generation and becomes trusted. A second call does nothing.
    pub fn publish_to(&self, slot: Arc<Slot>) -> Result<(), WireError> {
        let len = self.len()?;
        if self.inner.shared.published.set(slot).is_ok()
            && let Some(slot) = publish::slot(&self.inner.shared)
        {
            slot.open(len);
        }
        Ok(())
    }

    /// Write transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.inner.shared.commits.load(Ordering::Relaxed)
    }

    /// Commands waiting for, or being run by, the writer actor.
    pub fn queued(&self) -> u64 {
        self.inner.shared.queued.load(Ordering::Relaxed)
    }

    /// How many clones of this handle exist. The registry compares it with the clones it
    /// keeps itself: any more are requests in flight, and a store is only released when
    /// there are none.
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// `(bytes in use, bytes reserved)` of the backend, where it has such a notion (LMDB:
    /// pages in use and map size); `None` otherwise or once closed.
    pub fn space(&self) -> Option<(u64, u64)> {
        self.inner.current_reader().ok()?.space()
    }

    /// Rows copied from its source into its read-through cache since it opened (`None`:
    /// not a cached store, or closed).
    pub fn cache_fills(&self) -> Option<u64> {
        self.inner.current_reader().ok()?.rows_fetched()
    }

    /// Current number of rows.
    pub fn len(&self) -> Result<u64, WireError> {
        match self.execute(Request::Len(StoreRef { store: 0 }), false) {
            Response::Len(n) => Ok(n),
            Response::Error(e) => Err(e),
            other => Err(WireError::new(
                ErrorCode::Unexpected,
                format!("len answered {other:?}"),
            )),
        }
    }

    /// Live follow: waits until the store has more than `from` rows, a commit at a time,
    /// for at most `timeout` (capped at [`MAX_FOLLOW_WAIT`]); returns the state then (a
    /// `len` not above `from` means the wait timed out or the store stopped taking
    /// commits). A commit wakes the wait at once; nothing is kept per follower.
    pub fn follow(&self, from: u64, timeout: Duration) -> Result<Committed, WireError> {
        let deadline = Instant::now() + timeout.min(MAX_FOLLOW_WAIT);
        let watch = &self.inner.shared.watch;
        loop {
            // The generation is read before the length: a commit in between makes the
            // wait below return at once instead of being missed.
            let generation = watch.generation();
            let len = self.len()?;
            if len > from || watch.is_stopped() || Instant::now() >= deadline {
                return Ok(Committed { generation, len });
            }
            watch.wait_past(generation, deadline);
        }
    }

    /// Connections waiting in [`StoreHandle::follow`] on this store now.
    pub fn followers(&self) -> u64 {
        self.inner.shared.watch.waiting()
    }

    /// Wakes every follower of this store now and makes later waits return at once (the
    /// daemon is stopping).
    pub fn stop_followers(&self) {
        self.inner.shared.watch.stop();
    }

    /// Whether the store has no rows.
    pub fn is_empty(&self) -> Result<bool, WireError> {
        Ok(self.len()? == 0)
    }

    /// Executes one store request. Handles exactly these variants: Len, Get, GetMany,
    /// GetColumn, Keys, Schema, Extend, Insert, Set, SetMany, Update, UpdateMany, Delete,
    /// DeleteRange, DropKeys, Reserve, Clear, Remove, Follow (which blocks the caller until
    /// the store grows or the wait times out). `readonly` = this client opened
    /// read-only: every write is refused with code ReadOnly, message "Backend is read-only",
    /// before anything is queued. Any other variant → `Response::Error(BadRequest)`.
    /// Never panics on any input.
    pub fn execute(&self, req: Request, readonly: bool) -> Response {
        into_response(self.try_execute(req, readonly))
    }

    /// Commits, closes the backend, joins the thread. Idempotent. After it, `execute()`
    /// answers `ShuttingDown`.
    pub fn shutdown(&self) -> Result<(), WireError> {
        self.inner.shutdown()
    }

    /// [`StoreHandle::execute`], answered as one complete response frame with request id
    /// `id` appended to `out` (what a connection sends). Reads on a backend with
    /// concurrent readers copy `Get`/`GetMany` rows from the snapshot straight into the
    /// frame. An answer that cannot be encoded becomes an `Error(Unexpected)` frame.
    pub fn execute_into(&self, req: Request, readonly: bool, id: u64, out: &mut Vec<u8>) {
        let start = out.len();
        let answered = self.admit(&req, readonly).and_then(|route| match route {
            Route::Read if self.inner.info.caps.concurrent_readers => guarded(|| {
                let reader = self.inner.current_reader()?;
                let snap = reader.snapshot().map_err(ops::wire)?;
                read::read_into(&*snap, &req, id, out)
            }),
            _ => {
                let response = self.run(route, req)?;
                encode_answer(out, id, &response);
                Ok(())
            }
        });
        if let Err(e) = answered {
            out.truncate(start);
            encode_answer(out, id, &Response::Error(e));
        }
    }

    fn try_execute(&self, req: Request, readonly: bool) -> Result<Response, WireError> {
        let route = self.admit(&req, readonly)?;
        self.run(route, req)
    }

    /// Where `req` goes, once it is known to be a store request this client may make and
    /// this store can do.
    fn admit(&self, req: &Request, readonly: bool) -> Result<Route, WireError> {
        let route = ops::route(req);
        if route == Route::Other {
            return Err(WireError::new(
                ErrorCode::BadRequest,
                format!("'{}' is not a request on an open store", req.name()),
            ));
        }
        self.inner.check_open()?;
        if readonly && matches!(route, Route::Write | Route::Remove) {
            return Err(ops::read_only());
        }
        ops::check_capabilities(req, &self.inner.info)?;
        Ok(route)
    }

    /// Runs an admitted request.
    fn run(&self, route: Route, req: Request) -> Result<Response, WireError> {
        match route {
            Route::Read if self.inner.info.caps.concurrent_readers => guarded(|| {
                let reader = self.inner.current_reader()?;
                let snap = reader.snapshot().map_err(ops::wire)?;
                read::read(&*snap, &req)
            }),
            Route::Read => self.inner.call(|reply| Command::Read { req, reply }),
            Route::Write => match WriteOp::from_request(req) {
                Some(op) => {
                    let op = op?;
                    self.inner.call(|reply| Command::Write { op, reply })
                }
                None => Err(WireError::new(ErrorCode::BadRequest, "not a write request")),
            },
            Route::Follow => match req {
                Request::Follow(Follow {
                    from, timeout_ms, ..
                }) => self
                    .follow(from, Duration::from_millis(timeout_ms))
                    .map(Response::Committed),
                _ => Err(WireError::new(
                    ErrorCode::BadRequest,
                    "not a follow request",
                )),
            },
            Route::Remove => {
                let resp = self.inner.call(|reply| Command::Remove { reply });
                if resp.is_ok() {
                    self.inner.release_reader();
                }
                resp
            }
            Route::Other => Err(WireError::new(ErrorCode::BadRequest, "not a store request")),
        }
    }
}

/// Appends the frame of `response` with id `id` to `out`; an answer that cannot be encoded
/// (e.g. over the `u32` length prefix) becomes `Error(Unexpected)` saying so.
pub fn encode_answer(out: &mut Vec<u8>, id: u64, response: &Response) {
    let start = out.len();
    if let Err(e) = frame::encode_into(out, id, response) {
        out.truncate(start);
        let err = Response::Error(WireError::new(
            ErrorCode::Unexpected,
            format!("cannot encode the answer: {e}"),
        ));
        frame::encode_into(out, id, &err).expect("a short error always encodes");
    }
}

impl Inner {
    fn check_open(&self) -> Result<(), WireError> {
        match self.shared.state.load(Ordering::Acquire) {
            OPEN => Ok(()),
            _ => Err(self.gone()),
        }
    }

    /// The reader, unless the store was shut down or removed meanwhile.
    fn current_reader(&self) -> Result<Arc<dyn Reader>, WireError> {
        let reader = self
            .reader
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        reader.ok_or_else(|| self.gone())
    }

    fn release_reader(&self) {
        self.reader
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Why the actor cannot take work, for a caller that found it unreachable.
    fn gone(&self) -> WireError {
        match self.shared.state.load(Ordering::Acquire) {
            REMOVED => WireError::new(ErrorCode::UnknownStore, "store was removed"),
            CLOSING => WireError::new(ErrorCode::ShuttingDown, "store is shutting down"),
            _ => {
                self.shared.state.store(FAILED, Ordering::Release);
                WireError::new(
                    ErrorCode::Unexpected,
                    format!(
                        "the writer of {} stopped unexpectedly; re-open the store",
                        self.info.canonical
                    ),
                )
            }
        }
    }

    /// Sends one command and waits for its answer.
    fn call(&self, make: impl FnOnce(Reply<Response>) -> Command) -> Result<Response, WireError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        let _answered = Answered(&self.shared.queued);
        if self.tx.send(make(reply)).is_err() {
            return Err(self.gone());
        }
        match answer.recv() {
            Ok(Response::Error(e)) => Err(e),
            Ok(resp) => Ok(resp),
            // The command was dropped unanswered: the actor stopped after it was queued.
            Err(mpsc::RecvError) => Err(self.gone()),
        }
    }

    fn shutdown(&self) -> Result<(), WireError> {
        let mut slot = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(thread) = slot.take() else {
            return Ok(());
        };
        let _ =
            self.shared
                .state
                .compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire);
        // Before the files are closed: another program may change them from then on.
        publish::withdraw(&self.shared);
        self.release_reader();
        let (reply, answer) = mpsc::sync_channel(1);
        let closed = match self.tx.send(Command::Shutdown { reply }) {
            // An actor that drops the command unanswered has already stopped on its own.
            Ok(()) => answer.recv().unwrap_or(Ok(())),
            // Already stopped (the store was removed): nothing left to close.
            Err(_) => Ok(()),
        };
        let joined = thread.join().map_err(|_| {
            self.shared.state.store(FAILED, Ordering::Release);
            WireError::new(
                ErrorCode::Unexpected,
                format!("the writer of {} panicked", self.info.canonical),
            )
        });
        closed.and(joined)
    }
}

/// Counts a command as answered when the caller stops waiting for it.
struct Answered<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the last handle must not lose the store's clean close; there is no one
        // left to tell about a failure.
        let _ = self.shutdown();
    }
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("canonical", &self.inner.info.canonical)
            .field("state", &self.inner.shared.state.load(Ordering::Relaxed))
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
