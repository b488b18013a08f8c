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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value as Json};

use super::config::H5mdConfig;
use super::names::{self, CONNECTIVITY};
pub use super::state::DTYPE_ATTR;
use super::state::{
    COMMIT_ATTR, INDEX_CHUNK, Inner, N_ATOMS, Slot, Tx, Where, from_disk_name, lock, map_list,
    no_array, to_disk_name, u64s, usz,
};
use super::{bonds, tree, values};
use crate::backend::columnar::engine::{ArrayMeta, ArraySpec, DType, Engine, EngineRead, Slab};
use crate::backend::hdf5::dataset::{Column, Compression, CreateSpec};
use crate::backend::hdf5::file::{self, H5File, h5err};
use crate::backend::hdf5::{attrs, room};
use crate::backend::{Error, ErrorKind, Result};

/// One H5MD particles group as a columnar engine.
#[derive(Debug)]
pub struct H5mdEngine {
    path: PathBuf,
    group: String,
    readonly: bool,
    config: H5mdConfig,
    inner: Mutex<Inner>,
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
        let mut inner = Inner::new(file);
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
        let (mut place, other) = match names::place(name, g) {
            Some(p) => (p, false),
            None => (names::place_other(name, g), true),
        };
        let taken =
            |p: &str| inner.slots.values().any(|s| s.link(g) == p) || tree::exists(&root, p);
        let tag = other || !names::plain(&place, g) || taken(&place.path);
        if tag && !other {
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
                if el.starts_with("particles/") && !el.contains("/box/") && count.len() >= 2 {
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
        // 2. Everything but the commit point, with the reference's column names. The
        // particles group always exists, so `list_groups` (the groups of `/particles`, as
        // the reference and znh5md list them) sees a group of only observables too.
        tree::require_group(&root, &format!("particles/{g}"))?;
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
