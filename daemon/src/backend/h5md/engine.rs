//! The columnar [`Engine`] on one H5MD particles group: the core's flat arrays live where
//! `asebytes-behaviour.md` §4.3 puts them — each column an element (`value`, `step`,
//! `time`) under `/particles/<g>` or `/observables/<g>` ([`super::names`]),
//! `info.connectivity` under `/connectivity/<g>` ([`super::bonds`]), the layout's own
//! arrays (`_n_atoms`, masks) and the attribute map (the commit point) in
//! `/asebytes/<g>`, as the reference keeps them.
//!
//! Transactions as in the `hdf5` engine: writes go straight into the file and an undo log
//! ([`crate::backend::hdf5::undo`]) puts back what a failed batch changed; elements a
//! batch deletes are moved aside and unlinked at commit. [`Engine::commit`] flushes the
//! data, then the attributes, then `n_frames` last. HDF5 is not thread-safe: one mutex,
//! and reads go through the store's actor ([`Engine::committed`] is `None`).
//!
//! Layer: implements [`crate::backend::columnar::engine`]; uses [`super::tree`] and the
//! `hdf5` backend's dataset and attribute helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hdf5::Group;
use serde_json::{Map, Value as Json};

use super::config::H5mdConfig;
use super::foreign::{self, Foreign};
use super::names::{self, CONNECTIVITY};
use super::{bonds, tree, values};
use crate::backend::columnar::engine::{ArrayMeta, ArraySpec, DType, Engine, EngineRead, Slab};
use crate::backend::hdf5::dataset::{Column, Compression, CreateSpec};
use crate::backend::hdf5::file::{self, H5File, h5err};
use crate::backend::hdf5::undo::{Touched, Undo, clip};
use crate::backend::hdf5::{attrs, room};
use crate::backend::{Error, ErrorKind, Result};

/// Attribute of an element whose integer/bool values are kept as float64: the numpy type
/// they come back as.
pub const DTYPE_ATTR: &str = "ASEBYTES_DTYPE";
/// The attribute written last: the commit point.
const COMMIT_ATTR: &str = "n_frames";
/// The layout's frame-index array.
const N_ATOMS: &str = "_n_atoms";
/// Chunk length of the stand-in `_n_atoms` once stored.
const INDEX_CHUNK: usize = 4096;

/// Where one array lives.
#[derive(Clone, Debug)]
enum Where {
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
struct Slot {
    at: Where,
    col: Column,
}

impl Slot {
    /// The link a delete moves: the element group, the meta dataset, the connectivity group.
    fn link(&self, g: &str) -> String {
        match &self.at {
            Where::Element { path, .. } | Where::Meta { path } => path.clone(),
            Where::Bonds => format!("connectivity/{g}"),
        }
    }

    fn value_path(&self, g: &str) -> String {
        match &self.at {
            Where::Element { path, .. } => format!("{path}/value"),
            Where::Meta { path } => path.clone(),
            Where::Bonds => format!("{}/value", bonds::paths(g).0),
        }
    }
}

#[derive(Debug, Default)]
struct Tx {
    /// Links created by the transaction (unlinked on rollback, newest first).
    created: Vec<String>,
    /// Dataset paths created by the transaction (their writes need no undo).
    fresh: BTreeSet<String>,
    /// Committed datasets changed: committed shape and old contents, by dataset path.
    touched: BTreeMap<String, Touched>,
    /// `(trash link, original link)` of deleted committed arrays.
    trashed: Vec<(String, String)>,
    trash_seq: u64,
    written: u64,
}

#[derive(Debug)]
struct Inner {
    file: Option<H5File>,
    slots: BTreeMap<String, Slot>,
    orders: Option<Column>,
    /// Our attribute map as of the last commit; `None` when the file has none.
    attrs: Option<Map<String, Json>>,
    /// Keys the last commit lists (arrays of a crashed batch are not among them).
    committed: BTreeSet<String>,
    /// The derived state of a file without our metadata.
    foreign: Option<Foreign>,
    tx: Tx,
}

/// One H5MD particles group as a columnar engine.
#[derive(Debug)]
pub struct H5mdEngine {
    path: PathBuf,
    group: String,
    readonly: bool,
    config: H5mdConfig,
    inner: Mutex<Inner>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn usz(v: &[u64]) -> Vec<usize> {
    v.iter().map(|&x| x as usize).collect()
}

fn u64s(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

fn no_array(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("array '{name}' does not exist"),
    )
}

/// The reference's names in `columns`/`per_atom_columns` ↔ ours.
fn to_disk_name(k: &str) -> Option<String> {
    match k {
        "constraints" => Some("info.constraints_json".into()),
        CONNECTIVITY => None,
        other => Some(other.to_string()),
    }
}

fn from_disk_name(k: &str) -> String {
    match k {
        "info.constraints_json" => "constraints".into(),
        other => other.to_string(),
    }
}

fn map_list(v: Option<&Json>, f: impl Fn(&str) -> Option<String>) -> Option<Json> {
    v.and_then(Json::as_array).map(|a| {
        Json::from(
            a.iter()
                .filter_map(Json::as_str)
                .filter_map(&f)
                .collect::<Vec<_>>(),
        )
    })
}

impl H5mdEngine {
    /// Opens particles group `group` of the file at `path` (created on first write when
    /// writable; a read-only engine on a missing file is empty).
    pub fn open(path: &Path, group: &str, readonly: bool, config: H5mdConfig) -> Result<Self> {
        tree::check_group(group)?;
        let file = match (readonly, path.exists()) {
            (true, false) => None,
            _ => Some(H5File::open(path, readonly)?),
        };
        let mut inner = Inner {
            file,
            slots: BTreeMap::new(),
            orders: None,
            attrs: None,
            committed: BTreeSet::new(),
            foreign: None,
            tx: Tx::default(),
        };
        inner.discover(group)?;
        Ok(Self {
            path: path.to_path_buf(),
            group: group.to_string(),
            readonly,
            config,
            inner: Mutex::new(inner),
        })
    }

    fn writable(&self) -> Result<()> {
        if self.readonly {
            return Err(Error::new(ErrorKind::ReadOnly, "Backend is read-only"));
        }
        Ok(())
    }

    fn compression(&self) -> Compression {
        self.config.hdf5.compression
    }
}

impl Inner {
    fn root(&self) -> Result<Group> {
        self.file
            .as_ref()
            .map(H5File::root)
            .ok_or_else(|| Error::new(ErrorKind::ReadOnly, "Backend is read-only"))
    }

    /// Reads what the file holds for group `g`: elements, our arrays, connectivity, the
    /// attribute map, or the derived state of a foreign file.
    fn discover(&mut self, g: &str) -> Result<()> {
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
    fn derive(&self) -> Result<Foreign> {
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
    fn materialize(&mut self, g: &str) -> Result<()> {
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
    fn atoms_of(&self, column: &str, start: u64, count: u64) -> Result<Vec<u64>> {
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

    fn slot(&self, name: &str) -> Result<Slot> {
        self.slots.get(name).cloned().ok_or_else(|| no_array(name))
    }

    /// Saves committed elements of dataset `path` inside `start..start+count` before they change.
    fn save(&mut self, path: &str, col: &Column, start: &[usize], count: &[usize]) -> Result<()> {
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
    fn resize_col(&mut self, path: &str, col: &Column, shape: &[usize]) -> Result<()> {
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

    fn rollback(&mut self, g: &str) -> Result<()> {
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

impl EngineRead for H5mdEngine {
    fn read_attrs(&self) -> Result<Option<Map<String, Json>>> {
        let inner = lock(&self.inner);
        if let Some(a) = &inner.attrs {
            let mut a = a.clone();
            for k in ["columns", "per_atom_columns"] {
                if let Some(v) = map_list(a.get(k), |s| Some(from_disk_name(s))) {
                    a.insert(k.into(), v);
                }
            }
            if inner.slots.contains_key(CONNECTIVITY)
                && let Some(Json::Array(cols)) = a.get_mut("columns")
                && !cols.iter().any(|c| c == CONNECTIVITY)
            {
                cols.push(Json::from(CONNECTIVITY));
            }
            return Ok(Some(a));
        }
        let Some(fr) = &inner.foreign else {
            return Ok(None);
        };
        let mut m = Map::new();
        m.insert("n_frames".into(), Json::from(fr.n_frames));
        let cols: Vec<String> = inner
            .slots
            .keys()
            .filter(|k| !k.starts_with('_'))
            .cloned()
            .collect();
        m.insert("columns".into(), Json::from(cols));
        m.insert("per_atom_columns".into(), Json::from(fr.per_atom.clone()));
        Ok(Some(m))
    }

    fn list_arrays(&self) -> Result<Vec<String>> {
        let inner = lock(&self.inner);
        let mut out: Vec<String> = inner.slots.keys().cloned().collect();
        if inner.foreign.is_some() && !inner.slots.contains_key(N_ATOMS) {
            out.push(N_ATOMS.into());
        }
        Ok(out)
    }

    fn array_meta(&self, name: &str) -> Result<Option<ArrayMeta>> {
        let inner = lock(&self.inner);
        let Some(s) = inner.slots.get(name) else {
            return Ok(inner
                .foreign
                .as_ref()
                .filter(|_| name == N_ATOMS)
                .map(|fr| ArrayMeta {
                    dtype: DType::I32,
                    shape: vec![fr.n_atoms.len() as u64],
                    chunks: vec![INDEX_CHUNK as u64],
                }));
        };
        let mut shape = u64s(&s.col.shape());
        let mut chunks = s
            .col
            .chunk()
            .map(|c| u64s(&c))
            .unwrap_or_else(|| shape.iter().map(|&n| n.max(1)).collect());
        let dtype = match &s.at {
            Where::Element { logical, .. } => *logical,
            Where::Meta { .. } => s.col.elem(),
            Where::Bonds => {
                shape.truncate(1);
                chunks.truncate(1);
                DType::Str
            }
        };
        if let Some(fr) = &inner.foreign
            && fr.per_atom.iter().any(|k| k == name)
            && let Some(w) = shape.get_mut(1)
        {
            *w = (*w).max(fr.max_atoms);
        }
        Ok(Some(ArrayMeta {
            dtype,
            shape,
            chunks,
        }))
    }

    fn read_slab(&self, name: &str, slab: Slab<'_>) -> Result<Vec<u8>> {
        let inner = lock(&self.inner);
        let Some(s) = inner.slots.get(name) else {
            if let (Some(fr), N_ATOMS) = (&inner.foreign, name) {
                let a = slab.start.first().copied().unwrap_or(0) as usize;
                let n = slab.count.first().copied().unwrap_or(0) as usize;
                let part = fr.n_atoms.get(a..a + n).ok_or_else(|| no_array(name))?;
                return Ok(part.iter().flat_map(|x| x.to_le_bytes()).collect());
            }
            return Err(no_array(name));
        };
        let disk = s.col.elem();
        let shape = u64s(&s.col.shape());
        let bytes = match values::inside(slab.start, slab.count, &shape) {
            Some(c) if c == slab.count => s.col.read_raw(&usz(slab.start), &usz(slab.count))?,
            Some(c) => {
                let part = s.col.read_raw(&usz(slab.start), &usz(&c))?;
                values::pad_box(&part, &c, slab.count, &disk.fill_bytes())
            }
            None => values::pad_box(&[], &[0], slab.count, &disk.fill_bytes()),
        };
        Ok(match &s.at {
            Where::Element {
                logical,
                widened: true,
                ..
            } => values::from_f64(*logical, &bytes),
            _ => bytes,
        })
    }

    fn read_strings(&self, name: &str, start: u64, count: u64) -> Result<Vec<String>> {
        let inner = lock(&self.inner);
        let s = inner.slot(name)?;
        if let Where::Bonds = s.at {
            let shape = s.col.shape();
            let width = shape.get(1).copied().unwrap_or(0);
            let rows = (count as usize).min(shape[0].saturating_sub(start as usize));
            if width == 0 || rows == 0 {
                return Ok(vec![String::new(); count as usize]);
            }
            let b = s.col.read_raw(&[start as usize, 0, 0], &[rows, width, 2])?;
            let o = match &inner.orders {
                Some(o) if o.shape().first().copied().unwrap_or(0) >= start as usize + rows => {
                    let ow = o.shape().get(1).copied().unwrap_or(0).min(width);
                    let raw = o.read_raw(&[start as usize, 0], &[rows, ow])?;
                    Some(values::pad_box(
                        &raw,
                        &[rows as u64, ow as u64],
                        &[rows as u64, width as u64],
                        &f64::NAN.to_le_bytes(),
                    ))
                }
                _ => None,
            };
            let mut out: Vec<String> = bonds::decode(&b, o.as_deref(), rows, width)
                .iter()
                .map(bonds::render)
                .collect();
            out.resize(count as usize, String::new());
            return Ok(out);
        }
        let out = s.col.read_strings(&[start as usize], &[count as usize])?;
        Ok(if name == "constraints" {
            out.iter().map(|t| values::unwrap_json(t)).collect()
        } else {
            out
        })
    }
}

impl Engine for H5mdEngine {
    fn name(&self) -> &'static str {
        "h5md"
    }

    fn committed(&self) -> Option<Arc<dyn EngineRead>> {
        None
    }

    fn create_array(&self, name: &str, spec: &ArraySpec) -> Result<()> {
        self.writable()?;
        let g = self.group.as_str();
        let mut inner = lock(&self.inner);
        let root = inner.root()?;
        let author = tree::Author {
            name: self.config.author_name.as_deref(),
            email: self.config.author_email.as_deref(),
        };
        tree::ensure_skeleton(&root, &author)?;
        if let Some(old) = inner.slots.get(name).cloned() {
            if inner.committed.contains(name) || inner.tx.created.contains(&old.link(g)) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("array '{name}' already exists"),
                ));
            }
            // Left by a batch that never committed.
            root.unlink(&old.link(g))
                .map_err(h5err(&format!("delete uncommitted '{name}'")))?;
            inner.slots.remove(name);
        }
        let create = |elem: DType, compression: Compression| CreateSpec {
            elem,
            shape: usz(&spec.shape),
            chunk: usz(&spec.chunks),
            compression,
        };
        let chunk0 = spec.chunks.first().copied().unwrap_or(1);
        if name.starts_with('_') {
            let path = format!("asebytes/{g}/{name}");
            tree::require_group(&root, &format!("asebytes/{g}"))?;
            let col = Column::create(&root, &path, &create(spec.dtype, Compression::None))?;
            inner.tx.created.push(path.clone());
            inner.tx.fresh.insert(path.clone());
            inner.slots.insert(
                name.into(),
                Slot {
                    at: Where::Meta { path },
                    col,
                },
            );
            return Ok(());
        }
        if name == CONNECTIVITY && spec.dtype == DType::Str {
            let n = spec.shape.first().copied().unwrap_or(0);
            let col = bonds::create(&root, g, false, n, 0, chunk0, self.compression())?;
            let slot = Slot {
                at: Where::Bonds,
                col,
            };
            let link = slot.link(g);
            inner.tx.fresh.insert(slot.value_path(g));
            inner.tx.created.push(link);
            inner.slots.insert(name.into(), slot);
            return Ok(());
        }
        let Some(mut place) = names::place(name, g) else {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "key '{name}' has no place in an H5MD file (expected cell, pbc, constraints, arrays.*, calc.* or info.*)"
                ),
            ));
        };
        let taken =
            |p: &str| inner.slots.values().any(|s| s.link(g) == p) || tree::exists(&root, p);
        let tag = !names::plain(&place, g) || taken(&place.path);
        if tag {
            place.path = names::fallback_path(name, &place, g);
            if taken(&place.path) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("'{}' already exists in the H5MD file", place.path),
                ));
            }
        }
        let per_atom_like = place.path.starts_with("particles/") && spec.shape.len() >= 2;
        let widened = values::widened(spec.dtype)
            && (name == "arrays.numbers" || (per_atom_like && name != "pbc"));
        let disk = if widened { DType::F64 } else { spec.dtype };
        let col =
            tree::create_element(&root, &place, name, tag, &create(disk, self.compression()))?;
        if widened && name != "arrays.numbers" {
            let grp = root.group(&place.path).map_err(h5err("open an element"))?;
            file::write_str_attr(&grp, DTYPE_ATTR, spec.dtype.numpy_str())?;
        }
        inner.tx.created.push(place.path.clone());
        inner.tx.fresh.insert(format!("{}/value", place.path));
        let at = Where::Element {
            path: place.path,
            logical: spec.dtype,
            widened,
        };
        inner.slots.insert(name.into(), Slot { at, col });
        Ok(())
    }

    fn resize(&self, name: &str, shape: &[u64]) -> Result<()> {
        self.writable()?;
        let g = self.group.as_str();
        let mut inner = lock(&self.inner);
        if name == N_ATOMS {
            inner.materialize(g)?;
        }
        let s = inner.slot(name)?;
        let path = s.value_path(g);
        match s.at {
            Where::Bonds => {
                let mut b = s.col.shape();
                b[0] = shape.first().copied().unwrap_or(0) as usize;
                inner.resize_col(&path, &s.col, &b)?;
                if let Some(o) = inner.orders.clone() {
                    let mut os = o.shape();
                    os[0] = b[0];
                    inner.resize_col(&bonds::paths(g).1, &o, &os)?;
                }
                Ok(())
            }
            _ => inner.resize_col(&path, &s.col, &usz(shape)),
        }
    }

    fn write_slab(&self, name: &str, slab: Slab<'_>, data: &[u8]) -> Result<()> {
        self.writable()?;
        let g = self.group.as_str();
        let mut inner = lock(&self.inner);
        inner.tx.written += data.len() as u64;
        room::ensure_room(&self.path, inner.tx.written)?;
        if name == N_ATOMS {
            inner.materialize(g)?;
        }
        let s = inner.slot(name)?;
        let path = s.value_path(g);
        let (start, count) = (usz(slab.start), usz(slab.count));
        // A foreign array narrower or shorter than the store grows first.
        let shape = s.col.shape();
        let need: Vec<usize> = shape
            .iter()
            .zip(start.iter().zip(&count))
            .map(|(&n, (&a, &c))| n.max(a + c))
            .collect();
        if need != shape {
            inner.resize_col(&path, &s.col, &need)?;
        }
        inner.save(&path, &s.col, &start, &count)?;
        let converted;
        let bytes = match &s.at {
            Where::Element {
                logical,
                widened: true,
                path: el,
            } => {
                let mut f = values::to_f64(*logical, data)?;
                if el.starts_with("particles/") && count.len() >= 2 {
                    let atoms = inner.atoms_of(name, slab.start[0], slab.count[0])?;
                    values::nan_padding(&mut f, &atoms, slab.start[1], &count);
                }
                converted = f;
                &converted[..]
            }
            _ => data,
        };
        s.col.write_raw(&start, &count, bytes)?;
        if name == "pbc" && start.first() == Some(&0) && data.len() >= 3 {
            let root = inner.root()?;
            tree::write_boundary(
                &root,
                &format!("particles/{g}/box"),
                [data[0] != 0, data[1] != 0, data[2] != 0],
            )?;
        }
        Ok(())
    }

    fn write_strings(&self, name: &str, start: u64, values_in: &[String]) -> Result<()> {
        self.writable()?;
        let g = self.group.as_str();
        let mut inner = lock(&self.inner);
        inner.tx.written += values_in.iter().map(|v| v.len() as u64 + 16).sum::<u64>();
        room::ensure_room(&self.path, inner.tx.written)?;
        let s = inner.slot(name)?;
        let path = s.value_path(g);
        let a = start as usize;
        if let Where::Bonds = s.at {
            let frames = values_in
                .iter()
                .map(|t| bonds::parse(t))
                .collect::<Result<Vec<_>>>()?;
            let want = frames.iter().map(|f| f.pairs.len()).max().unwrap_or(0);
            let mut shape = s.col.shape();
            shape[0] = shape[0].max(a + frames.len());
            shape[1] = shape[1].max(want);
            inner.resize_col(&path, &s.col, &shape)?;
            let width = shape[1];
            if inner.orders.is_none() && frames.iter().any(bonds::Frame::has_orders) {
                let root = inner.root()?;
                let chunk0 = s.col.chunk().and_then(|c| c.first().copied()).unwrap_or(64) as u64;
                let o = bonds::create(
                    &root,
                    g,
                    true,
                    shape[0] as u64,
                    width as u64,
                    chunk0,
                    self.compression(),
                )?;
                let op = bonds::paths(g).1;
                inner.tx.created.push(op.clone());
                inner.tx.fresh.insert(format!("{op}/value"));
                inner.orders = Some(o);
            }
            let (b, o) = bonds::encode(&frames, width);
            let n = frames.len();
            inner.save(&path, &s.col, &[a, 0, 0], &[n, width, 2])?;
            s.col.write_raw(&[a, 0, 0], &[n, width, 2], &b)?;
            if let Some(oc) = inner.orders.clone() {
                let op = format!("{}/value", bonds::paths(g).1);
                let os = [shape[0].max(oc.shape()[0]), width.max(oc.shape()[1])];
                if os.as_slice() != oc.shape().as_slice() {
                    inner.resize_col(&op, &oc, &os)?;
                }
                let ob = values::pad_box(
                    &o,
                    &[n as u64, width as u64],
                    &[n as u64, os[1] as u64],
                    &f64::NAN.to_le_bytes(),
                );
                inner.save(&op, &oc, &[a, 0], &[n, os[1]])?;
                oc.write_raw(&[a, 0], &[n, os[1]], &ob)?;
            }
            return Ok(());
        }
        let stored: Vec<String> = if name == "constraints" {
            values_in.iter().map(|t| values::wrap_json(t)).collect()
        } else {
            values_in.to_vec()
        };
        inner.save(&path, &s.col, &[a], &[stored.len()])?;
        s.col.write_strings(&[a], &[stored.len()], &stored)
    }

    fn delete_array(&self, name: &str) -> Result<()> {
        self.writable()?;
        let g = self.group.as_str();
        let mut inner = lock(&self.inner);
        let Some(s) = inner.slots.remove(name) else {
            return Ok(());
        };
        if let Where::Bonds = s.at {
            inner.orders = None;
        }
        let link = s.link(g);
        let root = inner.root()?;
        if let Some(pos) = inner.tx.created.iter().position(|l| *l == link) {
            inner.tx.created.remove(pos);
            return root
                .unlink(&link)
                .map_err(h5err(&format!("delete '{link}'")));
        }
        tree::require_group(&root, &format!("asebytes/{g}"))?;
        inner.tx.trash_seq += 1;
        let trash = format!("asebytes/{g}/_trash.{}", inner.tx.trash_seq);
        root.relink(&link, &trash)
            .map_err(h5err(&format!("delete '{link}'")))?;
        inner.tx.trashed.push((trash, link));
        Ok(())
    }

    fn commit(&self, new_attrs: &Map<String, Json>) -> Result<()> {
        self.writable()?;
        let g = self.group.as_str();
        let mut inner = lock(&self.inner);
        inner.materialize(g)?;
        let f_flush = |inner: &Inner| inner.file.as_ref().map_or(Ok(()), H5File::flush);
        let root = inner.root()?;
        // 1. Data first.
        f_flush(&inner)?;
        // 2. Everything but the commit point, with the reference's column names.
        let meta = tree::require_group(&root, &format!("asebytes/{g}"))?;
        let mut disk = new_attrs.clone();
        for k in ["columns", "per_atom_columns"] {
            if let Some(v) = map_list(disk.get(k), to_disk_name) {
                disk.insert(k.into(), v);
            }
        }
        let old = inner.attrs.clone().unwrap_or_default();
        for (k, v) in &disk {
            if k != COMMIT_ATTR && old.get(k) != Some(v) {
                attrs::write_one(&meta, k, v)?;
            }
        }
        f_flush(&inner)?;
        // 3. The commit point.
        if let Some(v) = disk
            .get(COMMIT_ATTR)
            .filter(|v| old.get(COMMIT_ATTR) != Some(*v))
        {
            attrs::write_one(&meta, COMMIT_ATTR, v)?;
            f_flush(&inner)?;
        }
        // 4. Deletions are final now.
        let tx = std::mem::take(&mut inner.tx);
        for (trash, _) in &tx.trashed {
            root.unlink(trash)
                .map_err(h5err(&format!("delete '{trash}'")))?;
        }
        if !tx.trashed.is_empty() {
            f_flush(&inner)?;
        }
        inner.attrs = Some(disk);
        inner.foreign = None;
        inner.committed = new_attrs
            .get("columns")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        Ok(())
    }

    fn rollback(&self) -> Result<()> {
        lock(&self.inner).rollback(&self.group)
    }

    fn remove_group(&self) -> Result<()> {
        self.writable()?;
        let g = self.group.as_str();
        let mut inner = lock(&self.inner);
        inner.tx = Tx::default();
        let root = inner.root()?;
        for top in ["particles", "observables", "connectivity", "asebytes"] {
            let p = format!("{top}/{g}");
            if tree::exists(&root, &p) {
                root.unlink(&p).map_err(h5err(&format!("delete '{p}'")))?;
            }
        }
        if let Some(f) = &inner.file {
            f.flush()?;
        }
        inner.discover(g)
    }
}
