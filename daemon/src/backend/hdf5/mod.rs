//! The `hdf5` backend: the columnar layout of the reference `asebytes` 0.3.3
//! (`asebytes-behaviour.md` §4.2) in an HDF5 file, through hdf5-metno linked against the
//! system's libhdf5. `*.h5` holds the ragged layout, `*.h5p` the padded one; each group of
//! the store is a top-level HDF5 group. `docs/backends/hdf5.md` says what lands on disk,
//! what a `kill -9` can do to it and who else can open the file.
//!
//! Layer: a file backend under [`crate::store`]; the shared columnar core
//! ([`crate::backend::columnar`]) does the layout, this folder the engine: [`engine`] (the
//! [`Engine`](super::columnar::engine::Engine) on one HDF5 group), [`file`] (files,
//! groups, attributes), [`dataset`] (column datasets, hyperslab I/O), [`dtype`] (h5py's
//! HDF5 types), [`attrs`] (the attribute map), [`config`] (options).

pub mod attrs;
pub mod config;
pub mod dataset;
pub mod dtype;
pub mod engine;
pub mod file;
pub mod room;
pub mod undo;

use std::path::Path;

use self::config::Hdf5Config;
use self::engine::Hdf5Engine;
use super::columnar::layout::DEFAULT_CHUNK_FRAMES;
use super::columnar::{ColumnarBackend, Layout, cache};
use super::{BackendEntry, BackendInfo, Error, ErrorKind, LocationKind, OpenOptions, Result};

/// URI scheme of the ragged layout.
pub const SCHEME: &str = "hdf5";
/// URI scheme of the padded layout (any file name; `*.h5p` picks it by default).
pub const SCHEME_PADDED: &str = "hdf5p";

/// The ragged HDF5 store's line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "HDF5 (ragged columnar)",
    patterns: &["*.h5"],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::File,
    options: config::OPTIONS,
    open: |opts| Ok(Box::new(Hdf5Backend::open(opts, Layout::Ragged)?)),
    list_groups,
};

/// The padded HDF5 store's line in the backend table.
pub const ENTRY_PADDED: BackendEntry = BackendEntry {
    scheme: SCHEME_PADDED,
    label: "HDF5 (padded columnar)",
    patterns: &["*.h5p"],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::File,
    options: config::OPTIONS,
    open: |opts| Ok(Box::new(Hdf5Backend::open(opts, Layout::Padded)?)),
    list_groups,
};

/// Opens HDF5 stores.
#[derive(Debug)]
pub struct Hdf5Backend;

impl Hdf5Backend {
    /// Opens (creating on first write) group `opts.group` of the file `opts.path` in
    /// `layout`.
    pub fn open(opts: &OpenOptions, layout: Layout) -> Result<ColumnarBackend<Hdf5Engine>> {
        Self::open_with(opts, Hdf5Config::from_options(&opts.options)?, layout)
    }

    /// [`Hdf5Backend::open`] with explicit settings.
    pub fn open_with(
        opts: &OpenOptions,
        cfg: Hdf5Config,
        layout: Layout,
    ) -> Result<ColumnarBackend<Hdf5Engine>> {
        let path = Path::new(&opts.path);
        if opts.readonly && !path.is_file() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no HDF5 file {}", path.display()),
            ));
        }
        let engine = Hdf5Engine::open(path, &opts.group, opts.readonly, cfg)?;
        let scheme = match layout {
            Layout::Padded => SCHEME_PADDED,
            _ => SCHEME,
        };
        let info = BackendInfo {
            scheme,
            canonical: format!("{scheme}://{}#{}", opts.path, opts.group),
            caps: crate::backend::columnar::capabilities(false, opts.readonly),
        };
        // HDF5 keeps the reference's 64-frame chunks by default: libhdf5 rewrites the last,
        // partly filled chunk of every column on each append, and a `kill -9` in that window
        // can damage it; byte-sized chunks (as Zarr's default) made that window, and the
        // measured damage rate, several times larger (docs/backends/hdf5.md).
        let chunk_frames = cfg.chunk_frames.or(Some(DEFAULT_CHUNK_FRAMES));
        ColumnarBackend::new(info, engine, layout, chunk_frames, cache::DEFAULT_BYTES)
    }
}

/// Top-level HDF5 groups of the file (sorted; none if it does not exist), for ragged and
/// padded files alike (the reference lists none for `.h5p`, a bug).
pub fn list_groups(path: &str) -> Result<Vec<String>> {
    file::list_groups(Path::new(path))
}

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod tests;
