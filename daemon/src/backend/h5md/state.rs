//! What the H5MD engine keeps about one open particles group: where every array lives
//! ([`Slot`]), the undo log of the open transaction ([`Tx`]), and [`Inner`] — discovering
//! the arrays of a file (ours, the reference's or a foreign one), the stand-in `_n_atoms`,
//! saving what a write overwrites, and rollback.
//!
//! Layer: the state half of [`super::engine`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hdf5::Group;
use serde_json::{Map, Value as Json};

use super::foreign::{self, Foreign};
use super::names::{self, CONNECTIVITY};
use super::{bonds, tree};
use crate::backend::columnar::engine::DType;
use crate::backend::hdf5::attrs;
use crate::backend::hdf5::dataset::{Column, Compression, CreateSpec};
use crate::backend::hdf5::file::{self, H5File, h5err};
use crate::backend::hdf5::undo::{Touched, Undo, clip};
use crate::backend::{Error, ErrorKind, Result};

/// Attribute of an element whose integer/bool values are kept as float64: the numpy type
/// they come back as.
pub const DTYPE_ATTR: &str = "ASEBYTES_DTYPE";
/// The attribute written last: the commit point.
pub(super) const COMMIT_ATTR: &str = "n_frames";
/// The layout's frame-index array.
pub(super) const N_ATOMS: &str = "_n_atoms";
/// Chunk length of the stand-in `_n_atoms` once stored.
pub(super) const INDEX_CHUNK: usize = 4096;

/// Where one array lives.
#[derive(Clone, Debug)]
pub(super) enum Where {
    /// An element's `value`; `logical` is the core's type, `widened` = kept as float64.
    Element {
        path: String,
        logical: DType,
        widened: bool,
    },
    /// A dataset in `/asebytes/<g>`.
    Meta { path: String },
    /// `info.connectivity` (bonds `value`; bond orders in `Inner::orders`).
    Bonds,
}

#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub(super) at: Where,
    pub(super) col: Column,
}

impl Slot {
    /// The link a delete moves: the element group, the meta dataset, the connectivity group.
    pub(super) fn link(&self, g: &str) -> String {
        match &self.at {
            Where::Element { path, .. } | Where::Meta { path } => path.clone(),
            Where::Bonds => format!("connectivity/{g}"),
        }
    }

    pub(super) fn value_path(&self, g: &str) -> String {
        match &self.at {
            Where::Element { path, .. } => format!("{path}/value"),
            Where::Meta { path } => path.clone(),
            Where::Bonds => format!("{}/value", bonds::paths(g).0),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Tx {
    /// Links created by the transaction (unlinked on rollback, newest first).
    pub(super) created: Vec<String>,
    /// Dataset paths created by the transaction (their writes need no undo).
    pub(super) fresh: BTreeSet<String>,
    /// Committed datasets changed: committed shape and old contents, by dataset path.
    pub(super) touched: BTreeMap<String, Touched>,
    /// `(trash link, original link)` of deleted committed arrays.
    pub(super) trashed: Vec<(String, String)>,
    pub(super) trash_seq: u64,
    pub(super) written: u64,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) file: Option<H5File>,
    pub(super) slots: BTreeMap<String, Slot>,
    pub(super) orders: Option<Column>,
    /// Our attribute map as of the last commit; `None` when the file has none.
    pub(super) attrs: Option<Map<String, Json>>,
    /// Keys the last commit lists (arrays of a crashed batch are not among them).
    pub(super) committed: BTreeSet<String>,
    /// The derived state of a file without our metadata.
    pub(super) foreign: Option<Foreign>,
    pub(super) tx: Tx,
}

pub(super) fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn usz(v: &[u64]) -> Vec<usize> {
    v.iter().map(|&x| x as usize).collect()
}

pub(super) fn u64s(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

pub(super) fn no_array(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("array '{name}' does not exist"),
    )
}

/// The reference's names in `columns`/`per_atom_columns` ↔ ours.
pub(super) fn to_disk_name(k: &str) -> Option<String> {
    match k {
        "constraints" => Some("info.constraints_json".into()),
        CONNECTIVITY => None,
        other => Some(other.to_string()),
    }
}

pub(super) fn from_disk_name(k: &str) -> String {
    match k {
        "info.constraints_json" => "constraints".into(),
        other => other.to_string(),
    }
}

pub(super) fn map_list(v: Option<&Json>, f: impl Fn(&str) -> Option<String>) -> Option<Json> {
    v.and_then(Json::as_array).map(|a| {
        Json::from(
            a.iter()
                .filter_map(Json::as_str)
                .filter_map(&f)
                .collect::<Vec<_>>(),
        )
    })
}

impl Inner {
    /// Nothing discovered yet.
    pub(super) fn new(file: Option<H5File>) -> Self {
        Inner {
            file,
            slots: BTreeMap::new(),
            orders: None,
            attrs: None,
            committed: BTreeSet::new(),
            foreign: None,
            tx: Tx::default(),
        }
    }

    pub(super) fn root(&self) -> Result<Group> {
        self.file
            .as_ref()
            .map(H5File::root)
            .ok_or_else(|| Error::new(ErrorKind::ReadOnly, "Backend is read-only"))
    }

    /// Reads what the file holds for group `g`: elements, our arrays, connectivity, the
    /// attribute map, or the derived state of a foreign file.
    pub(super) fn discover(&mut self, g: &str) -> Result<()> {
        self.slots.clear();
        self.orders = None;
        self.attrs = None;
        self.committed.clear();
        self.foreign = None;
        let Some(f) = &self.file else {
            return Ok(());
        };
        let root = f.root();
        for e in tree::elements(&root, g)? {
            let key = e
                .key
                .clone()
                .or_else(|| names::key_of(&e.path, g, e.origin.as_deref()));
            let Some(key) = key else { continue };
            if self.slots.contains_key(&key) {
                continue;
            }
            let col = Column::open(&root, &format!("{}/value", e.path))?;
            let grp = root.group(&e.path).map_err(h5err("open an element"))?;
            let tagged =
                file::read_str_attr(&grp, DTYPE_ATTR)?.and_then(|s| DType::from_numpy_str(&s));
            let disk = col.elem();
            let logical = match (tagged, key.as_str(), disk) {
                (Some(t), _, DType::F64) => t,
                (None, "arrays.numbers", DType::F64 | DType::F32) => DType::I64,
                (None, "pbc", DType::F64) => DType::Bool,
                _ => disk,
            };
            let widened = logical != disk && disk == DType::F64;
            let at = Where::Element {
                path: e.path,
                logical,
                widened,
            };
            self.slots.insert(key, Slot { at, col });
        }
        let meta = format!("asebytes/{g}");
        if let Some(m) = tree::group_at(&root, &meta) {
            for name in file::dataset_names(&m)? {
                if name.starts_with('_') && !name.starts_with("_trash.") {
                    let path = format!("{meta}/{name}");
                    let col = Column::open(&root, &path)?;
                    self.slots.insert(
                        name,
                        Slot {
                            at: Where::Meta { path },
                            col,
                        },
                    );
                }
            }
            if file::read_int_attr(&m, COMMIT_ATTR)?.is_some() {
                self.attrs = Some(attrs::read_all(&m)?);
            }
        }
        let (bp, op) = bonds::paths(g);
        if tree::exists(&root, &format!("{bp}/value")) {
            let col = Column::open(&root, &format!("{bp}/value"))?;
            self.slots.insert(
                CONNECTIVITY.into(),
                Slot {
                    at: Where::Bonds,
                    col,
                },
            );
            if tree::exists(&root, &format!("{op}/value")) {
                self.orders = Some(Column::open(&root, &format!("{op}/value"))?);
            }
        }
        match &self.attrs {
            Some(a) => {
                for k in a
                    .get("columns")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(k) = k.as_str() {
                        self.committed.insert(from_disk_name(k));
                    }
                }
                if self.slots.contains_key(CONNECTIVITY) {
                    self.committed.insert(CONNECTIVITY.into());
                }
            }
            None if self.slots.keys().any(|k| !k.starts_with('_')) => {
                self.foreign = Some(self.derive()?);
                self.committed = self.slots.keys().cloned().collect();
            }
            None => {}
        }
        Ok(())
    }

    /// The state of a file without our metadata (see [`super::foreign`]).
    pub(super) fn derive(&self) -> Result<Foreign> {
        let rows = |k: &str| {
            self.slots
                .get(k)
                .and_then(|s| s.col.shape().first().copied())
        };
        let n_frames = rows("arrays.numbers")
            .or_else(|| rows("arrays.positions"))
            .or_else(|| {
                self.slots
                    .iter()
                    .filter(|(k, _)| !k.starts_with('_'))
                    .filter_map(|(_, s)| s.col.shape().first().copied())
                    .max()
            })
            .unwrap_or(0) as u64;
        let mut per_atom = Vec::new();
        let mut max_atoms = 0;
        for (k, s) in &self.slots {
            if let Where::Element { path, .. } = &s.at {
                let shape = s.col.shape();
                if path.starts_with("particles/") && shape.len() >= 2 && k != "cell" && k != "pbc" {
                    per_atom.push(k.clone());
                    max_atoms = max_atoms.max(shape[1] as u64);
                }
            }
        }
        let counter = self
            .slots
            .get("arrays.numbers")
            .or_else(|| self.slots.get("arrays.positions"));
        let n_atoms = match counter {
            Some(s) => foreign::atom_counts(&s.col, n_frames)?,
            None => vec![0; n_frames as usize],
        };
        Ok(Foreign {
            n_frames,
            per_atom,
            max_atoms,
            n_atoms,
        })
    }

    /// Stores the stand-in `_n_atoms` of a foreign file as a real array (first write).
    pub(super) fn materialize(&mut self, g: &str) -> Result<()> {
        let Some(fr) = self.foreign.clone() else {
            return Ok(());
        };
        if self.slots.contains_key(N_ATOMS) {
            return Ok(());
        }
        let root = self.root()?;
        tree::require_group(&root, &format!("asebytes/{g}"))?;
        let path = format!("asebytes/{g}/{N_ATOMS}");
        let spec = CreateSpec {
            elem: DType::I32,
            shape: vec![fr.n_atoms.len()],
            chunk: vec![INDEX_CHUNK],
            compression: Compression::None,
        };
        let col = Column::create(&root, &path, &spec)?;
        let bytes: Vec<u8> = fr.n_atoms.iter().flat_map(|x| x.to_le_bytes()).collect();
        if !fr.n_atoms.is_empty() {
            col.write_raw(&[0], &[fr.n_atoms.len()], &bytes)?;
        }
        self.tx.created.push(path.clone());
        self.tx.fresh.insert(path.clone());
        self.slots.insert(
            N_ATOMS.into(),
            Slot {
                at: Where::Meta { path },
                col,
            },
        );
        Ok(())
    }

    /// Atom count of frames `start..start+count` as stored so far in this transaction
    /// (the core writes `_n_atoms` and the masks before the data), 0 where `column` is
    /// missing: what a widened per-atom write keeps; the rest becomes NaN padding.
    pub(super) fn atoms_of(&self, column: &str, start: u64, count: u64) -> Result<Vec<u64>> {
        let mut out = match (self.slots.get(N_ATOMS), &self.foreign) {
            (Some(s), _) => {
                let have = (s.col.shape()[0] as u64).saturating_sub(start).min(count);
                let raw = if have > 0 {
                    s.col.read_raw(&[start as usize], &[have as usize])?
                } else {
                    Vec::new()
                };
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]).max(0) as u64)
                    .collect()
            }
            (None, Some(fr)) => (start..start + count)
                .map(|i| fr.n_atoms.get(i as usize).map_or(0, |&n| n.max(0) as u64))
                .collect(),
            (None, None) => Vec::new(),
        };
        out.resize(count as usize, u64::MAX);
        if let Some(m) = self.slots.get(&format!("_present.{column}")) {
            let have = (m.col.shape()[0] as u64).saturating_sub(start).min(count);
            if have > 0 {
                let codes = m.col.read_raw(&[start as usize], &[have as usize])?;
                for (n, c) in out.iter_mut().zip(codes) {
                    if c == 2 {
                        *n = 0;
                    }
                }
            }
        }
        Ok(out)
    }

    pub(super) fn slot(&self, name: &str) -> Result<Slot> {
        self.slots.get(name).cloned().ok_or_else(|| no_array(name))
    }

    /// Saves committed elements of dataset `path` inside `start..start+count` before they change.
    pub(super) fn save(
        &mut self,
        path: &str,
        col: &Column,
        start: &[usize],
        count: &[usize],
    ) -> Result<()> {
        if self.tx.fresh.contains(path) {
            return Ok(());
        }
        let shape = self
            .tx
            .touched
            .entry(path.to_string())
            .or_insert_with(|| Touched {
                shape: col.shape(),
                undo: Vec::new(),
            })
            .shape
            .clone();
        let Some(cnt) = clip(start, count, &shape) else {
            return Ok(());
        };
        let undo = if col.elem() == DType::Str {
            let s = start.first().copied().unwrap_or(0);
            let n = cnt.first().copied().unwrap_or(0);
            Undo::Strings {
                start: s,
                values: col.read_strings(&[s], &[n])?,
            }
        } else {
            Undo::Raw {
                start: start.to_vec(),
                bytes: col.read_raw(start, &cnt)?,
                count: cnt,
            }
        };
        if let Some(t) = self.tx.touched.get_mut(path) {
            t.undo.push(undo);
        }
        Ok(())
    }

    /// Resizes dataset `path`, saving what a shrink cuts off.
    pub(super) fn resize_col(&mut self, path: &str, col: &Column, shape: &[usize]) -> Result<()> {
        let old = col.shape();
        if old.len() != shape.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("'{path}' has rank {}, not {}", old.len(), shape.len()),
            ));
        }
        for d in 0..old.len() {
            if shape[d] < old[d] {
                let mut start = vec![0; old.len()];
                let mut count: Vec<usize> = old
                    .iter()
                    .zip(shape)
                    .enumerate()
                    .map(|(k, (&o, &n))| if k < d { n.min(o) } else { o })
                    .collect();
                start[d] = shape[d];
                count[d] = old[d] - shape[d];
                self.save(path, col, &start, &count)?;
            }
        }
        self.save(path, col, &vec![0; old.len()], &vec![0; old.len()])?;
        col.resize(shape)
    }

    pub(super) fn rollback(&mut self, g: &str) -> Result<()> {
        let tx = std::mem::take(&mut self.tx);
        let Some(f) = &self.file else {
            return Ok(());
        };
        let root = f.root();
        let mut first_err = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        for link in tx.created.iter().rev() {
            if tree::exists(&root, link) {
                note(
                    root.unlink(link)
                        .map_err(h5err(&format!("delete '{link}'"))),
                );
            }
        }
        for (trash, orig) in tx.trashed.iter().rev() {
            note(
                root.relink(trash, orig)
                    .map_err(h5err(&format!("restore '{orig}'"))),
            );
        }
        for (path, t) in &tx.touched {
            note(Column::open(&root, path).and_then(|c| t.restore(&c)));
        }
        note(f.flush());
        note(self.discover(g));
        first_err.map_or(Ok(()), Err)
    }
}
