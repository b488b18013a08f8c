//! `info.connectivity` as H5MD connectivity: `/connectivity/<g>/bonds` (`value` int32
//! `(frames, max_bonds, 2)`, fill -1) and, once any bond has an order,
//! `/connectivity/<g>/bond_orders` (`value` float64 `(frames, max_bonds)`, fill NaN), each
//! with `step`/`time` and a `particles_group` reference to `/particles/<g>`, as the
//! reference writes them. The columnar core sees one JSON string column: `[[i, j], ...]`
//! or `[[i, j, order], ...]` per frame, `""` where a frame has none.
//!
//! Layer: part of [`super::engine`] (which keeps the undo log around these calls).

use hdf5::Group;
use hdf5::ObjectReference1;
use serde_json::Value as Json;

use super::tree;
use crate::backend::columnar::engine::DType;
use crate::backend::hdf5::dataset::{Column, Compression, CreateSpec};
use crate::backend::hdf5::file::h5err;
use crate::backend::{Error, ErrorKind, Result};

/// Element paths of the two datasets, for group `g`.
pub fn paths(g: &str) -> (String, String) {
    (
        format!("connectivity/{g}/bonds"),
        format!("connectivity/{g}/bond_orders"),
    )
}

/// One frame's bonds: pairs and their orders (NaN where a bond has none).
#[derive(Debug, Default, PartialEq)]
pub struct Frame {
    /// `(i, j)` atom indices.
    pub pairs: Vec<[i32; 2]>,
    /// Bond orders, one per pair.
    pub orders: Vec<f64>,
}

impl Frame {
    /// Whether any bond has an order.
    pub fn has_orders(&self) -> bool {
        self.orders.iter().any(|o| !o.is_nan())
    }
}

fn bad(text: &str) -> Error {
    let shown: String = text.chars().take(80).collect();
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "info.connectivity must be a list of (i, j) or (i, j, order) with atom indices \
             i, j >= 0; got {shown}"
        ),
    )
}

/// Parses one frame's JSON text (`""` = no bonds).
pub fn parse(text: &str) -> Result<Frame> {
    let mut f = Frame::default();
    if text.is_empty() {
        return Ok(f);
    }
    let Ok(Json::Array(items)) = serde_json::from_str::<Json>(text) else {
        return Err(bad(text));
    };
    for it in items {
        let Json::Array(t) = it else {
            return Err(bad(text));
        };
        let idx = |v: Option<&Json>| {
            v.and_then(Json::as_i64)
                .and_then(|x| i32::try_from(x).ok())
                .filter(|x| *x >= 0)
        };
        let (Some(i), Some(j)) = (idx(t.first()), idx(t.get(1))) else {
            return Err(bad(text));
        };
        let order = match t.get(2) {
            None => f64::NAN,
            Some(v) => v.as_f64().ok_or_else(|| bad(text))?,
        };
        if t.len() > 3 {
            return Err(bad(text));
        }
        f.pairs.push([i, j]);
        f.orders.push(order);
    }
    Ok(f)
}

/// One frame as JSON text (`""` for no bonds).
pub fn render(f: &Frame) -> String {
    if f.pairs.is_empty() {
        return String::new();
    }
    let items: Vec<Json> = f
        .pairs
        .iter()
        .zip(&f.orders)
        .map(|([i, j], o)| {
            let mut v = vec![Json::from(*i), Json::from(*j)];
            if let Some(n) = serde_json::Number::from_f64(*o) {
                v.push(Json::Number(n));
            }
            Json::Array(v)
        })
        .collect();
    Json::Array(items).to_string()
}

/// Creates one of the two elements with `frames` rows and `width` bonds.
pub fn create(
    root: &Group,
    g: &str,
    orders: bool,
    frames: u64,
    width: u64,
    chunk_frames: u64,
    compression: Compression,
) -> Result<Column> {
    let (bp, op) = paths(g);
    let path = if orders { op } else { bp };
    let grp = tree::require_group(root, &path)?;
    let (elem, mut shape, mut chunk) = if orders {
        (
            DType::F64,
            vec![frames, width],
            vec![chunk_frames, width.max(1)],
        )
    } else {
        (
            DType::I32,
            vec![frames, width, 2],
            vec![chunk_frames, width.max(1), 2],
        )
    };
    chunk[0] = chunk[0].max(1);
    let spec = CreateSpec {
        elem,
        shape: shape.drain(..).map(|x| x as usize).collect(),
        chunk: chunk.into_iter().map(|x| x as usize).collect(),
        compression,
    };
    let col = if orders {
        Column::create(root, &format!("{path}/value"), &spec)?
    } else {
        create_bonds_value(root, &path, &spec)?
    };
    tree::write_step_time(&grp)?;
    let r: ObjectReference1 = root
        .reference(&format!("particles/{g}"))
        .map_err(h5err("reference the particles group"))?;
    if !grp
        .attr_names()
        .map_err(h5err("list attributes"))?
        .iter()
        .any(|n| n == "particles_group")
    {
        grp.new_attr::<ObjectReference1>()
            .create("particles_group")
            .and_then(|a| a.write_scalar(&r))
            .map_err(h5err("write particles_group"))?;
    }
    Ok(col)
}

/// Bonds use -1 as fill (the layout's generic int fill is 0, a valid atom index).
fn create_bonds_value(root: &Group, path: &str, spec: &CreateSpec) -> Result<Column> {
    let grp = root.group(path).map_err(h5err("open the bonds group"))?;
    let mut b = grp.new_dataset::<i32>();
    b = b.chunk(spec.chunk.clone());
    if let Compression::Gzip(level) = spec.compression {
        b = b.deflate(level);
    }
    b.fill_value(-1_i32)
        .shape(hdf5::SimpleExtents::resizable(&spec.shape))
        .create("value")
        .map_err(h5err("create connectivity bonds"))?;
    Column::open(root, &format!("{path}/value"))
}

/// Bytes of `frames` rows of bonds (`width` wide) and, if given, orders, for a write.
pub fn encode(frames: &[Frame], width: usize) -> (Vec<u8>, Vec<u8>) {
    let mut b = Vec::with_capacity(frames.len() * width * 8);
    let mut o = Vec::with_capacity(frames.len() * width * 8);
    for f in frames {
        for k in 0..width {
            let p = f.pairs.get(k).copied().unwrap_or([-1, -1]);
            b.extend_from_slice(&p[0].to_le_bytes());
            b.extend_from_slice(&p[1].to_le_bytes());
            let x = f.orders.get(k).copied().unwrap_or(f64::NAN);
            o.extend_from_slice(&x.to_le_bytes());
        }
    }
    (b, o)
}

/// Frames from the bytes of `count` rows of bonds (`width` wide) and optional orders.
pub fn decode(bonds: &[u8], orders: Option<&[u8]>, count: usize, width: usize) -> Vec<Frame> {
    let mut out = Vec::with_capacity(count);
    for r in 0..count {
        let mut f = Frame::default();
        for k in 0..width {
            let at = (r * width + k) * 8;
            let Some(pair) = bonds.get(at..at + 8) else {
                break;
            };
            let i = i32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]);
            let j = i32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]);
            if i < 0 || j < 0 {
                continue;
            }
            let o = orders
                .and_then(|o| o.get(at..at + 8))
                .map_or(f64::NAN, |c| {
                    f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))
                });
            f.pairs.push([i, j]);
            f.orders.push(o);
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectivity_text_round_trips_through_bond_rows() {
        let f = parse("[[0, 1], [1, 2, 1.5]]").unwrap();
        assert_eq!(f.pairs, vec![[0, 1], [1, 2]]);
        assert!(f.has_orders());
        let (b, o) = encode(std::slice::from_ref(&f), 3);
        let back = decode(&b, Some(&o), 1, 3);
        assert_eq!(render(&back[0]), "[[0,1],[1,2,1.5]]");
        assert_eq!(render(&Frame::default()), "");
        assert!(parse("[[0]]").is_err());
        assert!(parse("[[-1, 2]]").is_err());
        assert!(parse("{\"a\": 1}").is_err());
    }
}
