//! The writer actor: owns one backend on a dedicated OS thread and applies writes by group
//! commit.
//!
//! Layer: inside [`crate::store`], fed by [`super::StoreHandle`] through a bounded channel.
//! The loop blocks for the next command, drains what else is already queued into a bounded
//! batch, applies every write of the batch in ONE backend transaction, commits, and only
//! then replies to everyone in it: an acknowledged write is a committed write. A read or a
//! control command ends a batch, so it observes every write queued before it. While
//! several clients write, a batch is held open a little for their next writes
//! ([`super::window`]).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Instant;

use asebytes_protocol::published::Slot;
use asebytes_protocol::{ErrorCode, Response, WireError};

use super::command::{Command, Reply};
use super::ops::{self, WriteOp};
use super::publish;
use super::read;
use super::watch::CommitWatch;
use super::window::GroupWindow;
use crate::backend::{self, Backend, ErrorKind, Reader};

/// Most commands one group commit holds.
pub(crate) const MAX_BATCH_COMMANDS: usize = 256;
/// Most payload bytes one group commit holds (a single larger command still runs alone).
pub(crate) const MAX_BATCH_BYTES: usize = 64 << 20;

/// Lifecycle of a store, shared between the handles and the actor.
pub(crate) const OPEN: u8 = 0;
/// Shutdown requested or done; new work is refused.
pub(crate) const CLOSING: u8 = 1;
/// The container was removed; clients must re-open.
pub(crate) const REMOVED: u8 = 2;
/// The actor stopped unexpectedly.
pub(crate) const FAILED: u8 = 3;

/// What the handles and the actor both see.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// One of [`OPEN`], [`CLOSING`], [`REMOVED`], [`FAILED`].
    pub(crate) state: AtomicU8,
    /// Write transactions committed.
    pub(crate) commits: AtomicU64,
    /// Commands sent to the actor and not yet answered (for `status`).
    pub(crate) queued: AtomicU64,
    /// Bumped after every commit; followers wait on it.
    pub(crate) watch: CommitWatch,
    /// Where the commit generation is published in shared memory, if anywhere
    /// ([`super::publish`]).
    pub(crate) published: OnceLock<Arc<Slot>>,
}

/// The actor's state on its thread.
pub(crate) struct WriterActor {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) reader: Arc<dyn Reader>,
    pub(crate) rx: Receiver<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) window: GroupWindow,
}

/// A write waiting for its batch to commit.
struct Pending {
    op: WriteOp,
    reply: Reply<Response>,
}

impl WriterActor {
    /// Runs until shutdown, removal, or every handle is gone.
    pub(crate) fn run(mut self) {
        let mut next: Option<Command> = None;
        loop {
            let cmd = match next.take() {
                Some(cmd) => cmd,
                None => match self.rx.recv() {
                    Ok(cmd) => cmd,
                    // Every handle is gone without a shutdown: still close cleanly.
                    Err(mpsc::RecvError) => {
                        let _ = self.backend.close();
                        self.shared.state.store(CLOSING, Ordering::Release);
                        self.shared.watch.stop();
                        return;
                    }
                },
            };
            match cmd {
                Command::Write { op, reply } => {
                    let mut batch = vec![Pending { op, reply }];
                    next = self.drain_into(&mut batch);
                    let (commands, started) = (batch.len(), Instant::now());
                    self.commit_batch(batch);
                    self.window.committed(commands, started.elapsed());
                }
                Command::Read { req, reply } => {
                    let resp = guarded(|| match self.reader.snapshot() {
                        Ok(snap) => read::read(&*snap, &req),
                        Err(e) => Err(ops::wire(e)),
                    });
                    let _ = reply.send(into_response(resp));
                }
                Command::Remove { reply } => {
                    match guarded(|| self.backend.remove().map_err(ops::wire)) {
                        Ok(()) => {
                            // Whatever is still queued is dropped with the receiver; those
                            // callers see the REMOVED state and are told to re-open.
                            self.shared.state.store(REMOVED, Ordering::Release);
                            publish::withdraw(&self.shared);
                            self.shared.watch.stop();
                            let _ = reply.send(Response::Ok);
                            return;
                        }
                        Err(e) => {
                            let _ = reply.send(Response::Error(e));
                        }
                    }
                }
                Command::Shutdown { reply } => {
                    self.shared.state.store(CLOSING, Ordering::Release);
                    self.shared.watch.stop();
                    let _ = reply.send(guarded(|| self.backend.close().map_err(ops::wire)));
                    return;
                }
            }
        }
    }

    /// Moves already-queued writes into `batch` until a limit is hit or a non-write shows
    /// up; returns that non-write so it runs right after this batch commits. While the
    /// group-commit window says more writers are active, waits (boundedly) for their
    /// writes too. A backend whose write is not all-or-nothing over several commands (no
    /// `atomic_batches`) gets one command per write, so a failure can only ever undo that
    /// command.
    fn drain_into(&mut self, batch: &mut Vec<Pending>) -> Option<Command> {
        let atomic = self.backend.info().caps.atomic_batches;
        let max_commands = if atomic { MAX_BATCH_COMMANDS } else { 1 };
        let mut bytes: usize = batch.iter().map(|p| p.op.payload_bytes()).sum();
        let deadline = Instant::now() + self.window.max_wait;
        while batch.len() < max_commands && bytes < MAX_BATCH_BYTES {
            let received = match self.rx.try_recv() {
                Ok(cmd) => Some(cmd),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) if atomic && self.window.waits(batch.len()) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.rx.recv_timeout(left).ok()
                }
                Err(TryRecvError::Empty) => None,
            };
            match received {
                Some(Command::Write { op, reply }) => {
                    bytes += op.payload_bytes();
                    batch.push(Pending { op, reply });
                }
                Some(other) => return Some(other),
                None => break,
            }
        }
        None
    }

    /// One transaction for the whole batch; if the backend fails it (I/O, a full map), one
    /// transaction per command so only the command that fails is refused.
    fn commit_batch(&mut self, batch: Vec<Pending>) {
        let ops: Vec<&WriteOp> = batch.iter().map(|p| &p.op).collect();
        let results = match self.transaction(&ops) {
            Ok(results) => results,
            Err(e) if batch.len() == 1 => vec![Err(e)],
            Err(_) => ops
                .iter()
                .map(|&op| self.transaction(&[op]).and_then(|mut r| r.remove(0)))
                .collect(),
        };
        for (pending, result) in batch.into_iter().zip(results) {
            let _ = pending.reply.send(into_response(result));
        }
    }

    /// Applies `ops` in one backend write transaction. On success, each op's own result
    /// (a rejected op changed nothing); on failure, nothing was committed.
    fn transaction(
        &mut self,
        ops: &[&WriteOp],
    ) -> Result<Vec<Result<Response, WireError>>, WireError> {
        let mut results = Vec::with_capacity(ops.len());
        let mut all_rejected = false;
        let backend = &mut self.backend;
        let outcome = guarded(|| {
            backend
                .write(&mut |w| {
                    // The backend may run this more than once (e.g. after growing a map).
                    results.clear();
                    all_rejected = false;
                    for op in ops {
                        results.push(ops::apply(w, op)?);
                    }
                    // Nothing changed: abort instead of paying for an empty commit.
                    all_rejected = results.iter().all(Result::is_err);
                    if all_rejected {
                        Err(backend::Error::new(
                            ErrorKind::Unexpected,
                            "nothing to commit",
                        ))
                    } else {
                        Ok(())
                    }
                })
                .map_err(ops::wire)
        });
        match outcome {
            Ok(()) => {
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                // Clients see the new generation and followers wake now; the writers of
                // the batch are answered right after.
                publish::committed(&self.shared, &*self.reader);
                self.shared.watch.bump();
                Ok(results)
            }
            Err(_) if all_rejected => Ok(results),
            Err(e) => Err(e),
        }
    }
}

impl std::fmt::Debug for WriterActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterActor")
            .field("backend", &self.backend.info())
            .finish_non_exhaustive()
    }
}

/// Runs backend code so that a panic in it fails one request instead of killing the actor
/// (and with it every client of the store).
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, WireError>) -> Result<T, WireError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| Err(panicked(panic.as_ref())))
}

fn panicked(panic: &(dyn Any + Send)) -> WireError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    WireError::new(
        ErrorCode::Unexpected,
        format!("internal error in the store: {what}"),
    )
}

/// A result as a wire response.
pub(crate) fn into_response(result: Result<Response, WireError>) -> Response {
    result.unwrap_or_else(Response::Error)
}
