//! The MongoDB backend (`mongodb://[user:pass@]host[:port][/db][?options]`, one collection
//! per group): asebytes 0.3.3's documents, shared safely by many daemons and plain
//! asebytes clients, with dotted keys addressed literally.
//!
//! Layer: a server backend under [`crate::store`]. [`config`] parses the location,
//! [`layout`] says what the documents look like, [`query`] makes the server calls (and maps
//! driver errors), [`reader`] answers reads (in one call where
//! [`crate::backend::guess`] knows the rows' sort keys), [`writer`] applies a batch inside
//! one MongoDB transaction. `docs/backends/mongodb.md` says what lands on the server and why.
//!
//! The official driver's blocking API is used (the `sync` feature: the driver's own runtime,
//! no thread per call). The driver reconnects by itself after the server comes back; calls
//! in flight while it is away fail as `Unavailable` (Python `ConnectionError`).

pub mod config;
pub mod layout;
pub mod query;
pub mod reader;
pub mod writer;

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use asebytes_protocol::Capabilities;
use asebytes_protocol::redact::redact;
use mongodb::bson::Document;
use mongodb::sync::{Client, Collection};

use self::config::MongoConfig;
use self::query::{Query, driver_error, is_conflict};
use self::reader::MongoSnapshot;
use self::writer::MongoTxn;
use super::{
    Backend, BackendEntry, BackendInfo, Error, ErrorKind, LocationKind, OpenOptions, Reader,
    Result, Snapshot, Writer,
};
use crate::backend::guess::Guesses;

/// The MongoDB backend's line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: config::SCHEME,
    label: "MongoDB",
    patterns: &[],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::Url,
    options: &[],
    open: |opts| Ok(Box::new(MongoBackend::open(opts)?)),
    list_groups,
};

/// How long a write transaction keeps retrying after write conflicts with other writers.
const CONFLICT_BUDGET: Duration = Duration::from_secs(30);

/// Groups (collections) in the location's database, sorted.
pub fn list_groups(location: &str) -> Result<Vec<String>> {
    let cfg = MongoConfig::parse(location)?;
    let client = connect(&cfg)?;
    let mut names = client
        .database(&cfg.database)
        .list_collection_names()
        .run()
        .map_err(|e| driver_error(&cfg, "listing groups", e))?;
    names.retain(|n| !n.starts_with("system."));
    names.sort();
    Ok(names)
}

fn connect(cfg: &MongoConfig) -> Result<Client> {
    Client::with_options(cfg.client.clone()).map_err(|e| driver_error(cfg, "connecting", e))
}

/// What the backend and its readers share.
#[derive(Debug)]
struct Conn {
    cfg: MongoConfig,
    client: Client,
    coll: Collection<Document>,
    /// Keys this backend knows are in the metadata's `schema` (only the writer uses it).
    known: Mutex<HashSet<String>>,
    /// Sort keys seen at row positions: reads of a few rows in one call.
    guesses: Guesses,
}

impl Conn {
    fn query(&self) -> Query<'_> {
        Query {
            coll: &self.coll,
            session: None,
            cfg: &self.cfg,
        }
    }
}

/// An open MongoDB store (one collection).
#[derive(Debug)]
pub struct MongoBackend {
    info: BackendInfo,
    conn: Arc<Conn>,
    removed: bool,
}

impl MongoBackend {
    /// Opens group `opts.group` of the database the location names. The server is asked
    /// once, so a server that is down fails the open naming host and port (within the
    /// server-selection timeout, 5 s unless the URI says `serverSelectionTimeoutMS`).
    pub fn open(opts: &OpenOptions) -> Result<Self> {
        let cfg = MongoConfig::parse(&opts.path)?;
        config::check_group(&opts.group)?;
        let client = connect(&cfg)?;
        let coll = client
            .database(&cfg.database)
            .collection::<Document>(&opts.group);
        let conn = Conn {
            cfg,
            client,
            coll,
            known: Mutex::default(),
            guesses: Guesses::default(),
        };
        // One cheap read: the server is there, the credentials work, the metadata reads.
        MongoSnapshot::new(conn.query()).len()?;
        let mut caps = Capabilities::all();
        // Reads outside a write are several calls with no snapshot between them.
        caps.snapshots = false;
        caps.packed_columns = false;
        caps.typed_values = true;
        // Other daemons and plain clients write the same server.
        caps.exclusive = false;
        if opts.readonly {
            caps = caps.read_only();
        }
        let info = BackendInfo {
            scheme: config::SCHEME,
            canonical: format!("{}#{}", redact(&opts.path), opts.group),
            caps,
        };
        Ok(Self {
            info,
            conn: Arc::new(conn),
            removed: false,
        })
    }

    fn usable(&self) -> Result<()> {
        if self.removed {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{} was removed", self.info.canonical),
            ));
        }
        Ok(())
    }

    /// Runs `f` in one transaction: commits on `Ok`, aborts on `Err`. Write conflicts with
    /// other writers abort and run `f` again (with fresh metadata) for up to
    /// [`CONFLICT_BUDGET`]; an unreachable server fails at once.
    fn transaction(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        let cfg = &self.conn.cfg;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut session = self
                .conn
                .client
                .start_session()
                .run()
                .map_err(|e| driver_error(cfg, "starting a session", e))?;
            session
                .start_transaction()
                .run()
                .map_err(|e| driver_error(cfg, "starting a transaction", e))?;
            let session = RefCell::new(session);
            let q = Query {
                coll: &self.conn.coll,
                session: Some(&session),
                cfg,
            };
            let known = self
                .conn
                .known
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut txn = MongoTxn::new(q, &known, &self.conn.guesses);
            let outcome = f(&mut txn);
            let recorded = txn.into_recorded();
            drop(known);
            let mut session = session.into_inner();
            let result = match outcome {
                Ok(()) => commit(cfg, &mut session).map(|()| {
                    self.conn
                        .known
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(recorded);
                }),
                Err(e) => {
                    // Nothing was committed; an abort that fails leaves it to the server's
                    // transaction timeout, with the same effect.
                    let _ = session.abort_transaction().run();
                    Err(e)
                }
            };
            match result {
                Err(e) if is_conflict(&e) && started.elapsed() < CONFLICT_BUDGET => {
                    backoff(attempt);
                }
                other => return other,
            }
        }
    }
}

/// Commits, repeating the commit while its outcome is unknown (the driver's advice).
fn commit(cfg: &MongoConfig, session: &mut mongodb::sync::ClientSession) -> Result<()> {
    for _ in 0..3 {
        match session.commit_transaction().run() {
            Ok(()) => return Ok(()),
            Err(e) if e.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT) => {}
            Err(e) => return Err(driver_error(cfg, "committing", e)),
        }
    }
    session
        .commit_transaction()
        .run()
        .map_err(|e| driver_error(cfg, "committing", e))
}

/// Waits a little, more after each conflict and spread by a cheap per-thread jitter, so
/// writers that collided do not collide again in lock step.
fn backoff(attempt: u32) {
    let nanos = Instant::now().elapsed().subsec_nanos() ^ std::process::id();
    let base = 1u64 << attempt.min(6);
    let jitter = u64::from(nanos % 1000) * base / 1000;
    std::thread::sleep(Duration::from_millis(base + jitter));
}

impl Backend for MongoBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(MongoReader {
            conn: self.conn.clone(),
        })
    }

    fn write(&mut self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        self.usable()?;
        self.transaction(f)
    }

    fn remove(&mut self) -> Result<()> {
        self.usable()?;
        self.conn
            .coll
            .drop()
            .run()
            .map_err(|e| driver_error(&self.conn.cfg, "removing the group", e))?;
        self.removed = true;
        Ok(())
    }
}

/// Reads from any thread (the driver's client is shared and thread-safe).
#[derive(Debug)]
struct MongoReader {
    conn: Arc<Conn>,
}

impl Reader for MongoReader {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        Ok(Box::new(MongoSnapshot::with_guesses(
            self.conn.query(),
            &self.conn.guesses,
        )))
    }
}
