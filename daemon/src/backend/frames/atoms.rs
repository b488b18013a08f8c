//! One `ase.Atoms` in the key convention every store serves (`cell`, `pbc`, `arrays.*`,
//! `info.*`, `calc.*`, `constraints`; `asebytes-behaviour.md` §2), with the conversions
//! ASE applies when it builds an `Atoms` from a file: `SinglePointCalculator` keeps
//! `energy`, `free_energy` and `magmom` as given and makes every other result a float64
//! array; a 3x3 stress becomes Voigt order.
//!
//! Layer: inside [`super`] (the read-only frames core); the format backends fill an
//! [`AtomsFrame`] and turn it into a [`Frame`].

use asebytes_protocol::codec::{NdArray, Value};

use super::Frame;

/// `ase.calculators.calculator.all_properties`: what becomes a calculator result.
pub const ALL_PROPERTIES: &[&str] = &[
    "energy",
    "forces",
    "stress",
    "stresses",
    "dipole",
    "charges",
    "magmom",
    "magmoms",
    "free_energy",
    "energies",
    "dielectric_tensor",
    "born_effective_charges",
    "polarization",
];

/// Results that are one value per configuration (extxyz moves these out of `info`).
pub const PER_CONFIG: &[&str] = &[
    "energy",
    "free_energy",
    "stress",
    "dipole",
    "magmom",
    "polarization",
    "dielectric_tensor",
];

/// A float64 array (shapes here always match their items).
pub fn f64_array(shape: Vec<u64>, items: &[f64]) -> Value {
    match NdArray::from_f64s(shape, items) {
        Ok(a) => Value::Array(a),
        Err(_) => Value::List(items.iter().map(|&x| Value::Float(x)).collect()),
    }
}

/// `np.array(value, float)`: numbers, bools and arrays of them as float64.
pub fn to_float_array(value: &Value) -> Option<NdArray> {
    match value {
        Value::Array(a) => NdArray::from_f64s(a.shape.clone(), &a.to_f64s()?).ok(),
        Value::List(items) => {
            let mut flat = Vec::new();
            let mut shape = vec![items.len() as u64];
            let mut inner: Option<Vec<u64>> = None;
            for it in items {
                let a = to_float_array(it)?;
                if inner.get_or_insert_with(|| a.shape.clone()) != &a.shape {
                    return None;
                }
                flat.extend(a.to_f64s()?);
            }
            shape.extend(inner.unwrap_or_default());
            NdArray::from_f64s(shape, &flat).ok()
        }
        other => NdArray::from_f64s(vec![], &[other.as_f64()?]).ok(),
    }
}

/// A result as `SinglePointCalculator` stores it.
pub fn calc_value(name: &str, value: Value) -> Result<Value, String> {
    if matches!(name, "energy" | "free_energy" | "magmom") {
        return Ok(value);
    }
    to_float_array(&value).map(Value::Array).ok_or_else(|| {
        format!(
            "calculator result {name} is not numeric ({})",
            value.type_name()
        )
    })
}

/// A 3x3 stress (row-major) in Voigt order `[xx, yy, zz, yz, xz, xy]`.
pub fn voigt(s: &[f64]) -> [f64; 6] {
    [s[0], s[4], s[8], s[5], s[2], s[1]]
}

/// The parts of one `Atoms` before they become a row.
#[derive(Debug, Clone, Default)]
pub struct AtomsFrame {
    /// Cell vectors, row-major.
    pub cell: [f64; 9],
    /// Periodic directions.
    pub pbc: [bool; 3],
    /// `Atoms.arrays` in ASE's order (`numbers`, `positions` first).
    pub arrays: Vec<(String, Value)>,
    /// `Atoms.info`.
    pub info: Vec<(String, Value)>,
    /// Calculator results.
    pub calc: Vec<(String, Value)>,
    /// `constraint.todict()` of each constraint.
    pub constraints: Vec<Value>,
}

impl AtomsFrame {
    /// The row, in the key order `atoms_to_dict` writes.
    pub fn into_frame(self) -> Frame {
        let mut out: Frame =
            Vec::with_capacity(3 + self.arrays.len() + self.info.len() + self.calc.len());
        out.push(("cell".into(), f64_array(vec![3, 3], &self.cell)));
        let pbc = NdArray::from_elements(vec![3], &self.pbc)
            .map(Value::Array)
            .unwrap_or(Value::Nil);
        out.push(("pbc".into(), pbc));
        out.extend(
            self.arrays
                .into_iter()
                .map(|(k, v)| (format!("arrays.{k}"), v)),
        );
        out.extend(self.info.into_iter().map(|(k, v)| (format!("info.{k}"), v)));
        out.extend(self.calc.into_iter().map(|(k, v)| (format!("calc.{k}"), v)));
        if !self.constraints.is_empty() {
            out.push(("constraints".into(), Value::List(self.constraints)));
        }
        out
    }
}

/// `{"name": name, "kwargs": {...}}`, as `FixConstraint.todict()` writes it.
pub fn constraint(name: &str, kwargs: Vec<(String, Value)>) -> Value {
    Value::Map(vec![
        ("name".into(), Value::Str(name.into())),
        ("kwargs".into(), Value::Map(kwargs)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_follow_single_point_calculator() {
        assert_eq!(calc_value("energy", Value::Int(3)).unwrap(), Value::Int(3));
        let Value::Array(a) = calc_value(
            "dipole",
            Value::List(vec![Value::Int(1), Value::Bool(true)]),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.to_vec::<f64>().unwrap(), [1.0, 1.0]);
        assert!(calc_value("forces", Value::Str("x".into())).is_err());
        assert_eq!(
            voigt(&[1., 2., 3., 4., 5., 6., 7., 8., 9.]),
            [1., 5., 9., 6., 3., 2.]
        );
    }
}
