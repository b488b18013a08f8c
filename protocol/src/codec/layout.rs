//! The msgpack-numpy map layout (`asebytes-behaviour.md` §3.1): how an array, a numpy
//! scalar and a Python complex sit inside a MessagePack map, read and written.
//!
//! Part of [`crate::codec`], between the [`Reader`] and the two decoders (the tree decoder
//! here, the Python client's direct decoder) and two encoders that share it: the bin key
//! literals, the one-pass reader of the canonical layout, the general field scan with the
//! reference's fallback rules, shape parsing, and the header writers.

use rmp::Marker;
use rmp::encode as enc;

use super::reader::{Corrupt, Reader, corrupt};

/// numpy's dimension limit (`NPY_MAXDIMS` since numpy 2).
pub const MAX_DIMS: usize = 64;

/// Dimensions kept inline; deeper shapes (rare) spill to the heap.
const INLINE_DIMS: usize = 8;

/// An array shape as read from a stored value, on the stack for up to eight dimensions
/// (a decoded row has several arrays; a heap allocation per shape shows in its cost).
#[derive(Debug, Clone, Default)]
pub struct Dims {
    inline: [u64; INLINE_DIMS],
    spilled: Vec<u64>,
    n: usize,
}

impl Dims {
    /// The dimensions.
    pub fn as_slice(&self) -> &[u64] {
        if self.n <= INLINE_DIMS {
            &self.inline[..self.n]
        } else {
            &self.spilled
        }
    }

    fn push(&mut self, d: u64) {
        if self.n < INLINE_DIMS {
            self.inline[self.n] = d;
        } else {
            if self.n == INLINE_DIMS {
                self.spilled.extend_from_slice(&self.inline);
            }
            self.spilled.push(d);
        }
        self.n += 1;
    }
}

/// Reads a shape: an array of non-negative ints (what msgpack-numpy writes, from the
/// tuple `arr.shape`) or a single int (which `np.ndarray(shape=n)` also accepts).
pub fn read_shape(r: &mut Reader<'_>) -> Result<Dims, Corrupt> {
    let mut dims = Dims::default();
    if let Marker::FixArray(_) | Marker::Array16 | Marker::Array32 = r.peek_marker()? {
        let n = r.read_array_len()?;
        if n > MAX_DIMS {
            return Err(corrupt(format!(
                "array shape has {n} dimensions (numpy allows {MAX_DIMS})"
            )));
        }
        for _ in 0..n {
            dims.push(r.read_u64()?);
        }
    } else {
        dims.push(r.read_u64()?);
    }
    Ok(dims)
}

/// An array's or numpy scalar's fields, borrowed from the stored bytes (not yet checked
/// against each other: [`super::value::byte_len`] and [`super::DType`] do that).
#[derive(Debug)]
pub struct NdParts<'a> {
    /// The dtype string (`b"type"`, str or bin).
    pub type_str: &'a [u8],
    /// `b"kind"` (arrays only; `b""` for plain dtypes, `b"O"`/`b"V"` for refused ones).
    pub kind: &'a [u8],
    /// `None` for a numpy scalar.
    pub shape: Option<Dims>,
    /// The raw items.
    pub data: &'a [u8],
}

/// Reads the `n` entries of a map (header consumed) in exactly the layout
/// `msgpack_numpy.encode` writes (`{nd: True, type, kind, shape, data}` or `{nd: False,
/// type, data}`, bin keys in that order), in one pass. `None` (reader position then
/// unspecified) for any other map or anything unexpected: the caller rewinds and takes
/// the general path, which gives the same result for every map this accepts.
pub fn read_canonical<'a>(r: &mut Reader<'a>, n: usize) -> Option<NdParts<'a>> {
    if n == 5 && r.eat(b"\xc4\x02nd\xc3\xc4\x04type") {
        let type_str = r.read_bytes_like().ok()?;
        if !r.eat(b"\xc4\x04kind") {
            return None;
        }
        let kind = r.read_bin().ok()?;
        if !r.eat(b"\xc4\x05shape") {
            return None;
        }
        let shape = read_shape(r).ok()?;
        if !r.eat(b"\xc4\x04data") {
            return None;
        }
        let data = r.read_bin().ok()?;
        return Some(NdParts {
            type_str,
            kind,
            shape: Some(shape),
            data,
        });
    }
    if n == 3 && r.eat(b"\xc4\x02nd\xc2\xc4\x04type") {
        let type_str = r.read_bytes_like().ok()?;
        if !r.eat(b"\xc4\x04data") {
            return None;
        }
        let data = r.read_bin().ok()?;
        return Some(NdParts {
            type_str,
            kind: b"",
            shape: None,
            data,
        });
    }
    None
}

/// Where the msgpack-numpy fields of a map are: offsets of their values in the buffer.
#[derive(Debug, Default, Clone)]
pub struct NdFields {
    /// `b"nd"`'s value.
    pub nd: Option<usize>,
    /// `b"type"`'s value.
    pub type_: Option<usize>,
    /// `b"kind"`'s value.
    pub kind: Option<usize>,
    /// `b"shape"`'s value.
    pub shape: Option<usize>,
    /// `b"data"`'s value.
    pub data: Option<usize>,
    /// `b"complex"`'s value.
    pub complex: Option<usize>,
}

impl NdFields {
    /// Whether `msgpack_numpy.decode` looks at this map at all (a bin key `nd` or `complex`).
    pub fn is_special(&self) -> bool {
        self.nd.is_some() || self.complex.is_some()
    }
}

/// Walks the `n` entries of a map (header consumed), noting where the bin-keyed
/// msgpack-numpy fields are (later duplicates win, as in the dict msgpack builds). Leaves
/// the reader after the map.
pub fn scan_fields(r: &mut Reader<'_>, n: usize) -> Result<NdFields, Corrupt> {
    let mut f = NdFields::default();
    for _ in 0..n {
        if let Marker::Bin8 | Marker::Bin16 | Marker::Bin32 = r.peek_marker()? {
            let slot = match r.read_bin()? {
                b"nd" => Some(&mut f.nd),
                b"type" => Some(&mut f.type_),
                b"kind" => Some(&mut f.kind),
                b"shape" => Some(&mut f.shape),
                b"data" => Some(&mut f.data),
                b"complex" => Some(&mut f.complex),
                _ => None,
            };
            if let Some(slot) = slot {
                *slot = Some(r.pos());
            }
        } else {
            r.skip()?;
        }
        r.skip()?;
    }
    Ok(f)
}

/// What `msgpack_numpy.decode` makes of a map, from its [`scan_fields`].
#[derive(Debug)]
pub enum Special<'a> {
    /// An array or numpy scalar.
    Nd(NdParts<'a>),
    /// A Python complex, from the text of its `repr`.
    Complex(&'a [u8]),
    /// A plain dict: not special, or a required field is missing (the reference catches
    /// that `KeyError` and keeps the dict).
    Dict,
}

/// Interprets a scanned map as the reference does. Fields of the wrong type are
/// [`Corrupt`]; object and structured arrays are refused.
pub fn read_special<'a>(r: &mut Reader<'a>, f: &NdFields) -> Result<Special<'a>, Corrupt> {
    if let Some(nd_at) = f.nd {
        r.seek(nd_at);
        let is_array = r.peek_marker()? == Marker::True;
        let (Some(type_at), Some(data_at)) = (f.type_, f.data) else {
            return Ok(Special::Dict);
        };
        let mut kind: &[u8] = b"";
        let mut shape = None;
        if is_array {
            let Some(shape_at) = f.shape else {
                return Ok(Special::Dict);
            };
            if let Some(kind_at) = f.kind {
                r.seek(kind_at);
                if let Marker::Bin8 | Marker::Bin16 | Marker::Bin32 = r.peek_marker()? {
                    kind = r.read_bin()?;
                    refuse_kind(kind)?;
                }
            }
            r.seek(shape_at);
            shape = Some(read_shape(r)?);
        }
        r.seek(type_at);
        let type_str = r.read_bytes_like()?;
        r.seek(data_at);
        let data = r.read_bin()?;
        return Ok(Special::Nd(NdParts {
            type_str,
            kind,
            shape,
            data,
        }));
    }
    match (f.complex, f.data) {
        (Some(_), Some(data_at)) => {
            r.seek(data_at);
            Ok(Special::Complex(r.read_bytes_like()?))
        }
        _ => Ok(Special::Dict),
    }
}

/// The byte length of an array's data, checked: exactly what `shape` items of `itemsize`
/// bytes need (msgpack-numpy writes exactly that), with no overflow.
pub fn array_data_len(shape: &[u64], itemsize: usize, data_len: usize) -> Result<usize, Corrupt> {
    match super::value::byte_len(shape, itemsize) {
        Some(n) if n == data_len => Ok(n),
        Some(n) if n < data_len => Err(corrupt(format!(
            "array data has {data_len} bytes, shape {shape:?} needs fewer ({n})"
        ))),
        _ => Err(corrupt(format!(
            "array data has {data_len} bytes, shape {shape:?} needs more"
        ))),
    }
}

/// Checks a numpy scalar's data as `np.frombuffer(data, dtype)[0]` reads it: whole items,
/// at least one (only the first counts).
pub fn scalar_data_len(itemsize: usize, data_len: usize) -> Result<(), Corrupt> {
    if itemsize == 0 || data_len < itemsize || !data_len.is_multiple_of(itemsize) {
        return Err(corrupt(format!(
            "scalar data has {data_len} bytes, dtype needs {itemsize}"
        )));
    }
    Ok(())
}

/// Refuses arrays whose `kind` says they hold pickles (`O`) or records (`V`).
pub fn refuse_kind(kind: &[u8]) -> Result<(), Corrupt> {
    match kind {
        b"O" => Err(corrupt(
            "refusing to decode an object-dtype (pickled) array: asebytes never unpickles",
        )),
        b"V" => Err(corrupt(
            "refusing to decode a structured-dtype array: structured dtypes are not supported",
        )),
        _ => Ok(()),
    }
}

/// A length MessagePack cannot describe (more than `u32::MAX` bytes or elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong(pub usize);

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} elements or bytes is more than MessagePack can hold (2**32-1)",
            self.0
        )
    }
}

impl std::error::Error for TooLong {}

/// `n` as a MessagePack length.
pub fn len32(n: usize) -> Result<u32, TooLong> {
    u32::try_from(n).map_err(|_| TooLong(n))
}

// Writing into a Vec cannot fail: rmp's writers only fail on I/O errors.
fn ok<T, E>(r: Result<T, E>) {
    debug_assert!(r.is_ok());
}

/// Writes a str.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) -> Result<(), TooLong> {
    ok(enc::write_str_len(out, len32(s.len())?));
    out.extend_from_slice(s);
    Ok(())
}

/// Writes a bin.
pub fn write_bin(out: &mut Vec<u8>, b: &[u8]) -> Result<(), TooLong> {
    ok(enc::write_bin_len(out, len32(b.len())?));
    out.extend_from_slice(b);
    Ok(())
}

/// Writes an int in its shortest form, unsigned markers for non-negative values, as
/// msgpack-python does.
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    ok(enc::write_sint(out, v));
}

/// Writes an array's map up to its data: `{nd: True, type, kind: b"", shape: [..], data:`
/// followed by the bin header of `nbytes`; the caller appends exactly `nbytes` bytes.
pub fn write_array_head(
    out: &mut Vec<u8>,
    type_str: &str,
    shape: impl ExactSizeIterator<Item = u64>,
    nbytes: usize,
) -> Result<(), TooLong> {
    out.extend_from_slice(b"\x85\xc4\x02nd\xc3\xc4\x04type");
    write_str(out, type_str.as_bytes())?;
    out.extend_from_slice(b"\xc4\x04kind\xc4\x00\xc4\x05shape");
    ok(enc::write_array_len(out, len32(shape.len())?));
    for d in shape {
        ok(enc::write_uint(out, d));
    }
    out.extend_from_slice(b"\xc4\x04data");
    ok(enc::write_bin_len(out, len32(nbytes)?));
    Ok(())
}

/// Writes a numpy scalar's map: `{nd: False, type, data}`.
pub fn write_scalar(out: &mut Vec<u8>, type_str: &str, data: &[u8]) -> Result<(), TooLong> {
    out.extend_from_slice(b"\x83\xc4\x02nd\xc2\xc4\x04type");
    write_str(out, type_str.as_bytes())?;
    out.extend_from_slice(b"\xc4\x04data");
    write_bin(out, data)
}

/// Writes a Python complex's map: `{complex: True, data: repr(z)}`.
pub fn write_complex(out: &mut Vec<u8>, re: f64, im: f64) {
    out.extend_from_slice(b"\x82\xc4\x07complex\xc3\xc4\x04data");
    let text = super::complex::complex_repr(re, im);
    // A complex's repr is a few dozen bytes at most.
    ok(write_str(out, text.as_bytes()));
}
