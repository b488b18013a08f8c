//! Python objects → stored bytes, directly, byte-identical to `msgpack.packb(v,
//! default=msgpack_numpy.encode)`: msgpack's own order of type checks, then the
//! msgpack-numpy maps written by the protocol crate's [`layout`] writers.
//!
//! Part of the Python client's [`crate::codec`]. Differences from the reference, on purpose
//! (`spec/CONTRACT.md`): nothing is pickled (object arrays and arbitrary objects are
//! refused with a `TypeError` naming the path to the value), dict keys must be `str`.

use std::fmt::Write as _;
use std::os::raw::c_int;

use asebytes_protocol::codec::dtype::TypeStr;
use asebytes_protocol::codec::layout::{self, TooLong};
use asebytes_protocol::codec::{ByteOrder, DType, MAX_DEPTH};
use numpy::npyffi::{self, NPY_ORDER, NpyTypes, PY_ARRAY_API, PyArrayObject, npy_intp};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rmp::encode as enc;

use crate::errors::{AsebytesTypeError, AsebytesValueError};

/// Type numbers at or above this are user-defined dtypes (e.g. `StringDType`), whose
/// items may be pointers.
const NPY_USERDEF: c_int = 256;

/// One step of the path to a value inside a field, for error messages.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Why a value cannot be stored.
#[derive(Debug)]
enum Reason {
    /// Not a type the layout has (the reference would pickle or fail).
    Unsupported(String),
    /// An object-dtype array.
    ObjectArray,
    /// A structured (or void) array.
    StructuredArray(String),
    /// A dtype whose items are not plain bytes.
    OtherArray(String),
    /// A dict key that is not `str`.
    NonStrKey(String, String),
    /// An int outside both the i64 and u64 ranges.
    IntRange(String),
    /// Nested deeper than [`MAX_DEPTH`] (or a container that contains itself).
    TooDeep,
    /// A container or buffer longer than MessagePack can describe.
    TooLong,
    /// Python raised.
    Py(PyErr),
}

/// An encode failure with the path to the offending value, innermost step last.
#[derive(Debug)]
pub struct EncodeError {
    reason: Reason,
    /// Built while unwinding (innermost first), so the success path pays nothing.
    rev_path: Vec<Seg>,
}

impl From<PyErr> for EncodeError {
    fn from(e: PyErr) -> Self {
        Self {
            reason: Reason::Py(e),
            rev_path: Vec::new(),
        }
    }
}

impl EncodeError {
    fn new(reason: Reason) -> Self {
        Self {
            reason,
            rev_path: Vec::new(),
        }
    }

    fn at(mut self, seg: Seg) -> Self {
        self.rev_path.push(seg);
        self
    }

    /// The `TypeError`/`ValueError` to raise; `key` is the field the value was stored under.
    pub fn into_pyerr(self, key: &str) -> PyErr {
        let path = render_path(key, &self.rev_path);
        let for_key = if path.is_empty() {
            String::new()
        } else {
            format!(" for key '{path}'")
        };
        match self.reason {
            Reason::Unsupported(t) => AsebytesTypeError::new_err(format!(
                "cannot store value of type '{t}'{for_key}; nothing is pickled"
            )),
            Reason::ObjectArray => AsebytesTypeError::new_err(format!(
                "cannot store object-dtype array{for_key}; nothing is pickled (convert it to a numeric or string dtype)"
            )),
            Reason::StructuredArray(d) => AsebytesTypeError::new_err(format!(
                "cannot store structured-dtype array ({d}){for_key}; store each field as its own array"
            )),
            Reason::OtherArray(d) => {
                AsebytesTypeError::new_err(format!("cannot store array of dtype {d}{for_key}"))
            }
            Reason::NonStrKey(repr, t) => AsebytesTypeError::new_err(format!(
                "cannot store dict with non-str key {repr} (type '{t}'){for_key}; dict keys must be str"
            )),
            Reason::IntRange(repr) => AsebytesTypeError::new_err(format!(
                "cannot store int {repr}{for_key}: it does not fit in 64 bits"
            )),
            Reason::TooDeep => AsebytesValueError::new_err(format!(
                "cannot store value{for_key}: nested deeper than {MAX_DEPTH} levels (or it contains itself)"
            )),
            Reason::TooLong => AsebytesValueError::new_err(format!(
                "cannot store value{for_key}: longer than 2**32-1 elements or bytes"
            )),
            Reason::Py(e) => e,
        }
    }
}

/// `info.d.a[3]`: the field name, then each step into the value.
fn render_path(key: &str, rev_path: &[Seg]) -> String {
    /// Enough to find the value; a self-containing list would otherwise print 512 steps.
    const MAX_STEPS: usize = 8;
    let mut path = key.to_string();
    for seg in rev_path.iter().rev().take(MAX_STEPS) {
        match seg {
            Seg::Key(k) if path.is_empty() => path.push_str(k),
            Seg::Key(k) => {
                path.push('.');
                path.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(path, "[{i}]");
            }
        }
    }
    if rev_path.len() > MAX_STEPS {
        path.push_str("...");
    }
    path
}

type EncResult = Result<(), EncodeError>;

fn len32(n: usize) -> Result<u32, EncodeError> {
    Ok(layout::len32(n)?)
}

impl From<TooLong> for EncodeError {
    fn from(_: TooLong) -> Self {
        EncodeError::new(Reason::TooLong)
    }
}

/// The Python type name of `obj`, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Appends the msgpack-numpy encoding of `obj` to `out`.
pub fn encode_into(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_obj(obj, out, 0)
}

/// Encodes one value into a fresh buffer; errors name `key`.
pub fn encode(obj: &Bound<'_, PyAny>, key: &str) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    encode_obj(obj, &mut out, 0).map_err(|e| e.into_pyerr(key))?;
    Ok(out)
}

fn encode_obj(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: u32) -> EncResult {
    if depth > MAX_DEPTH {
        return Err(EncodeError::new(Reason::TooDeep));
    }
    let py = obj.py();
    let p = obj.as_ptr();
    // The order of checks is msgpack's own (None, bool, int, float, bytes, str, dict,
    // list/tuple, then `default`), so subclasses land where msgpack puts them:
    // np.float64 is a float, np.str_ a str, IntEnum an int.
    // SAFETY: type checks and value accessors on a live object we hold a reference to;
    // each accessor's error return is checked before its value is used.
    unsafe {
        if p == ffi::Py_None() {
            enc::write_nil(out).expect("Vec write");
            return Ok(());
        }
        if p == ffi::Py_True() || p == ffi::Py_False() {
            enc::write_bool(out, p == ffi::Py_True()).expect("Vec write");
            return Ok(());
        }
        if ffi::PyLong_Check(p) != 0 {
            return encode_int(obj, out);
        }
        if ffi::PyFloat_Check(p) != 0 {
            let v = ffi::PyFloat_AsDouble(p);
            if v == -1.0 && !ffi::PyErr_Occurred().is_null() {
                return Err(PyErr::fetch(py).into());
            }
            enc::write_f64(out, v).expect("Vec write");
            return Ok(());
        }
        if ffi::PyBytes_Check(p) != 0 {
            let n = ffi::PyBytes_Size(p) as usize;
            let s = std::slice::from_raw_parts(ffi::PyBytes_AsString(p) as *const u8, n);
            layout::write_bin(out, s)?;
            return Ok(());
        }
        if ffi::PyByteArray_Check(p) != 0 {
            let n = ffi::PyByteArray_Size(p) as usize;
            let s = std::slice::from_raw_parts(ffi::PyByteArray_AsString(p) as *const u8, n);
            layout::write_bin(out, s)?;
            return Ok(());
        }
        if ffi::PyUnicode_Check(p) != 0 {
            let mut n: ffi::Py_ssize_t = 0;
            let s = ffi::PyUnicode_AsUTF8AndSize(p, &mut n);
            if s.is_null() {
                let e = PyErr::fetch(py);
                return Err(EncodeError::new(Reason::Py(AsebytesValueError::new_err(
                    format!("cannot store str that is not valid Unicode: {e}"),
                ))));
            }
            layout::write_str(out, std::slice::from_raw_parts(s as *const u8, n as usize))?;
            return Ok(());
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            return encode_dict(d, out, depth);
        }
        if let Ok(l) = obj.cast::<PyList>() {
            enc::write_array_len(out, len32(l.len())?).expect("Vec write");
            for (i, item) in l.iter().enumerate() {
                encode_obj(&item, out, depth + 1).map_err(|e| e.at(Seg::Index(i)))?;
            }
            return Ok(());
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            enc::write_array_len(out, len32(t.len())?).expect("Vec write");
            for (i, item) in t.iter().enumerate() {
                encode_obj(&item, out, depth + 1).map_err(|e| e.at(Seg::Index(i)))?;
            }
            return Ok(());
        }
        if ffi::PyMemoryView_Check(p) != 0 {
            // As msgpack does: the raw bytes of a contiguous buffer, as bin.
            let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
            if ffi::PyObject_GetBuffer(p, view.as_mut_ptr(), ffi::PyBUF_SIMPLE) != 0 {
                return Err(PyErr::fetch(py).into());
            }
            let mut view = view.assume_init();
            let s: &[u8] = if view.len == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(view.buf as *const u8, view.len as usize)
            };
            let written = layout::write_bin(out, s);
            ffi::PyBuffer_Release(&mut view);
            written?;
            return Ok(());
        }
        if npyffi::PyArray_Check(py, p) != 0 {
            return encode_array(obj, out);
        }
        if ffi::PyObject_TypeCheck(
            p,
            npyffi::get_type_object(py, NpyTypes::PyNumberArrType_Type),
        ) != 0
            || ffi::PyObject_TypeCheck(p, npyffi::get_type_object(py, NpyTypes::PyBoolArrType_Type))
                != 0
        {
            return encode_np_scalar(obj, out);
        }
        if ffi::PyComplex_Check(p) != 0 {
            // {b"complex": True, b"data": repr(z)}, exactly as msgpack_numpy writes it.
            let re = ffi::PyComplex_RealAsDouble(p);
            let im = ffi::PyComplex_ImagAsDouble(p);
            if !ffi::PyErr_Occurred().is_null() {
                return Err(PyErr::fetch(py).into());
            }
            layout::write_complex(out, re, im);
            return Ok(());
        }
    }
    Err(EncodeError::new(Reason::Unsupported(type_name(obj))))
}

fn encode_int(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> EncResult {
    let py = obj.py();
    let p = obj.as_ptr();
    // SAFETY: `p` is an int (checked by the caller); each conversion's error return is
    // checked and its exception cleared before trying the next.
    unsafe {
        let mut overflow: std::os::raw::c_int = 0;
        let v = ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow);
        if v == -1 && !ffi::PyErr_Occurred().is_null() {
            return Err(PyErr::fetch(py).into());
        }
        if overflow == 0 {
            layout::write_int(out, v);
            return Ok(());
        }
        if overflow > 0 {
            let u = ffi::PyLong_AsUnsignedLongLong(p);
            if u == u64::MAX && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
            } else {
                enc::write_uint(out, u).expect("Vec write");
                return Ok(());
            }
        }
    }
    let repr = obj.repr().map(|r| r.to_string()).unwrap_or_default();
    Err(EncodeError::new(Reason::IntRange(repr)))
}

fn encode_dict(d: &Bound<'_, PyDict>, out: &mut Vec<u8>, depth: u32) -> EncResult {
    enc::write_map_len(out, len32(d.len())?).expect("Vec write");
    for (k, v) in d.iter() {
        let Ok(ks) = k.cast::<PyString>() else {
            let repr = k.repr().map(|r| r.to_string()).unwrap_or_default();
            return Err(EncodeError::new(Reason::NonStrKey(repr, type_name(&k))));
        };
        let key = ks.to_str().map_err(|e| {
            EncodeError::new(Reason::Py(AsebytesValueError::new_err(format!(
                "cannot store dict key that is not valid Unicode: {e}"
            ))))
        })?;
        layout::write_str(out, key.as_bytes())?;
        encode_obj(&v, out, depth + 1).map_err(|e| e.at(Seg::Key(key.to_string())))?;
    }
    Ok(())
}

/// `dtype.str` (`<f8`, `|b1`, `<U3`), from the descriptor's parts for the plain kinds
/// (the protocol's [`TypeStr::from_parts`]); numpy's own `str` for the rest (datetimes),
/// vetted by [`DType::parse`].
fn dtype_str(d: &Bound<'_, PyArrayDescr>) -> PyResult<TypeStr> {
    let order = match d.byteorder() {
        b'<' => ByteOrder::Little,
        b'>' => ByteOrder::Big,
        b'=' if cfg!(target_endian = "little") => ByteOrder::Little,
        b'=' => ByteOrder::Big,
        _ => ByteOrder::NotApplicable,
    };
    match TypeStr::from_parts(order, d.kind(), d.itemsize()) {
        Some(t) => Ok(t),
        None => {
            let text: String = d.getattr(pyo3::intern!(d.py(), "str"))?.extract()?;
            DType::parse(&text)
                .ok()
                .and_then(|t| TypeStr::from_text(t.as_str()))
                .ok_or_else(|| {
                    AsebytesTypeError::new_err(format!("cannot store array of dtype {text}"))
                })
        }
    }
}

/// Whether the array's items may be copied as raw bytes (else the right refusal).
fn array_kind_ok(d: &Bound<'_, PyArrayDescr>) -> Result<(), EncodeError> {
    let kind = d.kind();
    let show = || d.str().map(|s| s.to_string()).unwrap_or_default();
    if kind == b'O' {
        return Err(EncodeError::new(Reason::ObjectArray));
    }
    if kind == b'V' {
        return Err(EncodeError::new(Reason::StructuredArray(show())));
    }
    if d.num() >= NPY_USERDEF || d.has_object() || !b"biufcSUMm".contains(&kind) {
        return Err(EncodeError::new(Reason::OtherArray(show())));
    }
    Ok(())
}

fn encode_array(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> EncResult {
    let py = obj.py();
    let mut arr_ptr = obj.as_ptr() as *mut PyArrayObject;
    // SAFETY: `obj` is an ndarray (PyArray_Check); its fields are read while we hold it.
    let descr = unsafe {
        Bound::from_borrowed_ptr(py, (*arr_ptr).fields.descr.cast())
            .cast_into_unchecked::<PyArrayDescr>()
    };
    array_kind_ok(&descr)?;
    let type_str = dtype_str(&descr)?;
    let contiguous;
    // SAFETY: as above; PyArray_NewCopy returns a new C-ordered array or NULL.
    unsafe {
        if (*arr_ptr).fields.flags & npyffi::NPY_ARRAY_C_CONTIGUOUS == 0 {
            let copy = PY_ARRAY_API.PyArray_NewCopy(py, arr_ptr, NPY_ORDER::NPY_CORDER);
            contiguous = Some(Bound::from_owned_ptr_or_err(py, copy)?);
            arr_ptr = contiguous.as_ref().expect("set").as_ptr() as *mut PyArrayObject;
        } else {
            contiguous = None;
        }
    }
    let _keep = contiguous;
    // SAFETY: `arr_ptr` is a live C-contiguous array (the original or our copy, kept
    // alive by `_keep`); its data spans prod(dims) * itemsize bytes.
    unsafe {
        let nd = (*arr_ptr).fields.nd as usize;
        // A 0-d array may have a null dimensions pointer.
        let dims: &[npy_intp] = if nd == 0 {
            &[]
        } else {
            std::slice::from_raw_parts((*arr_ptr).fields.dimensions, nd)
        };
        let count = dims.iter().fold(1usize, |a, &d| a * d as usize);
        let nbytes = count * descr.itemsize();
        let data: &[u8] = if nbytes == 0 {
            &[]
        } else {
            std::slice::from_raw_parts((*arr_ptr).fields.data as *const u8, nbytes)
        };
        layout::write_array_head(
            out,
            type_str.as_str(),
            dims.iter().map(|&d| d as u64),
            nbytes,
        )?;
        out.extend_from_slice(data);
    }
    Ok(())
}

fn encode_np_scalar(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> EncResult {
    let py = obj.py();
    // SAFETY: `obj` is a numpy scalar; PyArray_DescrFromScalar returns a new reference.
    let descr = unsafe {
        let d = PY_ARRAY_API.PyArray_DescrFromScalar(py, obj.as_ptr());
        Bound::from_owned_ptr_or_err(py, d.cast())?.cast_into_unchecked::<PyArrayDescr>()
    };
    if array_kind_ok(&descr).is_err() {
        return Err(EncodeError::new(Reason::Unsupported(type_name(obj))));
    }
    let type_str = dtype_str(&descr)?;
    let size = descr.itemsize();
    // The widest fixed-size numpy number is clongdouble (32 bytes).
    let mut buf = [0u8; 64];
    if size > buf.len() {
        return Err(EncodeError::new(Reason::Unsupported(type_name(obj))));
    }
    // SAFETY: ScalarAsCtype copies the scalar's `size` value bytes into `buf`.
    unsafe { PY_ARRAY_API.PyArray_ScalarAsCtype(py, obj.as_ptr(), buf.as_mut_ptr().cast()) };
    layout::write_scalar(out, type_str.as_str(), &buf[..size])?;
    Ok(())
}
