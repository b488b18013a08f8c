//! The value model: what one stored field holds once decoded, independent of Python.
//!
//! Part of [`crate::codec`]. Stores that must understand values (columnar backends) decode
//! into [`Value`] on write and encode from it on read; [`super::encode`] of a value gives
//! exactly the bytes `msgpack.packb(v, default=msgpack_numpy.encode)` gives for the
//! corresponding Python value, so a client cannot tell which kind of store served it.

use super::dtype::DType;
use super::reader::{Corrupt, corrupt};

/// One decoded field value.
///
/// Integers are canonical as decoded: [`Value::UInt`] only holds values above
/// `i64::MAX`; smaller ones are [`Value::Int`] (both encode identically).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` within `i64`.
    Int(i64),
    /// `int` above `i64::MAX`.
    UInt(u64),
    /// `float` (and `np.float64`, a `float` subclass msgpack writes as one).
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bin(Vec<u8>),
    /// `list` (tuples become lists).
    List(Vec<Value>),
    /// `dict` with `str` keys, in insertion order.
    Map(Vec<(String, Value)>),
    /// A numpy array.
    Array(NdArray),
    /// A numpy scalar other than `np.float64`.
    Scalar(NdScalar),
    /// A Python `complex` (real, imaginary).
    Complex(f64, f64),
}

/// A numpy array: C-ordered items in the dtype's byte order, exactly as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// The items' dtype.
    pub dtype: DType,
    /// Dimensions; empty for a 0-d array.
    pub shape: Vec<u64>,
    /// `product(shape) * dtype.itemsize()` bytes.
    pub data: Vec<u8>,
}

/// A numpy scalar (`np.int64(3)`, `np.float32(1.5)`, `np.bool_(True)`): one item.
#[derive(Debug, Clone, PartialEq)]
pub struct NdScalar {
    /// The item's dtype.
    pub dtype: DType,
    /// `dtype.itemsize()` bytes.
    pub data: Vec<u8>,
}

/// Number of items a shape holds, or `None` if the product overflows.
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// The byte length `shape` items of `itemsize` bytes need, overflow-checked.
pub fn byte_len(shape: &[u64], itemsize: usize) -> Option<usize> {
    let count = usize::try_from(element_count(shape)?).ok()?;
    count.checked_mul(itemsize)
}

/// A Rust number type that is the item type of one numpy dtype (native byte order).
pub trait Element: Copy {
    /// numpy's kind character for this type.
    const KIND: u8;
    /// Its size in bytes.
    const SIZE: usize;
    /// Reads one item from exactly [`Self::SIZE`] little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the item's little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! element {
    ($($t:ty => $kind:literal),* $(,)?) => {$(
        impl Element for $t {
            const KIND: u8 = $kind;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

element!(
    i8 => b'i', i16 => b'i', i32 => b'i', i64 => b'i',
    u8 => b'u', u16 => b'u', u32 => b'u', u64 => b'u',
    f32 => b'f', f64 => b'f',
);

impl Element for bool {
    const KIND: u8 = b'b';
    const SIZE: usize = 1;
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// The dtype of a Rust [`Element`], little-endian (`|` for one-byte items).
pub fn dtype_of<T: Element>() -> DType {
    let order = if T::SIZE == 1 {
        super::dtype::ByteOrder::NotApplicable
    } else {
        super::dtype::ByteOrder::Little
    };
    match DType::from_parts(order, T::KIND, T::SIZE) {
        Some(d) => d,
        None => unreachable!("every Element is a plain numpy dtype"),
    }
}

/// One item of a real numeric dtype as `f64` (`None` for complex, strings, dates).
fn item_f64(dtype: &DType, item: &[u8]) -> Option<f64> {
    let big = dtype.is_big_endian();
    let mut b = [0u8; 8];
    let n = dtype.itemsize();
    if n > 8 || item.len() != n {
        return None;
    }
    b[..n].copy_from_slice(item);
    if big {
        b[..n].reverse();
    }
    let w = u64::from_le_bytes(b);
    Some(match (dtype.kind(), n) {
        (b'b', 1) => f64::from(u8::from(w != 0)),
        (b'i', _) => {
            let shift = 64 - 8 * n as u32;
            (((w << shift) as i64) >> shift) as f64
        }
        (b'u', _) => w as f64,
        (b'f', 2) => half_to_f64(w as u16),
        (b'f', 4) => f64::from(f32::from_bits(w as u32)),
        (b'f', 8) => f64::from_bits(w),
        _ => return None,
    })
}

/// IEEE half precision to `f64` (numpy `float16`).
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        0x1f if frac == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

impl NdArray {
    /// An array, checking that `data` holds exactly the items `shape` and `dtype` need.
    pub fn new(dtype: DType, shape: Vec<u64>, data: Vec<u8>) -> Result<Self, Corrupt> {
        match byte_len(&shape, dtype.itemsize()) {
            Some(n) if n == data.len() => Ok(Self { dtype, shape, data }),
            _ => Err(corrupt(format!(
                "array data has {} bytes, shape {shape:?} of {dtype} needs a different length",
                data.len()
            ))),
        }
    }

    /// A little-endian array of `T` items (`<f8` for `f64`, `|b1` for `bool`).
    pub fn from_elements<T: Element>(shape: Vec<u64>, items: &[T]) -> Result<Self, Corrupt> {
        let mut data = Vec::with_capacity(items.len() * T::SIZE);
        for &x in items {
            x.put_le(&mut data);
        }
        Self::new(dtype_of::<T>(), shape, data)
    }

    /// A `<f8` array.
    pub fn from_f64s(shape: Vec<u64>, items: &[f64]) -> Result<Self, Corrupt> {
        Self::from_elements(shape, items)
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of items (the product of the shape; 1 for a 0-d array).
    pub fn len(&self) -> usize {
        element_count(&self.shape)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(usize::MAX)
    }

    /// Whether the array holds no items.
    pub fn is_empty(&self) -> bool {
        self.shape.contains(&0)
    }

    /// The raw bytes of item `i` (C order), if in range.
    pub fn item(&self, i: usize) -> Option<&[u8]> {
        let n = self.dtype.itemsize();
        self.data
            .get(i.checked_mul(n)?..i.checked_mul(n)?.checked_add(n)?)
    }

    /// The items as `T` when the dtype is exactly `T`'s kind and size (either byte order).
    pub fn to_vec<T: Element>(&self) -> Option<Vec<T>> {
        if self.dtype.kind() != T::KIND || self.dtype.itemsize() != T::SIZE {
            return None;
        }
        let big = self.dtype.is_big_endian();
        Some(
            self.data
                .chunks_exact(T::SIZE)
                .map(|c| {
                    if big {
                        let mut b = c.to_vec();
                        b.reverse();
                        T::from_le(&b)
                    } else {
                        T::from_le(c)
                    }
                })
                .collect(),
        )
    }

    /// The items converted to `f64`, for bool, integer and real float dtypes.
    pub fn to_f64s(&self) -> Option<Vec<f64>> {
        let n = self.dtype.itemsize();
        if n == 0 {
            return (self.data.is_empty() && self.dtype.is_numeric()).then(Vec::new);
        }
        self.data
            .chunks_exact(n)
            .map(|c| item_f64(&self.dtype, c))
            .collect()
    }

    /// The same array with little-endian items (data swapped where the dtype was `>`).
    pub fn to_little_endian(&self) -> NdArray {
        if !self.dtype.is_big_endian() {
            return self.clone();
        }
        let unit = self.dtype.swap_unit();
        let mut data = self.data.clone();
        for c in data.chunks_exact_mut(unit) {
            c.reverse();
        }
        NdArray {
            dtype: self.dtype.to_little_endian(),
            shape: self.shape.clone(),
            data,
        }
    }
}

impl NdScalar {
    /// A scalar, checking that `data` is exactly one item of `dtype`.
    pub fn new(dtype: DType, data: Vec<u8>) -> Result<Self, Corrupt> {
        if dtype.itemsize() == 0 || data.len() != dtype.itemsize() {
            return Err(corrupt(format!(
                "scalar data has {} bytes, {dtype} needs {}",
                data.len(),
                dtype.itemsize()
            )));
        }
        Ok(Self { dtype, data })
    }

    /// A little-endian scalar of `T` (`np.int32(x)` for `i32`).
    pub fn from_element<T: Element>(x: T) -> Self {
        let mut data = Vec::with_capacity(T::SIZE);
        x.put_le(&mut data);
        Self {
            dtype: dtype_of::<T>(),
            data,
        }
    }

    /// The item as `f64`, for bool, integer and real float dtypes.
    pub fn as_f64(&self) -> Option<f64> {
        item_f64(&self.dtype, &self.data)
    }
}

impl Value {
    /// The Python type name of this value, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bin(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "dict",
            Value::Array(_) => "ndarray",
            Value::Scalar(_) => "numpy scalar",
            Value::Complex(..) => "complex",
        }
    }

    /// A number as `f64`: floats, ints, bools (1.0/0.0, as a columnar store keeps them)
    /// and real numpy scalars; `None` for anything else.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Scalar(s) => s.as_f64(),
            _ => None,
        }
    }

    /// An `int` (not a bool) that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::UInt(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// A `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An array.
    pub fn as_array(&self) -> Option<&NdArray> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The shape numpy would give this value: an array's shape, `[]` for any scalar
    /// (Python or numpy), `None` for lists, dicts, strings and the rest.
    pub fn shape(&self) -> Option<&[u64]> {
        match self {
            Value::Array(a) => Some(&a.shape),
            Value::Bool(_)
            | Value::Int(_)
            | Value::UInt(_)
            | Value::Float(_)
            | Value::Scalar(_)
            | Value::Complex(..) => Some(&[]),
            _ => None,
        }
    }

    /// Number of dimensions of [`Value::shape`].
    pub fn ndim(&self) -> Option<usize> {
        self.shape().map(<[u64]>::len)
    }

    /// The dtype numpy would give this value: an array's or numpy scalar's own, `<f8` for
    /// a float, `<i8` for an int within `i64`, `|b1` for a bool, `None` otherwise.
    pub fn dtype(&self) -> Option<DType> {
        match self {
            Value::Array(a) => Some(a.dtype.clone()),
            Value::Scalar(s) => Some(s.dtype.clone()),
            Value::Float(_) => Some(DType::f8()),
            Value::Int(_) => Some(DType::i8()),
            Value::Bool(_) => Some(DType::bool()),
            _ => None,
        }
    }
}

impl From<NdArray> for Value {
    fn from(a: NdArray) -> Self {
        Value::Array(a)
    }
}

impl From<NdScalar> for Value {
    fn from(s: NdScalar) -> Self {
        Value::Scalar(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_check_their_length() {
        let d = DType::f8();
        assert!(NdArray::new(d.clone(), vec![2, 3], vec![0; 48]).is_ok());
        assert!(NdArray::new(d.clone(), vec![2, 3], vec![0; 40]).is_err());
        assert!(NdArray::new(d.clone(), vec![u64::MAX, 2], vec![]).is_err());
        assert!(NdArray::new(d, vec![], vec![0; 8]).is_ok());
    }

    #[test]
    fn typed_views_convert_byte_order() {
        let a = NdArray::from_f64s(vec![2], &[1.5, -2.0]).unwrap();
        assert_eq!(a.dtype.as_str(), "<f8");
        assert_eq!(a.to_vec::<f64>(), Some(vec![1.5, -2.0]));
        assert_eq!(a.to_vec::<i64>(), None);
        let be = NdArray::new(
            DType::parse(">i2").unwrap(),
            vec![2],
            vec![0, 1, 0xff, 0xfe],
        )
        .unwrap();
        assert_eq!(be.to_vec::<i16>(), Some(vec![1, -2]));
        assert_eq!(be.to_f64s(), Some(vec![1.0, -2.0]));
        let le = be.to_little_endian();
        assert_eq!(
            (le.dtype.as_str(), le.data.as_slice()),
            ("<i2", &[1, 0, 0xfe, 0xff][..])
        );
        let h = NdArray::new(
            DType::parse("<f2").unwrap(),
            vec![2],
            vec![0x00, 0x3c, 0x00, 0xc0],
        )
        .unwrap();
        assert_eq!(h.to_f64s(), Some(vec![1.0, -2.0]));
        let b = NdArray::from_elements(vec![2], &[true, false]).unwrap();
        assert_eq!(b.dtype.as_str(), "|b1");
        assert_eq!(b.to_f64s(), Some(vec![1.0, 0.0]));
    }

    #[test]
    fn scalars_and_numbers_as_f64() {
        assert_eq!(Value::Int(-3).as_f64(), Some(-3.0));
        assert_eq!(Value::Bool(true).as_f64(), Some(1.0));
        assert_eq!(
            Value::Scalar(NdScalar::from_element(7u8)).as_f64(),
            Some(7.0)
        );
        assert_eq!(
            Value::Scalar(NdScalar::from_element(-7i32)).as_f64(),
            Some(-7.0)
        );
        assert_eq!(Value::Str("x".into()).as_f64(), None);
        assert_eq!(NdScalar::from_element(1i64).dtype.as_str(), "<i8");
        assert_eq!(Value::Float(1.0).ndim(), Some(0));
    }
}
