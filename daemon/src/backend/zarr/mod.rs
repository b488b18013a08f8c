//! The Zarr v3 backend (`*.zarr` ragged, `*.zarrp` padded): the asebytes columnar layout
//! kept with zarrs, crash-safe through a journal, readable while it writes.
//!
//! Layer: a file backend under [`crate::store`]; the shared columnar core
//! ([`crate::backend::columnar`]) does the layout, this folder the engine:
//! [`layout`] (arrays, codecs, group documents), [`reader`] (the readers' view of the
//! last commit), [`writer`] (staged writes and the journal), [`config`] (options).
//! `docs/backends/zarr.md` says what lands on disk and why.

pub mod config;
pub mod layout;
pub mod reader;
pub mod writer;

use std::path::{Path, PathBuf};

use self::config::ZarrConfig;
use self::layout::ZarrEngine;
use super::columnar::{ColumnarBackend, Layout, cache};
use super::{BackendEntry, BackendInfo, Error, ErrorKind, LocationKind, OpenOptions, Result};

/// URI scheme of the ragged layout.
pub const SCHEME: &str = "zarr";
/// URI scheme of the padded layout (any file name; `*.zarrp` picks it by default).
pub const SCHEME_PADDED: &str = "zarrp";

/// The ragged Zarr store's line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "Zarr (ragged columnar)",
    patterns: &["*.zarr"],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::File,
    options: config::OPTIONS,
    open: |opts| Ok(Box::new(ZarrBackend::open(opts, Layout::Ragged)?)),
    list_groups,
};

/// The padded Zarr store's line in the backend table.
pub const ENTRY_PADDED: BackendEntry = BackendEntry {
    scheme: SCHEME_PADDED,
    label: "Zarr (padded columnar)",
    patterns: &["*.zarrp"],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::File,
    options: config::OPTIONS,
    open: |opts| Ok(Box::new(ZarrBackend::open(opts, Layout::Padded)?)),
    list_groups,
};

/// Opens Zarr stores.
#[derive(Debug)]
pub struct ZarrBackend;

impl ZarrBackend {
    /// Opens (creating on first write) the group `opts.group` of the container `opts.path`
    /// in `layout`.
    pub fn open(opts: &OpenOptions, layout: Layout) -> Result<ColumnarBackend<ZarrEngine>> {
        Self::open_with(opts, ZarrConfig::from_options(&opts.options)?, layout)
    }

    /// [`ZarrBackend::open`] with explicit settings.
    pub fn open_with(
        opts: &OpenOptions,
        cfg: ZarrConfig,
        layout: Layout,
    ) -> Result<ColumnarBackend<ZarrEngine>> {
        if opts.group.is_empty() || opts.group.contains('/') || opts.group.starts_with('.') {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "'{}' is not a valid group name for a Zarr store",
                    opts.group
                ),
            ));
        }
        let root = PathBuf::from(&opts.path);
        if opts.readonly && !root.join(&opts.group).join("zarr.json").is_file() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no Zarr group '{}' in {}", opts.group, root.display()),
            ));
        }
        let chunk_frames = cfg.chunk_frames;
        let engine = ZarrEngine::open(root.join(&opts.group), cfg, opts.readonly)?;
        let scheme = match layout {
            Layout::Ragged => SCHEME,
            Layout::Padded => SCHEME_PADDED,
        };
        let info = BackendInfo {
            scheme,
            canonical: format!("{scheme}://{}#{}", opts.path, opts.group),
            caps: crate::backend::columnar::capabilities(true, opts.readonly),
        };
        ColumnarBackend::new(info, engine, layout, chunk_frames, cache::DEFAULT_BYTES)
    }
}

/// Groups in a container: sub-directories holding a `zarr.json` (sorted), for ragged and
/// padded stores alike.
pub fn list_groups(path: &str) -> Result<Vec<String>> {
    let root = Path::new(path);
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("cannot list {path}: {e}"),
            ));
        }
    };
    let mut groups: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("zarr.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    groups.sort();
    Ok(groups)
}

#[cfg(test)]
mod tests;
