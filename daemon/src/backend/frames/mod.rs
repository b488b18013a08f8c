//! The read-only frames core shared by backends over files other programs wrote (ASE's
//! extxyz and `.traj`, fairchem's `.aselmdb` shards): a [`FrameSource`] says how many
//! frames there are and builds one frame as named [`Value`]s; [`FramesBackend`] serves it
//! through the backend trait, encoding each value with the msgpack-numpy codec so a client
//! cannot tell these rows from rows an LMDB store holds, and refuses every write.
//!
//! Layer: under a read-only backend (`backend/extxyz/`, `backend/traj/`,
//! `backend/aselmdb/`), beside [`crate::backend::columnar`]. [`index`] keeps the persisted
//! frame offsets of text files, [`json`] reads the JSON those formats embed.

pub mod atoms;
pub mod elements;
pub mod index;
pub mod json;

use std::sync::Arc;

use asebytes_protocol::codec::{self, Value};
use asebytes_protocol::{Bytes, Capabilities, Key, Row};

use super::{Backend, BackendInfo, Error, ErrorKind, Reader, Result, Snapshot, Writer};

/// One frame as the key convention names it (`cell`, `arrays.positions`, `calc.energy`).
pub type Frame = Vec<(String, Value)>;

/// A consistent view of a source's frames.
pub trait FrameView: Send {
    /// Number of frames in this view.
    fn len(&self) -> u64;
    /// Whether the view has no frames.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Frame `index` (`< len()`).
    fn frame(&self, index: u64) -> Result<Frame>;
    /// Frame `index` with at least the fields `keys` names (all when `None`): a source
    /// that stores fields apart (Parquet columns) reads only those; the default reads the
    /// whole frame.
    fn frame_keys(&self, index: u64, keys: Option<&[Key]>) -> Result<Frame> {
        let _ = keys;
        self.frame(index)
    }
}

/// A read-only collection of frames that may change underneath (a file that grows).
pub trait FrameSource: Send + Sync + 'static {
    /// A view of the frames as they are now (a source following a growing file catches up
    /// here).
    fn view(&self) -> Result<Box<dyn FrameView + '_>>;
}

/// What every read-only frames store can do: read, concurrently, nothing else.
pub fn capabilities() -> Capabilities {
    Capabilities {
        concurrent_readers: true,
        snapshots: false,
        atomic_batches: false,
        packed_columns: false,
        typed_values: false,
        // A file may grow, or be replaced, behind the daemon (an MD run appending to it).
        exclusive: false,
        ..Capabilities::all()
    }
    .read_only()
}

/// Serves a [`FrameSource`] as a read-only store.
#[derive(Debug)]
pub struct FramesBackend<S> {
    info: BackendInfo,
    source: Arc<S>,
}

impl<S: FrameSource> FramesBackend<S> {
    /// A backend named by `scheme` at `canonical` over `source`.
    pub fn new(scheme: &'static str, canonical: String, source: S) -> Self {
        Self {
            info: BackendInfo {
                scheme,
                canonical,
                caps: capabilities(),
            },
            source: Arc::new(source),
        }
    }
}

fn read_only() -> Error {
    Error::new(ErrorKind::ReadOnly, "Backend is read-only")
}

impl<S: FrameSource> Backend for FramesBackend<S> {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(FramesReader(self.source.clone()))
    }

    fn write(&mut self, _f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        Err(read_only())
    }

    fn remove(&mut self) -> Result<()> {
        Err(read_only())
    }
}

struct FramesReader<S>(Arc<S>);

impl<S: FrameSource> Reader for FramesReader<S> {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        Ok(Box::new(FramesSnapshot(self.0.view()?)))
    }
}

struct FramesSnapshot<'a>(Box<dyn FrameView + 'a>);

/// Encodes the fields of `frame` that `keys` asks for (all when `None`), in the order
/// asked.
pub fn encode_frame(frame: Frame, keys: Option<&[Key]>) -> Result<Row> {
    let encode = |k: &str, v: &Value| -> Result<(Key, Bytes)> {
        let bytes = codec::encode(v)
            .map_err(|e| Error::new(ErrorKind::Corrupt, format!("cannot encode field {k}: {e}")))?;
        Ok((Key::from(k.as_bytes().to_vec()), Bytes::from(bytes)))
    };
    match keys {
        None => frame.iter().map(|(k, v)| encode(k, v)).collect(),
        Some(keys) => keys
            .iter()
            .filter_map(|want| frame.iter().find(|(k, _)| k.as_bytes() == &want[..]))
            .map(|(k, v)| encode(k, v))
            .collect(),
    }
}

impl Snapshot for FramesSnapshot<'_> {
    fn len(&self) -> Result<u64> {
        Ok(self.0.len())
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        let frame = self.0.frame_keys(index, keys)?;
        encode_frame(frame, keys).map(Some)
    }

    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        Ok(self
            .0
            .frame(index)?
            .into_iter()
            .map(|(k, _)| Key::from(k.into_bytes()))
            .collect())
    }

    /// The keys of the first and the last frame: a file has no schema of its own, and
    /// reading every frame to union their keys would cost a full parse.
    fn schema(&self) -> Result<Vec<Key>> {
        let n = self.0.len();
        let mut keys: Vec<Key> = Vec::new();
        for i in [0, n.saturating_sub(1)] {
            if i < n {
                keys.extend(
                    self.0
                        .frame(i)?
                        .into_iter()
                        .map(|(k, _)| Key::from(k.into_bytes())),
                );
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}
