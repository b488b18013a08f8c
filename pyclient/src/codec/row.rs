//! Rows and keys from Python: `dict[str, Any]` (object tier) and `dict[bytes, bytes]`
//! (blob tier) into the `(key, value)` byte pairs that travel to the daemon.
//!
//! Part of the Python client's [`crate::codec`]; values go through [`super::encode`].

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::encode::{encode, type_name};
use crate::errors::{AsebytesTypeError, AsebytesValueError};

/// The UTF-8 bytes of a `str` used as a key; a lone surrogate (which has no UTF-8 form)
/// is the package's `ValueError`, like a surrogate in a value, not a bare
/// `UnicodeEncodeError`.
pub fn key_utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a [u8]> {
    match s.to_str() {
        Ok(text) => Ok(text.as_bytes()),
        Err(e) => {
            let repr = s.repr().map(|r| r.to_string()).unwrap_or_default();
            Err(AsebytesValueError::new_err(format!(
                "cannot use key {repr}: it is not valid Unicode ({e})"
            )))
        }
    }
}

/// An object-tier row: `dict[str, Any]` → `(utf-8 key, encoded value)` pairs.
pub fn encode_row(row: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let dict = row.cast::<PyDict>().map_err(|_| {
        AsebytesTypeError::new_err(format!("a row must be a dict, got '{}'", type_name(row)))
    })?;
    let mut fields = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = object_key(&k)?;
        let value = encode(&v, &String::from_utf8_lossy(&key))?;
        fields.push((key, value));
    }
    Ok(fields)
}

/// A blob-tier row: `dict[bytes | str, bytes]` → pairs, stored as given.
pub fn blob_row_in(row: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let dict = row.cast::<PyDict>().map_err(|_| {
        AsebytesTypeError::new_err(format!("a row must be a dict, got '{}'", type_name(row)))
    })?;
    let mut fields = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = blob_key(&k)?;
        let value = blob_field(&key, &v)?;
        fields.push((key, value));
    }
    Ok(fields)
}

/// One blob-tier value stored under `key`: bytes-like only; errors name the key.
pub fn blob_field(key: &[u8], v: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    blob_value(v).map(Cow::into_owned).map_err(|_| {
        AsebytesTypeError::new_err(format!(
            "blob value for key {:?} must be bytes, got '{}'",
            String::from_utf8_lossy(key),
            type_name(v)
        ))
    })
}

/// An object-tier key: `str` only.
pub fn object_key(k: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let s = k.cast::<PyString>().map_err(|_| {
        AsebytesTypeError::new_err(format!("keys must be str, got '{}'", type_name(k)))
    })?;
    Ok(key_utf8(s)?.to_vec())
}

/// A blob-tier key: `bytes`, or `str` (UTF-8) as the reference accepts.
pub fn blob_key(k: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = k.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = k.cast::<PyString>() {
        return Ok(key_utf8(s)?.to_vec());
    }
    Err(AsebytesTypeError::new_err(format!(
        "blob keys must be bytes or str, got '{}'",
        type_name(k)
    )))
}

fn blob_value<'a>(v: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    v.extract::<Vec<u8>>().map(Cow::Owned).and_then(|b| {
        if v.cast::<pyo3::types::PyByteArray>().is_ok()
            || v.cast::<pyo3::types::PyMemoryView>().is_ok()
        {
            Ok(b)
        } else {
            Err(AsebytesTypeError::new_err("not bytes"))
        }
    })
}
