//! Planning writes on the columnar layout: every operation (`extend`, `set`, `update`,
//! column write, `drop`, `clear`) is turned into one validated [`Change`] before anything
//! is written, so bad input leaves the store untouched.
//!
//! Part of the columnar core, between the backend's `Writer` (rows of msgpack bytes) and
//! [`super::apply`]. Semantics (see `docs/backends/columnar.md`):
//! - `extend` and `set` write whole rows: keys a row lacks read as missing afterwards.
//! - `update` and column writes touch only the given keys.
//! - Unseen keys add a column (earlier frames read them as missing).
//! - `update` keeps a frame's atom count; a frame with 0 atoms (a placeholder) gets new
//!   atoms appended at the end of the flat arrays; setting a row without atoms gives 0.
//! - A value whose type or shape does not fit its column turns the column into a JSON
//!   column ([`Tx`] rewrites it in the same transaction), which keeps every value's type;
//!   no silent promotion, except Python `int`/`bool` into a Python-`float` column, which is
//!   what the reference writes for every Python number.
//! - A `set` that changes a ragged frame's atom count moves the frame's atoms to the end
//!   of the flat arrays (the reference refuses it); the old slice stays unused.

use std::collections::{BTreeMap, HashSet};

use asebytes_protocol::codec::{self, Value};

use super::apply::{self, Change};
use super::convert::{self, Cell};
use super::engine::{DType, Engine};
use super::layout::{Frame, Layout, State};
use super::reader::View;
use super::schema::{self, Column, Kind};
use crate::backend::{Error, ErrorKind, Result};

/// One column's cells: `(frame, cell or None = missing)`, as in [`apply::ColumnCells`].
type Cells = Vec<(u64, Option<Cell>)>;

/// One decoded row: `(key, value)` in the order given, keys unique.
pub type Fields = Vec<(String, Value)>;

/// Decodes a wire row; a value that is not msgpack-numpy or cannot be stored (object
/// arrays, ...) is a `TypeMismatch` naming the key.
pub fn decode_row(row: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)]) -> Result<Fields> {
    let mut out: Fields = Vec::with_capacity(row.len());
    for (k, v) in row {
        let key = std::str::from_utf8(k.as_ref())
            .map_err(|_| {
                Error::new(
                    ErrorKind::TypeMismatch,
                    "keys of a columnar store must be UTF-8",
                )
            })?
            .to_string();
        let value = codec::decode(v.as_ref()).map_err(|e| {
            Error::new(
                ErrorKind::TypeMismatch,
                format!("key '{key}': value cannot be stored: {e}"),
            )
        })?;
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

/// Whether a target replaces its whole row or merges keys into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Replace,
    Merge,
}

/// One frame to write.
struct Target {
    frame: u64,
    fields: Option<Fields>,
    mode: Mode,
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// What planning found: a change ready to apply, or columns that must first become JSON
/// columns because some value does not fit them.
enum Planned {
    Ready(Change),
    Widen(Vec<String>),
}

/// Plans writing `targets` (frames ascending and unique; appended frames follow `n_frames`).
fn plan(st: &State, targets: &[Target]) -> Result<Planned> {
    let mut ch = Change {
        n_frames: st.n_frames,
        flat_len: st.flat_len,
        max_atoms: st.max_atoms,
        ..Change::default()
    };
    let per_atom_key = |k: &str| match st.column(k) {
        Some(c) => c.per_atom,
        None => k.starts_with("arrays.") || schema::PER_ATOM_CALC.contains(&k),
    };
    // Atom counts and frame locations.
    let mut atoms = Vec::with_capacity(targets.len());
    let mut relocated = Vec::with_capacity(targets.len());
    for t in targets {
        let fields: &[(String, Value)] = t.fields.as_deref().unwrap_or(&[]);
        let appended = t.frame >= st.n_frames;
        let cur = if appended {
            Frame::default()
        } else {
            st.frames.get(t.frame)
        };
        let given = schema::atom_count(fields);
        let has_atoms = fields
            .iter()
            .any(|(k, v)| matches!(v, Value::Array(_)) && per_atom_key(k));
        let n = match t.mode {
            Mode::Replace => given,
            Mode::Merge if has_atoms && cur.len == 0 => given,
            Mode::Merge => cur.len,
        };
        if n > i32::MAX as u64 {
            return Err(invalid(format!("a frame of {n} atoms is too large")));
        }
        let mut moved = appended;
        let frame = match st.layout {
            Layout::Ragged if !appended && n == cur.len => cur,
            Layout::Ragged if !appended && n == 0 => {
                moved = true;
                Frame {
                    offset: cur.offset,
                    len: 0,
                }
            }
            // New atoms, or a new atom count: the frame's atoms go to the end of the flat
            // arrays (its old slice stays unused until `clear`).
            Layout::Ragged => {
                let f = Frame {
                    offset: ch.flat_len,
                    len: n,
                };
                ch.flat_len += n;
                moved = true;
                f
            }
            Layout::Padded => {
                ch.max_atoms = ch.max_atoms.max(n);
                moved = appended || n != cur.len;
                Frame { offset: 0, len: n }
            }
        };
        if appended {
            ch.n_frames = ch.n_frames.max(t.frame + 1);
        }
        if moved {
            ch.frames.push((t.frame, frame));
        }
        atoms.push(n);
        relocated.push(moved);
    }
    // Columns for keys never seen, from all their values in this change.
    let mut new_keys: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for t in targets {
        for (k, _) in t.fields.as_deref().unwrap_or(&[]) {
            if st.column(k).is_none() && seen.insert(k) {
                new_keys.push(k);
            }
        }
    }
    for key in new_keys {
        let values: Vec<(&Value, u64)> = targets
            .iter()
            .zip(&atoms)
            .filter_map(|(t, n)| {
                t.fields
                    .as_deref()
                    .and_then(|f| f.iter().find(|(k, _)| k == key))
                    .map(|(_, v)| (v, *n))
            })
            .collect();
        ch.new_columns.push(schema::infer_column(key, &values)?);
    }
    // Cells, column by column.
    let columns: Vec<&Column> = st.columns.iter().chain(&ch.new_columns).collect();
    let mut widen = Vec::new();
    'columns: for c in columns {
        let mut cells: Cells = Vec::new();
        for ((t, n), moved) in targets.iter().zip(&atoms).zip(&relocated) {
            let value = t
                .fields
                .as_deref()
                .and_then(|f| f.iter().find(|(k, _)| *k == c.name))
                .map(|(_, v)| v);
            let cell = match value.map(|v| (v, convert::to_cell(c, v, *n))) {
                Some((_, Ok(cell))) => Some(cell),
                Some((v, Err(e))) => {
                    if c.kind != Kind::Json && convert::to_json_text(&c.name, v).is_ok() {
                        widen.push(c.name.clone());
                        continue 'columns;
                    }
                    return Err(e);
                }
                None => None,
            };
            let wanted = t.mode == Mode::Replace || value.is_some() || (c.per_atom && *moved);
            if wanted {
                cells.push((t.frame, cell));
            }
        }
        if !cells.is_empty() {
            ch.cells.push((c.name.clone(), cells));
        }
    }
    Ok(if widen.is_empty() {
        Planned::Ready(ch)
    } else {
        Planned::Widen(widen)
    })
}

/// A write transaction's view of the layout: the working state and the engine.
pub struct Tx<'a> {
    /// The state as of this transaction's writes so far.
    pub st: &'a mut State,
    /// The engine (staged writes).
    pub eng: &'a dyn Engine,
    /// Set when a write failed after it started changing the engine: the transaction
    /// must be rolled back, not committed.
    pub failed: bool,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("n_frames", &self.st.n_frames)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Tx<'_> {
    fn run(&mut self, targets: Vec<Target>) -> Result<()> {
        let ch = match plan(self.st, &targets)? {
            Planned::Ready(ch) => ch,
            Planned::Widen(names) => {
                // Encode every stored value first: a value JSON cannot hold refuses the
                // write before the store changes.
                let rewrites = names
                    .iter()
                    .map(|name| self.json_cells(name))
                    .collect::<Result<Vec<_>>>()?;
                let r = rewrites
                    .into_iter()
                    .try_for_each(|(pos, cells)| self.rewrite_as_json(pos, cells));
                self.failed |= r.is_err();
                r?;
                match plan(self.st, &targets)? {
                    Planned::Ready(ch) => ch,
                    Planned::Widen(names) => {
                        return Err(Error::corrupt(format!(
                            "columns {names:?} still refuse values after becoming JSON columns"
                        )));
                    }
                }
            }
        };
        let r = apply::apply(self.st, self.eng, ch);
        self.failed |= r.is_err();
        r
    }

    /// The position of column `name` and every present value of it as a JSON cell.
    fn json_cells(&self, name: &str) -> Result<(usize, Cells)> {
        let Some(pos) = self.st.columns.iter().position(|c| c.name == name) else {
            return Err(Error::corrupt(format!("column {name} is unknown")));
        };
        let c = &self.st.columns[pos];
        let view = View {
            st: self.st,
            eng: self.eng,
            cache: None,
        };
        let mut cells = Vec::new();
        for i in 0..self.st.n_frames {
            if let Some(v) = view.cell(c, i)? {
                cells.push((i, Some(Cell::Text(convert::to_json_text(name, &v)?))));
            }
        }
        Ok((pos, cells))
    }

    /// Replaces the column at `pos` by a JSON column holding `cells`, in the same place of
    /// the column order.
    fn rewrite_as_json(&mut self, pos: usize, cells: Cells) -> Result<()> {
        let old = self.st.columns.remove(pos);
        self.st.arrays.remove(&old.name);
        self.eng.delete_array(&old.name)?;
        if old.mask {
            let m = schema::mask_name(&old.name);
            self.st.arrays.remove(&m);
            self.eng.delete_array(&m)?;
        }
        let json = Column {
            name: old.name.clone(),
            dtype: DType::Str,
            shape: Vec::new(),
            per_atom: false,
            kind: Kind::Json,
            mask: false,
        };
        let ch = Change {
            new_columns: vec![json],
            n_frames: self.st.n_frames,
            flat_len: self.st.flat_len,
            max_atoms: self.st.max_atoms,
            cells: vec![(old.name, cells)],
            ..Change::default()
        };
        apply::apply(self.st, self.eng, ch)?;
        if let Some(c) = self.st.columns.pop() {
            self.st.columns.insert(pos, c);
        }
        Ok(())
    }

    /// Appends rows (`None` = placeholder); returns the new frame count.
    pub fn extend(&mut self, rows: Vec<Option<Fields>>) -> Result<u64> {
        let n0 = self.st.n_frames;
        let targets = rows
            .into_iter()
            .enumerate()
            .map(|(j, fields)| Target {
                frame: n0 + j as u64,
                fields: fields.filter(|f| !f.is_empty()),
                mode: Mode::Replace,
            })
            .collect();
        self.run(targets)?;
        Ok(self.st.n_frames)
    }

    /// Replaces frame `index` (`None` = placeholder).
    pub fn set(&mut self, index: u64, row: Option<Fields>) -> Result<()> {
        self.run(vec![Target {
            frame: index,
            fields: row,
            mode: Mode::Replace,
        }])
    }

    /// Merges keys into frame `index`.
    pub fn update(&mut self, index: u64, data: Fields) -> Result<()> {
        self.run(vec![Target {
            frame: index,
            fields: Some(data),
            mode: Mode::Merge,
        }])
    }

    /// Writes one key into several frames (the last value wins for a repeated index).
    pub fn update_column(&mut self, key: &str, indices: &[u64], values: Vec<Value>) -> Result<()> {
        if indices.len() != values.len() {
            return Err(invalid(format!(
                "{} indices but {} values",
                indices.len(),
                values.len()
            )));
        }
        let mut by_frame: BTreeMap<u64, Value> = BTreeMap::new();
        for (&i, v) in indices.iter().zip(values) {
            by_frame.insert(i, v);
        }
        let targets = by_frame
            .into_iter()
            .map(|(frame, v)| Target {
                frame,
                fields: Some(vec![(key.to_string(), v)]),
                mode: Mode::Merge,
            })
            .collect();
        self.run(targets)
    }

    /// Removes keys from some frames, or whole columns when `indices` is `None`.
    pub fn drop_keys(&mut self, keys: &[&str], indices: Option<&[u64]>) -> Result<()> {
        match indices {
            None => {
                for key in keys {
                    let Some(pos) = self.st.columns.iter().position(|c| c.name == *key) else {
                        continue;
                    };
                    let c = self.st.columns.remove(pos);
                    let m = schema::mask_name(&c.name);
                    self.st.arrays.remove(&c.name);
                    self.st.arrays.remove(&m);
                    let r = self
                        .eng
                        .delete_array(&c.name)
                        .and_then(|()| self.eng.delete_array(&m));
                    self.failed |= r.is_err();
                    r?;
                }
                Ok(())
            }
            Some(indices) => {
                let mut frames: Vec<u64> = indices.to_vec();
                frames.sort_unstable();
                frames.dedup();
                let mut ch = Change {
                    n_frames: self.st.n_frames,
                    flat_len: self.st.flat_len,
                    max_atoms: self.st.max_atoms,
                    ..Change::default()
                };
                for key in keys {
                    if self.st.column(key).is_some() {
                        ch.cells
                            .push((key.to_string(), frames.iter().map(|&i| (i, None)).collect()));
                    }
                }
                let r = apply::apply(self.st, self.eng, ch);
                self.failed |= r.is_err();
                r
            }
        }
    }

    /// Removes every frame and column (attributes we do not own stay).
    pub fn clear(&mut self) -> Result<()> {
        let names: Vec<String> = self.st.arrays.keys().cloned().collect();
        for name in names {
            let r = self.eng.delete_array(&name);
            self.failed |= r.is_err();
            r?;
        }
        let mut fresh = State::empty(self.st.layout, self.st.chunk_frames);
        fresh.extra = std::mem::take(&mut self.st.extra);
        fresh.known = std::mem::take(&mut self.st.known);
        *self.st = fresh;
        Ok(())
    }
}
