//! Reads answered without the daemon while nothing changed, one set of rules for both
//! handles: `len` from the published length, `get` of one row (or `Atoms`) from the
//! read-ahead cache ([`crate::readahead`]) and, on a miss, the request that fills the
//! cache — one batched `GetMany` for an in-order or strided walk, the row alone otherwise.
//! All of it only under the store's published generation ([`crate::generation`]) read
//! *before* the request is sent, so a reply can only be newer than its label.
//!
//! [`route`] decides; the handles only carry out its answer: the sync `Store`
//! ([`crate::store`]) sends a [`Fetch`] over a pooled connection, the asyncio client
//! ([`crate::astore`]) hands it to the event loop as a `Call`. Either gives the reply to
//! [`Fill::take`], which caches the rows and returns the one the `get` asked for.

use std::sync::Arc;

use asebytes_protocol::request::{Get, GetMany};
use asebytes_protocol::{Key, Request};
use pyo3::prelude::*;

use crate::client::{Reply, RowsRef};
use crate::errors::ClientError;
use crate::finish::{Finish, unexpected};
use crate::generation::{Seen, Stamp};
use crate::ops::Plan;
use crate::readahead::{self, ReadAhead};
use crate::tier::Tier;

/// What a handle does with a planned request, given the store's published state.
#[derive(Debug)]
pub enum Route<'py> {
    /// Answered here: the published length, or a cached row.
    Done(PyResult<Bound<'py, PyAny>>),
    /// Send [`Fetch::req`] instead of the plan's request; its reply fills the cache.
    Fetch(Fetch),
    /// Send the plan's request as it is.
    Send,
}

/// A request that reads rows into the cache for one `get`, and how to keep its reply.
#[derive(Debug)]
pub struct Fetch {
    /// A `GetMany` of the walk's next rows (the missed one first), or the `get` itself.
    pub req: Request,
    /// Keeps the reply's rows.
    pub fill: Fill,
}

/// Where the rows of a [`Fetch`] go: the handle's cache, under the generation read before
/// it was sent. Dropped unanswered (a failed or cancelled call), its batch stops counting
/// as in flight.
#[derive(Debug)]
pub struct Fill {
    ahead: Arc<ReadAhead>,
    stamp: Stamp,
    keys: Option<Vec<Key>>,
    indices: Vec<u64>,
    /// The batch's id, for a batch (`None`: the one row).
    batch: Option<u64>,
}

impl Fill {
    /// Whether this is a batch: should it fail, the `get` is sent as planned.
    pub fn is_batch(&self) -> bool {
        self.batch.is_some()
    }

    /// Caches the rows of `reply` (a non-error reply to [`Fetch::req`]) and returns the
    /// reply the `get` would have had; an error if it is not the rows asked for.
    pub fn take<'r>(&self, reply: Reply<'r>) -> Result<Reply<'r>, ClientError> {
        let keys = self.keys.as_deref();
        match (self.batch, reply) {
            (None, Reply::Row(rows)) if rows.rows.len() == 1 => {
                self.ahead.store(self.stamp, keys, &self.indices, &rows);
                Ok(Reply::Row(rows))
            }
            (Some(id), Reply::Rows(rows)) if rows.rows.len() == self.indices.len() => {
                self.ahead.store(self.stamp, keys, &self.indices, &rows);
                self.ahead.settle(id);
                Ok(Reply::Row(first(rows)))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    /// The batch failed: the walk is forgotten until it shows itself again.
    pub fn missed(&self) {
        self.ahead.forget_walk();
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        if let Some(id) = self.batch {
            self.ahead.settle(id);
        }
    }
}

/// The first row of `rows` as a one-row reply (the missed row leads every batch).
fn first(rows: RowsRef<'_>) -> RowsRef<'_> {
    let RowsRef { fields, rows } = rows;
    RowsRef {
        fields,
        rows: rows.into_iter().take(1).collect(),
    }
}

/// How to carry out `plan` on a store whose published state is `now`, whose rows are read
/// in `tier`, with the handle's cache `ahead`.
pub fn route<'py>(
    py: Python<'py>,
    ahead: &Arc<ReadAhead>,
    now: Seen,
    tier: Tier,
    plan: &Plan,
) -> Route<'py> {
    match (&plan.req, &plan.finish) {
        (Request::Len(_), Finish::Len) => {
            Route::Done(Finish::Len.run(py, tier, Reply::Len(now.len)))
        }
        (Request::Get(get), Finish::Row | Finish::Atoms) if ReadAhead::enabled() => {
            get_ahead(py, ahead, now, tier, plan, get)
        }
        _ => Route::Send,
    }
}

/// A `get` while the generation is `now`: from the cache, else (for a walk) one batched
/// request that fills it, else the row alone (cached too, for random access that repeats).
fn get_ahead<'py>(
    py: Python<'py>,
    ahead: &Arc<ReadAhead>,
    now: Seen,
    tier: Tier,
    plan: &Plan,
    get: &Get,
) -> Route<'py> {
    // Out of range: the daemon says so, in its words.
    let Some(index) = readahead::normalize(get.index, now.len) else {
        return Route::Send;
    };
    let keys = get.keys.as_deref();
    if let Some(row) = ahead.lookup(now.stamp, keys, index) {
        return Route::Done(plan.finish.run(py, tier, Reply::Row(row.rows_ref())));
    }
    let (req, indices, batch) = match ahead.batch(index, now.len) {
        Some(b) => {
            let req = Request::GetMany(GetMany {
                store: 0,
                indices: b.indices.iter().map(|&i| i as i64).collect(),
                keys: get.keys.clone(),
                missing_ok: true,
            });
            (req, b.indices, Some(b.id))
        }
        None => (plan.req.clone(), vec![index], None),
    };
    Route::Fetch(Fetch {
        req,
        fill: Fill {
            ahead: ahead.clone(),
            stamp: now.stamp,
            keys: get.keys.clone(),
            indices,
            batch,
        },
    })
}
