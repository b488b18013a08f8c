//! Messages from [`super::StoreHandle`] to the writer actor ([`super::writer`]).
//!
//! Layer: inside [`crate::store`]. Every command carries its own reply channel; the actor
//! answers with `let _ = reply.send(..)` because a caller that went away is normal.

use std::sync::mpsc::SyncSender;

use asebytes_protocol::{Request, Response, WireError};

use super::ops::WriteOp;

/// Where the actor sends one answer.
pub(crate) type Reply<T> = SyncSender<T>;

/// One unit of work for the writer actor.
#[derive(Debug)]
pub(crate) enum Command {
    /// A mutation, already checked for read-only and capabilities and shaped into a
    /// [`WriteOp`]; indices are still raw (normalised inside the transaction).
    Write { op: WriteOp, reply: Reply<Response> },
    /// A read, for backends without concurrent readers.
    Read {
        req: Request,
        reply: Reply<Response>,
    },
    /// Delete the container; the actor stops afterwards if it succeeds.
    Remove { reply: Reply<Response> },
    /// Close the backend and stop; writes queued before it are still committed.
    Shutdown { reply: Reply<Result<(), WireError>> },
}
