//! `ColumnMapping` (`asebytes-behaviour.md` §4.7): which dataset column becomes which key
//! of an `Atoms` row, the built-in `COLABFIT` and `OPTIMADE` mappings, and
//! `ColumnMapping.apply` of the reference, split in two: [`Mapping::plan`] decides once per
//! dataset (from its columns) which key comes from which column, so a read of a few keys
//! decodes only their columns, and [`Output::value`] converts one cell.
//!
//! Layer: inside [`super`] (the hub backend).

use asebytes_protocol::codec::{NdArray, Value};
use serde::Deserialize;

use super::values::{Dtype, asarray};
use crate::backend::frames::elements::atomic_number;
use crate::backend::{Error, ErrorKind, Result};

/// A column mapping, as the Python `ColumnMapping` sends it (JSON; the dict fields as
/// `[key, column]` pairs so their order survives).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Column of `arrays.positions`.
    pub positions: String,
    /// Column of `arrays.numbers`.
    pub numbers: String,
    /// Column of `cell` (zeros when `None` or null).
    #[serde(default)]
    pub cell: Option<String>,
    /// Column of `pbc` (`[False]*3` when `None` or null).
    #[serde(default)]
    pub pbc: Option<String>,
    /// `calc.<key>` from column.
    #[serde(default)]
    pub calc: Vec<(String, String)>,
    /// `info.<key>` from column.
    #[serde(default)]
    pub info: Vec<(String, String)>,
    /// `arrays.<key>` from column.
    #[serde(default)]
    pub arrays: Vec<(String, String)>,
    /// The numbers column holds element symbols.
    #[serde(default)]
    pub species_are_strings: bool,
    /// The pbc column holds OPTIMADE `dimension_types` (0/1).
    #[serde(default)]
    pub pbc_are_dimension_types: bool,
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, c)| (k.to_string(), c.to_string()))
        .collect()
}

impl Mapping {
    /// `COLABFIT`.
    pub fn colabfit() -> Self {
        Self {
            positions: "positions".into(),
            numbers: "atomic_numbers".into(),
            cell: Some("cell".into()),
            pbc: Some("pbc".into()),
            calc: pairs(&[
                ("energy", "energy"),
                ("forces", "atomic_forces"),
                ("stress", "cauchy_stress"),
            ]),
            info: Vec::new(),
            arrays: Vec::new(),
            species_are_strings: false,
            pbc_are_dimension_types: false,
        }
    }

    /// `OPTIMADE`.
    pub fn optimade() -> Self {
        Self {
            positions: "cartesian_site_positions".into(),
            numbers: "species_at_sites".into(),
            cell: Some("lattice_vectors".into()),
            pbc: Some("dimension_types".into()),
            calc: pairs(&[
                ("energy", "energy"),
                ("forces", "forces"),
                ("stress", "stress_tensor"),
            ]),
            info: Vec::new(),
            arrays: Vec::new(),
            species_are_strings: true,
            pbc_are_dimension_types: true,
        }
    }

    /// A mapping from its JSON form (the `mapping=` option).
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("option mapping is not a valid ColumnMapping: {e}"),
            )
        })
    }

    /// Which key each column of a dataset with `columns` (in schema order) becomes, in the
    /// order the reference's `apply` writes them. A missing positions or numbers column is
    /// `NotFound` naming the columns there are; other mapped columns that are missing are
    /// left out (as the reference does).
    pub fn plan(&self, columns: &[String]) -> Result<Vec<Output>> {
        let has = |c: &str| columns.iter().any(|x| x == c);
        for required in [&self.positions, &self.numbers] {
            if !has(required) {
                let mut available = columns.to_vec();
                available.sort();
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "Required column '{required}' not found in dataset. Available \
                         columns: {available:?}. Check that the column mapping matches the \
                         dataset schema."
                    ),
                ));
            }
        }
        let mut out = vec![
            Output::new("arrays.positions", Some(&self.positions), Kind::Positions),
            Output::new("arrays.numbers", Some(&self.numbers), Kind::Numbers),
        ];
        let cell = self.cell.as_deref().filter(|c| has(c));
        let pbc = self.pbc.as_deref().filter(|c| has(c));
        out.push(Output::new("cell", cell, Kind::Cell));
        out.push(Output::new("pbc", pbc, Kind::Pbc));
        let groups = [
            ("calc", &self.calc, Kind::Calc),
            ("arrays", &self.arrays, Kind::Array),
            ("info", &self.info, Kind::Verbatim),
        ];
        for (prefix, map, kind) in groups {
            for (key, col) in map.iter().filter(|(_, c)| has(c)) {
                out.push(Output::new(&format!("{prefix}.{key}"), Some(col), kind));
            }
        }
        let consumed = self.consumed();
        for col in columns.iter().filter(|c| !consumed.contains(&c.as_str())) {
            out.push(Output::new(
                &format!("info.{col}"),
                Some(col),
                Kind::Verbatim,
            ));
        }
        // A key written twice keeps its first position and last value, as a dict does.
        let mut unique: Vec<Output> = Vec::with_capacity(out.len());
        for o in out {
            match unique.iter_mut().find(|u| u.key == o.key) {
                Some(u) => *u = o,
                None => unique.push(o),
            }
        }
        // The row layout every other store serves (`atoms_to_dict`'s order): cell, pbc,
        // arrays (numbers, positions first), info, calc.
        unique.sort_by_key(|o| o.kind.rank());
        Ok(unique)
    }

    fn consumed(&self) -> Vec<&str> {
        let mut c = vec![self.positions.as_str(), self.numbers.as_str()];
        c.extend(self.cell.as_deref());
        c.extend(self.pbc.as_deref());
        for map in [&self.calc, &self.arrays, &self.info] {
            c.extend(map.iter().map(|(_, col)| col.as_str()));
        }
        c
    }
}

/// How a column becomes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Positions,
    Numbers,
    Cell,
    Pbc,
    Calc,
    Array,
    Verbatim,
}

impl Kind {
    fn rank(self) -> u8 {
        match self {
            Kind::Cell => 0,
            Kind::Pbc => 1,
            Kind::Numbers => 2,
            Kind::Positions => 3,
            Kind::Array => 4,
            Kind::Verbatim => 5,
            Kind::Calc => 6,
        }
    }
}

/// One key of a mapped row and the column it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The row key (`arrays.positions`, `calc.energy`, `info.formula`).
    pub key: String,
    /// Its column; `None` for a cell or pbc that has no column (filled with defaults).
    pub column: Option<String>,
    kind: Kind,
}

impl Output {
    fn new(key: &str, column: Option<&str>, kind: Kind) -> Self {
        Self {
            key: key.to_string(),
            column: column.map(str::to_string),
            kind,
        }
    }

    /// The value of this key given its column's cell (`Nil` when it has no column), with
    /// the conversions of the reference's `ColumnMapping.apply`.
    pub fn value(
        &self,
        raw: Value,
        species_are_strings: bool,
        dimension_types: bool,
    ) -> Result<Value> {
        let bad = |what: &str| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "column '{}' cannot become {}: {what}",
                    self.column.as_deref().unwrap_or(""),
                    self.key
                ),
            )
        };
        let array = |v: &Value, d: Dtype| {
            asarray(v, d)
                .map(Value::Array)
                .ok_or_else(|| bad(&format!("not a numeric array ({})", v.type_name())))
        };
        match self.kind {
            Kind::Positions => array(&raw, Dtype::F64),
            Kind::Numbers if species_are_strings => symbols(&raw).map_err(|e| bad(&e)),
            Kind::Numbers => array(&raw, Dtype::I64),
            Kind::Cell if raw == Value::Nil => Ok(zeros_cell()),
            Kind::Cell => array(&raw, Dtype::F64),
            Kind::Pbc if raw == Value::Nil => Ok(bools(&[false; 3])),
            Kind::Pbc if dimension_types => match &raw {
                Value::List(items) => {
                    let flags: Option<Vec<bool>> = items.iter().map(truthy).collect();
                    flags
                        .map(|f| bools(&f))
                        .ok_or_else(|| bad("not 0/1 dimension types"))
                }
                other => Err(bad(&format!("not a list ({})", other.type_name()))),
            },
            Kind::Pbc => array(&raw, Dtype::Bool),
            // `np.asarray(list)`; a list numpy cannot make numeric stays a list.
            Kind::Calc => Ok(match &raw {
                Value::List(_) => asarray(&raw, Dtype::Auto).map_or(raw, Value::Array),
                _ => raw,
            }),
            Kind::Array => array(&raw, Dtype::Auto),
            Kind::Verbatim => Ok(raw),
        }
    }
}

/// Python's `bool(d)` for a dimension type.
fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Float(x) => Some(*x != 0.0),
        _ => None,
    }
}

fn bools(flags: &[bool]) -> Value {
    NdArray::from_elements(vec![flags.len() as u64], flags).map_or(Value::Nil, Value::Array)
}

fn zeros_cell() -> Value {
    NdArray::from_f64s(vec![3, 3], &[0.0; 9]).map_or(Value::Nil, Value::Array)
}

/// `[ase.data.atomic_numbers[s] for s in raw]` as an int64 array.
fn symbols(raw: &Value) -> std::result::Result<Value, String> {
    let Value::List(items) = raw else {
        return Err(format!("not a list of symbols ({})", raw.type_name()));
    };
    let numbers = items
        .iter()
        .map(|s| match s {
            Value::Str(sym) => atomic_number(sym).ok_or_else(|| format!("unknown element {sym:?}")),
            other => Err(format!("not a symbol ({})", other.type_name())),
        })
        .collect::<std::result::Result<Vec<i64>, String>>()?;
    NdArray::from_elements(vec![numbers.len() as u64], &numbers)
        .map(Value::Array)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plan_maps_then_sends_every_unmapped_column_to_info() {
        let plan = Mapping::colabfit()
            .plan(&cols(&[
                "energy",
                "positions",
                "atomic_numbers",
                "formula",
                "pbc",
            ]))
            .unwrap();
        let keys: Vec<&str> = plan.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "cell",
                "pbc",
                "arrays.numbers",
                "arrays.positions",
                "info.formula",
                "calc.energy"
            ]
        );
        assert_eq!(plan[0].column, None);
    }

    #[test]
    fn a_missing_required_column_names_the_columns_there_are() {
        let e = Mapping::colabfit().plan(&cols(&["pos", "z"])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("'positions'"), "{}", e.message);
        assert!(e.message.contains("[\"pos\", \"z\"]"), "{}", e.message);
    }

    #[test]
    fn optimade_symbols_and_dimension_types_convert() {
        let m = Mapping::optimade();
        let plan = m
            .plan(&cols(&[
                "cartesian_site_positions",
                "species_at_sites",
                "dimension_types",
            ]))
            .unwrap();
        let numbers = plan[2]
            .value(
                Value::List(vec![Value::Str("Cu".into()), Value::Str("O".into())]),
                true,
                true,
            )
            .unwrap();
        assert_eq!(
            numbers.as_array().unwrap().to_vec::<i64>().unwrap(),
            [29, 8]
        );
        let pbc = plan[1]
            .value(
                Value::List(vec![Value::Int(1), Value::Int(0), Value::Int(1)]),
                true,
                true,
            )
            .unwrap();
        assert_eq!(
            pbc.as_array().unwrap().to_vec::<bool>().unwrap(),
            [true, false, true]
        );
        let bad = plan[2].value(Value::List(vec![Value::Str("Xy".into())]), true, true);
        assert!(bad.unwrap_err().message.contains("Xy"));
    }

    #[test]
    fn json_keeps_dict_order_and_refuses_unknown_fields() {
        let m = Mapping::from_json(
            r#"{"positions":"p","numbers":"z","calc":[["forces","f"],["energy","e"]]}"#,
        )
        .unwrap();
        assert_eq!(m.calc[0].0, "forces");
        assert!(Mapping::from_json(r#"{"positions":"p","numbers":"z","x":1}"#).is_err());
    }
}
