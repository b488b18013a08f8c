//! Files without our metadata (written by znh5md, or any H5MD writer): what the columnar
//! core needs is worked out from the tree, as the reference does — the frame count from
//! `species/value`, per-atom columns = elements under `/particles` with two or more axes,
//! and each frame's atom count from where its NaN padding starts (znh5md pads every
//! frame to the widest one with NaN). The counts stand in for the `_n_atoms` array until
//! the first write stores them.
//!
//! Layer: part of [`super::engine`].

use crate::backend::Result;
use crate::backend::hdf5::dataset::Column;

/// Frames read per block while counting atoms (bounds the memory of the scan).
const BLOCK_FRAMES: usize = 1024;

/// The derived state of a file without `/asebytes/<g>`.
#[derive(Clone, Debug, Default)]
pub struct Foreign {
    /// Frame count.
    pub n_frames: u64,
    /// Per-atom column keys.
    pub per_atom: Vec<String>,
    /// Widest frame.
    pub max_atoms: u64,
    /// Atom count of each frame (the stand-in `_n_atoms`).
    pub n_atoms: Vec<i32>,
}

/// Atom counts of the first `n_frames` frames of a per-atom dataset (`species` or
/// `position`): the extent of each frame's non-NaN entries. Integer datasets carry no
/// padding: every frame has the full width.
pub fn atom_counts(col: &Column, n_frames: u64) -> Result<Vec<i32>> {
    let shape = col.shape();
    let width = shape.get(1).copied().unwrap_or(0);
    let rows = (n_frames as usize).min(shape.first().copied().unwrap_or(0));
    let mut out = Vec::with_capacity(rows);
    let trailing: usize = shape.iter().skip(2).product();
    if width == 0 || rows == 0 || !col.elem().is_float() || col.elem().itemsize() != 8 {
        out.resize(rows, i32::try_from(width).unwrap_or(i32::MAX));
        out.resize(n_frames as usize, 0);
        return Ok(out);
    }
    let mut start = 0usize;
    while start < rows {
        let n = BLOCK_FRAMES.min(rows - start);
        let mut s = vec![0; shape.len()];
        s[0] = start;
        let mut c = shape.clone();
        c[0] = n;
        let bytes = col.read_raw(&s, &c)?;
        let per_frame = width * trailing.max(1);
        for f in 0..n {
            let mut last = 0usize;
            for a in 0..width {
                let base = (f * per_frame + a * trailing.max(1)) * 8;
                let any = (0..trailing.max(1)).any(|k| {
                    bytes.get(base + k * 8..base + k * 8 + 8).is_some_and(|b| {
                        !f64::from_le_bytes(b.try_into().unwrap_or([0; 8])).is_nan()
                    })
                });
                if any {
                    last = a + 1;
                }
            }
            out.push(i32::try_from(last).unwrap_or(i32::MAX));
        }
        start += n;
    }
    out.resize(n_frames as usize, 0);
    Ok(out)
}
