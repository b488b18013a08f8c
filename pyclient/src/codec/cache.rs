//! Per-process caches of the Python objects every decoded row repeats: numpy dtype
//! descriptors by type string, and field names as interned `str` / `bytes`.
//!
//! Part of the Python client's [`crate::codec`]; the dtype strings themselves are vetted by
//! the protocol crate's [`DType`] before numpy ever sees them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::raw::c_int;
use std::thread::LocalKey;

use asebytes_protocol::codec::DType;
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::errors::AsebytesValueError;

/// Cap on the per-process caches (dtype descriptors, interned keys). Past it, new entries
/// are simply not cached: a store with millions of distinct keys must not grow memory.
const CACHE_CAP: usize = 4096;

/// A word-at-a-time multiplicative hash (FxHash-style): the cached keys are short byte
/// strings looked up a dozen times per decoded row, for which SipHash (or byte-wise FNV)
/// costs more than the lookup it serves.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        self.0 = h;
    }
}

type FnvMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<Fnv>>;

/// Slots of a cache's direct-mapped front table.
const FRONT: usize = 64;

/// A bounded map from short byte strings to Python objects, one per thread.
///
/// Per thread rather than behind a lock: no thread can ever wait on another. Lookups go
/// first to a small direct-mapped table indexed without hashing the whole key (length
/// and three bytes), which holds the handful of names and dtypes every row repeats; only
/// its misses pay for a hash probe. This runs a dozen times per decoded row. The borrow
/// is never held while Python code could run, so re-entry is impossible.
struct PyCache<T: 'static> {
    table: &'static LocalKey<RefCell<Option<Box<Table<T>>>>>,
}

/// One remembered entry of a front table.
type Entry<T> = Option<(Box<[u8]>, Py<T>)>;

struct Table<T> {
    front: [Entry<T>; FRONT],
    map: FnvMap<Py<T>>,
}

/// The front slot of `key`: cheap, and different for the field names of one row.
fn front_slot(key: &[u8]) -> usize {
    let n = key.len();
    let at = |i: usize| key.get(i).copied().unwrap_or(0) as usize;
    (n.wrapping_mul(7) ^ at(0) ^ (at(n / 2) << 1) ^ (at(n.wrapping_sub(1)) << 2)) % FRONT
}

impl<T> PyCache<T> {
    fn get<'py>(&self, py: Python<'py>, key: &[u8]) -> Option<Bound<'py, T>> {
        let slot = front_slot(key);
        self.table.with_borrow_mut(|t| {
            let t = t.as_mut()?;
            if let Some((k, v)) = &t.front[slot]
                && **k == *key
            {
                return Some(v.bind(py).clone());
            }
            let v = t.map.get(key)?;
            t.front[slot] = Some((key.into(), v.clone_ref(py)));
            Some(v.bind(py).clone())
        })
    }

    fn put(&self, key: &[u8], value: &Bound<'_, T>) {
        self.table.with_borrow_mut(|t| {
            let t = t.get_or_insert_with(|| {
                Box::new(Table {
                    front: std::array::from_fn(|_| None),
                    map: FnvMap::default(),
                })
            });
            if t.map.len() < CACHE_CAP {
                t.map
                    .entry(key.into())
                    .or_insert_with(|| value.clone().unbind());
            }
        });
    }
}

thread_local! {
    static DTYPE_MAP: RefCell<Option<Box<Table<PyArrayDescr>>>> = const { RefCell::new(None) };
    static KEY_MAP: RefCell<Option<Box<Table<PyString>>>> = const { RefCell::new(None) };
    static BLOB_KEY_MAP: RefCell<Option<Box<Table<PyBytes>>>> = const { RefCell::new(None) };
}

static DTYPES: PyCache<PyArrayDescr> = PyCache { table: &DTYPE_MAP };
static KEYS: PyCache<PyString> = PyCache { table: &KEY_MAP };
static BLOB_KEYS: PyCache<PyBytes> = PyCache {
    table: &BLOB_KEY_MAP,
};

/// A blob-tier row key as `bytes`, shared per process like [`key_str`]: bytes are
/// immutable, and a shared object brings its cached hash into the dict.
pub fn key_bytes<'py>(py: Python<'py>, key: &[u8]) -> Bound<'py, PyBytes> {
    if let Some(b) = BLOB_KEYS.get(py, key) {
        return b;
    }
    let b = PyBytes::new(py, key);
    BLOB_KEYS.put(key, &b);
    b
}

/// A row key as a Python `str`, interned per process: the same dozen field names come
/// back on every row, and a cached string also carries its cached hash into the dict.
pub fn key_str<'py>(py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyString>> {
    if let Some(s) = KEYS.get(py, key) {
        return Ok(s);
    }
    let text = std::str::from_utf8(key).map_err(|_| {
        AsebytesValueError::new_err(format!("stored key {key:?} is not valid UTF-8"))
    })?;
    let s = PyString::new(py, text);
    KEYS.put(key, &s);
    Ok(s)
}

/// The dtype for a type string such as `<f8`, from the cache; only plain-old-data dtypes.
pub fn dtype_for<'py>(py: Python<'py>, type_str: &[u8]) -> PyResult<Bound<'py, PyArrayDescr>> {
    if let Some(d) = DTYPES.get(py, type_str) {
        return Ok(d);
    }
    // The protocol's parser refuses object, structured and unknown dtypes with the
    // codec's own messages; numpy then builds the descriptor.
    let text = DType::parse_bytes(type_str)
        .map_err(|e| AsebytesValueError::new_err(format!("cannot decode stored value: {e}")))?
        .as_str()
        .to_owned();
    let text = text.as_str();
    let d = PyArrayDescr::new(py, text).map_err(|e| {
        AsebytesValueError::new_err(format!(
            "cannot decode stored value: bad dtype {text:?}: {e}"
        ))
    })?;
    check_plain_dtype(&d, text)?;
    DTYPES.put(type_str, &d);
    Ok(d)
}

/// Type numbers at or above this are user-defined dtypes (e.g. `StringDType`), whose
/// items may be pointers.
const NPY_USERDEF: c_int = 256;

/// Only dtypes whose items are plain bytes may be filled by `memcpy`: an object or
/// variable-width-string array built from stored bytes would hold forged pointers. The
/// type string was vetted already; this checks what numpy actually made of it.
fn check_plain_dtype(d: &Bound<'_, PyArrayDescr>, text: &str) -> PyResult<()> {
    let kind = d.kind();
    if d.num() >= NPY_USERDEF || d.has_object() || !b"biufcSUMm".contains(&kind) {
        let what = match kind {
            b'O' => "object-dtype values are never unpickled".to_string(),
            b'V' => "structured dtypes are not supported".to_string(),
            _ => format!("dtype kind {:?} is not supported", kind as char),
        };
        return Err(AsebytesValueError::new_err(format!(
            "refusing to decode array of dtype {text:?}: {what}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_distinguishes_similar_keys() {
        let h = |s: &[u8]| {
            let mut f = Fnv::default();
            f.write(s);
            f.finish()
        };
        assert_ne!(h(b"calc.energy"), h(b"calc.forces"));
        assert_ne!(h(b"ab"), h(b"ba"));
        assert_eq!(h(b"cell"), h(b"cell"));
    }
}
