//! What the columnar layout keeps where (`spec/asebytes-behaviour.md` §4.2): the group
//! attributes, the frame index (`_offsets`/`_lengths` for ragged, `_n_atoms` for padded),
//! chunk shapes, and the in-memory [`State`] of one commit.
//!
//! Part of the columnar core. A [`State`] is loaded once at open and then kept by the
//! writer; each commit publishes a new one to readers (cheap to clone: the frame index is
//! shared in blocks).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::engine::{ArrayMeta, DType, EngineRead, Slab};
use super::schema::{self, Column, Kind};
use crate::backend::{Error, Result};

/// Ragged (`*.zarr`, `*.h5`) or padded (`*.zarrp`, `*.h5p`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Per-atom columns flat `(total_atoms, ...)`, frames addressed by `_offsets`/`_lengths`.
    Ragged,
    /// Per-atom columns `(n_frames, max_atoms, ...)`, atom counts in `_n_atoms`.
    Padded,
}

/// Ragged: start row of each frame in the flat per-atom arrays (int64).
pub const OFFSETS: &str = "_offsets";
/// Ragged: atom count of each frame (int32).
pub const LENGTHS: &str = "_lengths";
/// Padded: atom count of each frame (int32).
pub const N_ATOMS: &str = "_n_atoms";
/// Our own attribute object (kinds of columns, layout version); others ignore it.
pub const OUR_ATTR: &str = "asebytes_rs";
/// Chunk length of the frame-index and mask arrays.
pub const INDEX_CHUNK: u64 = 4096;
/// Target size of one chunk of a data column.
pub const CHUNK_BYTES: u64 = 4 << 20;
/// Frames per chunk at least, when `chunk_frames` is not given (the reference's default).
pub const DEFAULT_CHUNK_FRAMES: u64 = 64;
/// Uncompressed bytes per chunk at least, when `chunk_frames` is not given.
pub const MIN_CHUNK_BYTES: u64 = 64 << 10;

/// Where one frame's atoms are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// Ragged: first row in the flat per-atom arrays (unused when padded).
    pub offset: u64,
    /// Atom count.
    pub len: u64,
}

const BLOCK: usize = 4096;

/// The frame index, in shared blocks so a new commit copies only the blocks it changes.
#[derive(Clone, Debug, Default)]
pub struct Frames {
    blocks: Vec<Arc<Vec<Frame>>>,
    len: u64,
}

impl Frames {
    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frame `i` (`i < len`).
    pub fn get(&self, i: u64) -> Frame {
        let i = i as usize;
        self.blocks
            .get(i / BLOCK)
            .and_then(|b| b.get(i % BLOCK))
            .copied()
            .unwrap_or_default()
    }

    /// Appends a frame.
    pub fn push(&mut self, f: Frame) {
        if (self.len as usize).is_multiple_of(BLOCK) {
            self.blocks.push(Arc::new(Vec::with_capacity(BLOCK)));
        }
        if let Some(b) = self.blocks.last_mut() {
            Arc::make_mut(b).push(f);
        }
        self.len += 1;
    }

    /// Replaces frame `i` (`i < len`).
    pub fn set(&mut self, i: u64, f: Frame) {
        let i = i as usize;
        if let Some(slot) = self
            .blocks
            .get_mut(i / BLOCK)
            .and_then(|b| Arc::make_mut(b).get_mut(i % BLOCK))
        {
            *slot = f;
        }
    }
}

/// Everything a commit says about one group, in memory.
#[derive(Clone, Debug)]
pub struct State {
    /// Ragged or padded.
    pub layout: Layout,
    /// Committed frame count (`n_frames`).
    pub n_frames: u64,
    /// Columns in insertion order.
    pub columns: Vec<Column>,
    /// Where each frame's atoms are.
    pub frames: Frames,
    /// Ragged: rows in use in the flat per-atom arrays (new frames go after).
    pub flat_len: u64,
    /// Padded: size of axis 1 of the per-atom arrays.
    pub max_atoms: u64,
    /// Metadata of every array of the group.
    pub arrays: HashMap<String, ArrayMeta>,
    /// Attributes we do not own, kept as they were.
    pub extra: Map<String, Json>,
    /// Frames per chunk of new columns (`chunk_frames`); `None`: sized by bytes.
    pub chunk_frames: Option<u64>,
    /// Every key ever written, kept through `drop` and `clear` (the `schema()` answer, as
    /// every other backend gives it).
    pub known: BTreeSet<String>,
}

impl State {
    /// An empty store.
    pub fn empty(layout: Layout, chunk_frames: Option<u64>) -> Self {
        Self {
            layout,
            n_frames: 0,
            columns: Vec::new(),
            frames: Frames::default(),
            flat_len: 0,
            max_atoms: 0,
            arrays: HashMap::new(),
            extra: Map::new(),
            chunk_frames: chunk_frames.map(|n| n.max(1)),
            known: BTreeSet::new(),
        }
    }

    /// The column named `key`.
    pub fn column(&self, key: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == key)
    }

    /// Reads the committed state of a group (empty if the group does not exist).
    pub fn load(
        engine: &dyn EngineRead,
        layout: Layout,
        chunk_frames: Option<u64>,
    ) -> Result<Self> {
        let mut st = Self::empty(layout, chunk_frames);
        let Some(mut attrs) = engine.read_attrs()? else {
            return Ok(st);
        };
        for name in engine.list_arrays()? {
            if let Some(meta) = engine.array_meta(&name)? {
                st.arrays.insert(name, meta);
            }
        }
        st.n_frames = attrs.get("n_frames").and_then(Json::as_u64).unwrap_or(0);
        // A frame count no array backs is a damaged file, not a reason to allocate it.
        let longest = st
            .arrays
            .values()
            .filter_map(|m| m.shape.first().copied())
            .max()
            .unwrap_or(0);
        if st.n_frames > longest {
            return Err(Error::corrupt(format!(
                "n_frames is {} but the longest array has {longest} rows",
                st.n_frames
            )));
        }
        let names = strings(attrs.get("columns"));
        let per_atom: BTreeSet<String> =
            strings(attrs.get("per_atom_columns")).into_iter().collect();
        st.known = strings(attrs.get(OUR_ATTR).and_then(|o| o.get("schema")))
            .into_iter()
            .collect();
        st.known.extend(names.iter().cloned());
        let kinds = attrs
            .get(OUR_ATTR)
            .and_then(|o| o.get("kinds"))
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        for name in names {
            let Some(meta) = st.arrays.get(&name) else {
                continue;
            };
            let per = per_atom.contains(&name);
            let skip = match (per, layout) {
                (true, Layout::Padded) => 2,
                _ => 1,
            };
            let shape = meta.shape.get(skip..).unwrap_or_default().to_vec();
            let kind = kinds
                .get(&name)
                .and_then(Json::as_str)
                .and_then(Kind::parse)
                .unwrap_or_else(|| Kind::infer(meta.dtype, &shape, per));
            st.columns.push(Column {
                mask: st.arrays.contains_key(&schema::mask_name(&name)),
                name,
                dtype: meta.dtype,
                shape,
                per_atom: per,
                kind,
            });
        }
        let n = st.n_frames;
        match layout {
            Layout::Ragged => {
                let offsets = read_index(engine, &st, OFFSETS, n, DType::I64)?;
                let lengths = read_index(engine, &st, LENGTHS, n, DType::I32)?;
                for i in 0..n as usize {
                    let f = Frame {
                        offset: offsets.get(i).copied().unwrap_or(0).max(0) as u64,
                        len: lengths.get(i).copied().unwrap_or(0).max(0) as u64,
                    };
                    st.flat_len = st.flat_len.max(f.offset + f.len);
                    st.frames.push(f);
                }
            }
            Layout::Padded => {
                let counts = read_index(engine, &st, N_ATOMS, n, DType::I32)?;
                for i in 0..n as usize {
                    let len = counts.get(i).copied().unwrap_or(0).max(0) as u64;
                    st.max_atoms = st.max_atoms.max(len);
                    st.frames.push(Frame { offset: 0, len });
                }
                for c in st.columns.iter().filter(|c| c.per_atom) {
                    if let Some(m) = st.arrays.get(&c.name) {
                        st.max_atoms = st.max_atoms.max(m.shape.get(1).copied().unwrap_or(0));
                    }
                }
            }
        }
        for key in [
            "n_frames",
            "columns",
            "per_atom_columns",
            "asebytes_version",
            OUR_ATTR,
        ] {
            attrs.remove(key);
        }
        st.extra = attrs;
        Ok(st)
    }

    /// The group attributes of this state (the commit point's content).
    pub fn attrs(&self) -> Map<String, Json> {
        let mut m = self.extra.clone();
        m.insert("n_frames".into(), Json::from(self.n_frames));
        m.insert(
            "columns".into(),
            Json::from(
                self.columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            ),
        );
        let mut per: Vec<String> = self
            .columns
            .iter()
            .filter(|c| c.per_atom)
            .map(|c| c.name.clone())
            .collect();
        per.sort();
        m.insert("per_atom_columns".into(), Json::from(per));
        m.insert(
            "asebytes_version".into(),
            Json::from(concat!("asebytes-rs ", env!("CARGO_PKG_VERSION"))),
        );
        let kinds: Map<String, Json> = self
            .columns
            .iter()
            .map(|c| (c.name.clone(), Json::from(c.kind.as_str())))
            .collect();
        let mut ours = Map::new();
        ours.insert("format".into(), Json::from(1));
        ours.insert("kinds".into(), Json::Object(kinds));
        ours.insert(
            "schema".into(),
            Json::from(self.known.iter().cloned().collect::<Vec<_>>()),
        );
        m.insert(OUR_ATTR.into(), Json::Object(ours));
        m
    }

    /// Rows one chunk of a column holds along axis 0, given the bytes of one row and the
    /// rows `chunk_frames` frames take. With `chunk_frames` given, those rows; by default
    /// [`DEFAULT_CHUNK_FRAMES`] frames, and for `numeric` (compressed) columns at least
    /// [`MIN_CHUNK_BYTES`], so small columns (energies: 8 bytes a frame) are not split into
    /// thousands of tiny chunks (files, for Zarr). Never more than [`CHUNK_BYTES`].
    pub fn chunk_rows(&self, row_bytes: u64, rows_per_frame: u64, numeric: bool) -> u64 {
        let row_bytes = row_bytes.max(1);
        let most = (CHUNK_BYTES / row_bytes).max(1);
        match self.chunk_frames {
            Some(n) => (n * rows_per_frame.max(1)).clamp(1, most),
            None if numeric => (DEFAULT_CHUNK_FRAMES * rows_per_frame.max(1))
                .max(MIN_CHUNK_BYTES / row_bytes)
                .clamp(1, most),
            None => (DEFAULT_CHUNK_FRAMES * rows_per_frame.max(1)).clamp(1, most),
        }
    }

    /// The full array shape of a column for the current frame count / flat length.
    pub fn array_shape(&self, c: &Column) -> Vec<u64> {
        let mut s = match (c.per_atom, self.layout) {
            (true, Layout::Ragged) => vec![self.flat_len],
            (true, Layout::Padded) => vec![self.n_frames, self.max_atoms],
            (false, _) => vec![self.n_frames],
        };
        s.extend_from_slice(&c.shape);
        s
    }
}

fn strings(v: Option<&Json>) -> Vec<String> {
    v.and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the first `n` entries of an int32/int64 frame-index array as `i64` (missing or
/// shorter arrays give what they have).
fn read_index(
    engine: &dyn EngineRead,
    st: &State,
    name: &str,
    n: u64,
    want: DType,
) -> Result<Vec<i64>> {
    let Some(meta) = st.arrays.get(name) else {
        return Ok(Vec::new());
    };
    let count = n.min(meta.shape.first().copied().unwrap_or(0));
    if count == 0 {
        return Ok(Vec::new());
    }
    let bytes = engine.read_slab(
        name,
        Slab {
            start: &[0],
            count: &[count],
        },
    )?;
    let d = if meta.dtype == want { want } else { meta.dtype };
    Ok(match d {
        DType::I64 | DType::U64 => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        DType::I32 | DType::U32 => bytes
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect(),
        other => {
            return Err(Error::corrupt(format!(
                "{name} has dtype {}, expected an integer array",
                other.numpy_str()
            )));
        }
    })
}
