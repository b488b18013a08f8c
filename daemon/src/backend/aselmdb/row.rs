//! One ase-db row (the JSON `ase.io.jsonio` writes, as ase-db-backends 0.11 stores it) →
//! one `Atoms` row: what `AtomsRow.toatoms()` builds (numbers, positions, cell, pbc, the
//! optional `tags`, `masses`, `initial_magmoms`, `initial_charges`, `momenta` in the order
//! `Atoms.__init__` adds them, constraints, calculator results in `all_properties` order
//! through `SinglePointCalculator`), with the row's `key_value_pairs` and then its `data`
//! as `info` (what fairchem's `AseDBDataset` puts there).
//!
//! Layer: part of the aselmdb backend; JSON parsing is the frames core's
//! ([`crate::backend::frames::json`]).

use asebytes_protocol::codec::{NdArray, Value};

use crate::backend::frames::Frame;
#[cfg(test)]
use crate::backend::frames::atoms::f64_array;
use crate::backend::frames::atoms::{ALL_PROPERTIES, AtomsFrame, calc_value};
use crate::backend::frames::json::revive;

fn take(row: &mut Vec<(String, Value)>, key: &str) -> Option<Value> {
    let i = row.iter().position(|(k, _)| k == key)?;
    Some(row.remove(i).1)
}

/// `np.asarray(x, dtype)` for a numeric value of `n` items per atom.
fn as_f64_array(v: &Value) -> Option<NdArray> {
    crate::backend::frames::atoms::to_float_array(v)
}

fn as_i64_array(v: &Value) -> Option<NdArray> {
    let f = as_f64_array(v)?;
    let ints: Vec<i64> = f.to_vec::<f64>()?.iter().map(|&x| x as i64).collect();
    NdArray::from_elements(f.shape.clone(), &ints).ok()
}

/// Builds the `Atoms` row of one decoded ase-db row.
pub fn to_frame(doc: Value) -> Result<Frame, String> {
    let Value::Map(mut row) = revive(doc) else {
        return Err("the row is not a JSON object".into());
    };
    let numbers = take(&mut row, "numbers")
        .as_ref()
        .and_then(as_i64_array)
        .ok_or("the row has no numbers")?;
    let n = numbers.len() as u64;
    let positions = match take(&mut row, "positions") {
        Some(p) => as_f64_array(&p).ok_or("positions are not numeric")?,
        None => {
            NdArray::from_f64s(vec![n, 3], &vec![0.0; 3 * n as usize]).map_err(|e| e.to_string())?
        }
    };
    let mut frame = AtomsFrame::default();
    if let Some(c) = take(&mut row, "cell") {
        let c = as_f64_array(&c)
            .and_then(|a| a.to_vec::<f64>())
            .ok_or("bad cell")?;
        frame.cell = c.try_into().map_err(|_| "the cell is not 3x3")?;
    }
    if let Some(p) = take(&mut row, "pbc") {
        let p = as_f64_array(&p)
            .and_then(|a| a.to_vec::<f64>())
            .ok_or("bad pbc")?;
        let p: [f64; 3] = p.try_into().map_err(|_| "pbc is not three bools")?;
        frame.pbc = p.map(|x| x != 0.0);
    }
    frame.arrays.push(("numbers".into(), Value::Array(numbers)));
    frame
        .arrays
        .push(("positions".into(), Value::Array(positions)));
    for name in [
        "tags",
        "masses",
        "initial_magmoms",
        "initial_charges",
        "momenta",
    ] {
        let Some(v) = take(&mut row, name) else {
            continue;
        };
        if v == Value::Nil {
            continue;
        }
        let a = if name == "tags" {
            as_i64_array(&v)
        } else {
            as_f64_array(&v)
        };
        frame.arrays.push((
            name.into(),
            Value::Array(a.ok_or_else(|| format!("{name} are not numeric"))?),
        ));
    }
    for prop in ALL_PROPERTIES {
        if let Some(v) = take(&mut row, prop)
            && v != Value::Nil
        {
            frame.calc.push(((*prop).into(), calc_value(prop, v)?));
        }
    }
    if let Some(Value::List(cs)) = take(&mut row, "constraints") {
        frame.constraints = cs;
    }
    for part in ["key_value_pairs", "data"] {
        if let Some(Value::Map(entries)) = take(&mut row, part) {
            for (k, v) in entries {
                match frame.info.iter_mut().find(|(have, _)| *have == k) {
                    Some(slot) => slot.1 = v,
                    None => frame.info.push((k, v)),
                }
            }
        }
    }
    Ok(frame.into_frame())
}

/// A float64 array, for tests.
#[cfg(test)]
fn floats(shape: Vec<u64>, v: &[f64]) -> Value {
    f64_array(shape, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::frames::json;

    #[test]
    fn an_ase_db_row_becomes_an_atoms_row() {
        let doc = json::parse(
            r#"{"numbers": {"__ndarray__": [[2], "int64", [1, 8]]},
                "positions": {"__ndarray__": [[2, 3], "float64", [0, 0, 0, 1, 0, 0]]},
                "cell": {"__ndarray__": [[3, 3], "float64", [2, 0, 0, 0, 2, 0, 0, 0, 2]]},
                "pbc": {"__ndarray__": [[3], "bool", [true, true, false]]},
                "energy": -1.5, "forces": {"__ndarray__": [[2, 3], "float64", [1, 2, 3, 4, 5, 6]]},
                "tags": {"__ndarray__": [[2], "int64", [0, 1]]}, "unique_id": "x", "ctime": 1.0,
                "constraints": [{"name": "FixAtoms", "kwargs": {"indices": [0]}}],
                "key_value_pairs": {"split": "train"}, "data": {"ref": [1, 2], "split": "val"}}"#,
        )
        .unwrap();
        let f = to_frame(doc).unwrap();
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "cell",
                "pbc",
                "arrays.numbers",
                "arrays.positions",
                "arrays.tags",
                "info.split",
                "info.ref",
                "calc.energy",
                "calc.forces",
                "constraints"
            ]
        );
        assert_eq!(
            f[0].1,
            floats(vec![3, 3], &[2., 0., 0., 0., 2., 0., 0., 0., 2.])
        );
        assert_eq!(f[5].1, Value::Str("val".into()));
    }
}
