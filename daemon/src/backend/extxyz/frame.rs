//! One extxyz frame's bytes → one `Atoms` row, as ASE 3.29's `_read_xyz_frame` and
//! `set_calc_and_arrays` build it: `pbc` from the comment line (else all true when a
//! `Lattice` is given), cell = `Lattice.T`, symbols capitalised and `Z` winning over them,
//! `move_mask` → `FixAtoms` / `FixCartesian`, per-atom columns and per-config info keys that
//! are calculator properties → calculator results (a 3x3 stress in Voigt order), the rest
//! → `arrays.*` and `info.*`.
//!
//! Layer: part of the extxyz backend, above the tokenizer ([`super::key_val`]) and the
//! columns ([`super::properties`]); an error names the frame and its line.

use asebytes_protocol::codec::{NdArray, Value};

use super::key_val;
use super::properties::{self, Column, Columns};
use super::scan::atom_count;
use crate::backend::frames::Frame;
use crate::backend::frames::atoms::{
    ALL_PROPERTIES, AtomsFrame, PER_CONFIG, calc_value, constraint, f64_array, voigt,
};
use crate::backend::frames::elements::{atomic_number, capitalize};

/// Why a frame could not be read: the line (0-based within the frame) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// Line within the frame (0 = the atom count).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

fn at(line: usize) -> impl Fn(String) -> FrameError {
    move |message| FrameError { line, message }
}

fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => other.as_f64().map(|x| x != 0.0),
    }
}

/// `atoms.pbc = value` (numpy broadcasting of one value or three).
fn pbc_of(v: &Value) -> Option<[bool; 3]> {
    let three = |items: Vec<bool>| <[bool; 3]>::try_from(items).ok();
    match v {
        Value::List(items) => three(items.iter().map(truthy).collect::<Option<Vec<_>>>()?),
        Value::Array(a) if a.shape.len() == 1 => {
            three(a.to_f64s()?.iter().map(|&x| x != 0.0).collect())
        }
        Value::Array(a) if a.shape.is_empty() => Some([a.to_f64s()?.first().copied()? != 0.0; 3]),
        other => Some([truthy(other)?; 3]),
    }
}

fn take(info: &mut Vec<(String, Value)>, key: &str) -> Option<Value> {
    let i = info.iter().position(|(k, _)| k == key)?;
    Some(info.remove(i).1)
}

/// Parses the frame held in `text` (complete lines, as the index delimits it).
pub fn parse(text: &str) -> Result<Frame, FrameError> {
    let lines: Vec<&str> = text.lines().collect();
    let natoms = lines
        .first()
        .and_then(|l| atom_count(l.as_bytes()))
        .ok_or_else(|| at(0)("expected the atom count".into()))? as usize;
    if lines.len() < natoms + 2 {
        return Err(at(lines.len())(format!(
            "frame has {} atoms, expected {natoms}",
            lines.len().saturating_sub(2)
        )));
    }
    let comment = lines[1].trim();
    let vec_lines = &lines[natoms + 2..];
    let nvec = vec_lines.len();
    let mut info = if nvec > 0 {
        vec![("comment".to_string(), Value::Str(comment.to_string()))]
    } else if comment.is_empty() {
        Vec::new()
    } else {
        key_val::parse(comment).map_err(at(1))?
    };

    let mut pbc = [false; 3];
    if let Some(p) = take(&mut info, "pbc") {
        pbc = pbc_of(&p).ok_or_else(|| at(1)(format!("pbc={p:?} is not one or three bools")))?;
    } else if info.iter().any(|(k, _)| k == "Lattice") {
        pbc = [true; 3];
    }
    let mut cell = [0.0; 9];
    if let Some(Value::Array(l)) = take(&mut info, "Lattice") {
        let v = l
            .to_f64s()
            .ok_or_else(|| at(1)("Lattice is not numeric".into()))?;
        // cell = Lattice.T
        for i in 0..3 {
            for j in 0..3 {
                cell[i * 3 + j] = v[j * 3 + i];
            }
        }
    }
    let props = match take(&mut info, "Properties") {
        None => properties::DEFAULT.to_string(),
        Some(Value::Str(s)) => s,
        Some(other) => return Err(at(1)(format!("Properties is not a string: {other:?}"))),
    };
    let mut cols = Columns::new(properties::parse(&props).map_err(at(1))?, natoms);
    for (i, line) in lines[2..natoms + 2].iter().enumerate() {
        cols.push_line(line).map_err(at(i + 2))?;
    }

    if nvec > 0 {
        for (ln, line) in vec_lines.iter().enumerate() {
            let toks: Vec<&str> = line.split_whitespace().collect();
            let name = format!("VEC{}", ln + 1);
            if toks.first() != Some(&name.as_str()) {
                return Err(at(natoms + 2 + ln)(format!(
                    "Expected {name}, got {:?}",
                    toks.first()
                )));
            }
            let v: Option<Vec<f64>> = toks[1..].iter().map(|t| key_val::parse_float(t)).collect();
            match v {
                Some(v) if v.len() == 3 => cell[ln * 3..ln * 3 + 3].copy_from_slice(&v),
                _ => return Err(at(natoms + 2 + ln)(format!("bad cell vector {line:?}"))),
            }
            pbc[ln] = true;
        }
        if nvec != pbc.iter().filter(|&&b| b).count() {
            return Err(at(natoms + 2)("Problem with number of cell vectors".into()));
        }
    }
    assemble(cols, natoms, cell, pbc, info).map_err(at(2))
}

fn column_array(col: Column, natoms: usize, ncols: usize) -> Result<NdArray, String> {
    let shape = if ncols == 1 {
        vec![natoms as u64]
    } else {
        vec![natoms as u64, ncols as u64]
    };
    col.into_array(shape)
}

fn assemble(
    cols: Columns,
    n: usize,
    cell: [f64; 9],
    pbc: [bool; 3],
    mut info: Vec<(String, Value)>,
) -> Result<Frame, String> {
    let props = cols.properties().to_vec();
    let mut named: Vec<(String, usize, Column)> = props
        .iter()
        .zip(cols.data)
        .map(|(p, c)| (p.ase_name.clone(), p.cols, c))
        .collect();
    let mut pop = |name: &str| {
        let i = named.iter().position(|(k, _, _)| k == name)?;
        Some(named.remove(i))
    };
    let numbers_col = pop("numbers");
    let symbols_col = pop("symbols");
    let numbers: Vec<i64> = match (numbers_col, symbols_col) {
        (Some((_, _, c)), _) => c
            .to_f64()
            .ok_or("Z is not numeric")?
            .iter()
            .map(|&z| z as i64)
            .collect(),
        (None, Some((_, _, Column::Str(s)))) => s
            .iter()
            .map(|s| {
                let sym = capitalize(s);
                atomic_number(&sym).ok_or_else(|| format!("unknown chemical symbol {sym:?}"))
            })
            .collect::<Result<_, _>>()?,
        (None, Some(_)) => return Err("species is not a string column".into()),
        (None, None) => vec![0; n],
    };
    if numbers.len() != n {
        return Err(format!("{} atomic numbers for {n} atoms", numbers.len()));
    }
    let positions = match pop("positions") {
        Some((_, 3, c)) => c.to_f64().ok_or("positions are not numeric")?,
        Some((_, k, _)) => return Err(format!("positions have {k} columns, expected 3")),
        None => vec![0.0; n * 3],
    };
    let mut frame = AtomsFrame {
        cell,
        pbc,
        ..AtomsFrame::default()
    };
    let numbers = NdArray::from_elements(vec![n as u64], &numbers).map_err(|e| e.to_string())?;
    frame.arrays.push(("numbers".into(), Value::Array(numbers)));
    frame
        .arrays
        .push(("positions".into(), f64_array(vec![n as u64, 3], &positions)));
    if let Some((_, k, c)) = pop("initial_charges") {
        let q = c.to_f64().ok_or("initial_charges are not numeric")?;
        let shape = if k == 1 {
            vec![n as u64]
        } else {
            vec![n as u64, k as u64]
        };
        frame
            .arrays
            .push(("initial_charges".into(), f64_array(shape, &q)));
    }
    if let Some((_, k, c)) = pop("move_mask") {
        let mask: Vec<bool> = c
            .to_f64()
            .ok_or("move_mask is not logical")?
            .iter()
            .map(|&x| x != 0.0)
            .collect();
        match k {
            3 => {
                for a in 0..n {
                    let fixed = (0..3).map(|d| Value::Bool(!mask[a * 3 + d])).collect();
                    frame.constraints.push(constraint(
                        "FixCartesian",
                        vec![
                            ("a".into(), Value::List(vec![Value::Int(a as i64)])),
                            ("mask".into(), Value::List(fixed)),
                        ],
                    ));
                }
            }
            1 => {
                let fixed = (0..n)
                    .filter(|&a| !mask[a])
                    .map(|a| Value::Int(a as i64))
                    .collect();
                frame.constraints.push(constraint(
                    "FixAtoms",
                    vec![("indices".into(), Value::List(fixed))],
                ));
            }
            _ => return Err("Not implemented constraint".into()),
        }
    }
    for (name, k, col) in named {
        let is_str = matches!(col, Column::Str(_));
        let array = Value::Array(column_array(col, n, k)?);
        if ALL_PROPERTIES.contains(&name.as_str()) {
            if is_str {
                return Err(format!("calculator result {name} is a string column"));
            }
            let v = calc_value(&name, array)?;
            frame.calc.push((name, v));
        } else {
            frame.arrays.push((name, array));
        }
    }
    let mut i = 0;
    while i < info.len() {
        if !PER_CONFIG.contains(&info[i].0.as_str()) {
            i += 1;
            continue;
        }
        let (name, value) = info.remove(i);
        let value = match (&*name, &value) {
            ("stress", Value::Array(a)) if a.shape == [3, 3] => f64_array(
                vec![6],
                &voigt(&a.to_f64s().ok_or("stress is not numeric")?),
            ),
            _ => calc_value(&name, value)?,
        };
        frame.calc.push((name, value));
    }
    frame.info = info;
    Ok(frame.into_frame())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(f: &'a Frame, k: &str) -> Option<&'a Value> {
        f.iter().find(|(name, _)| name == k).map(|(_, v)| v)
    }

    #[test]
    fn a_full_frame_becomes_an_atoms_row() {
        let text = "2\nLattice=\"2 0 0 0 3 0 0 0 4\" Properties=species:S:1:pos:R:3:forces:R:3:move_mask:L:1:tag:I:1 energy=-1.5 stress=\"1 2 3 2 4 5 3 5 6\" pbc=\"T F T\" note=hello\n\
                    cu 0 0 0 0.1 0.2 0.3 T 7\nH 1 1 1 0 0 0 F 8\n";
        let f = parse(text).unwrap();
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "cell",
                "pbc",
                "arrays.numbers",
                "arrays.positions",
                "arrays.tag",
                "info.note",
                "calc.forces",
                "calc.energy",
                "calc.stress",
                "constraints"
            ]
        );
        let Some(Value::Array(n)) = key(&f, "arrays.numbers") else {
            panic!()
        };
        assert_eq!(n.to_vec::<i64>().unwrap(), [29, 1]);
        let Some(Value::Array(c)) = key(&f, "cell") else {
            panic!()
        };
        assert_eq!(
            c.to_vec::<f64>().unwrap(),
            [2., 0., 0., 0., 3., 0., 0., 0., 4.]
        );
        let Some(Value::Array(p)) = key(&f, "pbc") else {
            panic!()
        };
        assert_eq!(p.to_vec::<bool>().unwrap(), [true, false, true]);
        let Some(Value::Array(s)) = key(&f, "calc.stress") else {
            panic!()
        };
        assert_eq!(s.to_vec::<f64>().unwrap(), [1., 4., 6., 5., 3., 2.]);
        let Some(Value::Array(t)) = key(&f, "arrays.tag") else {
            panic!()
        };
        assert_eq!(t.dtype.as_str(), "<i4");
        assert_eq!(key(&f, "calc.energy"), Some(&Value::Float(-1.5)));
    }

    #[test]
    fn errors_name_the_line_within_the_frame() {
        let e = parse("2\n\nH 0 0 0\nH 0 zero 0\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("float"), "{}", e.message);
        let e = parse("2\n\nH 0 0 0\nH 0 0\n").unwrap_err();
        assert!(e.message.contains("columns"), "{}", e.message);
        assert_eq!(parse("1\n\nXx 0 0 0\n").unwrap_err().line, 2);
    }
}
