//! Stored bytes → Python objects, directly: no intermediate value tree, which is what keeps
//! a 9-atom frame at a couple of microseconds.
//!
//! Part of the Python client's [`crate::codec`]. The msgpack-numpy format itself (the
//! [`Reader`], where arrays and scalars sit in a map, dtype strings, length checks) is the
//! protocol crate's [`asebytes_protocol::codec`]; this file only builds the Python objects.
//! Decoded arrays are fresh, writable copies the caller owns.

use std::os::raw::{c_int, c_void};

use asebytes_protocol::codec::complex::parse_complex;
use asebytes_protocol::codec::layout::{self, MAX_DIMS, NdParts, Special};
use asebytes_protocol::codec::{Corrupt, Int, MAX_DEPTH, Reader};
use numpy::npyffi::{self, NpyTypes, PY_ARRAY_API, PyArray_Descr, PyArrayObject, npy_intp};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyComplex, PyDict, PyString};
use rmp::Marker;

use super::cache::{dtype_for, key_bytes, key_str};
use crate::errors::{AsebytesValueError, OrRaise, stored_corrupt};

/// Decodes one stored value (the whole buffer) into a Python object.
pub fn decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut r = Reader::new(data);
    let v = decode_value(py, &mut r, 0)?;
    if r.remaining() != 0 {
        return Err(stored_corrupt(Corrupt(format!(
            "{} trailing bytes after the value",
            r.remaining()
        ))));
    }
    Ok(v)
}

/// Lists up to this long are allocated at their announced length; longer ones grow.
const PREALLOC: usize = 4096;

fn corrupt(msg: &str) -> PyErr {
    stored_corrupt(Corrupt(msg.to_owned()))
}

/// Decodes the next value from `r`.
fn decode_value<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
    depth: u32,
) -> PyResult<Bound<'py, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(stored_corrupt(Corrupt(format!(
            "value nested deeper than {MAX_DEPTH} levels"
        ))));
    }
    let m = r.marker().or_raise()?;
    // SAFETY (all `from_owned_ptr_or_err` below): each constructor returns a new
    // reference or NULL with an exception set, which is what the call expects.
    unsafe {
        let obj = match m {
            Marker::Null => return Ok(py.None().into_bound(py)),
            Marker::True => return Ok(pyo3::types::PyBool::new(py, true).to_owned().into_any()),
            Marker::False => return Ok(pyo3::types::PyBool::new(py, false).to_owned().into_any()),
            Marker::F32 => ffi::PyFloat_FromDouble(f32::from_be_bytes(r.be().or_raise()?) as f64),
            Marker::F64 => ffi::PyFloat_FromDouble(f64::from_be_bytes(r.be().or_raise()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let n = r.len_after(m).or_raise()?;
                let s = r.take(n).or_raise()?;
                ffi::PyUnicode_DecodeUTF8(
                    s.as_ptr().cast(),
                    s.len() as ffi::Py_ssize_t,
                    c"strict".as_ptr(),
                )
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let n = r.len_after(m).or_raise()?;
                let s = r.take(n).or_raise()?;
                return Ok(PyBytes::new(py, s).into_any());
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let n = r.len_after(m).or_raise()?;
                if n > r.remaining() {
                    return Err(corrupt("array announces more elements than bytes remain"));
                }
                if n > PREALLOC {
                    // A long announced length is only a claim: nested lists could each
                    // announce as many items as bytes remain, so grow as items arrive.
                    let list = pyo3::types::PyList::empty(py);
                    for _ in 0..n {
                        list.append(decode_value(py, r, depth + 1)?)?;
                    }
                    return Ok(list.into_any());
                }
                let list = Bound::from_owned_ptr_or_err(py, ffi::PyList_New(n as ffi::Py_ssize_t))?;
                for i in 0..n {
                    let item = decode_value(py, r, depth + 1)?;
                    // PyList_SET_ITEM steals the reference into the fresh list's empty slot.
                    ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr());
                }
                return Ok(list);
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let n = r.len_after(m).or_raise()?;
                return decode_map(py, r, n, depth);
            }
            Marker::Reserved => return Err(corrupt("reserved marker 0xc1")),
            _ => match r.int_after(m).or_raise()? {
                Some(Int::U(v)) => ffi::PyLong_FromUnsignedLongLong(v),
                Some(Int::I(v)) => ffi::PyLong_FromLongLong(v),
                None => {
                    return Err(corrupt(
                        "MessagePack extension types are not part of the msgpack-numpy layout",
                    ));
                }
            },
        };
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// A map: a msgpack-numpy array/scalar/complex where `msgpack_numpy.decode` would make one
/// (the protocol's [`layout`] decides), else a dict.
fn decode_map<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
    n: usize,
    depth: u32,
) -> PyResult<Bound<'py, PyAny>> {
    if n.saturating_mul(2) > r.remaining() {
        return Err(corrupt("map announces more entries than bytes remain"));
    }
    let start = r.pos();
    // The layout msgpack_numpy.encode writes, in one pass; anything else takes the
    // general path, which gives the same result for every map the fast one accepts.
    if let Some(parts) = layout::read_canonical(r, n) {
        return nd_object(py, parts);
    }
    r.seek(start);
    let fields = layout::scan_fields(r, n).or_raise()?;
    let end = r.pos();
    if fields.is_special() {
        match layout::read_special(r, &fields).or_raise()? {
            Special::Nd(parts) => {
                r.seek(end);
                return nd_object(py, parts);
            }
            Special::Complex(text) => {
                r.seek(end);
                let (re, im) = parse_complex(&String::from_utf8_lossy(text)).or_raise()?;
                return Ok(PyComplex::from_doubles(py, re, im).into_any());
            }
            Special::Dict => {}
        }
    }
    r.seek(start);
    let dict = PyDict::new(py);
    for _ in 0..n {
        let key: Bound<'py, PyAny> = match r.peek_marker().or_raise()? {
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                PyString::new(py, r.read_str().or_raise()?).into_any()
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                PyBytes::new(py, r.read_bin().or_raise()?).into_any()
            }
            m => {
                return Err(stored_corrupt(Corrupt(format!(
                    "map key must be str or bin, got {m:?}"
                ))));
            }
        };
        let value = decode_value(py, r, depth + 1)?;
        dict.set_item(key, value)?;
    }
    debug_assert_eq!(r.pos(), end);
    Ok(dict.into_any())
}

/// An array or numpy scalar from its parts (object and structured kinds refused).
fn nd_object<'py>(py: Python<'py>, parts: NdParts<'_>) -> PyResult<Bound<'py, PyAny>> {
    layout::refuse_kind(parts.kind).map_err(|e| AsebytesValueError::new_err(e.0))?;
    let descr = dtype_for(py, parts.type_str)?;
    match parts.shape {
        Some(dims) => new_array(py, &descr, dims.as_slice(), parts.data),
        None => new_scalar(py, &descr, parts.data),
    }
}

/// Dimensions kept on the stack when building an array; deeper shapes (rare) use the heap.
const INLINE_DIMS: usize = 8;

/// A fresh, writable, C-ordered array the caller owns, filled from `data`.
fn new_array<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyArrayDescr>,
    shape: &[u64],
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let nbytes = layout::array_data_len(shape, descr.itemsize(), data.len()).or_raise()?;
    // Dimensions as numpy takes them, on the stack for the usual few.
    let mut inline: [npy_intp; INLINE_DIMS] = [0; INLINE_DIMS];
    let mut spilled = Vec::new();
    let dims: &mut [npy_intp] = if shape.len() <= INLINE_DIMS {
        &mut inline[..shape.len()]
    } else {
        spilled.resize(shape.len().min(MAX_DIMS), 0);
        &mut spilled
    };
    for (d, &s) in dims.iter_mut().zip(shape) {
        *d = npy_intp::try_from(s).map_err(|_| corrupt("array dimension too large"))?;
    }
    // SAFETY: PyArray_NewFromDescr steals one reference to the descriptor (hence the
    // incref), allocates uninitialised C-ordered storage for `dims` and returns a new
    // reference or NULL. The dtype is plain-old-data (checked when cached), so filling
    // exactly `nbytes` bytes by memcpy fully initialises it.
    unsafe {
        let descr_ptr = descr.as_ptr() as *mut PyArray_Descr;
        ffi::Py_INCREF(descr_ptr.cast());
        let arr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            descr_ptr,
            dims.len() as c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        let arr = Bound::from_owned_ptr_or_err(py, arr)?;
        if nbytes > 0 {
            let dst = (*(arr.as_ptr() as *mut PyArrayObject)).fields.data;
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst.cast::<u8>(), nbytes);
        }
        Ok(arr)
    }
}

/// A numpy scalar of `descr` from the first item of `data` (`np.frombuffer(data)[0]`).
fn new_scalar<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyArrayDescr>,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let size = descr.itemsize();
    layout::scalar_data_len(size, data.len()).or_raise()?;
    // PyArray_Scalar copies (and byte-swaps) from `data`, so an unaligned pointer into
    // the frame buffer is fine; it does not keep the pointer.
    let mut item = data[..size].to_vec();
    // SAFETY: `item` holds one full item of a plain-old-data dtype; PyArray_Scalar
    // copies it into a new scalar object and returns a new reference or NULL.
    unsafe {
        let obj = PY_ARRAY_API.PyArray_Scalar(
            py,
            item.as_mut_ptr().cast::<c_void>(),
            descr.as_ptr() as *mut PyArray_Descr,
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// Decodes an object-tier row (keys UTF-8, values msgpack-numpy) into a fresh dict.
pub fn decode_row<'py, 'a>(
    py: Python<'py>,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in fields {
        let key = key_str(py, k)?;
        dict.set_item(key, decode_field(py, k, v)?)?;
    }
    Ok(dict)
}

/// Decodes the stored value of field `key`; a failure names the key.
pub fn decode_field<'py>(py: Python<'py>, key: &[u8], value: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    decode(py, value).map_err(|e| with_key(py, e, key))
}

/// A blob-tier row: `dict[bytes, bytes]`, stored bytes as given.
pub fn blob_row<'py, 'a>(
    py: Python<'py>,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in fields {
        dict.set_item(key_bytes(py, k), PyBytes::new(py, v))?;
    }
    Ok(dict)
}

/// Names the key in a decode failure, keeping the exception class.
fn with_key(py: Python<'_>, e: PyErr, key: &[u8]) -> PyErr {
    if e.is_instance_of::<AsebytesValueError>(py) {
        let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
        return AsebytesValueError::new_err(format!(
            "key {:?}: {msg}",
            String::from_utf8_lossy(key)
        ));
    }
    e
}
