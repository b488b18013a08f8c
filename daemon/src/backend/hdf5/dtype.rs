//! Element types of HDF5 datasets as the columnar layout uses them, and how each maps to
//! numpy (the dtype strings of the value model) and to HDF5 datatypes as h5py writes them.
//!
//! h5py's conventions are the compatibility target: `bool` is an `int8` enum
//! `FALSE=0, TRUE=1`; complex numbers are a compound `{r, i}`; strings are variable-length
//! UTF-8 (`h5py.string_dtype()`). Layer: used by [`super::dataset`] only.

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};

use crate::backend::{Error, ErrorKind, Result};

/// One element type a column dataset can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    /// numpy `bool` (HDF5 enum int8 FALSE/TRUE).
    Bool,
    /// numpy `int8`.
    I8,
    /// numpy `int16`.
    I16,
    /// numpy `int32`.
    I32,
    /// numpy `int64`.
    I64,
    /// numpy `uint8`.
    U8,
    /// numpy `uint16`.
    U16,
    /// numpy `uint32`.
    U32,
    /// numpy `uint64`.
    U64,
    /// numpy `float16`.
    F16,
    /// numpy `float32`.
    F32,
    /// numpy `float64`.
    F64,
    /// numpy `complex64` (compound of two float32 `r`, `i`).
    C64,
    /// numpy `complex128` (compound of two float64 `r`, `i`).
    C128,
    /// Variable-length UTF-8 text (the layout's JSON string columns).
    Str,
}

impl Elem {
    /// Every numeric element type (all but [`Elem::Str`]).
    pub const NUMERIC: [Elem; 14] = [
        Elem::Bool,
        Elem::I8,
        Elem::I16,
        Elem::I32,
        Elem::I64,
        Elem::U8,
        Elem::U16,
        Elem::U32,
        Elem::U64,
        Elem::F16,
        Elem::F32,
        Elem::F64,
        Elem::C64,
        Elem::C128,
    ];

    /// Bytes per element in the little-endian raw form (`0` for strings).
    pub fn itemsize(self) -> usize {
        match self {
            Elem::Bool | Elem::I8 | Elem::U8 => 1,
            Elem::I16 | Elem::U16 | Elem::F16 => 2,
            Elem::I32 | Elem::U32 | Elem::F32 => 4,
            Elem::I64 | Elem::U64 | Elem::F64 | Elem::C64 => 8,
            Elem::C128 => 16,
            Elem::Str => 0,
        }
    }

    /// The numpy dtype string (`dtype.str`) of the raw form, e.g. `<f8`, `|b1`.
    pub fn numpy(self) -> &'static str {
        match self {
            Elem::Bool => "|b1",
            Elem::I8 => "|i1",
            Elem::I16 => "<i2",
            Elem::I32 => "<i4",
            Elem::I64 => "<i8",
            Elem::U8 => "|u1",
            Elem::U16 => "<u2",
            Elem::U32 => "<u4",
            Elem::U64 => "<u8",
            Elem::F16 => "<f2",
            Elem::F32 => "<f4",
            Elem::F64 => "<f8",
            Elem::C64 => "<c8",
            Elem::C128 => "<c16",
            Elem::Str => "|O",
        }
    }

    /// The element type of a numpy dtype string; byte order `<`, `|`, `=` (this machine is
    /// little-endian) or `>` (stored little-endian all the same; the caller swaps).
    /// Unicode `<U..` maps to [`Elem::Str`]. `None` for kinds HDF5 columns do not hold.
    pub fn from_numpy(dtype: &str) -> Option<Elem> {
        let body = dtype.trim_start_matches(['<', '>', '|', '=']);
        Some(match body {
            "b1" | "?" => Elem::Bool,
            "i1" => Elem::I8,
            "i2" => Elem::I16,
            "i4" => Elem::I32,
            "i8" => Elem::I64,
            "u1" => Elem::U8,
            "u2" => Elem::U16,
            "u4" => Elem::U32,
            "u8" => Elem::U64,
            "f2" => Elem::F16,
            "f4" => Elem::F32,
            "f8" => Elem::F64,
            "c8" => Elem::C64,
            "c16" => Elem::C128,
            s if s.starts_with('U') || s == "O" => Elem::Str,
            _ => return None,
        })
    }

    /// Whether the type is a floating point or complex type (fill value NaN).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Elem::F16 | Elem::F32 | Elem::F64 | Elem::C64 | Elem::C128
        )
    }

    /// Whether gzip applies: h5py's reference layout compresses float, int and uint
    /// columns only (not bool, complex or strings).
    pub fn compressible(self) -> bool {
        matches!(
            self,
            Elem::I8
                | Elem::I16
                | Elem::I32
                | Elem::I64
                | Elem::U8
                | Elem::U16
                | Elem::U32
                | Elem::U64
                | Elem::F16
                | Elem::F32
                | Elem::F64
        )
    }

    /// The HDF5 type a new dataset of this element type is created with.
    pub fn descriptor(self) -> TypeDescriptor {
        use TypeDescriptor as T;
        let float = |s| T::Float(s);
        match self {
            Elem::Bool => T::Boolean,
            Elem::I8 => T::Integer(IntSize::U1),
            Elem::I16 => T::Integer(IntSize::U2),
            Elem::I32 => T::Integer(IntSize::U4),
            Elem::I64 => T::Integer(IntSize::U8),
            Elem::U8 => T::Unsigned(IntSize::U1),
            Elem::U16 => T::Unsigned(IntSize::U2),
            Elem::U32 => T::Unsigned(IntSize::U4),
            Elem::U64 => T::Unsigned(IntSize::U8),
            Elem::F16 => float(FloatSize::U2),
            Elem::F32 => float(FloatSize::U4),
            Elem::F64 => float(FloatSize::U8),
            Elem::C64 => <num_complex::Complex32 as hdf5::H5Type>::type_descriptor(),
            Elem::C128 => <num_complex::Complex64 as hdf5::H5Type>::type_descriptor(),
            Elem::Str => T::VarLenUnicode,
        }
    }

    /// The element type of an existing dataset's datatype; `Corrupt` naming `what` for
    /// types the layout does not use (fixed-length strings, other compounds, references).
    pub fn from_descriptor(desc: &TypeDescriptor, what: &str) -> Result<Elem> {
        use TypeDescriptor as T;
        Ok(match desc {
            T::Boolean => Elem::Bool,
            T::Integer(IntSize::U1) => Elem::I8,
            T::Integer(IntSize::U2) => Elem::I16,
            T::Integer(IntSize::U4) => Elem::I32,
            T::Integer(IntSize::U8) => Elem::I64,
            T::Unsigned(IntSize::U1) => Elem::U8,
            T::Unsigned(IntSize::U2) => Elem::U16,
            T::Unsigned(IntSize::U4) => Elem::U32,
            T::Unsigned(IntSize::U8) => Elem::U64,
            T::Float(FloatSize::U2) => Elem::F16,
            T::Float(FloatSize::U4) => Elem::F32,
            T::Float(FloatSize::U8) => Elem::F64,
            T::VarLenUnicode | T::VarLenAscii => Elem::Str,
            T::Compound(c) if is_complex(c, 4) => Elem::C64,
            T::Compound(c) if is_complex(c, 8) => Elem::C128,
            other => {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!("{what}: HDF5 type {other} is not one this layout stores"),
                ));
            }
        })
    }
}

/// Whether a compound is h5py's complex layout `{r: float, i: float}` of `half` bytes each.
fn is_complex(c: &hdf5::types::CompoundType, half: usize) -> bool {
    let float = match half {
        4 => TypeDescriptor::Float(FloatSize::U4),
        _ => TypeDescriptor::Float(FloatSize::U8),
    };
    c.size == 2 * half
        && c.fields.len() == 2
        && c.fields[0].name == "r"
        && c.fields[1].name == "i"
        && c.fields[0].offset == 0
        && c.fields[1].offset == half
        && c.fields[0].ty == float
        && c.fields[1].ty == float
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_strings_round_trip_for_every_numeric_type() {
        for e in Elem::NUMERIC {
            assert_eq!(Elem::from_numpy(e.numpy()), Some(e), "{e:?}");
            assert_eq!(
                Elem::from_descriptor(&e.descriptor(), "x").unwrap(),
                e,
                "{e:?}"
            );
        }
        assert_eq!(Elem::from_numpy("<U7"), Some(Elem::Str));
        assert_eq!(Elem::from_numpy("<M8[ns]"), None);
    }

    #[test]
    fn foreign_types_are_corrupt_not_a_panic() {
        let e = Elem::from_descriptor(&TypeDescriptor::FixedAscii(4), "col").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        assert!(e.message.contains("col"), "{}", e.message);
    }
}
