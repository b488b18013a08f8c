//! How values sit in H5MD datasets when that differs from what the columnar core sees:
//! integer and bool per-atom arrays (species above all) kept as float64 with NaN padding,
//! as znh5md needs them to tell a frame's atoms from its padding; reads that reach past a
//! dataset (znh5md leaves arrays short or narrow) padded with the fill value; the
//! constraints string kept JSON-encoded once more, as the reference writes it.
//!
//! Layer: pure byte conversions for [`super::engine`]; no HDF5.

use crate::backend::columnar::engine::DType;
use crate::backend::{Error, ErrorKind, Result};

/// Whether `logical` is stored as float64 on disk when the array is per-atom.
pub fn widened(logical: DType) -> bool {
    matches!(
        logical,
        DType::Bool
            | DType::I8
            | DType::I16
            | DType::I32
            | DType::I64
            | DType::U8
            | DType::U16
            | DType::U32
            | DType::U64
    )
}

/// float64 little-endian bytes (NaN = padding) → `logical` bytes (padding reads 0/false).
pub fn from_f64(logical: DType, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() / 8 * logical.itemsize());
    for c in bytes.chunks_exact(8) {
        let x = f64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let x = if x.is_nan() { 0.0 } else { x };
        match logical {
            DType::Bool => out.push(u8::from(x != 0.0)),
            DType::I8 => out.extend_from_slice(&(x as i8).to_le_bytes()),
            DType::I16 => out.extend_from_slice(&(x as i16).to_le_bytes()),
            DType::I32 => out.extend_from_slice(&(x as i32).to_le_bytes()),
            DType::I64 => out.extend_from_slice(&(x as i64).to_le_bytes()),
            DType::U8 => out.extend_from_slice(&(x as u8).to_le_bytes()),
            DType::U16 => out.extend_from_slice(&(x as u16).to_le_bytes()),
            DType::U32 => out.extend_from_slice(&(x as u32).to_le_bytes()),
            DType::U64 => out.extend_from_slice(&(x as u64).to_le_bytes()),
            _ => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
    out
}

/// `logical` bytes → float64 bytes. Integers beyond 2^53 would lose digits: refused.
pub fn to_f64(logical: DType, bytes: &[u8]) -> Result<Vec<u8>> {
    let size = logical.itemsize().max(1);
    let mut out = Vec::with_capacity(bytes.len() / size * 8);
    const EXACT: u64 = 1 << 53;
    for c in bytes.chunks_exact(size) {
        let x: f64 = match logical {
            DType::Bool => f64::from(u8::from(c[0] != 0)),
            DType::I8 => f64::from(c[0] as i8),
            DType::I16 => f64::from(i16::from_le_bytes([c[0], c[1]])),
            DType::I32 => f64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))),
            DType::U8 => f64::from(c[0]),
            DType::U16 => f64::from(u16::from_le_bytes([c[0], c[1]])),
            DType::U32 => f64::from(u32::from_le_bytes(c.try_into().unwrap_or([0; 4]))),
            DType::I64 => {
                let v = i64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
                if v.unsigned_abs() > EXACT {
                    return Err(too_big(v.to_string()));
                }
                v as f64
            }
            DType::U64 => {
                let v = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
                if v > EXACT {
                    return Err(too_big(v.to_string()));
                }
                v as f64
            }
            _ => return Err(Error::new(ErrorKind::Unexpected, "not a widened type")),
        };
        out.extend_from_slice(&x.to_le_bytes());
    }
    Ok(out)
}

fn too_big(v: String) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "the per-atom integer {v} cannot be stored in H5MD: per-atom integers are kept as \
             float64 (as znh5md reads them), exact only up to 2^53"
        ),
    )
}

/// Sets the elements of a per-atom float64 slab (`count` = frames, atoms, trailing...,
/// starting at atom `atom0`) beyond each frame's atom count `atoms[f]` to NaN.
pub fn nan_padding(f64s: &mut [u8], atoms: &[u64], atom0: u64, count: &[usize]) {
    let width = count.get(1).copied().unwrap_or(0);
    let trailing: usize = count.iter().skip(2).product();
    let per_frame = width * trailing;
    let nan = f64::NAN.to_le_bytes();
    for (f, &n) in atoms.iter().enumerate() {
        let keep = (n.saturating_sub(atom0) as usize).min(width);
        let from = (f * per_frame + keep * trailing) * 8;
        let to = ((f + 1) * per_frame) * 8;
        if let Some(part) = f64s.get_mut(from..to) {
            for c in part.chunks_exact_mut(8) {
                c.copy_from_slice(&nan);
            }
        }
    }
}

/// The part of the box `start..start+count` inside `shape` (empty on some axis → `None`).
pub fn inside(start: &[u64], count: &[u64], shape: &[u64]) -> Option<Vec<u64>> {
    let c: Vec<u64> = start
        .iter()
        .zip(count)
        .zip(shape)
        .map(|((&s, &c), &n)| n.saturating_sub(s).min(c))
        .collect();
    (c.len() == count.len() && c.iter().all(|&x| x > 0)).then_some(c)
}

/// Places `part` (the C-order bytes of the box `start..start+part_count`) into a buffer of
/// the box `start..start+count` filled with `fill` (one element's bytes).
pub fn pad_box(part: &[u8], part_count: &[u64], count: &[u64], fill: &[u8]) -> Vec<u8> {
    let item = fill.len().max(1);
    let total: u64 = count.iter().product();
    let mut out: Vec<u8> = fill
        .iter()
        .copied()
        .cycle()
        .take(total as usize * item)
        .collect();
    let rank = count.len();
    if rank == 0 || part_count.contains(&0) {
        return out;
    }
    let row = part_count[rank - 1] as usize * item;
    let rows: u64 = part_count[..rank - 1].iter().product();
    let mut idx = vec![0u64; rank - 1];
    for r in 0..rows as usize {
        // Flat offset of (idx, 0) in the full box.
        let mut off = 0u64;
        for d in 0..rank - 1 {
            off = off * count[d] + idx[d];
        }
        let off = (off * count[rank - 1]) as usize * item;
        let src = r * row;
        if let (Some(dst), Some(s)) = (out.get_mut(off..off + row), part.get(src..src + row)) {
            dst.copy_from_slice(s);
        }
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < part_count[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// The constraints text as stored: the core's JSON text, JSON-encoded once more (the
/// reference writes `json.dumps(constraints)` into a JSON string column); `""` stays.
pub fn wrap_json(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        serde_json::Value::String(text.to_string()).to_string()
    }
}

/// The inverse of [`wrap_json`]; text that is not a JSON string is taken as it is.
pub fn unwrap_json(stored: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(stored) {
        Ok(serde_json::Value::String(s)) => s,
        _ => stored.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_bools_survive_float64_and_padding_reads_zero() {
        let ints: Vec<u8> = [1_i64, 6, 118]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f = to_f64(DType::I64, &ints).unwrap();
        assert_eq!(from_f64(DType::I64, &f), ints);
        let nan = f64::NAN.to_le_bytes();
        assert_eq!(from_f64(DType::I64, &nan), 0_i64.to_le_bytes());
        assert_eq!(
            from_f64(DType::Bool, &to_f64(DType::Bool, &[1, 0]).unwrap()),
            [1, 0]
        );
        let big = (1_i64 << 60).to_le_bytes();
        assert_eq!(
            to_f64(DType::I64, &big).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn a_box_past_the_dataset_is_padded_with_the_fill() {
        // A 2x2 part of a 3x3 box of u8, fill 9.
        let out = pad_box(&[1, 2, 3, 4], &[2, 2], &[3, 3], &[9]);
        assert_eq!(out, [1, 2, 9, 3, 4, 9, 9, 9, 9]);
        assert_eq!(inside(&[1, 0], &[3, 3], &[2, 2]), Some(vec![1, 2]));
        assert_eq!(inside(&[2, 0], &[1, 3], &[2, 2]), None);
    }

    #[test]
    fn constraints_text_is_encoded_once_more_and_back() {
        let t = r#"[{"name":"FixAtoms","kwargs":{"indices":[0]}}]"#;
        let w = wrap_json(t);
        assert!(w.starts_with('"'), "{w}");
        assert_eq!(unwrap_json(&w), t);
        assert_eq!(wrap_json(""), "");
    }
}
