//! Python arguments → wire values: locations, indices, index lists, key lists, and the
//! reply frames the asyncio transport hands back.
//!
//! Shared by every operation of [`crate::ops`], so the sync `Store` and the async
//! `AsyncStore` accept exactly the same arguments and refuse bad ones with the same
//! exceptions, before anything is sent.

use asebytes_protocol::{Key, OptionMap, OptionValue};
use numpy::npyffi::{self, NPY_TYPES, PY_ARRAY_API, PyArrayObject};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString};

use crate::errors::{AsebytesTypeError, AsebytesValueError, IndexOutOfRangeError};

/// `memory://x`, `lmdb:///p` and other URIs pass through; a plain path is made absolute
/// against the current directory now (as `os.path.abspath`, symlinks untouched), because
/// the daemon has another working directory.
pub fn normalize_location(location: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = location.py();
    let os = py.import(pyo3::intern!(py, "os"))?;
    let text: String = os
        .call_method1(pyo3::intern!(py, "fspath"), (location,))?
        .extract()
        .map_err(|_| {
            AsebytesTypeError::new_err(format!(
                "location must be a str path or URI, got '{}'",
                type_name(location)
            ))
        })?;
    if text.contains("://") {
        return Ok(text);
    }
    if text.is_empty() {
        return Err(AsebytesValueError::new_err("location must not be empty"));
    }
    os.getattr(pyo3::intern!(py, "path"))?
        .call_method1(pyo3::intern!(py, "abspath"), (text,))?
        .extract()
}

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// An index as the user gave it: any int or numpy integer (`__index__`), bools included.
pub fn index_arg(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(i) => Ok(i),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(obj.py()) => Err(
            IndexOutOfRangeError::new_err(format!("Index {} out of range", obj.str()?)),
        ),
        Err(_) => Err(AsebytesTypeError::new_err(format!(
            "indices must be integers, not '{}'",
            type_name(obj)
        ))),
    }
}

/// A sequence of indices: list, tuple, range, or a numpy integer array (read in one go).
pub fn indices_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    let py = obj.py();
    // SAFETY: PyArray_Check only inspects the type.
    if unsafe { npyffi::PyArray_Check(py, obj.as_ptr()) } != 0 {
        return int_array(obj);
    }
    let not_a_sequence = || {
        AsebytesTypeError::new_err(format!(
            "indices must be a sequence of integers, not '{}'",
            type_name(obj)
        ))
    };
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(not_a_sequence());
    }
    let iter = obj.try_iter().map_err(|_| not_a_sequence())?;
    let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
    for item in iter {
        out.push(index_arg(&item?)?);
    }
    Ok(out)
}

/// `None` or a sequence of indices.
pub fn opt_indices_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    obj.filter(|i| !i.is_none()).map(indices_arg).transpose()
}

/// Where a bulk write goes, as the reference's `set_many(start, rows)` and this package's
/// `set_many(indices, rows)` both say it.
#[derive(Debug)]
pub enum Positions {
    /// Rows `start, start+1, ...` (the reference signature).
    Start(i64),
    /// One index per row.
    Indices(Vec<i64>),
}

impl Positions {
    /// An int (or numpy integer) start, or a sequence of indices.
    pub fn from_arg(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        // SAFETY: PyArray_Check only inspects the type.
        let is_array = unsafe { npyffi::PyArray_Check(py, obj.as_ptr()) } != 0;
        if !is_array && obj.try_iter().is_err() {
            if !obj.hasattr(pyo3::intern!(py, "__index__"))? {
                return Err(AsebytesTypeError::new_err(format!(
                    "{what}: the start must be an integer or a sequence of indices, not '{}'",
                    type_name(obj)
                )));
            }
            return index_arg(obj).map(Self::Start);
        }
        indices_arg(obj).map(Self::Indices)
    }

    /// The indices of `n` rows; explicit indices must be exactly `n`.
    pub fn resolve(self, what: &str, n: usize, noun: &str) -> PyResult<Vec<i64>> {
        match self {
            Self::Indices(ix) => {
                check_same_len(what, ix.len(), n, noun)?;
                Ok(ix)
            }
            Self::Start(start) => (0..n)
                .map(|j| {
                    i64::try_from(j)
                        .ok()
                        .and_then(|j| start.checked_add(j))
                        .ok_or_else(|| {
                            IndexOutOfRangeError::new_err(format!(
                                "{what}: rows from {start} on do not fit a 64-bit index"
                            ))
                        })
                })
                .collect(),
        }
    }
}

/// `what: 3 indices but 2 rows`: explicit indices must pair up with the rows.
pub fn check_same_len(what: &str, indices: usize, items: usize, noun: &str) -> PyResult<()> {
    if indices != items {
        return Err(AsebytesValueError::new_err(format!(
            "{what}: {indices} indices but {items} {noun}"
        )));
    }
    Ok(())
}

/// A 1-d integer (or bool) array as i64, converted by numpy in C.
fn int_array(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    let py = obj.py();
    // SAFETY: `obj` is an ndarray; we read its descriptor and dimensions while holding it,
    // and PyArray_FromAny returns a new aligned C-contiguous int64 array or NULL.
    unsafe {
        let arr = obj.as_ptr() as *mut PyArrayObject;
        let descr = Bound::from_borrowed_ptr(py, (*arr).fields.descr.cast())
            .cast_into_unchecked::<numpy::PyArrayDescr>();
        use numpy::PyArrayDescrMethods;
        if !matches!(descr.kind(), b'i' | b'u' | b'b') {
            return Err(AsebytesTypeError::new_err(format!(
                "indices must be integers, not an array of dtype {}",
                descr.str()?
            )));
        }
        if (*arr).fields.nd != 1 {
            return Err(AsebytesTypeError::new_err("indices must be a 1-d array"));
        }
        let i64_descr = PY_ARRAY_API.PyArray_DescrFromType(py, NPY_TYPES::NPY_LONGLONG as i32);
        let conv = PY_ARRAY_API.PyArray_FromAny(
            py,
            obj.as_ptr(),
            i64_descr,
            1,
            1,
            npyffi::NPY_ARRAY_C_CONTIGUOUS
                | npyffi::NPY_ARRAY_ALIGNED
                | npyffi::NPY_ARRAY_FORCECAST,
            std::ptr::null_mut(),
        );
        let conv = Bound::from_owned_ptr_or_err(py, conv)?;
        let c = conv.as_ptr() as *mut PyArrayObject;
        let n = *(*c).fields.dimensions as usize;
        if n == 0 {
            return Ok(Vec::new());
        }
        let data = std::slice::from_raw_parts((*c).fields.data as *const i64, n);
        Ok(data.to_vec())
    }
}

/// A key list argument; a bare `str`/`bytes` is refused rather than split into characters.
pub fn keys_list(
    obj: &Bound<'_, PyAny>,
    one: impl Fn(&Bound<'_, PyAny>) -> PyResult<Vec<u8>>,
) -> PyResult<Vec<Key>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(AsebytesTypeError::new_err(format!(
            "keys must be a list of keys, not a single '{}' (wrap it in a list)",
            type_name(obj)
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        AsebytesTypeError::new_err(format!(
            "keys must be a list of keys, not '{}'",
            type_name(obj)
        ))
    })?;
    iter.map(|k| one(&k?).map(Key::from)).collect()
}

/// The items of a per-row sequence argument (`rows`, `data`, `values`); a dict is refused
/// because iterating it would silently yield its keys.
pub fn per_row_items<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    of: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<pyo3::types::PyDict>() {
        return Err(AsebytesTypeError::new_err(format!(
            "{what} must be a sequence of {of}, not a single dict"
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        AsebytesTypeError::new_err(format!(
            "{what} must be a sequence of {of}, not '{}'",
            type_name(obj)
        ))
    })?;
    iter.collect()
}

/// Runs `f` on the bytes of `obj` (a reply frame: `bytes` or any C-contiguous byte buffer,
/// such as a `bytearray` or `memoryview` slice), read in place without a copy.
pub fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> PyResult<R>) -> PyResult<R> {
    let buf = PyBuffer::<u8>::get(obj)?;
    if buf.item_count() == 0 {
        return f(&[]);
    }
    let Some(ptr) = buf.as_slice_ptr() else {
        return Err(AsebytesTypeError::new_err(
            "a reply frame must be a C-contiguous bytes-like object",
        ));
    };
    // SAFETY: the buffer is held (so its memory stays valid and a bytearray cannot be
    // resized) until `buf` drops after `f`; its contents are bytes (`u8` items, checked by
    // `PyBuffer::get`). The documented contract is that nobody mutates it meanwhile.
    let body: &[u8] = unsafe { &*(ptr.as_ptr() as *const [u8]) };
    f(body)
}

/// Backend options from Python keywords: `bool`, `int`, `float` and `str` values travel;
/// `None` means "the backend's default" and is left out; anything else is a `TypeError`
/// naming the option.
pub fn options_arg(options: &Bound<'_, PyDict>) -> PyResult<OptionMap> {
    let mut map = OptionMap::new();
    for (name, value) in options.iter() {
        let name: String = name.extract().map_err(|_| {
            AsebytesTypeError::new_err(format!(
                "backend option names must be str, got {}",
                type_name(&name)
            ))
        })?;
        let value = if value.is_none() {
            continue;
        } else if value.is_instance_of::<PyBool>() {
            OptionValue::Bool(value.extract()?)
        } else if value.is_instance_of::<PyInt>() {
            OptionValue::Int(value.extract().map_err(|_| {
                AsebytesValueError::new_err(format!("option {name}={value} does not fit 64 bits"))
            })?)
        } else if value.is_instance_of::<PyFloat>() {
            OptionValue::Float(value.extract()?)
        } else if value.is_instance_of::<PyString>() {
            OptionValue::Str(value.extract()?)
        } else {
            return Err(AsebytesTypeError::new_err(format!(
                "option {name}= must be a bool, int, float, str or None, got {}",
                type_name(&value)
            )));
        };
        map.insert(name, value);
    }
    Ok(map)
}

/// The options as a Python dict (pickling a handle).
pub fn options_dict<'py>(py: Python<'py>, options: &OptionMap) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in options {
        match value {
            OptionValue::Bool(b) => d.set_item(name, b)?,
            OptionValue::Int(i) => d.set_item(name, i)?,
            OptionValue::Float(x) => d.set_item(name, x)?,
            OptionValue::Str(s) => d.set_item(name, s)?,
        }
    }
    Ok(d)
}
