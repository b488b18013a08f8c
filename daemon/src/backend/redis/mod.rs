//! The `redis://` backend: a group is a key prefix on a Redis server, laid out exactly as
//! asebytes 0.3.3's `RedisBlobBackend` lays it out ([`layout`]), so either reads what the
//! other wrote. Many daemons (on many machines) and plain 0.3.3 clients may share a group:
//! every write batch is one Lua script on the server ([`scripts`], [`writer`]), so the
//! server, not the daemon's actor, decides the order, and nothing is ever half applied.
//!
//! Layer: below [`crate::store`], beside the other backends. [`config`] parses the
//! location and options, [`conn`] keeps the connections and classifies failures,
//! [`reader`] reads, [`writer`] writes. The location may carry a password: it goes to the
//! driver only; everything shown (canonical key, messages) names `host:port` or the
//! location through [`redact`].

pub mod config;
pub mod conn;
pub mod layout;
pub mod native;
pub mod reader;
pub mod scripts;
pub mod writer;

use std::sync::Arc;

use asebytes_protocol::Capabilities;
use asebytes_protocol::redact::redact;

use self::config::RedisConfig;
use self::conn::Pool;
use self::layout::KeyNames;
use self::reader::RedisReader;
use super::{
    Backend, BackendEntry, BackendInfo, Error, ErrorKind, LocationKind, OpenOptions, Reader,
    Result, Writer,
};
use crate::backend::guess::Guesses;

/// URI scheme and backend name.
pub const SCHEME: &str = "redis";

/// The Redis backend's line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "Redis",
    patterns: &[],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::Url,
    options: config::OPTIONS,
    open: |opts| Ok(Box::new(RedisBackend::open(opts)?)),
    list_groups,
};

/// `rediss://`: the same backend over TLS.
pub const ENTRY_TLS: BackendEntry = BackendEntry {
    scheme: "rediss",
    label: "Redis (TLS)",
    ..ENTRY
};

/// SCAN page size for `list_groups` and `remove`.
const SCAN_COUNT: usize = 1000;

/// An open Redis group.
#[derive(Debug)]
pub struct RedisBackend {
    info: BackendInfo,
    pool: Arc<Pool>,
    names: Arc<KeyNames>,
    /// The list length after this store's last write (see [`writer::write`]).
    known_len: Option<u64>,
    /// Sort keys by position, for reads of a few rows in one call ([`native`]).
    guesses: Arc<Guesses>,
    removed: bool,
}

/// What Redis offers: every row operation, readers beside the writer on their own
/// connections, batches atomic on the server. No snapshots across calls (other daemons
/// write in between), no packed columns (values are stored as given).
pub fn capabilities(readonly: bool) -> Capabilities {
    let caps = Capabilities {
        snapshots: false,
        packed_columns: false,
        typed_values: false,
        // Other daemons and plain clients write the same server.
        exclusive: false,
        ..Capabilities::all()
    };
    if readonly { caps.read_only() } else { caps }
}

impl RedisBackend {
    /// Connects to the server of `opts.path` (the whole `redis://` URL) for group
    /// `opts.group`; a server that is down is an `Unavailable` error naming host and port.
    pub fn open(opts: &OpenOptions) -> Result<Self> {
        let cfg = Arc::new(RedisConfig::from_options(&opts.path, &opts.options)?);
        let pool = Arc::new(Pool::connect(cfg)?);
        let info = BackendInfo {
            scheme: SCHEME,
            canonical: format!("{}#{}", redact(&opts.path), opts.group),
            caps: capabilities(opts.readonly),
        };
        Ok(Self {
            info,
            pool,
            names: Arc::new(KeyNames::new(&opts.group)),
            known_len: None,
            guesses: Arc::default(),
            removed: false,
        })
    }

    fn check_writable(&self) -> Result<()> {
        if self.removed {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{} was removed", self.info.canonical),
            ));
        }
        if !self.info.caps.write {
            return Err(Error::new(ErrorKind::ReadOnly, "Backend is read-only"));
        }
        Ok(())
    }
}

impl Backend for RedisBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(RedisReader {
            pool: self.pool.clone(),
            names: self.names.clone(),
            guesses: self.guesses.clone(),
        })
    }

    fn write(&mut self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        self.check_writable()?;
        let store = writer::Store {
            pool: &self.pool,
            names: &self.names,
            guesses: &self.guesses,
        };
        writer::write(&store, &mut self.known_len, f)
    }

    /// Deletes the group's keys: rows, list and counter in one script, then any row hash
    /// no list entry named (left by a client that died mid-write).
    fn remove(&mut self) -> Result<()> {
        self.check_writable()?;
        let names = &self.names;
        let mut conn = self.pool.take()?;
        conn.run(|c| {
            scripts::REMOVE
                .key(&names.sort_keys)
                .key(&names.next_sk)
                .arg(&names.row_prefix)
                .invoke::<i64>(c)
        })?;
        let pattern = names.row_pattern();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = conn.run(|c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(c)
            })?;
            let ours: Vec<Vec<u8>> = keys.into_iter().filter(|k| names.is_row_key(k)).collect();
            if !ours.is_empty() {
                conn.run(|c| redis::cmd("DEL").arg(&ours).query::<i64>(c))?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.removed = true;
        Ok(())
    }
}

/// Groups on the server of `location` (every `<g>:sort_keys` key), sorted.
pub fn list_groups(location: &str) -> Result<Vec<String>> {
    let cfg = Arc::new(RedisConfig::parse_url(location)?);
    let pool = Pool::connect(cfg)?;
    let mut conn = pool.take()?;
    let mut groups = std::collections::BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = conn.read(|c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("*{}", layout::SORT_KEYS_SUFFIX))
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query(c)
        })?;
        groups.extend(keys.iter().filter_map(|k| layout::group_of(k)));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(groups.into_iter().collect())
}
