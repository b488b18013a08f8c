//! The aselmdb backend (`*.aselmdb`, or a directory of them; read-only): fairchem's
//! ase-db-backends 0.11 LMDB format (OMat24, OMol25, OC20 shards, which ASE itself cannot
//! open), every shard of a folder served as one dataset with a global index, each row the
//! `Atoms` that `ase.db.connect(path, type="aselmdb")` gives.
//!
//! Layer: a file backend under [`crate::store`], on the read-only frames core
//! ([`crate::backend::frames`]): [`shards`] opens the LMDB files and maps a global index
//! to (shard, id), [`row`] turns a stored row into an `Atoms` row.
//! `docs/backends/aselmdb.md` says what is read how.

pub mod row;
pub mod shards;

use std::path::PathBuf;

use self::shards::Shard;
use super::frames::{Frame, FrameSource, FrameView, FramesBackend};
use super::{BackendEntry, Error, ErrorKind, LocationKind, OpenOptions, Result};

/// URI scheme and backend name.
pub const SCHEME: &str = "aselmdb";

/// The aselmdb line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "aselmdb shards (read-only)",
    patterns: &["*.aselmdb"],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::Shards,
    options: &[],
    open: |opts| Ok(Box::new(open(opts)?)),
    list_groups: |_| Ok(Vec::new()),
};

/// Opens a shard or a directory of shards read-only.
pub fn open(opts: &OpenOptions) -> Result<FramesBackend<Shards>> {
    let paths = shards::shard_paths(&PathBuf::from(&opts.path))?;
    let shards: Vec<Shard> = paths
        .iter()
        .map(|p| Shard::open(p))
        .collect::<Result<_>>()?;
    let mut starts = Vec::with_capacity(shards.len());
    let mut total = 0u64;
    for s in &shards {
        starts.push(total);
        total += s.len();
    }
    Ok(FramesBackend::new(
        SCHEME,
        format!("{SCHEME}://{}#{}", opts.path, opts.group),
        Shards {
            shards,
            starts,
            total,
        },
    ))
}

/// The shards of one dataset and where each starts in the global index.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Shard>,
    starts: Vec<u64>,
    total: u64,
}

impl FrameSource for Shards {
    fn view(&self) -> Result<Box<dyn FrameView + '_>> {
        Ok(Box::new(ShardsView(self)))
    }
}

struct ShardsView<'a>(&'a Shards);

impl FrameView for ShardsView<'_> {
    fn len(&self) -> u64 {
        self.0.total
    }

    fn frame(&self, index: u64) -> Result<Frame> {
        if index >= self.0.total {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {index} out of range [0, {})", self.0.total),
            ));
        }
        let k = self.0.starts.partition_point(|&s| s <= index) - 1;
        let shard = &self.0.shards[k];
        let doc = shard.row(index - self.0.starts[k])?;
        row::to_frame(doc).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{}: row {}: {e}",
                    shard.path.display(),
                    index - self.0.starts[k]
                ),
            )
        })
    }
}
