//! The columnar [`Engine`] on one HDF5 group: arrays are datasets of `/<group>`, the
//! attribute map is the group's attributes.
//!
//! HDF5 has no transactions, so "staged" writes go straight into the datasets and the
//! engine keeps what it needs to undo them: arrays created in the transaction (deleted on
//! rollback), the committed shape of every array it resized or wrote, the old bytes of
//! committed elements it overwrote, and arrays it deleted (renamed to a hidden
//! `_asebytes_trash.*` name until the commit). [`Engine::commit`] flushes the data, then
//! writes the changed attributes and the list of committed arrays, flushes, and writes
//! `n_frames` last, in place (the commit point), and flushes again. After a crash the
//! opener drops arrays no commit lists and puts back deletions no commit confirmed; how
//! often libhdf5's own metadata survives a `kill -9` is measured in `docs/backends/hdf5.md`.
//!
//! HDF5 is not thread-safe: the whole engine sits behind one mutex, readers included, and
//! [`Engine::committed`] is `None` (reads go through the store's actor).
//!
//! Layer: implements [`crate::backend::columnar::engine`]; uses [`super::file`],
//! [`super::dataset`] and [`super::attrs`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hdf5::Group;
use serde_json::{Map, Value as Json};

use super::attrs;
use super::config::Hdf5Config;
use super::dataset::{Column, Compression, CreateSpec};
use super::file::{self, H5File, h5err};
use super::room;
use super::undo::{Stage, Touched, Tx, Undo, clip};
use crate::backend::columnar::engine::{ArrayMeta, ArraySpec, DType, Engine, EngineRead, Slab};
use crate::backend::{Error, ErrorKind, Result};

/// Group attribute listing the arrays of the last commit (ours; the reference ignores it).
pub const ARRAYS_ATTR: &str = "_asebytes_arrays";
/// Prefix of arrays deleted by a transaction that has not committed yet.
pub const TRASH_PREFIX: &str = "_asebytes_trash.";
/// The attribute written last: the commit point.
pub const COMMIT_ATTR: &str = "n_frames";

/// One HDF5 group as a columnar engine.
#[derive(Debug)]
pub struct Hdf5Engine {
    path: PathBuf,
    group: String,
    readonly: bool,
    config: Hdf5Config,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: Option<H5File>,
    group: Option<Group>,
    columns: HashMap<String, Column>,
    /// Arrays of the last commit; `None` when the file never had our list (all existing).
    committed: Option<Vec<String>>,
    /// Attributes as of the last commit, to write only what changed.
    attrs: Map<String, Json>,
    tx: Tx,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn to_usize(v: &[u64]) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| {
            usize::try_from(x)
                .map_err(|_| Error::new(ErrorKind::InvalidArgument, format!("{x} is too large")))
        })
        .collect()
}

fn to_u64(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

fn no_array(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("array '{name}' does not exist"),
    )
}

impl Hdf5Engine {
    /// Opens group `group` of the file at `path` (created on first commit when writable;
    /// a read-only engine on a missing file is empty). A writable open first repairs what
    /// a crashed transaction left: uncommitted arrays go, uncommitted deletions come back.
    pub fn open(path: &Path, group: &str, readonly: bool, config: Hdf5Config) -> Result<Self> {
        if group.is_empty() || group.contains('/') || group == "." {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("'{group}' is not a valid HDF5 group name"),
            ));
        }
        let file = match (readonly, path.exists()) {
            (true, false) => None,
            _ => Some(H5File::open(path, readonly)?),
        };
        let mut inner = Inner {
            group: match &file {
                Some(f) => f.group(group, false)?,
                None => None,
            },
            file,
            columns: HashMap::new(),
            committed: None,
            attrs: Map::new(),
            tx: Tx::default(),
        };
        if let Some(g) = &inner.group {
            inner.attrs = attrs::read_all(g)?;
            inner.committed = file::read_str_list_attr(g, ARRAYS_ATTR)?;
            inner.attrs.remove(ARRAYS_ATTR);
            if !readonly {
                inner.recover()?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            group: group.to_string(),
            readonly,
            config,
            inner: Mutex::new(inner),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writable(&self) -> Result<()> {
        if self.readonly {
            return Err(Error::new(ErrorKind::ReadOnly, "Backend is read-only"));
        }
        Ok(())
    }
}

impl Inner {
    /// Names of every dataset in the group, hidden ones included.
    fn all_names(&self) -> Result<Vec<String>> {
        match &self.group {
            Some(g) => file::dataset_names(g),
            None => Ok(Vec::new()),
        }
    }

    /// Whether `name` is an array of the current (writer's) view.
    fn visible(&self, name: &str, exists: bool) -> bool {
        if name.starts_with(TRASH_PREFIX) || name == ARRAYS_ATTR || !exists {
            return false;
        }
        self.tx.names.contains_key(name)
            || self
                .committed
                .as_ref()
                .is_none_or(|c| c.iter().any(|n| n == name))
    }

    fn column(&mut self, name: &str) -> Result<Column> {
        if let Some(c) = self.columns.get(name) {
            return Ok(c.clone());
        }
        let g = self.group.as_ref().ok_or_else(|| no_array(name))?;
        if !g.link_exists(name) || !self.visible(name, true) {
            return Err(no_array(name));
        }
        let c = Column::open(g, name)?;
        self.columns.insert(name.to_string(), c.clone());
        Ok(c)
    }

    /// The group, created (and remembered for rollback) if missing.
    fn group_for_write(&mut self, name: &str) -> Result<Group> {
        if let Some(g) = &self.group {
            return Ok(g.clone());
        }
        let f = self
            .file
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::ReadOnly, "Backend is read-only"))?;
        let g = f
            .group(name, true)?
            .ok_or_else(|| Error::new(ErrorKind::Unexpected, "HDF5 group was not created"))?;
        self.group = Some(g.clone());
        self.tx.group_created = true;
        Ok(g)
    }

    /// The undo record of committed array `name`, started at its current shape.
    fn touched(&mut self, name: &str, col: &Column) -> Option<&mut Touched> {
        let stage = self.tx.names.entry(name.to_string()).or_insert_with(|| {
            Stage::Changed(Touched {
                shape: col.shape(),
                undo: Vec::new(),
            })
        });
        match stage {
            Stage::Created => None,
            Stage::Changed(t) => Some(t),
        }
    }

    /// Saves the committed elements inside `start..start+count` before they change.
    fn save(&mut self, name: &str, col: &Column, start: &[usize], count: &[usize]) -> Result<()> {
        let Some(shape) = self.touched(name, col).map(|t| t.shape.clone()) else {
            return Ok(());
        };
        let Some(cnt) = clip(start, count, &shape) else {
            return Ok(());
        };
        let undo = if col.elem() == DType::Str {
            let (s, n) = (
                start.first().copied().unwrap_or(0),
                cnt.first().copied().unwrap_or(0),
            );
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
        if let Some(t) = self.touched(name, col) {
            t.undo.push(undo);
        }
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        let tx = std::mem::take(&mut self.tx);
        self.columns.clear();
        let Some(g) = self.group.clone() else {
            return Ok(());
        };
        let mut first_err = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        for (name, stage) in &tx.names {
            match stage {
                Stage::Created => note(g.unlink(name).map_err(h5err(&format!("delete '{name}'")))),
                Stage::Changed(t) => note(Column::open(&g, name).and_then(|c| t.restore(&c))),
            }
        }
        for (trash, name, t) in tx.trashed.iter().rev() {
            note(
                g.relink(trash, name)
                    .map_err(h5err(&format!("restore '{name}'"))),
            );
            note(Column::open(&g, name).and_then(|c| t.restore(&c)));
        }
        if tx.group_created {
            if let Some(f) = &self.file {
                note(f.delete_group(&self.group_name_of(&g)));
            }
            self.group = None;
        }
        if let Some(f) = &self.file {
            note(f.flush());
        }
        first_err.map_or(Ok(()), Err)
    }

    fn group_name_of(&self, g: &Group) -> String {
        g.name().trim_start_matches('/').to_string()
    }

    /// Repairs what a transaction killed before its commit left behind.
    fn recover(&mut self) -> Result<()> {
        let (Some(g), Some(committed)) = (self.group.clone(), self.committed.clone()) else {
            return Ok(());
        };
        let names = self.all_names()?;
        let mut changed = false;
        for n in &names {
            if let Some(rest) = n.strip_prefix(TRASH_PREFIX) {
                let orig = rest.split_once('.').map_or(rest, |(_, o)| o);
                if committed.iter().any(|c| c == orig) && !names.iter().any(|x| x == orig) {
                    g.relink(n, orig)
                        .map_err(h5err(&format!("restore '{orig}'")))?;
                } else {
                    g.unlink(n).map_err(h5err(&format!("delete '{n}'")))?;
                }
                changed = true;
            } else if !committed.contains(n) {
                g.unlink(n)
                    .map_err(h5err(&format!("delete uncommitted '{n}'")))?;
                changed = true;
            }
        }
        if let (true, Some(f)) = (changed, &self.file) {
            f.flush()?;
        }
        Ok(())
    }
}

impl EngineRead for Hdf5Engine {
    fn read_attrs(&self) -> Result<Option<Map<String, Json>>> {
        let inner = lock(&self.inner);
        if inner.group.is_none() || inner.tx.group_created {
            return Ok(None);
        }
        Ok(Some(inner.attrs.clone()))
    }

    fn list_arrays(&self) -> Result<Vec<String>> {
        let inner = lock(&self.inner);
        Ok(inner
            .all_names()?
            .into_iter()
            .filter(|n| inner.visible(n, true))
            .collect())
    }

    fn array_meta(&self, name: &str) -> Result<Option<ArrayMeta>> {
        let mut inner = lock(&self.inner);
        let col = match inner.column(name) {
            Ok(c) => c,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let shape = col.shape();
        let chunks = col
            .chunk()
            .unwrap_or_else(|| shape.iter().map(|&n| n.max(1)).collect());
        Ok(Some(ArrayMeta {
            dtype: col.elem(),
            shape: to_u64(&shape),
            chunks: to_u64(&chunks),
        }))
    }

    fn read_slab(&self, name: &str, slab: Slab<'_>) -> Result<Vec<u8>> {
        let mut inner = lock(&self.inner);
        let col = inner.column(name)?;
        col.read_raw(&to_usize(slab.start)?, &to_usize(slab.count)?)
    }

    fn read_strings(&self, name: &str, start: u64, count: u64) -> Result<Vec<String>> {
        let mut inner = lock(&self.inner);
        let col = inner.column(name)?;
        col.read_strings(&to_usize(&[start])?, &to_usize(&[count])?)
    }
}

impl Engine for Hdf5Engine {
    fn name(&self) -> &'static str {
        "hdf5"
    }

    fn committed(&self) -> Option<Arc<dyn EngineRead>> {
        None
    }

    fn create_array(&self, name: &str, spec: &ArraySpec) -> Result<()> {
        self.writable()?;
        if name.is_empty() || name.contains('/') || name.starts_with(TRASH_PREFIX) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("'{name}' cannot name an HDF5 dataset"),
            ));
        }
        let mut inner = lock(&self.inner);
        let g = inner.group_for_write(&self.group)?;
        if g.link_exists(name) {
            if inner.visible(name, true) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("array '{name}' already exists"),
                ));
            }
            // Left by a transaction that never committed.
            g.unlink(name)
                .map_err(h5err(&format!("delete uncommitted '{name}'")))?;
        }
        let create = CreateSpec {
            elem: spec.dtype,
            shape: to_usize(&spec.shape)?,
            chunk: to_usize(&spec.chunks)?,
            // The layout's own arrays (`_offsets`, `_lengths`, `_n_atoms`, `_present.*`)
            // are small and rewritten by every append: uncompressed, their chunks keep
            // their size and place, which keeps a kill -9 from tearing them
            // (docs/backends/hdf5.md).
            compression: if name.starts_with('_') {
                Compression::None
            } else {
                self.config.compression
            },
        };
        let col = Column::create(&g, name, &create)?;
        inner.tx.names.insert(name.to_string(), Stage::Created);
        inner.columns.insert(name.to_string(), col);
        Ok(())
    }

    fn resize(&self, name: &str, shape: &[u64]) -> Result<()> {
        self.writable()?;
        let shape = to_usize(shape)?;
        let mut inner = lock(&self.inner);
        let col = inner.column(name)?;
        let old = col.shape();
        if old.len() != shape.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("array '{name}' has rank {}, not {}", old.len(), shape.len()),
            ));
        }
        // Elements cut off on each axis (the rest of the box on the others) are saved.
        for d in 0..old.len() {
            if shape[d] < old[d] {
                let mut start = vec![0; old.len()];
                let mut count: Vec<usize> = old
                    .iter()
                    .zip(&shape)
                    .enumerate()
                    .map(|(k, (&o, &n))| if k < d { n.min(o) } else { o })
                    .collect();
                start[d] = shape[d];
                count[d] = old[d] - shape[d];
                inner.save(name, &col, &start, &count)?;
            }
        }
        inner.touched(name, &col);
        col.resize(&shape)
    }

    fn write_slab(&self, name: &str, slab: Slab<'_>, data: &[u8]) -> Result<()> {
        self.writable()?;
        let (start, count) = (to_usize(slab.start)?, to_usize(slab.count)?);
        let mut inner = lock(&self.inner);
        inner.tx.written += data.len() as u64;
        room::ensure_room(&self.path, inner.tx.written)?;
        let col = inner.column(name)?;
        inner.save(name, &col, &start, &count)?;
        col.write_raw(&start, &count, data)
    }

    fn write_strings(&self, name: &str, start: u64, values: &[String]) -> Result<()> {
        self.writable()?;
        let start = to_usize(&[start])?;
        let count = [values.len()];
        let mut inner = lock(&self.inner);
        inner.tx.written += values.iter().map(|v| v.len() as u64 + 16).sum::<u64>();
        room::ensure_room(&self.path, inner.tx.written)?;
        let col = inner.column(name)?;
        inner.save(name, &col, &start, &count)?;
        col.write_strings(&start, &count, values)
    }

    fn delete_array(&self, name: &str) -> Result<()> {
        self.writable()?;
        let mut inner = lock(&self.inner);
        let Some(g) = inner.group.clone() else {
            return Ok(());
        };
        if !g.link_exists(name) || !inner.visible(name, true) {
            return Ok(());
        }
        inner.columns.remove(name);
        match inner.tx.names.remove(name) {
            Some(Stage::Created) => g.unlink(name).map_err(h5err(&format!("delete '{name}'"))),
            stage => {
                let touched = match stage {
                    Some(Stage::Changed(t)) => t,
                    _ => Touched {
                        shape: Column::open(&g, name)?.shape(),
                        undo: Vec::new(),
                    },
                };
                inner.tx.trash_seq += 1;
                let trash = format!("{TRASH_PREFIX}{}.{name}", inner.tx.trash_seq);
                g.relink(name, &trash)
                    .map_err(h5err(&format!("delete '{name}'")))?;
                inner.tx.trashed.push((trash, name.to_string(), touched));
                Ok(())
            }
        }
    }

    fn commit(&self, new_attrs: &Map<String, Json>) -> Result<()> {
        self.writable()?;
        let mut inner = lock(&self.inner);
        let g = inner.group_for_write(&self.group)?;
        let f_flush = |inner: &Inner| inner.file.as_ref().map_or(Ok(()), H5File::flush);
        // 1. Data first.
        f_flush(&inner)?;
        // 2. Everything but the commit point: changed attributes, the array list.
        for (k, v) in new_attrs {
            if k != COMMIT_ATTR && k != ARRAYS_ATTR && inner.attrs.get(k) != Some(v) {
                attrs::write_one(&g, k, v)?;
            }
        }
        let mut arrays: Vec<String> = inner
            .all_names()?
            .into_iter()
            .filter(|n| inner.visible(n, true))
            .collect();
        arrays.sort();
        if inner.committed.as_ref() != Some(&arrays) {
            file::write_str_list_attr(&g, ARRAYS_ATTR, &arrays)?;
        }
        f_flush(&inner)?;
        // 3. The commit point.
        if let Some(v) = new_attrs
            .get(COMMIT_ATTR)
            .filter(|v| inner.attrs.get(COMMIT_ATTR) != Some(*v))
        {
            attrs::write_one(&g, COMMIT_ATTR, v)?;
            f_flush(&inner)?;
        }
        // 4. Deletions are final now.
        let tx = std::mem::take(&mut inner.tx);
        for (trash, _, _) in &tx.trashed {
            g.unlink(trash)
                .map_err(h5err(&format!("delete '{trash}'")))?;
        }
        if !tx.trashed.is_empty() {
            f_flush(&inner)?;
        }
        inner.committed = Some(arrays);
        inner.attrs = new_attrs.clone();
        inner.attrs.remove(ARRAYS_ATTR);
        Ok(())
    }

    fn rollback(&self) -> Result<()> {
        lock(&self.inner).rollback()
    }

    fn remove_group(&self) -> Result<()> {
        self.writable()?;
        let mut inner = lock(&self.inner);
        inner.tx = Tx::default();
        inner.columns.clear();
        if let Some(f) = &inner.file {
            f.delete_group(&self.group)?;
            f.flush()?;
        }
        inner.group = None;
        inner.committed = None;
        inner.attrs = Map::new();
        Ok(())
    }
}
