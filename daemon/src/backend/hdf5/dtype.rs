//! Element types of the columnar engine ([`DType`]) as HDF5 datatypes, the way h5py
//! writes the matching numpy dtypes.
//!
//! h5py's conventions are the compatibility target: `bool` is an `int8` enum
//! `FALSE=0, TRUE=1`; complex numbers are a compound `{r, i}`; strings are variable-length
//! UTF-8 (`h5py.string_dtype()`). Layer: used by [`super::dataset`] only.

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};

use crate::backend::columnar::engine::DType;
use crate::backend::{Error, ErrorKind, Result};

/// Whether gzip applies: the reference compresses float, int and uint columns only (not
/// bool, complex or strings).
pub fn compressible(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::I8
            | DType::I16
            | DType::I32
            | DType::I64
            | DType::U8
            | DType::U16
            | DType::U32
            | DType::U64
            | DType::F32
            | DType::F64
    )
}

/// The HDF5 type a new dataset of `dtype` is created with (h5py's choice for the numpy
/// dtype). `None` for element types this engine does not know (the enum may grow).
pub fn descriptor(dtype: DType) -> Option<TypeDescriptor> {
    use TypeDescriptor as T;
    #[allow(unreachable_patterns)] // DType may grow (it is non_exhaustive)
    Some(match dtype {
        DType::Bool => T::Boolean,
        DType::I8 => T::Integer(IntSize::U1),
        DType::I16 => T::Integer(IntSize::U2),
        DType::I32 => T::Integer(IntSize::U4),
        DType::I64 => T::Integer(IntSize::U8),
        DType::U8 => T::Unsigned(IntSize::U1),
        DType::U16 => T::Unsigned(IntSize::U2),
        DType::U32 => T::Unsigned(IntSize::U4),
        DType::U64 => T::Unsigned(IntSize::U8),
        DType::F32 => T::Float(FloatSize::U4),
        DType::F64 => T::Float(FloatSize::U8),
        DType::C64 => <num_complex::Complex32 as hdf5::H5Type>::type_descriptor(),
        DType::C128 => <num_complex::Complex64 as hdf5::H5Type>::type_descriptor(),
        DType::Str => T::VarLenUnicode,
        _ => return None,
    })
}

/// The element type an existing dataset is read and written as. `float16` datasets
/// (which numpy and h5py write) are seen as `float32`: HDF5 converts on the way in and
/// out. `Corrupt` naming `what` for types the layout does not use (fixed-length strings,
/// other compounds, references).
pub fn from_descriptor(desc: &TypeDescriptor, what: &str) -> Result<DType> {
    use TypeDescriptor as T;
    Ok(match desc {
        T::Boolean => DType::Bool,
        T::Integer(IntSize::U1) => DType::I8,
        T::Integer(IntSize::U2) => DType::I16,
        T::Integer(IntSize::U4) => DType::I32,
        T::Integer(IntSize::U8) => DType::I64,
        T::Unsigned(IntSize::U1) => DType::U8,
        T::Unsigned(IntSize::U2) => DType::U16,
        T::Unsigned(IntSize::U4) => DType::U32,
        T::Unsigned(IntSize::U8) => DType::U64,
        T::Float(FloatSize::U2 | FloatSize::U4) => DType::F32,
        T::Float(FloatSize::U8) => DType::F64,
        T::VarLenUnicode | T::VarLenAscii => DType::Str,
        T::Compound(c) if is_complex(c, 4) => DType::C64,
        T::Compound(c) if is_complex(c, 8) => DType::C128,
        other => {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("{what}: HDF5 type {other} is not one this layout stores"),
            ));
        }
    })
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
    fn every_type_maps_to_hdf5_and_back() {
        for d in DType::ALL {
            let desc = descriptor(d).unwrap();
            assert_eq!(from_descriptor(&desc, "x").unwrap(), d, "{d:?}");
        }
        assert_eq!(
            from_descriptor(&TypeDescriptor::Float(FloatSize::U2), "x").unwrap(),
            DType::F32
        );
    }

    #[test]
    fn foreign_types_are_corrupt_not_a_panic() {
        let e = from_descriptor(&TypeDescriptor::FixedAscii(4), "col").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        assert!(e.message.contains("col"), "{}", e.message);
    }
}
