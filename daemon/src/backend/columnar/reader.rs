//! Reading the columnar layout: rows, columns and packed columns of one [`State`] through
//! an engine view, with the chunk cache.
//!
//! Part of the columnar core. The same code serves concurrent readers (committed view +
//! cache) and the writer's own reads (staged view, no cache).
//!
//! A cell is present when its column's mask says so, or, where the mask says "by value"
//! (or there is no mask), when the stored value is not the fill: not all-NaN (floats), not
//! `""` (strings), not an empty per-atom slice; ints and bools are present. A row with no
//! present cell is a placeholder.

use std::sync::Arc;

use asebytes_protocol::codec::Value;

use super::cache::{Chunk, ChunkCache};
use super::convert;
use super::engine::{DType, EngineRead, Slab};
use super::layout::{Layout, State};
use super::schema::{self, Column, Kind, mask};
use crate::backend::{Error, Result};

/// A column as one array (the wire's `PackedColumn`, before it is wrapped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed {
    /// numpy `dtype.str` of the elements.
    pub dtype: String,
    /// Shape of `data`.
    pub shape: Vec<u64>,
    /// Elements, little-endian, C order.
    pub data: Vec<u8>,
    /// One byte per row, 1 where present; `None` when every row is.
    pub present: Option<Vec<u8>>,
    /// Ragged per-atom: row boundaries in `data` (`rows + 1` entries).
    pub offsets: Option<Vec<u64>>,
}

/// A read view: a state, the engine view it describes, and maybe a cache.
pub struct View<'a> {
    /// The state read.
    pub st: &'a State,
    /// Where its arrays are.
    pub eng: &'a dyn EngineRead,
    /// Decoded chunks (readers only).
    pub cache: Option<&'a ChunkCache>,
}

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("n_frames", &self.st.n_frames)
            .finish_non_exhaustive()
    }
}

impl View<'_> {
    /// Rows `start..start+count` along axis 0 of a numeric array, all trailing axes, as
    /// little-endian bytes; rows beyond the stored array read as the fill value.
    pub fn rows(&self, name: &str, start: u64, count: u64) -> Result<Vec<u8>> {
        let Some(meta) = self.st.arrays.get(name) else {
            return Err(Error::corrupt(format!("array {name} is missing")));
        };
        if meta.shape.is_empty() {
            return Err(Error::corrupt(format!("array {name} has no frame axis")));
        }
        let row_elems: u64 = meta.shape[1..].iter().product();
        let row_bytes = (row_elems as usize) * meta.dtype.itemsize();
        let stored = meta.shape.first().copied().unwrap_or(0);
        let mut out = Vec::with_capacity(row_bytes * count as usize);
        let inside = count.min(stored.saturating_sub(start));
        if inside > 0 {
            match self.cache {
                None => {
                    let mut s = vec![0; meta.shape.len()];
                    s[0] = start;
                    let mut c = meta.shape.clone();
                    c[0] = inside;
                    out.extend(self.eng.read_slab(
                        name,
                        Slab {
                            start: &s,
                            count: &c,
                        },
                    )?);
                }
                Some(cache) => {
                    let cr = meta.chunks.first().copied().unwrap_or(1).max(1);
                    let end = start + inside;
                    let mut at = start;
                    while at < end {
                        let ci = at / cr;
                        let c0 = ci * cr;
                        let clen = cr.min(stored - c0);
                        let chunk = match cache.get(name, ci) {
                            Some(Chunk::Bytes(b)) => b,
                            _ => {
                                let mut s = vec![0; meta.shape.len()];
                                s[0] = c0;
                                let mut c = meta.shape.clone();
                                c[0] = clen;
                                let b = Arc::new(self.eng.read_slab(
                                    name,
                                    Slab {
                                        start: &s,
                                        count: &c,
                                    },
                                )?);
                                cache.put(name, ci, Chunk::Bytes(b.clone()));
                                b
                            }
                        };
                        let upto = end.min(c0 + clen);
                        let a = ((at - c0) as usize) * row_bytes;
                        let b = ((upto - c0) as usize) * row_bytes;
                        out.extend_from_slice(
                            chunk
                                .get(a..b)
                                .ok_or_else(|| Error::corrupt(format!("short chunk in {name}")))?,
                        );
                        at = upto;
                    }
                }
            }
        }
        let fill = meta.dtype.fill_bytes();
        for _ in 0..(count - inside) * row_elems {
            out.extend_from_slice(&fill);
        }
        Ok(out)
    }

    /// Strings `start..start+count` of a 1-d string array (`""` beyond its end).
    pub fn strings(&self, name: &str, start: u64, count: u64) -> Result<Vec<String>> {
        let Some(meta) = self.st.arrays.get(name) else {
            return Err(Error::corrupt(format!("array {name} is missing")));
        };
        let stored = meta.shape.first().copied().unwrap_or(0);
        let inside = count.min(stored.saturating_sub(start));
        let mut out = Vec::with_capacity(count as usize);
        if inside > 0 {
            match self.cache {
                None => out.extend(self.eng.read_strings(name, start, inside)?),
                Some(cache) => {
                    let cr = meta.chunks.first().copied().unwrap_or(1).max(1);
                    let end = start + inside;
                    let mut at = start;
                    while at < end {
                        let ci = at / cr;
                        let c0 = ci * cr;
                        let clen = cr.min(stored - c0);
                        let chunk = match cache.get(name, ci) {
                            Some(Chunk::Strings(s)) => s,
                            _ => {
                                let s = Arc::new(self.eng.read_strings(name, c0, clen)?);
                                cache.put(name, ci, Chunk::Strings(s.clone()));
                                s
                            }
                        };
                        let upto = end.min(c0 + clen);
                        let part = chunk
                            .get((at - c0) as usize..(upto - c0) as usize)
                            .ok_or_else(|| Error::corrupt(format!("short chunk in {name}")))?;
                        out.extend_from_slice(part);
                        at = upto;
                    }
                }
            }
        }
        out.resize(count as usize, String::new());
        Ok(out)
    }

    /// The bytes of one missing per-frame item in a packed column: the fill value.
    fn fill_item(&self, c: &Column, item: usize) -> Vec<u8> {
        let fill = c.dtype.fill_bytes();
        let mut out: Vec<u8> = fill.iter().copied().cycle().take(item).collect();
        out.truncate(item);
        out
    }

    /// Mask codes of frames `start..start+count` (all "by value" without a mask).
    fn masks(&self, c: &Column, start: u64, count: u64) -> Result<Vec<u8>> {
        if !c.mask {
            return Ok(vec![mask::BY_VALUE; count as usize]);
        }
        self.rows(&schema::mask_name(&c.name), start, count)
    }

    /// The value of column `c` in frame `i`, or `None` where missing.
    pub fn cell(&self, c: &Column, i: u64) -> Result<Option<Value>> {
        if i >= self.st.n_frames {
            return Ok(None);
        }
        let m = self
            .masks(c, i, 1)?
            .first()
            .copied()
            .unwrap_or(mask::BY_VALUE);
        if m == mask::MISSING {
            return Ok(None);
        }
        let by_value = m == mask::BY_VALUE;
        if c.kind == Kind::Json || c.dtype == DType::Str {
            let s = self.strings(&c.name, i, 1)?.pop().unwrap_or_default();
            if by_value && s.is_empty() {
                return Ok(None);
            }
            return Ok(Some(convert::from_json_text(&s)));
        }
        let (bytes, atoms) = self.raw(c, i)?;
        if by_value && (atoms == Some(0) || convert::all_nan(c.dtype, &bytes)) {
            return Ok(None);
        }
        convert::from_bytes(c, bytes, atoms).map(Some)
    }

    /// The stored element bytes of a numeric cell, and its atom count if per-atom.
    fn raw(&self, c: &Column, i: u64) -> Result<(Vec<u8>, Option<u64>)> {
        if !c.per_atom {
            return Ok((self.rows(&c.name, i, 1)?, None));
        }
        let f = self.st.frames.get(i);
        let item: u64 = c.shape.iter().product::<u64>() * c.dtype.itemsize() as u64;
        match self.st.layout {
            Layout::Ragged => Ok((self.rows(&c.name, f.offset, f.len)?, Some(f.len))),
            Layout::Padded => {
                let mut b = self.rows(&c.name, i, 1)?;
                b.truncate((f.len * item) as usize);
                Ok((b, Some(f.len)))
            }
        }
    }

    /// Frame `i` (`i < n_frames`), with only the columns in `keys` if given; `None` for a
    /// placeholder.
    pub fn row(&self, i: u64, keys: Option<&[&str]>) -> Result<Option<Vec<(String, Value)>>> {
        let mut out = Vec::new();
        for c in &self.st.columns {
            if keys.is_some_and(|ks| !ks.contains(&c.name.as_str())) {
                continue;
            }
            if let Some(v) = self.cell(c, i)? {
                out.push((c.name.clone(), v));
            }
        }
        if out.is_empty() && keys.is_none() {
            return Ok(None);
        }
        if keys.is_some() && out.is_empty() && self.is_placeholder(i)? {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Whether frame `i` has no present cell at all.
    pub fn is_placeholder(&self, i: u64) -> Result<bool> {
        for c in &self.st.columns {
            if self.cell(c, i)?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The column `key` packed over `indices`; `None` for string columns and keys that
    /// are not columns (read them per row).
    pub fn packed(&self, key: &str, indices: &[u64]) -> Result<Option<Packed>> {
        let Some(c) = self.st.column(key) else {
            return Ok(None);
        };
        if c.kind == Kind::Json || c.dtype == DType::Str {
            return Ok(None);
        }
        let item_elems: u64 = c.shape.iter().product();
        let item = item_elems as usize * c.dtype.itemsize();
        let mut data = Vec::new();
        let mut present = Vec::with_capacity(indices.len());
        let mut offsets = c.per_atom.then(|| vec![0u64]);
        let mut total = 0u64;
        if c.per_atom {
            for &i in indices {
                let v = self.cell(c, i)?;
                let ok = v.is_some();
                present.push(u8::from(ok));
                if ok {
                    let (b, atoms) = self.raw(c, i)?;
                    total += atoms.unwrap_or(0);
                    data.extend_from_slice(&b);
                }
                if let Some(o) = offsets.as_mut() {
                    o.push(total);
                }
            }
        } else {
            // Per-frame: one read per run of consecutive frames (a whole column is one).
            data.reserve(item * indices.len());
            let fill = self.fill_item(c, item);
            for run in runs(indices) {
                let (start, count) = (run[0], run.len() as u64);
                let bytes = self.rows(&c.name, start, count)?;
                let masks = self.masks(c, start, count)?;
                for (j, m) in masks.iter().enumerate() {
                    let b = bytes
                        .get(j * item..(j + 1) * item)
                        .ok_or_else(|| Error::corrupt(format!("short rows in {}", c.name)))?;
                    // As `cell` decides.
                    let ok = match *m {
                        mask::MISSING => false,
                        mask::BY_VALUE => !convert::all_nan(c.dtype, b),
                        _ => true,
                    };
                    present.push(u8::from(ok));
                    data.extend_from_slice(if ok { b } else { &fill });
                }
            }
        }
        let mut shape = vec![if c.per_atom {
            total
        } else {
            indices.len() as u64
        }];
        shape.extend_from_slice(&c.shape);
        let all = present.iter().all(|p| *p == 1);
        Ok(Some(Packed {
            dtype: c.dtype.numpy_str().to_string(),
            shape,
            data,
            present: (!all).then_some(present),
            offsets,
        }))
    }
}

/// `indices` split into runs of consecutive ascending frames.
fn runs(indices: &[u64]) -> impl Iterator<Item = &[u64]> {
    indices.chunk_by(|a, b| a.checked_add(1) == Some(*b))
}
