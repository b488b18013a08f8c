//! One column dataset: creation as h5py creates them (chunked, every axis resizable, the
//! layout's fill values, gzip for numeric columns), resizing, and hyperslab reads and writes
//! of raw little-endian bytes (numeric) or text (strings).
//!
//! Values cross this module as numpy's raw little-endian bytes so the columnar core never
//! sees an HDF5 type. HDF5 converts between the file's type and ours, so big-endian files
//! written elsewhere read correctly too. Layer: below [`super::engine`], beside
//! [`super::file`]; every call runs under the file's lock held by the caller.

use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Group, H5Type, Hyperslab, Selection, SliceOrIndex};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::dtype;
use super::file::h5err;
use crate::backend::columnar::engine::DType;
use crate::backend::{Error, ErrorKind, Result};

/// How a new dataset is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// No filter.
    None,
    /// Deflate at this level (0-9); h5py's `compression="gzip"`.
    Gzip(u8),
}

/// Everything needed to create a column dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateSpec {
    /// Element type.
    pub elem: DType,
    /// Initial shape (axis 0 = frames or atoms).
    pub shape: Vec<usize>,
    /// Chunk shape (same rank as `shape`, every entry ≥ 1).
    pub chunk: Vec<usize>,
    /// Filter for numeric columns; bool, complex and string columns are never compressed
    /// (as the reference writes them).
    pub compression: Compression,
}

/// An open column dataset and its element type.
#[derive(Debug, Clone)]
pub struct Column {
    ds: Dataset,
    elem: DType,
    name: String,
}

/// A `bool` as HDF5 hands it over: the enum's byte, whatever value the file holds
/// (reading into Rust `bool` would be undefined for bytes other than 0 and 1).
#[derive(Clone, Copy, Debug, Default)]
#[repr(transparent)]
pub(crate) struct BoolByte(pub(crate) u8);

// SAFETY: `BoolByte` is one byte, laid out exactly as the enum int8 FALSE/TRUE h5py uses.
unsafe impl H5Type for BoolByte {
    fn type_descriptor() -> TypeDescriptor {
        TypeDescriptor::Boolean
    }
}

/// Conversion between one element and its little-endian bytes.
trait Raw: H5Type + Copy + Default {
    /// Bytes per element.
    const SIZE: usize;
    /// Reads one element from exactly `SIZE` bytes.
    fn from_le_raw(b: &[u8]) -> Self;
    /// Appends the element's bytes.
    fn put_le_raw(self, out: &mut Vec<u8>);
}

macro_rules! raw_num {
    ($($t:ty),*) => {$(
        impl Raw for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le_raw(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().unwrap_or_default())
            }
            fn put_le_raw(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
raw_num!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl Raw for BoolByte {
    const SIZE: usize = 1;
    fn from_le_raw(b: &[u8]) -> Self {
        BoolByte(u8::from(b.first().is_some_and(|&x| x != 0)))
    }
    fn put_le_raw(self, out: &mut Vec<u8>) {
        out.push(u8::from(self.0 != 0));
    }
}

macro_rules! raw_complex {
    ($($t:ty),*) => {$(
        impl Raw for num_complex::Complex<$t> {
            const SIZE: usize = 2 * std::mem::size_of::<$t>();
            fn from_le_raw(b: &[u8]) -> Self {
                let half = Self::SIZE / 2;
                num_complex::Complex::new(<$t>::from_le_raw(&b[..half]), <$t>::from_le_raw(&b[half..]))
            }
            fn put_le_raw(self, out: &mut Vec<u8>) {
                self.re.put_le_raw(out);
                self.im.put_le_raw(out);
            }
        }
    )*};
}
raw_complex!(f32, f64);

/// Runs `$body` with `$T` bound to the Rust type of a numeric [`DType`]; `$str` for strings.
macro_rules! by_elem {
    ($elem:expr, $T:ident => $body:expr, str => $str:expr, other => $other:expr) => {{
        #[allow(unreachable_patterns)] // DType may grow (it is non_exhaustive)
        let out = match $elem {
            DType::Bool => {
                type $T = BoolByte;
                $body
            }
            DType::I8 => {
                type $T = i8;
                $body
            }
            DType::I16 => {
                type $T = i16;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::U8 => {
                type $T = u8;
                $body
            }
            DType::U16 => {
                type $T = u16;
                $body
            }
            DType::U32 => {
                type $T = u32;
                $body
            }
            DType::U64 => {
                type $T = u64;
                $body
            }
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::C64 => {
                type $T = num_complex::Complex<f32>;
                $body
            }
            DType::C128 => {
                type $T = num_complex::Complex<f64>;
                $body
            }
            DType::Str => $str,
            _ => $other,
        };
        out
    }};
}

/// The hyperslab `start..start+count` on every axis.
fn slab(start: &[usize], count: &[usize]) -> Selection {
    let dims: Vec<SliceOrIndex> = start
        .iter()
        .zip(count)
        .map(|(&start, &count)| SliceOrIndex::SliceCount {
            start,
            step: 1,
            count,
            block: 1,
        })
        .collect();
    Selection::Hyperslab(Hyperslab::from(dims))
}

impl Column {
    /// Opens dataset `name` in `group`.
    pub fn open(group: &Group, name: &str) -> Result<Column> {
        let ds = group
            .dataset(name)
            .map_err(h5err(&format!("open column '{name}'")))?;
        let desc = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(h5err(&format!("read the type of column '{name}'")))?;
        let elem = dtype::from_descriptor(&desc, &format!("column '{name}'"))?;
        Ok(Column {
            ds,
            elem,
            name: name.to_string(),
        })
    }

    /// Creates dataset `name` in `group` as `spec` says (fails if it exists).
    pub fn create(group: &Group, name: &str, spec: &CreateSpec) -> Result<Column> {
        if spec.chunk.len() != spec.shape.len() || spec.chunk.contains(&0) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "column '{name}': chunk {:?} does not fit shape {:?}",
                    spec.chunk, spec.shape
                ),
            ));
        }
        let elem = spec.elem;
        let unknown = || {
            Error::new(
                ErrorKind::Unsupported,
                format!("column '{name}': the hdf5 engine cannot store {elem:?}"),
            )
        };
        let desc = dtype::descriptor(elem).ok_or_else(unknown)?;
        let mut b = group.new_dataset_builder().empty_as(&desc);
        let extents = hdf5::SimpleExtents::resizable(&spec.shape);
        b = b.chunk(spec.chunk.clone());
        if let (Compression::Gzip(level), true) = (spec.compression, dtype::compressible(elem)) {
            b = b.deflate(level);
        }
        let fill_bytes = elem.fill_bytes();
        b = by_elem!(elem, T => b.fill_value(T::from_le_raw(&fill_bytes)), str => {
            b.fill_value(VarLenUnicode::new())
        }, other => return Err(unknown()));
        let ds = b
            .shape(extents)
            .create(name)
            .map_err(h5err(&format!("create column '{name}'")))?;
        Ok(Column {
            ds,
            elem,
            name: name.to_string(),
        })
    }

    /// Element type.
    pub fn elem(&self) -> DType {
        self.elem
    }

    /// Current shape.
    pub fn shape(&self) -> Vec<usize> {
        self.ds.shape()
    }

    /// Chunk shape (`None` for a contiguous dataset another tool wrote).
    pub fn chunk(&self) -> Option<Vec<usize>> {
        self.ds.chunk()
    }

    /// Changes the shape (every axis of our datasets is resizable).
    pub fn resize(&self, shape: &[usize]) -> Result<()> {
        self.ds.resize(shape).map_err(h5err(&format!(
            "resize column '{}' to {shape:?}",
            self.name
        )))
    }

    fn not_numbers(&self) -> Error {
        Error::new(
            ErrorKind::TypeMismatch,
            format!("column '{}' holds {:?}, not numbers", self.name, self.elem),
        )
    }

    /// Checks that `start`/`count` select inside the current shape.
    fn check_slab(&self, start: &[usize], count: &[usize]) -> Result<()> {
        let shape = self.shape();
        let fits = start.len() == shape.len()
            && count.len() == shape.len()
            && shape
                .iter()
                .zip(start.iter().zip(count))
                .all(|(&n, (&s, &c))| s.checked_add(c).is_some_and(|end| end <= n));
        if fits {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "column '{}' has shape {shape:?}; cannot select {count:?} at {start:?}",
                    self.name
                ),
            ))
        }
    }

    /// Reads the hyperslab `start..start+count` as little-endian bytes, C order.
    pub fn read_raw(&self, start: &[usize], count: &[usize]) -> Result<Vec<u8>> {
        self.check_slab(start, count)?;
        by_elem!(self.elem, T => self.read_typed::<T>(start, count), str => Err(self.not_numbers()),
            other => Err(self.not_numbers()))
    }

    fn read_typed<T: Raw>(&self, start: &[usize], count: &[usize]) -> Result<Vec<u8>> {
        let n: usize = count.iter().product();
        if n == 0 {
            return Ok(Vec::new());
        }
        let arr: ArrayD<T> = self
            .ds
            .read_slice(slab(start, count))
            .map_err(h5err(&format!("read column '{}'", self.name)))?;
        let mut out = Vec::with_capacity(n * T::SIZE);
        for &x in arr.iter() {
            x.put_le_raw(&mut out);
        }
        Ok(out)
    }

    /// Writes little-endian `bytes` (C order) into the hyperslab `start..start+count`.
    pub fn write_raw(&self, start: &[usize], count: &[usize], bytes: &[u8]) -> Result<()> {
        self.check_slab(start, count)?;
        by_elem!(self.elem, T => self.write_typed::<T>(start, count, bytes),
            str => Err(self.not_numbers()), other => Err(self.not_numbers()))
    }

    fn write_typed<T: Raw>(&self, start: &[usize], count: &[usize], bytes: &[u8]) -> Result<()> {
        let n: usize = count.iter().product();
        if bytes.len() != n * T::SIZE {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "column '{}': {} bytes do not make {count:?} items of {}",
                    self.name,
                    bytes.len(),
                    self.elem.numpy_str()
                ),
            ));
        }
        if n == 0 {
            return Ok(());
        }
        let items: Vec<T> = bytes.chunks_exact(T::SIZE).map(T::from_le_raw).collect();
        let view = ArrayViewD::from_shape(IxDyn(count), &items).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("column '{}': {e}", self.name),
            )
        })?;
        self.ds
            .write_slice(view, slab(start, count))
            .map_err(h5err(&format!("write column '{}'", self.name)))
    }

    /// Reads the hyperslab of a string column, C order; `""` where nothing was written.
    pub fn read_strings(&self, start: &[usize], count: &[usize]) -> Result<Vec<String>> {
        self.check_slab(start, count)?;
        if self.elem != DType::Str {
            return Err(Error::new(
                ErrorKind::TypeMismatch,
                format!("column '{}' holds numbers, not strings", self.name),
            ));
        }
        if count.iter().product::<usize>() == 0 {
            return Ok(Vec::new());
        }
        let ascii = matches!(
            self.ds.dtype().and_then(|t| t.to_descriptor()),
            Ok(TypeDescriptor::VarLenAscii)
        );
        let what = || format!("read column '{}'", self.name);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(if ascii {
            let arr: ArrayD<VarLenAscii> = self
                .ds
                .read_slice(slab(start, count))
                .map_err(h5err(&what()))?;
            arr.iter().map(|s| text(s.as_bytes())).collect()
        } else {
            let arr: ArrayD<VarLenUnicode> = self
                .ds
                .read_slice(slab(start, count))
                .map_err(h5err(&what()))?;
            arr.iter().map(|s| text(s.as_bytes())).collect()
        })
    }

    /// Writes strings (C order) into the hyperslab `start..start+count`. Text with a NUL
    /// character cannot be stored in an HDF5 string: `InvalidArgument`.
    pub fn write_strings<S: AsRef<str>>(
        &self,
        start: &[usize],
        count: &[usize],
        values: &[S],
    ) -> Result<()> {
        self.check_slab(start, count)?;
        if self.elem != DType::Str {
            return Err(Error::new(
                ErrorKind::TypeMismatch,
                format!("column '{}' holds numbers, not strings", self.name),
            ));
        }
        let n: usize = count.iter().product();
        if values.len() != n {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "column '{}': {} strings for {count:?}",
                    self.name,
                    values.len()
                ),
            ));
        }
        if n == 0 {
            return Ok(());
        }
        let items = values
            .iter()
            .map(|s| s.as_ref().parse::<VarLenUnicode>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "column '{}': HDF5 strings cannot hold a NUL character",
                        self.name
                    ),
                )
            })?;
        let view = ArrayViewD::from_shape(IxDyn(count), &items).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("column '{}': {e}", self.name),
            )
        })?;
        self.ds
            .write_slice(view, slab(start, count))
            .map_err(h5err(&format!("write column '{}'", self.name)))
    }
}
