//! HuggingFace Hub datasets, read-only: `hf://owner/name` (with a `mapping=`),
//! `colabfit://name` (org `colabfit` when no slash; `COLABFIT` mapping) and
//! `optimade://owner/name` (`OPTIMADE` mapping), each split served as frames with a global
//! index whose length is known at open from the Parquet footers.
//!
//! Layer: a URL backend under [`crate::store`], on the read-only frames core
//! ([`crate::backend::frames`]): [`config`] reads the location and options, [`resolve`]
//! finds the split's Parquet files (hf-hub, the dataset card, the HF cache), [`parquet`]
//! reads footers and column chunks by byte range, [`dataset`] maps rows through
//! [`mapping`] (cells converted by [`values`]). `docs/backends/huggingface.md` says what
//! is read how.

pub mod card;
pub mod config;
pub mod dataset;
pub mod http;
pub mod mapping;
pub mod parquet;
pub mod resolve;
pub mod values;

use self::config::HubConfig;
use self::dataset::Dataset;
use super::frames::FramesBackend;
use super::{BackendEntry, LocationKind, OpenOptions, Result};

const fn entry(scheme: &'static str, label: &'static str) -> BackendEntry {
    BackendEntry {
        scheme,
        label,
        patterns: &[],
        sniffed_patterns: &[],
        sniff: None,
        default_group: None,
        location: LocationKind::Url,
        options: config::OPTIONS,
        open: |opts| Ok(Box::new(open(opts)?)),
        list_groups: |_| Ok(Vec::new()),
    }
}

/// `hf://owner/name` (needs `mapping=`).
pub const ENTRY_HF: BackendEntry = entry("hf", "HuggingFace dataset (read-only)");
/// `colabfit://name`.
pub const ENTRY_COLABFIT: BackendEntry = entry("colabfit", "ColabFit dataset (read-only)");
/// `optimade://owner/name`.
pub const ENTRY_OPTIMADE: BackendEntry = entry("optimade", "OPTIMADE dataset (read-only)");

/// Opens one split of a hub dataset: resolves its files and reads their footers.
pub fn open(opts: &OpenOptions) -> Result<FramesBackend<Dataset>> {
    let cfg = HubConfig::parse(&opts.path, &opts.options)?;
    let http = http::Http::new(cfg.token.clone());
    let files = resolve::open_files(&cfg, &http)?;
    let dataset = Dataset::new(files, &cfg.mapping)?;
    let scheme = match opts.path.split_once("://") {
        Some(("colabfit", _)) => ENTRY_COLABFIT.scheme,
        Some(("optimade", _)) => ENTRY_OPTIMADE.scheme,
        _ => ENTRY_HF.scheme,
    };
    Ok(FramesBackend::new(
        scheme,
        format!("{}#{}", opts.path, opts.group),
        dataset,
    ))
}
