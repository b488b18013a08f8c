//! A read-through cache in front of any source (`cache_to=`): the store serves the
//! source's length and schema, and its rows from a cache store (normally LMDB), copying
//! each row from the source into the cache the first time it is read.
//!
//! Layer: a backend built from two backends of the table ([`crate::backend::table`]):
//! the registry opens it through [`open`] when an `Open` carries the option
//! [`CACHE_TO`] (the cache's canonical store key, resolved by the registry), so every
//! process reading one source through one cache shares one store actor and each row is
//! fetched from the source once. [`filled`] records, durably, which cache rows hold their
//! source row and which source they came from ([`identity`]); [`reader`] reads through;
//! [`writer`] keeps the cache coherent when the source is writable and written through
//! this store.

mod filled;
mod identity;
mod reader;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use asebytes_protocol::OptionValue;

use super::table::{self, BackendEntry, LocationKind};
use super::{Backend, BackendInfo, Error, ErrorKind, OpenOptions, Options, Reader, Result, Writer};
use filled::Filled;
use identity::Identity;
use reader::{CachedReader, Shared};
use writer::{Invalidating, Touched};

/// The option naming the cache store (`<scheme>://<path>#<group>`, canonical).
pub const CACHE_TO: &str = "cache_to";

/// Opens the backend of `entry` at `opts`, behind a read-through cache when the options
/// carry [`CACHE_TO`].
pub fn open(entry: &'static BackendEntry, opts: &OpenOptions) -> Result<Box<dyn Backend>> {
    let target = match opts.options.get(CACHE_TO) {
        None => return (entry.open)(opts),
        Some(OptionValue::Str(s)) => s.clone(),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::TypeMismatch,
                "cache_to must be a location string",
            ));
        }
    };
    let source_opts = OpenOptions {
        options: opts.options.without(CACHE_TO),
        ..opts.clone()
    };
    let source = (entry.open)(&source_opts)?;
    Ok(Box::new(CachedBackend::open(
        source,
        entry,
        &source_opts,
        &target,
    )?))
}

/// A source behind a read-through cache.
pub struct CachedBackend {
    info: BackendInfo,
    source: Box<dyn Backend>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBackend")
            .field("canonical", &self.info.canonical)
            .finish_non_exhaustive()
    }
}

impl CachedBackend {
    /// `source` (opened from `entry` with `opts`) cached in the store `target`
    /// (`<scheme>://<path>#<group>`, canonical), which must be able to replace rows.
    pub fn open(
        source: Box<dyn Backend>,
        entry: &'static BackendEntry,
        opts: &OpenOptions,
        target: &str,
    ) -> Result<Self> {
        let (scheme, path, group) = split_key(target)?;
        let cache_entry = table::by_scheme(scheme).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no backend for the cache location {target}"),
            )
        })?;
        let cache = (cache_entry.open)(&OpenOptions {
            path: path.to_string(),
            group: group.to_string(),
            readonly: false,
            options: Options::default(),
        })?;
        let cache_caps = cache.info().caps;
        if !(cache_caps.write && cache_caps.write_can_set) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "cannot cache into {target}: a {} store cannot replace rows; use an LMDB file",
                    cache_entry.label
                ),
            ));
        }
        let src = source.info().clone();
        let watch_files =
            !src.caps.write && matches!(entry.location, LocationKind::File | LocationKind::Shards);
        let identity = Identity::new(
            src.canonical.clone(),
            watch_files.then(|| (opts.path.clone(), entry.patterns)),
        );
        let filled = match (cache_entry.location, cache_caps.persistent) {
            (LocationKind::File, true) => Filled::load(&sidecar(path, group), identity.describe())?,
            _ => Filled::in_memory(identity.describe()),
        };
        let caps = asebytes_protocol::Capabilities {
            concurrent_readers: src.caps.concurrent_readers && cache_caps.concurrent_readers,
            snapshots: false,
            packed_columns: false,
            ..src.caps
        };
        let info = BackendInfo {
            scheme: src.scheme,
            canonical: format!("{}?cache_to={target}", src.canonical),
            caps,
        };
        let shared = Shared {
            source: source.reader(),
            cache_reader: cache.reader(),
            cache: Mutex::new(cache),
            filled: RwLock::new(filled),
            identity,
            fetched: Arc::new(AtomicU64::new(0)),
        };
        Ok(Self {
            info,
            source,
            shared: Arc::new(shared),
        })
    }

    /// Counts the rows copied from the source into the cache since open.
    pub fn fetched(&self) -> Arc<AtomicU64> {
        self.shared.fetched.clone()
    }
}

impl Backend for CachedBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(CachedReader {
            shared: self.shared.clone(),
        })
    }

    fn write(&mut self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        let shared = self.shared.clone();
        // No fill may read the source between the rows being unmarked and the commit.
        let _fills = shared.cache();
        self.source.write(&mut |w| {
            let mut touched = Touched::default();
            f(&mut Invalidating {
                inner: w,
                touched: &mut touched,
            })?;
            let mut filled = shared.filled_mut();
            if let Some(from) = touched.from {
                filled.unmark_from(from)?;
            }
            filled.unmark(touched.rows.iter().copied())
        })
    }

    fn remove(&mut self) -> Result<()> {
        self.source.remove()?;
        let _fills = self.shared.cache();
        let identity = self.shared.identity.describe();
        self.shared.filled_mut().reset(identity)
    }

    fn close(&mut self) -> Result<()> {
        let closed = self.source.close();
        self.shared.cache().close().and(closed)
    }
}

/// Where a file cache records its cached rows: beside it, one record per group.
fn sidecar(path: &str, group: &str) -> PathBuf {
    PathBuf::from(format!("{path}.cached-rows.{group}"))
}

/// `(scheme, path, group)` of a canonical store key.
fn split_key(key: &str) -> Result<(&str, &str, &str)> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("cache_to {key} is not a store key (<scheme>://<path>#<group>)"),
        )
    };
    let (scheme, rest) = key.split_once("://").ok_or_else(bad)?;
    let (path, group) = rest.rsplit_once('#').ok_or_else(bad)?;
    Ok((scheme, path, group))
}

#[cfg(test)]
mod tests;
