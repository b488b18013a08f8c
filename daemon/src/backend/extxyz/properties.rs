//! The `Properties=name:type:ncols:...` declaration and the per-atom columns it describes,
//! as ASE 3.29's `parse_properties` and `_read_xyz_frame` read them: types `R` (float64),
//! `I` (int32, numpy's `'i'`), `S` (strings), `L` (bools: `T`/`F`/`True`/`False`, anything
//! else false); columns in file order; `pos`, `Z`, `species`, `charge` renamed to
//! `positions`, `numbers`, `symbols`, `charges`. Tokens past the declared columns are
//! ignored, as ASE ignores them; too few tokens or a token that is not a number is an error.
//!
//! Layer: part of the extxyz backend, between the tokenizer ([`super::key_val`]) and
//! frame assembly ([`super::frame`]).

use asebytes_protocol::codec::{DType, NdArray};

use super::key_val::{parse_float, parse_int};

/// The default when a comment line declares no `Properties`.
pub const DEFAULT: &str = "species:S:1:pos:R:3";

/// A column's type letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `R`: float64.
    Real,
    /// `I`: int32.
    Int,
    /// `S`: str.
    Str,
    /// `L`: bool.
    Logical,
}

/// One declared property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// The name in the file (`pos`).
    pub name: String,
    /// The name in `Atoms.arrays` (`positions`).
    pub ase_name: String,
    /// Its type.
    pub kind: Kind,
    /// Number of columns.
    pub cols: usize,
}

/// Parses a `Properties` string.
pub fn parse(s: &str) -> Result<Vec<Property>, String> {
    let fields: Vec<&str> = s.split(':').collect();
    let mut out: Vec<Property> = Vec::new();
    for triple in fields.chunks_exact(3) {
        let (name, ty, cols) = (triple[0], triple[1], triple[2]);
        let kind = match ty {
            "R" => Kind::Real,
            "I" => Kind::Int,
            "S" => Kind::Str,
            "L" => Kind::Logical,
            _ => return Err(format!("Unknown property type: {ty}")),
        };
        let cols: usize = parse_int(cols.trim())
            .and_then(|c| usize::try_from(c).ok())
            .filter(|&c| c <= 1 << 16)
            .ok_or_else(|| format!("bad column count {cols:?} for property {name}"))?;
        if out.iter().any(|p| p.name == name) {
            return Err(format!("property {name} is declared twice"));
        }
        let ase_name = match name {
            "pos" => "positions",
            "Z" => "numbers",
            "species" => "symbols",
            "charge" => "charges",
            other => other,
        };
        out.push(Property {
            name: name.to_string(),
            ase_name: ase_name.to_string(),
            kind,
            cols,
        });
    }
    Ok(out)
}

/// The values of one property for every atom, before they become an array.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// `R`.
    Real(Vec<f64>),
    /// `I`.
    Int(Vec<i32>),
    /// `S`.
    Str(Vec<String>),
    /// `L`.
    Logical(Vec<bool>),
}

impl Column {
    fn new(kind: Kind, n: usize) -> Self {
        match kind {
            Kind::Real => Column::Real(Vec::with_capacity(n)),
            Kind::Int => Column::Int(Vec::with_capacity(n)),
            Kind::Str => Column::Str(Vec::with_capacity(n)),
            Kind::Logical => Column::Logical(Vec::with_capacity(n)),
        }
    }

    /// Number of items (atoms × columns).
    pub fn len(&self) -> usize {
        match self {
            Column::Real(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Str(v) => v.len(),
            Column::Logical(v) => v.len(),
        }
    }

    /// Whether no items were read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items as float64 (ints and bools converted).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self {
            Column::Real(v) => Some(v.clone()),
            Column::Int(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
            Column::Logical(v) => Some(v.iter().map(|&b| f64::from(u8::from(b))).collect()),
            Column::Str(_) => None,
        }
    }

    /// The items as an array of `shape` (`(n,)` for one column, `(n, cols)` else).
    /// Strings become a numpy unicode array (`<U` of the longest item).
    pub fn into_array(self, shape: Vec<u64>) -> Result<NdArray, String> {
        let bad = |e: asebytes_protocol::codec::Corrupt| e.to_string();
        match self {
            Column::Real(v) => NdArray::from_f64s(shape, &v).map_err(bad),
            Column::Int(v) => NdArray::from_elements(shape, &v).map_err(bad),
            Column::Logical(v) => NdArray::from_elements(shape, &v).map_err(bad),
            Column::Str(v) => {
                let width = v
                    .iter()
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(1);
                let dtype = DType::parse(&format!("<U{width}")).map_err(bad)?;
                let mut data = Vec::with_capacity(v.len() * width * 4);
                for s in &v {
                    let mut n = 0;
                    for c in s.chars() {
                        data.extend_from_slice(&(c as u32).to_le_bytes());
                        n += 1;
                    }
                    data.resize(data.len() + (width - n) * 4, 0);
                }
                NdArray::new(dtype, shape, data).map_err(bad)
            }
        }
    }
}

/// The per-atom columns of one frame, filled line by line.
#[derive(Debug)]
pub struct Columns {
    props: Vec<Property>,
    /// One column per property, in declaration order.
    pub data: Vec<Column>,
    width: usize,
}

impl Columns {
    /// Empty columns for `natoms` atoms.
    pub fn new(props: Vec<Property>, natoms: usize) -> Self {
        let width = props.iter().map(|p| p.cols).sum();
        let data = props
            .iter()
            .map(|p| Column::new(p.kind, natoms.saturating_mul(p.cols).min(1 << 20)))
            .collect();
        Self { props, data, width }
    }

    /// The declared properties.
    pub fn properties(&self) -> &[Property] {
        &self.props
    }

    /// Reads one atom line; the error says what was wrong with it.
    pub fn push_line(&mut self, line: &str) -> Result<(), String> {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < self.width {
            return Err(format!(
                "expected {} columns (Properties), found {}",
                self.width,
                toks.len()
            ));
        }
        let mut at = 0;
        for (p, col) in self.props.iter().zip(self.data.iter_mut()) {
            for t in &toks[at..at + p.cols] {
                match col {
                    Column::Real(v) => v.push(parse_float(t).ok_or_else(|| {
                        format!("could not convert {t:?} to float (property {})", p.name)
                    })?),
                    Column::Int(v) => v.push(
                        parse_int(t)
                            .and_then(|x| i32::try_from(x).ok())
                            .ok_or_else(|| {
                                format!("invalid literal for int(): {t:?} (property {})", p.name)
                            })?,
                    ),
                    Column::Str(v) => v.push((*t).to_string()),
                    Column::Logical(v) => v.push(matches!(*t, "T" | "True")),
                }
            }
            at += p.cols;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_keep_file_order_and_rename() {
        let p = parse("pos:R:3:Z:I:1:species:S:1:charge:R:1:m:L:1").unwrap();
        let names: Vec<&str> = p.iter().map(|p| p.ase_name.as_str()).collect();
        assert_eq!(names, ["positions", "numbers", "symbols", "charges", "m"]);
        assert!(parse("a:Q:1").is_err());
        assert!(parse("a:R:x").is_err());
    }

    #[test]
    fn lines_fill_columns_and_bad_lines_say_why() {
        let mut c = Columns::new(parse("species:S:1:pos:R:3:n:I:1:f:L:1").unwrap(), 2);
        c.push_line("Cu 0 1 2 7 T extra").unwrap();
        c.push_line("Ag 3 4 5 -1 F").unwrap();
        assert_eq!(c.data[1], Column::Real(vec![0., 1., 2., 3., 4., 5.]));
        assert_eq!(c.data[2], Column::Int(vec![7, -1]));
        assert_eq!(c.data[3], Column::Logical(vec![true, false]));
        assert!(
            c.push_line("Cu 0 1 2")
                .unwrap_err()
                .contains("expected 6 columns")
        );
        assert!(c.push_line("Cu 0 x 2 1 T").unwrap_err().contains("float"));
        let a = Column::Str(vec!["Cu".into(), "H".into()])
            .into_array(vec![2])
            .unwrap();
        assert_eq!(a.dtype.as_str(), "<U2");
    }
}
