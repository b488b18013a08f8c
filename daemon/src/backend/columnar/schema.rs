//! Columns: name, element type, shape, per-atom or per-frame, how values come back, and
//! the rule that decides all that for a key seen for the first time.
//!
//! Part of the columnar core. Columns are kept in insertion order (the group attribute
//! `columns`); per-atom ones are also listed sorted in `per_atom_columns`.
//!
//! # The per-atom rule
//! A new column is per-atom iff every value of the key in the batch is a numpy array with
//! `ndim ≥ 1` and `shape[0]` equal to its frame's atom count, **and** the key is
//! `arrays.*` or one of the calculator's per-atom results ([`PER_ATOM_CALC`]). Everything
//! else (`cell`, `pbc`, `info.*`, other `calc.*` such as `calc.stress` (6,) on a 6-atom
//! frame) is per-frame. The reference decides on shape alone and so corrupts `calc.stress`
//! on 6-atom frames.
//!
//! A frame's atom count is `len(arrays.positions)`, else `len(arrays.numbers)`, else the
//! first axis of its first `arrays.*` array, else 0.

use asebytes_protocol::codec::Value;

use super::convert::{self, Class};
use super::engine::DType;
use crate::backend::{Error, ErrorKind, Result};

/// `calc.*` results that are per-atom when their first axis is the atom count.
pub const PER_ATOM_CALC: &[&str] = &[
    "calc.forces",
    "calc.energies",
    "calc.stresses",
    "calc.magmoms",
    "calc.charges",
];

/// How a column's values come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Python `float`/`int`/`bool`/`complex`.
    Py,
    /// numpy scalars.
    Np,
    /// numpy arrays.
    Nd,
    /// JSON text (`str`, `list`, `dict`, `None`, mixed Python scalars).
    Json,
}

impl Kind {
    /// The name stored in the `asebytes_rs.kinds` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Py => "py",
            Kind::Np => "np",
            Kind::Nd => "nd",
            Kind::Json => "json",
        }
    }

    /// The kind named by [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "py" => Kind::Py,
            "np" => Kind::Np,
            "nd" => Kind::Nd,
            "json" => Kind::Json,
            _ => return None,
        })
    }

    /// For messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Py => "Python scalar",
            Kind::Np => "numpy scalar",
            Kind::Nd => "numpy array",
            Kind::Json => "str/list/dict",
        }
    }

    /// The kind a file without our attribute implies (what the reference writes):
    /// strings are JSON, 0-d float64 and bool columns Python numbers, other 0-d columns
    /// numpy scalars, the rest arrays.
    pub fn infer(dtype: DType, shape: &[u64], per_atom: bool) -> Kind {
        match dtype {
            DType::Str => Kind::Json,
            _ if per_atom || !shape.is_empty() => Kind::Nd,
            DType::F64 | DType::Bool => Kind::Py,
            _ => Kind::Np,
        }
    }
}

/// One column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The flat key, also the array name.
    pub name: String,
    /// Element type ([`DType::Str`] for JSON columns).
    pub dtype: DType,
    /// Per-frame item shape, or the trailing shape (after the atom axis) of a per-atom column.
    pub shape: Vec<u64>,
    /// Whether the column is per-atom.
    pub per_atom: bool,
    /// How values come back.
    pub kind: Kind,
    /// Whether a presence mask array exists (see [`mask_name`]).
    pub mask: bool,
}

/// The presence mask array of a column: `uint8` per frame, 0 = decide by the stored
/// value (NaN / `""` = missing, anything else present), 1 = present, 2 = missing. Created
/// only when the stored value alone would read wrong (a missing int/bool, a present
/// all-NaN float). The reference ignores `_`-prefixed arrays.
pub fn mask_name(column: &str) -> String {
    format!("_present.{column}")
}

/// Mask codes.
pub mod mask {
    /// Decide by the stored value.
    pub const BY_VALUE: u8 = 0;
    /// Present.
    pub const PRESENT: u8 = 1;
    /// Missing.
    pub const MISSING: u8 = 2;
}

/// Whether a key names something the layout itself stores (refused as a column name).
pub fn reserved(key: &str) -> bool {
    key.starts_with('_') || key.contains('/') || key.is_empty() || key == "zarr.json"
}

/// The atom count of a frame from its values (see the module docs).
pub fn atom_count(fields: &[(String, Value)]) -> u64 {
    let first_axis = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| match v {
                Value::Array(a) => a.shape.first().copied(),
                _ => None,
            })
    };
    first_axis("arrays.positions")
        .or_else(|| first_axis("arrays.numbers"))
        .or_else(|| {
            fields.iter().find_map(|(k, v)| match v {
                Value::Array(a) if k.starts_with("arrays.") => a.shape.first().copied(),
                _ => None,
            })
        })
        .unwrap_or(0)
}

/// Whether a key may be per-atom at all.
fn per_atom_name(key: &str) -> bool {
    key.starts_with("arrays.") || PER_ATOM_CALC.contains(&key)
}

/// The column for a key seen for the first time, from every value it has in the batch
/// (`(value, atom count of its frame)`); refuses values no single column can hold.
pub fn infer_column(key: &str, values: &[(&Value, u64)]) -> Result<Column> {
    if reserved(key) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "key '{key}' is reserved by the columnar layout (keys must not start with '_' or contain '/')"
            ),
        ));
    }
    let classes: Vec<Class> = values
        .iter()
        .map(|(v, _)| convert::classify(key, v))
        .collect::<Result<_>>()?;
    let json = Column {
        name: key.to_string(),
        dtype: DType::Str,
        shape: Vec::new(),
        per_atom: false,
        kind: Kind::Json,
        mask: false,
    };
    let Some(first) = classes.first() else {
        return Ok(json);
    };
    let all_py_or_json = classes
        .iter()
        .all(|c| matches!(c, Class::Py(_) | Class::Json));
    if all_py_or_json {
        return Ok(match first {
            Class::Py(d) if classes.iter().all(|c| c == first) => Column {
                dtype: *d,
                kind: Kind::Py,
                ..json
            },
            _ => json,
        });
    }
    // Values that do not share one numpy type form a JSON column, which keeps each
    // value's type (see `convert`).
    match first {
        Class::Np(d) if classes.iter().all(|c| c == first) => Ok(Column {
            dtype: *d,
            kind: Kind::Np,
            ..json
        }),
        Class::Nd(d, shape) => {
            let mut shapes = Vec::with_capacity(classes.len());
            for c in &classes {
                match c {
                    Class::Nd(cd, s) if cd == d => shapes.push(s),
                    _ => return Ok(json),
                }
            }
            let per_atom = per_atom_name(key)
                && shapes
                    .iter()
                    .zip(values)
                    .all(|(s, (_, n))| s.first() == Some(n))
                && shapes.iter().all(|s| s[1..] == shape[1..]);
            if per_atom {
                return Ok(Column {
                    dtype: *d,
                    shape: shape[1..].to_vec(),
                    per_atom: true,
                    kind: Kind::Nd,
                    ..json
                });
            }
            if shapes.iter().any(|s| *s != shape) {
                return Ok(json);
            }
            Ok(Column {
                dtype: *d,
                shape: shape.clone(),
                kind: Kind::Nd,
                ..json
            })
        }
        _ => Ok(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asebytes_protocol::codec::NdArray;

    fn f64s(shape: Vec<u64>) -> Value {
        let n: u64 = shape.iter().product();
        Value::Array(NdArray::from_f64s(shape, &vec![1.0; n as usize]).unwrap())
    }

    #[test]
    fn stress_on_six_atoms_is_per_frame_and_forces_per_atom() {
        let stress = f64s(vec![6]);
        let c = infer_column("calc.stress", &[(&stress, 6)]).unwrap();
        assert!(!c.per_atom);
        assert_eq!(c.shape, vec![6]);
        let forces = f64s(vec![6, 3]);
        let c = infer_column("calc.forces", &[(&forces, 6)]).unwrap();
        assert!(c.per_atom);
        assert_eq!(c.shape, vec![3]);
        let pos = f64s(vec![2, 3]);
        let c = infer_column("arrays.positions", &[(&pos, 2)]).unwrap();
        assert!(c.per_atom);
    }

    #[test]
    fn mixed_python_scalars_become_json_and_ints_stay_ints() {
        let (a, b) = (Value::Int(1), Value::Float(2.5));
        let c = infer_column("info.x", &[(&a, 0), (&b, 0)]).unwrap();
        assert_eq!(c.kind, Kind::Json);
        let c = infer_column("info.x", &[(&a, 0)]).unwrap();
        assert_eq!((c.kind, c.dtype), (Kind::Py, DType::I64));
    }

    #[test]
    fn shape_or_type_changes_and_bytes_make_a_json_column() {
        let (a, b) = (f64s(vec![2]), f64s(vec![3]));
        let c = infer_column("info.v", &[(&a, 0), (&b, 0)]).unwrap();
        assert_eq!(c.kind, Kind::Json);
        let c = infer_column("info.b", &[(&Value::Bin(vec![1]), 0)]).unwrap();
        assert_eq!(c.kind, Kind::Json);
        let c = infer_column("info.m", &[(&a, 0), (&Value::Int(1), 0)]).unwrap();
        assert_eq!(c.kind, Kind::Json);
        let (p2, p3) = (f64s(vec![2, 3]), f64s(vec![3, 3]));
        let c = infer_column("arrays.positions", &[(&p2, 2), (&p3, 2)]).unwrap();
        assert_eq!((c.kind, c.per_atom), (Kind::Json, false));
    }
}
