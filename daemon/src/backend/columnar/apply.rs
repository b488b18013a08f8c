//! Applying a planned change to the engine: create and resize arrays, write the frame
//! index, and write each column's cells (with presence masks) as array slabs.
//!
//! Part of the columnar core, under [`super::writer`], which plans and validates a
//! [`Change`] completely before anything here runs. Cells of consecutive frames go out as
//! one slab per run, so a whole `extend` is one write per column.

use super::convert::{self, Cell};
use super::engine::{ArraySpec, DType, Engine, Slab};
use super::layout::{self, Frame, INDEX_CHUNK, Layout, State};
use super::schema::{self, Column, mask};
use crate::backend::{Error, Result};

/// Cells to write: `(frame, cell or None = missing)`, frames ascending, unique.
pub type FrameCells = Vec<(u64, Option<Cell>)>;

/// One column's cells to write.
pub type ColumnCells = (String, FrameCells);

/// Everything one write operation changes, fully validated.
#[derive(Debug, Default)]
pub struct Change {
    /// Columns to create (appended to the column list in this order).
    pub new_columns: Vec<Column>,
    /// Frames whose atom location changes or that are appended (`index == n_frames` at
    /// the time of the push).
    pub frames: Vec<(u64, Frame)>,
    /// Frame count afterwards.
    pub n_frames: u64,
    /// Ragged flat length afterwards.
    pub flat_len: u64,
    /// Padded axis-1 size afterwards.
    pub max_atoms: u64,
    /// The cells to write, per column.
    pub cells: Vec<ColumnCells>,
}

/// Whether a stored fill value would read as present (ints, bools), so a missing cell
/// needs a mask entry.
fn fill_reads_present(c: &Column) -> bool {
    !(c.dtype.is_float() || c.dtype == DType::Str)
}

/// Splits ascending frames into runs of consecutive frames: `(first index, length)`.
fn runs(frames: &[u64]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (j, &f) in frames.iter().enumerate() {
        match out.last_mut() {
            Some((s, n)) if frames[*s] + *n as u64 == f => *n += 1,
            _ => out.push((j, 1)),
        }
    }
    out
}

/// Applies `ch` to `st` and the engine's staged state.
pub fn apply(st: &mut State, eng: &dyn Engine, ch: Change) -> Result<()> {
    let old_n = st.n_frames;
    st.n_frames = ch.n_frames;
    st.flat_len = ch.flat_len;
    st.max_atoms = ch.max_atoms;
    for &(i, f) in &ch.frames {
        if i < st.frames.len() {
            st.frames.set(i, f);
        } else {
            st.frames.push(f);
        }
    }
    // Existing arrays follow the new frame count / atom axis.
    for c in st.columns.clone() {
        let shape = st.array_shape(&c);
        resize(st, eng, &c.name, shape)?;
        if c.mask {
            let n = st.n_frames;
            resize(st, eng, &schema::mask_name(&c.name), vec![n])?;
        }
    }
    for c in ch.new_columns {
        st.known.insert(c.name.clone());
        st.columns.push(c.clone());
        create_column(st, eng, &c, old_n)?;
    }
    write_index(st, eng, &ch.frames)?;
    for (name, cells) in &ch.cells {
        let Some(idx) = st.columns.iter().position(|c| &c.name == name) else {
            return Err(Error::corrupt(format!("planned column {name} is unknown")));
        };
        write_cells(st, eng, idx, cells)?;
    }
    Ok(())
}

fn resize(st: &mut State, eng: &dyn Engine, name: &str, shape: Vec<u64>) -> Result<()> {
    let Some(meta) = st.arrays.get_mut(name) else {
        return Err(Error::corrupt(format!("array {name} is missing")));
    };
    if meta.shape != shape {
        eng.resize(name, &shape)?;
        meta.shape = shape;
    }
    Ok(())
}

fn create(st: &mut State, eng: &dyn Engine, name: &str, spec: ArraySpec) -> Result<()> {
    eng.create_array(name, &spec)?;
    st.arrays.insert(
        name.to_string(),
        super::engine::ArrayMeta {
            dtype: spec.dtype,
            shape: spec.shape,
            chunks: spec.chunks,
        },
    );
    Ok(())
}

/// Creates a column's array; frames before `old_n` read as missing.
fn create_column(st: &mut State, eng: &dyn Engine, c: &Column, old_n: u64) -> Result<()> {
    let shape = st.array_shape(c);
    let item: u64 = c.shape.iter().product::<u64>() * (c.dtype.itemsize().max(8) as u64);
    let mut chunks = shape.clone();
    let rows_per_frame = match (c.per_atom, st.layout) {
        (true, Layout::Ragged) if st.n_frames > 0 => st.flat_len.div_ceil(st.n_frames).max(1),
        _ => 1,
    };
    let row_bytes = match (c.per_atom, st.layout) {
        (true, Layout::Padded) => item * st.max_atoms.max(1),
        _ => item,
    };
    // Bool and string arrays are stored uncompressed by HDF5 (the reference's layout): a
    // chunk there costs its full size on disk, so only numeric chunks are made large.
    let numeric = !matches!(c.dtype, DType::Bool | DType::Str);
    chunks[0] = st.chunk_rows(row_bytes, rows_per_frame, numeric);
    for d in chunks.iter_mut().skip(1) {
        *d = (*d).max(1);
    }
    create(
        st,
        eng,
        &c.name,
        ArraySpec {
            dtype: c.dtype,
            shape,
            chunks,
        },
    )?;
    if old_n > 0 && fill_reads_present(c) {
        create_mask(st, eng, &c.name)?;
        let codes = vec![mask::MISSING; old_n as usize];
        eng.write_slab(
            &schema::mask_name(&c.name),
            Slab {
                start: &[0],
                count: &[old_n],
            },
            &codes,
        )?;
    }
    Ok(())
}

fn create_mask(st: &mut State, eng: &dyn Engine, column: &str) -> Result<()> {
    let name = schema::mask_name(column);
    if !st.arrays.contains_key(&name) {
        let n = st.n_frames;
        create(
            st,
            eng,
            &name,
            ArraySpec {
                dtype: DType::U8,
                shape: vec![n],
                chunks: vec![INDEX_CHUNK],
            },
        )?;
    }
    if let Some(c) = st.columns.iter_mut().find(|c| c.name == column) {
        c.mask = true;
    }
    Ok(())
}

/// Writes `_offsets`/`_lengths` (ragged) or `_n_atoms` (padded) for changed frames.
fn write_index(st: &mut State, eng: &dyn Engine, frames: &[(u64, Frame)]) -> Result<()> {
    let names: &[(&str, DType)] = match st.layout {
        Layout::Ragged => &[(layout::OFFSETS, DType::I64), (layout::LENGTHS, DType::I32)],
        Layout::Padded => &[(layout::N_ATOMS, DType::I32)],
    };
    for &(name, dtype) in names {
        let n = st.n_frames;
        if !st.arrays.contains_key(name) {
            create(
                st,
                eng,
                name,
                ArraySpec {
                    dtype,
                    shape: vec![n],
                    chunks: vec![INDEX_CHUNK],
                },
            )?;
        }
        resize(st, eng, name, vec![n])?;
    }
    let mut sorted: Vec<(u64, Frame)> = frames.to_vec();
    sorted.sort_by_key(|(i, _)| *i);
    sorted.dedup_by_key(|(i, _)| *i);
    let idx: Vec<u64> = sorted.iter().map(|(i, _)| *i).collect();
    for (s, n) in runs(&idx) {
        let part = &sorted[s..s + n];
        let start = [part[0].0];
        let count = [n as u64];
        match st.layout {
            Layout::Ragged => {
                let off: Vec<u8> = part
                    .iter()
                    .flat_map(|(_, f)| (f.offset as i64).to_le_bytes())
                    .collect();
                let len: Vec<u8> = part
                    .iter()
                    .flat_map(|(_, f)| (f.len as i32).to_le_bytes())
                    .collect();
                eng.write_slab(
                    layout::OFFSETS,
                    Slab {
                        start: &start,
                        count: &count,
                    },
                    &off,
                )?;
                eng.write_slab(
                    layout::LENGTHS,
                    Slab {
                        start: &start,
                        count: &count,
                    },
                    &len,
                )?;
            }
            Layout::Padded => {
                let len: Vec<u8> = part
                    .iter()
                    .flat_map(|(_, f)| (f.len as i32).to_le_bytes())
                    .collect();
                eng.write_slab(
                    layout::N_ATOMS,
                    Slab {
                        start: &start,
                        count: &count,
                    },
                    &len,
                )?;
            }
        }
    }
    Ok(())
}

/// The mask code a cell needs so it reads back as it should.
fn code(c: &Column, cell: Option<&Cell>, atoms: u64) -> u8 {
    let by_value_missing_empty = c.per_atom && atoms == 0;
    match cell {
        None if by_value_missing_empty => mask::BY_VALUE,
        None if fill_reads_present(c) => mask::MISSING,
        None => mask::BY_VALUE,
        Some(_) if by_value_missing_empty => mask::PRESENT,
        Some(Cell::Bytes(b)) if convert::all_nan(c.dtype, b) => mask::PRESENT,
        Some(_) => mask::BY_VALUE,
    }
}

/// Writes one column's cells (and mask codes) for the given frames.
fn write_cells(
    st: &mut State,
    eng: &dyn Engine,
    idx: usize,
    cells: &[(u64, Option<Cell>)],
) -> Result<()> {
    let c = st.columns[idx].clone();
    let codes: Vec<u8> = cells
        .iter()
        .map(|(i, cell)| code(&c, cell.as_ref(), st.frames.get(*i).len))
        .collect();
    if !c.mask && codes.iter().any(|m| *m != mask::BY_VALUE) {
        create_mask(st, eng, &c.name)?;
    }
    let frames: Vec<u64> = cells.iter().map(|(i, _)| *i).collect();
    let has_mask = st.columns[idx].mask;
    let item_elems: u64 = c.shape.iter().product();
    let fill = c.dtype.fill_bytes();
    for (s, n) in runs(&frames) {
        let part = &cells[s..s + n];
        let first = part[0].0;
        if has_mask {
            eng.write_slab(
                &schema::mask_name(&c.name),
                Slab {
                    start: &[first],
                    count: &[n as u64],
                },
                &codes[s..s + n],
            )?;
        }
        if c.dtype == DType::Str {
            let texts: Vec<String> = part
                .iter()
                .map(|(_, cell)| match cell {
                    Some(Cell::Text(t)) => t.clone(),
                    _ => String::new(),
                })
                .collect();
            eng.write_strings(&c.name, first, &texts)?;
            continue;
        }
        let mut start = vec![0u64; c.shape.len() + 1];
        let mut count = vec![0u64; 1];
        match (c.per_atom, st.layout) {
            (false, _) => {
                let mut buf = Vec::new();
                for (_, cell) in part {
                    push_cell(&mut buf, cell.as_ref(), item_elems, &fill);
                }
                start[0] = first;
                count[0] = n as u64;
                count.extend_from_slice(&c.shape);
                eng.write_slab(
                    &c.name,
                    Slab {
                        start: &start,
                        count: &count,
                    },
                    &buf,
                )?;
            }
            (true, Layout::Padded) => {
                let width = st.max_atoms;
                let mut buf = Vec::new();
                for (i, cell) in part {
                    let atoms = st.frames.get(*i).len;
                    push_cell(&mut buf, cell.as_ref(), atoms * item_elems, &fill);
                    for _ in 0..(width - atoms.min(width)) * item_elems {
                        buf.extend_from_slice(&fill);
                    }
                }
                start.push(0);
                start[0] = first;
                count[0] = n as u64;
                count.push(width);
                count.extend_from_slice(&c.shape);
                if width > 0 {
                    eng.write_slab(
                        &c.name,
                        Slab {
                            start: &start,
                            count: &count,
                        },
                        &buf,
                    )?;
                }
            }
            (true, Layout::Ragged) => {
                // Frames consecutive in the flat arrays go out as one slab.
                let mut j = 0;
                while j < part.len() {
                    let f0 = st.frames.get(part[j].0);
                    let mut rows = 0u64;
                    let mut buf = Vec::new();
                    while j < part.len() {
                        let f = st.frames.get(part[j].0);
                        if f.offset != f0.offset + rows {
                            break;
                        }
                        push_cell(&mut buf, part[j].1.as_ref(), f.len * item_elems, &fill);
                        rows += f.len;
                        j += 1;
                    }
                    if rows > 0 {
                        start[0] = f0.offset;
                        let mut cnt = vec![rows];
                        cnt.extend_from_slice(&c.shape);
                        eng.write_slab(
                            &c.name,
                            Slab {
                                start: &start,
                                count: &cnt,
                            },
                            &buf,
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Appends a cell's bytes, or `elems` fill elements for a missing cell.
fn push_cell(buf: &mut Vec<u8>, cell: Option<&Cell>, elems: u64, fill: &[u8]) {
    match cell {
        Some(Cell::Bytes(b)) => buf.extend_from_slice(b),
        _ => {
            for _ in 0..elems {
                buf.extend_from_slice(fill);
            }
        }
    }
}
