//! The `h5md` backend: H5MD 1.1 files as the reference `asebytes` 0.3.3 and znh5md write
//! them (`asebytes-behaviour.md` §4.3), so ZnDraw, MDAnalysis, IPSuite and znh5md read what
//! the daemon writes and the daemon reads what they write. `*.h5md` always; `*.h5` when the
//! file exists and its root holds an `h5md` group (the table's content sniff). The group is
//! the particles group: given, else the first of `/particles` in an existing file, else
//! `atoms`. `docs/backends/h5md.md` says what lands where.
//!
//! Layer: a file backend under [`crate::store`]; the shared columnar core
//! ([`crate::backend::columnar`], padded layout) does rows ↔ columns, this folder maps the
//! columns onto the H5MD tree: [`engine`] (the engine), [`names`] (the name map),
//! [`tree`] (elements, skeleton, sniff), [`bonds`] (connectivity), [`values`] (storage
//! conversions), [`foreign`] (files without our metadata), [`config`] (options).

pub mod bonds;
pub mod config;
pub mod engine;
pub mod foreign;
pub mod names;
mod state;
pub mod tree;
pub mod values;

use std::path::Path;

use self::config::H5mdConfig;
use self::engine::H5mdEngine;
use super::columnar::layout::DEFAULT_CHUNK_FRAMES;
use super::columnar::{ColumnarBackend, Layout, cache};
use super::{BackendEntry, BackendInfo, Error, ErrorKind, LocationKind, OpenOptions, Result};

/// URI scheme.
pub const SCHEME: &str = "h5md";
/// The particles group of a new file when none is given.
pub const DEFAULT_GROUP: &str = "atoms";

/// The H5MD store's line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "H5MD",
    patterns: &["*.h5md"],
    sniffed_patterns: &["*.h5"],
    sniff: Some(sniff),
    default_group: Some(default_group),
    location: LocationKind::File,
    options: config::OPTIONS,
    open: |opts| Ok(Box::new(H5mdBackend::open(opts)?)),
    list_groups,
};

/// Opens H5MD stores.
#[derive(Debug)]
pub struct H5mdBackend;

impl H5mdBackend {
    /// Opens (creating on first write) particles group `opts.group` of `opts.path`.
    pub fn open(opts: &OpenOptions) -> Result<ColumnarBackend<H5mdEngine>> {
        Self::open_with(opts, H5mdConfig::from_options(&opts.options)?)
    }

    /// [`H5mdBackend::open`] with explicit settings.
    pub fn open_with(opts: &OpenOptions, cfg: H5mdConfig) -> Result<ColumnarBackend<H5mdEngine>> {
        let path = Path::new(&opts.path);
        if opts.readonly && !path.is_file() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no H5MD file {}", path.display()),
            ));
        }
        let chunk_frames = cfg.hdf5.chunk_frames.or(Some(DEFAULT_CHUNK_FRAMES));
        let engine = H5mdEngine::open(path, &opts.group, opts.readonly, cfg)?;
        let info = BackendInfo {
            scheme: SCHEME,
            canonical: format!("{SCHEME}://{}#{}", opts.path, opts.group),
            caps: super::columnar::capabilities(false, opts.readonly),
        };
        ColumnarBackend::new(
            info,
            engine,
            Layout::Padded,
            chunk_frames,
            cache::DEFAULT_BYTES,
        )
    }
}

/// Groups of `/particles` (sorted; none if the file does not exist).
pub fn list_groups(path: &str) -> Result<Vec<String>> {
    tree::list_groups(Path::new(path))
}

/// Whether an existing file is H5MD (its root holds an `h5md` group).
pub fn sniff(path: &Path) -> bool {
    tree::is_h5md(path)
}

/// The group a store opens when the client names none: the first of `/particles` in an
/// existing file, else `atoms`.
pub fn default_group(path: &str) -> String {
    tree::first_group(Path::new(path)).unwrap_or_else(|| DEFAULT_GROUP.to_string())
}

#[cfg(test)]
mod tests;
