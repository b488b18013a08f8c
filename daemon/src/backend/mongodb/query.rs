//! One server call at a time, inside the write transaction's session or outside any, and
//! the one mapping from driver errors to backend errors.
//!
//! Layer: under [`super::reader`] and [`super::writer`]; the only place that talks to the
//! driver's collection handle. Driver messages pass through [`MongoConfig::scrub`], so a
//! password in the location can never reach an error, a log line or `status`.

use std::cell::RefCell;

use mongodb::bson::{Bson, Document};
use mongodb::error::{Error as DriverError, ErrorKind as DriverKind, TRANSIENT_TRANSACTION_ERROR};
use mongodb::sync::{ClientSession, Collection};

use super::config::MongoConfig;
use crate::backend::{Error, ErrorKind, Result};

/// Server error code of a write that lost a race with another transaction.
const WRITE_CONFLICT: i32 = 112;
/// Server error code of an insert whose `_id` exists.
const DUPLICATE_KEY: i32 = 11000;

/// Marks an error after which the whole write transaction may simply run again (a write
/// conflict with another writer); [`super::MongoBackend`] retries those.
#[derive(Debug)]
pub struct Conflict;

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("another writer changed the same documents")
    }
}

impl std::error::Error for Conflict {}

/// Whether `e` only says the transaction lost a race (and may run again).
pub fn is_conflict(e: &Error) -> bool {
    e.source
        .as_deref()
        .is_some_and(|s| s.downcast_ref::<Conflict>().is_some())
}

/// A driver error as a backend error: an unreachable server is `Unavailable` (Python
/// `ConnectionError`) naming the hosts; a lost race is marked retryable.
pub fn driver_error(cfg: &MongoConfig, what: &str, e: DriverError) -> Error {
    let message = cfg.scrub(&e.to_string());
    let unreachable = matches!(
        *e.kind,
        DriverKind::ServerSelection { .. }
            | DriverKind::Io(_)
            | DriverKind::ConnectionPoolCleared { .. }
            | DriverKind::Authentication { .. }
            | DriverKind::DnsResolve { .. }
    );
    if unreachable {
        return Error::new(
            ErrorKind::Unavailable,
            format!(
                "MongoDB at {} ({}) is not reachable while {what}: {message}",
                cfg.hosts, cfg.shown
            ),
        );
    }
    let code = match &*e.kind {
        DriverKind::Command(c) => Some(c.code),
        DriverKind::Write(mongodb::error::WriteFailure::WriteError(w)) => Some(w.code),
        DriverKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    };
    if code == Some(WRITE_CONFLICT) || e.contains_label(TRANSIENT_TRANSACTION_ERROR) {
        return Error::new(
            ErrorKind::Unavailable,
            format!("MongoDB write conflict while {what}: {message}"),
        )
        .with_source(Conflict);
    }
    if code == Some(DUPLICATE_KEY) {
        // Another writer holds the sort key just reserved (a client that reserves keys
        // from stale pre-images): run the transaction again with fresh metadata.
        return Error::new(
            ErrorKind::Unavailable,
            format!("MongoDB sort key taken by another writer while {what}: {message}"),
        )
        .with_source(Conflict);
    }
    Error::new(
        ErrorKind::Unexpected,
        format!("MongoDB failed while {what}: {message}"),
    )
}

/// A collection, the session of the write transaction if there is one, and the location
/// for error messages.
#[derive(Clone, Copy)]
pub struct Query<'a> {
    /// The group's collection.
    pub coll: &'a Collection<Document>,
    /// The write transaction's session; `None` for reads outside a transaction.
    pub session: Option<&'a RefCell<ClientSession>>,
    /// The parsed location.
    pub cfg: &'a MongoConfig,
}

impl std::fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("collection", &self.coll.name())
            .field("in_transaction", &self.session.is_some())
            .finish()
    }
}

impl Query<'_> {
    fn fail(&self, what: &str) -> impl FnOnce(DriverError) -> Error + '_ {
        let what = what.to_string();
        move |e| driver_error(self.cfg, &what, e)
    }

    /// `find_one(filter, projection)`.
    pub fn find_one(
        &self,
        filter: Document,
        projection: Document,
        what: &str,
    ) -> Result<Option<Document>> {
        let action = self.coll.find_one(filter).projection(projection);
        match self.session {
            Some(s) => action.session(&mut *s.borrow_mut()).run(),
            None => action.run(),
        }
        .map_err(self.fail(what))
    }

    /// `find(filter, projection)`, every document.
    pub fn find(
        &self,
        filter: Document,
        projection: Option<Document>,
        what: &str,
    ) -> Result<Vec<Document>> {
        let mut action = self.coll.find(filter);
        if let Some(p) = projection {
            action = action.projection(p);
        }
        match self.session {
            Some(s) => {
                let mut session = s.borrow_mut();
                let mut cursor = action
                    .session(&mut *session)
                    .run()
                    .map_err(self.fail(what))?;
                cursor
                    .iter(&mut session)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(self.fail(what))
            }
            None => action
                .run()
                .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(self.fail(what)),
        }
    }

    /// `aggregate(pipeline)`, every result.
    pub fn aggregate(&self, pipeline: Vec<Document>, what: &str) -> Result<Vec<Document>> {
        match self.session {
            Some(s) => {
                let mut session = s.borrow_mut();
                let mut cursor = self
                    .coll
                    .aggregate(pipeline)
                    .session(&mut *session)
                    .run()
                    .map_err(self.fail(what))?;
                cursor
                    .iter(&mut session)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(self.fail(what))
            }
            None => self
                .coll
                .aggregate(pipeline)
                .run()
                .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(self.fail(what)),
        }
    }

    /// The session of the write transaction (writes only ever run inside one).
    fn session(&self) -> Result<std::cell::RefMut<'_, ClientSession>> {
        self.session.map(RefCell::borrow_mut).ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                "a MongoDB write outside a transaction",
            )
        })
    }

    /// `insert_many(docs)`.
    pub fn insert_many(&self, docs: Vec<Document>, what: &str) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut s = self.session()?;
        self.coll
            .insert_many(docs)
            .session(&mut *s)
            .run()
            .map(drop)
            .map_err(self.fail(what))
    }

    /// `update_one(filter, update)` (an update document or a pipeline); the number matched.
    pub fn update_one(
        &self,
        filter: Document,
        update: impl Into<mongodb::options::UpdateModifications>,
        upsert: bool,
        what: &str,
    ) -> Result<u64> {
        let mut s = self.session()?;
        self.coll
            .update_one(filter, update)
            .upsert(upsert)
            .session(&mut *s)
            .run()
            .map(|r| r.matched_count + u64::from(r.upserted_id.is_some()))
            .map_err(self.fail(what))
    }

    /// `update_many(filter, update)`.
    pub fn update_many(
        &self,
        filter: Document,
        update: impl Into<mongodb::options::UpdateModifications>,
        what: &str,
    ) -> Result<()> {
        let mut s = self.session()?;
        self.coll
            .update_many(filter, update)
            .session(&mut *s)
            .run()
            .map(drop)
            .map_err(self.fail(what))
    }

    /// `replace_one(filter, doc, upsert)`.
    pub fn replace_one(&self, filter: Document, doc: Document, what: &str) -> Result<()> {
        let mut s = self.session()?;
        self.coll
            .replace_one(filter, doc)
            .upsert(true)
            .session(&mut *s)
            .run()
            .map(drop)
            .map_err(self.fail(what))
    }

    /// `delete_many(filter)`.
    pub fn delete_many(&self, filter: Document, what: &str) -> Result<()> {
        let mut s = self.session()?;
        self.coll
            .delete_many(filter)
            .session(&mut *s)
            .run()
            .map(drop)
            .map_err(self.fail(what))
    }
}

/// `Bson::Int64` of an index or length (both below `i64::MAX` in practice; saturated).
pub fn int(n: u64) -> Bson {
    Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}
