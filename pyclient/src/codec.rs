//! The msgpack-numpy field codec: Python values ⇄ bytes, byte-compatible with
//! `msgpack.packb(v, default=msgpack_numpy.encode)` / `msgpack.unpackb(b, object_hook=
//! msgpack_numpy.decode)` (`asebytes-behaviour.md` §3.1), so LMDB files of the reference
//! library are read and written unchanged.
//!
//! Hand-rolled on `rmp`'s low-level marker and writer functions instead of serde: a row
//! decodes straight into Python objects and numpy arrays with no intermediate tree, which
//! is what keeps a 9-atom frame at a couple of microseconds.
//!
//! Differences from the reference, on purpose (`spec/CONTRACT.md`): nothing is ever
//! pickled or unpickled (object-dtype arrays are refused both ways), dict keys must be
//! `str`, and decoded arrays are writable copies the caller owns instead of read-only views.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::raw::{c_int, c_void};
use std::thread::LocalKey;

use numpy::npyffi::{
    self, NPY_ORDER, NpyTypes, PY_ARRAY_API, PyArray_Descr, PyArrayObject, npy_intp,
};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use rmp::Marker;
use rmp::encode as enc;

use crate::errors::{AsebytesTypeError, AsebytesValueError};

/// Nesting deeper than this is refused both ways: it can only be hostile or a cycle, and
/// the codec recurses.
const MAX_DEPTH: u32 = 512;

/// Cap on the per-process caches (dtype descriptors, interned keys). Past it, new entries
/// are simply not cached: a store with millions of distinct keys must not grow memory.
const CACHE_CAP: usize = 4096;

// ------------------------------------------------------------------------------------
// Reading MessagePack
// ------------------------------------------------------------------------------------

/// Bytes that are not the MessagePack we expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Corrupt> for PyErr {
    fn from(e: Corrupt) -> Self {
        AsebytesValueError::new_err(format!("cannot decode stored value: {}", e.0))
    }
}

fn corrupt(msg: impl Into<String>) -> Corrupt {
    Corrupt(msg.into())
}

/// An integer as MessagePack carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int {
    /// Non-negative (any unsigned marker or a positive fixint).
    U(u64),
    /// Negative or signed marker.
    I(i64),
}

/// A pull parser over one borrowed MessagePack buffer; strings and bins borrow from it.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Moves back to an offset seen earlier.
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.remaining() < n {
            return Err(corrupt(format!(
                "truncated: need {n} bytes at offset {}",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    /// The next marker, consumed.
    #[inline]
    pub fn marker(&mut self) -> Result<Marker, Corrupt> {
        let b = self.take(1)?[0];
        Ok(Marker::from_u8(b))
    }

    /// The next marker, not consumed.
    #[inline]
    pub fn peek_marker(&self) -> Result<Marker, Corrupt> {
        self.buf
            .get(self.pos)
            .map(|&b| Marker::from_u8(b))
            .ok_or_else(|| corrupt("truncated: no marker"))
    }

    /// The length that follows a str/bin/array/map/ext marker (for ext, the payload length
    /// without the type byte).
    #[inline]
    pub fn len_after(&mut self, m: Marker) -> Result<usize, Corrupt> {
        Ok(match m {
            Marker::FixStr(n) | Marker::FixArray(n) | Marker::FixMap(n) => n as usize,
            Marker::Str8 | Marker::Bin8 | Marker::Ext8 => self.be::<1>()?[0] as usize,
            Marker::Str16 | Marker::Bin16 | Marker::Array16 | Marker::Map16 | Marker::Ext16 => {
                u16::from_be_bytes(self.be()?) as usize
            }
            Marker::Str32 | Marker::Bin32 | Marker::Array32 | Marker::Map32 | Marker::Ext32 => {
                u32::from_be_bytes(self.be()?) as usize
            }
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            other => {
                return Err(corrupt(format!(
                    "expected a length-carrying marker, got {other:?}"
                )));
            }
        })
    }

    /// The integer after `m`, if `m` is an integer marker.
    #[inline]
    pub fn int_after(&mut self, m: Marker) -> Result<Option<Int>, Corrupt> {
        Ok(Some(match m {
            Marker::FixPos(n) => Int::U(n as u64),
            Marker::FixNeg(n) => Int::I(n as i64),
            Marker::U8 => Int::U(self.be::<1>()?[0] as u64),
            Marker::U16 => Int::U(u16::from_be_bytes(self.be()?) as u64),
            Marker::U32 => Int::U(u32::from_be_bytes(self.be()?) as u64),
            Marker::U64 => Int::U(u64::from_be_bytes(self.be()?)),
            Marker::I8 => Int::I(i8::from_be_bytes(self.be()?) as i64),
            Marker::I16 => Int::I(i16::from_be_bytes(self.be()?) as i64),
            Marker::I32 => Int::I(i32::from_be_bytes(self.be()?) as i64),
            Marker::I64 => Int::I(i64::from_be_bytes(self.be()?)),
            _ => return Ok(None),
        }))
    }

    /// A non-negative integer.
    #[inline]
    pub fn read_u64(&mut self) -> Result<u64, Corrupt> {
        let m = self.marker()?;
        match self.int_after(m)? {
            Some(Int::U(v)) => Ok(v),
            Some(Int::I(v)) if v >= 0 => Ok(v as u64),
            _ => Err(corrupt(format!("expected an unsigned integer, got {m:?}"))),
        }
    }

    /// A map header; returns the number of pairs.
    #[inline]
    pub fn read_map_len(&mut self) -> Result<usize, Corrupt> {
        match self.marker()? {
            m @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => self.len_after(m),
            m => Err(corrupt(format!("expected a map, got {m:?}"))),
        }
    }

    /// An array header; returns the number of elements.
    #[inline]
    pub fn read_array_len(&mut self) -> Result<usize, Corrupt> {
        match self.marker()? {
            m @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => self.len_after(m),
            m => Err(corrupt(format!("expected an array, got {m:?}"))),
        }
    }

    /// A str, borrowed.
    #[inline]
    pub fn read_str(&mut self) -> Result<&'a str, Corrupt> {
        match self.marker()? {
            m @ (Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32) => {
                let n = self.len_after(m)?;
                std::str::from_utf8(self.take(n)?)
                    .map_err(|e| corrupt(format!("invalid UTF-8 in str: {e}")))
            }
            m => Err(corrupt(format!("expected a str, got {m:?}"))),
        }
    }

    /// A bin, borrowed.
    #[inline]
    pub fn read_bin(&mut self) -> Result<&'a [u8], Corrupt> {
        match self.marker()? {
            m @ (Marker::Bin8 | Marker::Bin16 | Marker::Bin32) => {
                let n = self.len_after(m)?;
                self.take(n)
            }
            m => Err(corrupt(format!("expected a bin, got {m:?}"))),
        }
    }

    /// A bin or a str, as bytes (keys travel as either, depending on the writer).
    pub fn read_bytes_like(&mut self) -> Result<&'a [u8], Corrupt> {
        match self.marker()? {
            m @ (Marker::Bin8
            | Marker::Bin16
            | Marker::Bin32
            | Marker::FixStr(_)
            | Marker::Str8
            | Marker::Str16
            | Marker::Str32) => {
                let n = self.len_after(m)?;
                self.take(n)
            }
            m => Err(corrupt(format!("expected bytes, got {m:?}"))),
        }
    }

    /// Consumes `lit` if the next bytes are exactly `lit`.
    #[inline]
    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.buf[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            return true;
        }
        false
    }

    /// Consumes `nil` if it comes next.
    #[inline]
    pub fn eat_nil(&mut self) -> Result<bool, Corrupt> {
        if self.peek_marker()? == Marker::Null {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Skips one complete value (iteratively, so hostile nesting cannot overflow the stack).
    pub fn skip(&mut self) -> Result<(), Corrupt> {
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.marker()?;
            let fixed = match m {
                Marker::FixPos(_)
                | Marker::FixNeg(_)
                | Marker::Null
                | Marker::True
                | Marker::False => 0,
                Marker::U8 | Marker::I8 => 1,
                Marker::U16 | Marker::I16 => 2,
                Marker::U32 | Marker::I32 | Marker::F32 => 4,
                Marker::U64 | Marker::I64 | Marker::F64 => 8,
                Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                    pending = pending.saturating_add(self.len_after(m)?);
                    0
                }
                Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                    pending = pending.saturating_add(self.len_after(m)?.saturating_mul(2));
                    0
                }
                Marker::FixExt1
                | Marker::FixExt2
                | Marker::FixExt4
                | Marker::FixExt8
                | Marker::FixExt16
                | Marker::Ext8
                | Marker::Ext16
                | Marker::Ext32 => self.len_after(m)? + 1,
                Marker::Reserved => return Err(corrupt("reserved marker 0xc1")),
                _ => self.len_after(m)?,
            };
            self.take(fixed)?;
            // Every pending element needs at least one byte: a count beyond what is left
            // is corrupt, and checking here bounds the loop by the buffer length.
            if pending > self.remaining() {
                return Err(corrupt(
                    "container announces more elements than bytes remain",
                ));
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------
// Small per-process caches (dtype descriptors by type string, interned key strings)
// ------------------------------------------------------------------------------------

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
fn key_bytes<'py>(py: Python<'py>, key: &[u8]) -> Bound<'py, PyBytes> {
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
    let text = std::str::from_utf8(type_str).map_err(|_| {
        AsebytesValueError::new_err("cannot decode stored value: dtype string is not UTF-8")
    })?;
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
/// variable-width-string array built from stored bytes would hold forged pointers.
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

// ------------------------------------------------------------------------------------
// Decoding: bytes -> Python
// ------------------------------------------------------------------------------------

/// Decodes one stored value (the whole buffer) into a Python object.
pub fn decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut r = Reader::new(data);
    let v = decode_value(py, &mut r, 0)?;
    if r.remaining() != 0 {
        return Err(Corrupt(format!("{} trailing bytes after the value", r.remaining())).into());
    }
    Ok(v)
}

/// Decodes the next value from `r`.
pub fn decode_value<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
    depth: u32,
) -> PyResult<Bound<'py, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(Corrupt(format!("value nested deeper than {MAX_DEPTH} levels")).into());
    }
    let m = r.marker()?;
    // SAFETY (all `from_owned_ptr_or_err` below): each constructor returns a new
    // reference or NULL with an exception set, which is what the call expects.
    unsafe {
        let obj = match m {
            Marker::Null => return Ok(py.None().into_bound(py)),
            Marker::True => return Ok(pyo3::types::PyBool::new(py, true).to_owned().into_any()),
            Marker::False => return Ok(pyo3::types::PyBool::new(py, false).to_owned().into_any()),
            Marker::F32 => ffi::PyFloat_FromDouble(f32::from_be_bytes(r.be()?) as f64),
            Marker::F64 => ffi::PyFloat_FromDouble(f64::from_be_bytes(r.be()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let n = r.len_after(m)?;
                let s = r.take(n)?;
                ffi::PyUnicode_DecodeUTF8(
                    s.as_ptr().cast(),
                    s.len() as ffi::Py_ssize_t,
                    c"strict".as_ptr(),
                )
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let n = r.len_after(m)?;
                let s = r.take(n)?;
                return Ok(PyBytes::new(py, s).into_any());
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let n = r.len_after(m)?;
                if n > r.remaining() {
                    return Err(corrupt("array announces more elements than bytes remain").into());
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
                let n = r.len_after(m)?;
                return decode_map(py, r, n, depth);
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => {
                return Err(corrupt(
                    "MessagePack extension types are not part of the msgpack-numpy layout",
                )
                .into());
            }
            Marker::Reserved => return Err(corrupt("reserved marker 0xc1").into()),
            _ => match r
                .int_after(m)?
                .expect("every remaining marker is an integer")
            {
                Int::U(v) => ffi::PyLong_FromUnsignedLongLong(v),
                Int::I(v) => ffi::PyLong_FromLongLong(v),
            },
        };
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// Where the msgpack-numpy fields of a map start (offsets of their values in the buffer).
#[derive(Default)]
struct NdFields {
    nd: Option<usize>,
    type_: Option<usize>,
    kind: Option<usize>,
    shape: Option<usize>,
    data: Option<usize>,
    complex: Option<usize>,
}

/// A map: a msgpack-numpy array/scalar/complex if it has a bin key `nd` or `complex`
/// (as `msgpack_numpy.decode` decides), else a dict.
fn decode_map<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
    n: usize,
    depth: u32,
) -> PyResult<Bound<'py, PyAny>> {
    if n.saturating_mul(2) > r.remaining() {
        return Err(corrupt("map announces more entries than bytes remain").into());
    }
    let start = r.pos();
    if let Some(v) = decode_canonical(py, r, n)? {
        return Ok(v);
    }
    r.seek(start);
    let mut f = NdFields::default();
    let mut special = false;
    for _ in 0..n {
        let key_is_bin = matches!(
            r.peek_marker()?,
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32
        );
        if key_is_bin {
            let k = r.read_bin()?;
            let slot = match k {
                b"nd" => Some(&mut f.nd),
                b"type" => Some(&mut f.type_),
                b"kind" => Some(&mut f.kind),
                b"shape" => Some(&mut f.shape),
                b"data" => Some(&mut f.data),
                b"complex" => Some(&mut f.complex),
                _ => None,
            };
            if let Some(slot) = slot {
                // Later duplicates win, as they would in the dict msgpack builds.
                *slot = Some(r.pos());
                special |= matches!(k, b"nd" | b"complex");
            }
        } else {
            r.skip()?;
        }
        r.skip()?;
    }
    let end = r.pos();
    if special && let Some(v) = decode_special(py, r, &f, depth)? {
        r.seek(end);
        return Ok(v);
    }
    r.seek(start);
    let dict = PyDict::new(py);
    for _ in 0..n {
        let key: Bound<'py, PyAny> = match r.peek_marker()? {
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let s = r.read_str()?;
                PyString::new(py, s).into_any()
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                PyBytes::new(py, r.read_bin()?).into_any()
            }
            m => return Err(corrupt(format!("map key must be str or bin, got {m:?}")).into()),
        };
        let value = decode_value(py, r, depth + 1)?;
        dict.set_item(key, value)?;
    }
    debug_assert_eq!(r.pos(), end);
    Ok(dict.into_any())
}

/// The maps `msgpack_numpy.encode` writes, read in one pass: `{nd: True, type, kind, shape,
/// data}` for an array and `{nd: False, type, data}` for a numpy scalar, bin keys in that
/// order. `None` (reader position unspecified) for any other map or anything unexpected,
/// which the general path then decodes (or reports) exactly as before; the result is the
/// same either way, this only skips the second pass over the map.
fn decode_canonical<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
    n: usize,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(c) = read_canonical(r, n) else {
        return Ok(None);
    };
    match c.shape {
        Some(shape) => {
            refuse_kind(c.kind)?;
            let descr = dtype_for(py, c.type_str)?;
            new_array(py, &descr, shape, c.data).map(Some)
        }
        None => {
            let descr = dtype_for(py, c.type_str)?;
            new_scalar(py, &descr, c.data).map(Some)
        }
    }
}

/// The parts of a map in `msgpack_numpy.encode`'s own layout (see [`decode_canonical`]).
struct Canonical<'a> {
    type_str: &'a [u8],
    /// Arrays only.
    kind: &'a [u8],
    /// `None` for a numpy scalar.
    shape: Option<Shape>,
    data: &'a [u8],
}

/// Reads the `n` entries of a map in the canonical msgpack-numpy layout, or `None`.
fn read_canonical<'a>(r: &mut Reader<'a>, n: usize) -> Option<Canonical<'a>> {
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
        return Some(Canonical {
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
        return Some(Canonical {
            type_str,
            kind: b"",
            shape: None,
            data,
        });
    }
    None
}

// ------------------------------------------------------------------------------------
// Numbers and numeric arrays without Python (`to_numpy()`)
// ------------------------------------------------------------------------------------

/// `dtype.str` of the dtype numpy gives a Python `float`, `int`, `bool`.
const NATIVE_F8: &[u8] = if cfg!(target_endian = "little") {
    b"<f8"
} else {
    b">f8"
};
const NATIVE_I8: &[u8] = if cfg!(target_endian = "little") {
    b"<i8"
} else {
    b">i8"
};
const BOOL: &[u8] = b"|b1";

/// A stored number or numeric array, read without touching Python: what `to_numpy()`
/// copies straight from a reply into one packed array.
#[derive(Debug)]
pub struct Numeric<'a> {
    /// numpy's `dtype.str` of the items (a Python scalar gets the dtype numpy gives it).
    pub type_str: &'a [u8],
    /// The value's shape; empty for a scalar.
    pub shape: Shape,
    /// The items, C-ordered, as stored (their length is checked by whoever copies them).
    pub items: Items<'a>,
}

/// Where a [`Numeric`]'s bytes are.
#[derive(Debug)]
pub enum Items<'a> {
    /// Borrowed from the stored value (an array's or numpy scalar's `data`).
    Stored(&'a [u8]),
    /// A Python scalar in native byte order (a bool uses the first byte).
    Word([u8; 8]),
}

impl Items<'_> {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Items::Stored(b) => b,
            Items::Word(w) => w,
        }
    }
}

impl Numeric<'static> {
    fn word(type_str: &'static [u8], word: [u8; 8]) -> Self {
        Self {
            type_str,
            shape: Shape::new(),
            items: Items::Word(word),
        }
    }
}

/// The stored value `data` as a [`Numeric`] if it is a Python float, int (within `i64`) or
/// bool, or a msgpack-numpy array or numpy scalar in the canonical layout (not of object or
/// structured kind; [`dtype_for`] vets the dtype itself); `None` for anything else, which
/// the caller then decodes through Python.
pub fn numeric(data: &[u8]) -> Option<Numeric<'_>> {
    let mut r = Reader::new(data);
    let m = r.marker().ok()?;
    let value = match m {
        Marker::True | Marker::False => {
            Numeric::word(BOOL, [u8::from(m == Marker::True), 0, 0, 0, 0, 0, 0, 0])
        }
        Marker::F64 => Numeric::word(NATIVE_F8, f64::from_be_bytes(r.be().ok()?).to_ne_bytes()),
        Marker::F32 => {
            let v = f64::from(f32::from_be_bytes(r.be().ok()?));
            Numeric::word(NATIVE_F8, v.to_ne_bytes())
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = r.len_after(m).ok()?;
            let c = read_canonical(&mut r, n)?;
            if matches!(c.kind, b"O" | b"V") {
                return None;
            }
            Numeric {
                type_str: c.type_str,
                shape: c.shape.unwrap_or_else(Shape::new),
                items: Items::Stored(c.data),
            }
        }
        _ => {
            let v = match r.int_after(m).ok()?? {
                Int::I(v) => v,
                Int::U(v) => i64::try_from(v).ok()?,
            };
            Numeric::word(NATIVE_I8, v.to_ne_bytes())
        }
    };
    (r.remaining() == 0).then_some(value)
}

/// Arrays whose `kind` says they hold pickles or records are refused before anything else.
fn refuse_kind(kind: &[u8]) -> PyResult<()> {
    match kind {
        b"O" => Err(AsebytesValueError::new_err(
            "refusing to decode an object-dtype (pickled) array: asebytes never unpickles",
        )),
        b"V" => Err(AsebytesValueError::new_err(
            "refusing to decode a structured-dtype array: structured dtypes are not supported",
        )),
        _ => Ok(()),
    }
}

/// The msgpack-numpy interpretation of a map, or `None` where the reference falls back to
/// a plain dict (a required field is missing: its `decode` catches that `KeyError`).
fn decode_special<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
    f: &NdFields,
    depth: u32,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Some(nd_at) = f.nd {
        r.seek(nd_at);
        let is_array = r.peek_marker()? == Marker::True;
        let (Some(type_at), Some(data_at)) = (f.type_, f.data) else {
            return Ok(None);
        };
        if is_array {
            let Some(shape_at) = f.shape else {
                return Ok(None);
            };
            if let Some(kind_at) = f.kind {
                r.seek(kind_at);
                if matches!(
                    r.peek_marker()?,
                    Marker::Bin8 | Marker::Bin16 | Marker::Bin32
                ) {
                    refuse_kind(r.read_bin()?)?;
                }
            }
            r.seek(type_at);
            let descr = dtype_for(py, r.read_bytes_like()?)?;
            r.seek(shape_at);
            let shape = read_shape(r)?;
            r.seek(data_at);
            let data = r.read_bin()?;
            return new_array(py, &descr, shape, data).map(Some);
        }
        r.seek(type_at);
        let descr = dtype_for(py, r.read_bytes_like()?)?;
        r.seek(data_at);
        let data = r.read_bin()?;
        return new_scalar(py, &descr, data).map(Some);
    }
    let Some(data_at) = f.complex.and(f.data) else {
        return Ok(None);
    };
    r.seek(data_at);
    let text = decode_value(py, r, depth + 1)?;
    let text = match text.cast::<PyBytes>() {
        Ok(b) => PyString::new(py, &String::from_utf8_lossy(b.as_bytes())).into_any(),
        Err(_) => text,
    };
    let complex = py.get_type::<pyo3::types::PyComplex>().call1((text,));
    complex.map(Some).map_err(|e| {
        AsebytesValueError::new_err(format!("cannot decode stored complex value: {e}"))
    })
}

/// numpy's dimension limit (`NPY_MAXDIMS` since numpy 2).
const MAX_DIMS: usize = 64;

/// Dimensions kept inline; deeper shapes (rare) spill to the heap.
const INLINE_DIMS: usize = 8;

/// An array shape, on the stack for up to [`INLINE_DIMS`] dimensions: a decoded row has
/// several arrays, and heap allocations (or copying a 64-dimension buffer) for each shape
/// showed up in the per-row cost.
#[derive(Debug)]
pub struct Shape {
    inline: [npy_intp; INLINE_DIMS],
    spilled: Vec<npy_intp>,
    n: usize,
}

impl Shape {
    fn new() -> Self {
        Self {
            inline: [0; INLINE_DIMS],
            spilled: Vec::new(),
            n: 0,
        }
    }

    /// The dimensions.
    pub fn as_slice(&self) -> &[npy_intp] {
        if self.n <= INLINE_DIMS {
            &self.inline[..self.n]
        } else {
            &self.spilled
        }
    }

    fn as_mut_ptr(&mut self) -> *mut npy_intp {
        if self.n <= INLINE_DIMS {
            self.inline.as_mut_ptr()
        } else {
            self.spilled.as_mut_ptr()
        }
    }

    fn push(&mut self, d: u64) -> Result<(), Corrupt> {
        let d = npy_intp::try_from(d).map_err(|_| corrupt("array dimension too large"))?;
        if self.n < INLINE_DIMS {
            self.inline[self.n] = d;
        } else {
            if self.n == INLINE_DIMS {
                self.spilled.extend_from_slice(&self.inline);
            }
            self.spilled.push(d);
        }
        self.n += 1;
        Ok(())
    }
}

fn read_shape(r: &mut Reader<'_>) -> PyResult<Shape> {
    let mut shape = Shape::new();
    if let Marker::FixArray(_) | Marker::Array16 | Marker::Array32 = r.peek_marker()? {
        let n = r.read_array_len()?;
        if n > MAX_DIMS {
            return Err(corrupt(format!(
                "array shape has {n} dimensions (numpy allows {MAX_DIMS})"
            ))
            .into());
        }
        for _ in 0..n {
            shape.push(r.read_u64()?)?;
        }
    } else {
        shape.push(r.read_u64()?)?;
    }
    Ok(shape)
}

/// A fresh, writable, C-ordered array the caller owns, filled from `data`.
fn new_array<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyArrayDescr>,
    mut shape: Shape,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let count = shape
        .as_slice()
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
    let nbytes = count.and_then(|c| c.checked_mul(descr.itemsize()));
    let nbytes = match nbytes {
        Some(n) if n <= data.len() => n,
        _ => {
            return Err(corrupt(format!(
                "array data has {} bytes, shape {:?} needs more",
                data.len(),
                shape.as_slice()
            ))
            .into());
        }
    };
    // SAFETY: PyArray_NewFromDescr steals one reference to the descriptor (hence the
    // incref), allocates uninitialised C-ordered storage for `dims`, and returns a new
    // reference or NULL. The dtype is plain-old-data (checked when cached), so filling
    // exactly `nbytes` bytes by memcpy fully initialises it.
    unsafe {
        let descr_ptr = descr.as_ptr() as *mut PyArray_Descr;
        ffi::Py_INCREF(descr_ptr.cast());
        let arr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            descr_ptr,
            shape.n as c_int,
            shape.as_mut_ptr(),
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
    if size == 0 || data.len() < size || !data.len().is_multiple_of(size) {
        return Err(corrupt(format!(
            "scalar data has {} bytes, dtype needs {size}",
            data.len()
        ))
        .into());
    }
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

// ------------------------------------------------------------------------------------
// Encoding: Python -> bytes
// ------------------------------------------------------------------------------------

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
    u32::try_from(n).map_err(|_| EncodeError::new(Reason::TooLong))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
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
            enc::write_bin(out, s).map_err(|_| EncodeError::new(Reason::TooLong))?;
            return Ok(());
        }
        if ffi::PyByteArray_Check(p) != 0 {
            let n = ffi::PyByteArray_Size(p) as usize;
            let s = std::slice::from_raw_parts(ffi::PyByteArray_AsString(p) as *const u8, n);
            enc::write_bin(out, s).map_err(|_| EncodeError::new(Reason::TooLong))?;
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
            write_str(out, std::slice::from_raw_parts(s as *const u8, n as usize))?;
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
            let written = enc::write_bin(out, s);
            ffi::PyBuffer_Release(&mut view);
            written.map_err(|_| EncodeError::new(Reason::TooLong))?;
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
            // {b"complex": True, b"data": repr}, exactly as msgpack_numpy writes it.
            let repr = obj.repr()?;
            enc::write_map_len(out, 2).expect("Vec write");
            enc::write_bin(out, b"complex").expect("Vec write");
            enc::write_bool(out, true).expect("Vec write");
            enc::write_bin(out, b"data").expect("Vec write");
            write_str(out, repr.to_str()?.as_bytes())?;
            return Ok(());
        }
    }
    Err(EncodeError::new(Reason::Unsupported(type_name(obj))))
}

fn write_str(out: &mut Vec<u8>, s: &[u8]) -> EncResult {
    enc::write_str_len(out, len32(s.len())?).expect("Vec write");
    out.extend_from_slice(s);
    Ok(())
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
            // msgpack writes non-negative ints unsigned and negative ones signed, both
            // in their shortest form; rmp's write_sint does the same.
            enc::write_sint(out, v).expect("Vec write");
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
        write_str(out, key.as_bytes())?;
        encode_obj(&v, out, depth + 1).map_err(|e| e.at(Seg::Key(key.to_string())))?;
    }
    Ok(())
}

/// `dtype.str` (`<f8`, `|b1`, `<U3`), computed from the descriptor for the common kinds.
fn dtype_str(d: &Bound<'_, PyArrayDescr>) -> PyResult<String> {
    let kind = d.kind();
    let order = match d.byteorder() {
        b'=' if cfg!(target_endian = "little") => '<',
        b'=' => '>',
        other => other as char,
    };
    let size = d.itemsize();
    Ok(match kind {
        b'b' | b'i' | b'u' | b'f' | b'c' | b'S' => format!("{order}{}{size}", kind as char),
        b'U' => format!("{order}U{}", size / 4),
        _ => d.getattr(pyo3::intern!(d.py(), "str"))?.extract()?,
    })
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
        enc::write_map_len(out, 5).expect("Vec write");
        enc::write_bin(out, b"nd").expect("Vec write");
        enc::write_bool(out, true).expect("Vec write");
        enc::write_bin(out, b"type").expect("Vec write");
        write_str(out, type_str.as_bytes())?;
        enc::write_bin(out, b"kind").expect("Vec write");
        enc::write_bin(out, b"").expect("Vec write");
        enc::write_bin(out, b"shape").expect("Vec write");
        enc::write_array_len(out, len32(nd)?).expect("Vec write");
        for &d in dims {
            enc::write_uint(out, d as u64).expect("Vec write");
        }
        enc::write_bin(out, b"data").expect("Vec write");
        let data: &[u8] = if nbytes == 0 {
            &[]
        } else {
            std::slice::from_raw_parts((*arr_ptr).fields.data as *const u8, nbytes)
        };
        enc::write_bin_len(out, len32(nbytes)?).expect("Vec write");
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
    enc::write_map_len(out, 3).expect("Vec write");
    enc::write_bin(out, b"nd").expect("Vec write");
    enc::write_bool(out, false).expect("Vec write");
    enc::write_bin(out, b"type").expect("Vec write");
    write_str(out, type_str.as_bytes())?;
    enc::write_bin(out, b"data").expect("Vec write");
    enc::write_bin(out, &buf[..size]).expect("Vec write");
    Ok(())
}

// ------------------------------------------------------------------------------------
// Rows and keys from Python
// ------------------------------------------------------------------------------------

/// An object-tier row: `dict[str, Any]` → `(utf-8 key, encoded value)` pairs.
pub fn encode_row(row: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let dict = row.cast::<PyDict>().map_err(|_| {
        AsebytesTypeError::new_err(format!("a row must be a dict, got '{}'", type_name(row)))
    })?;
    let mut fields = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = object_key(&k)?;
        let value = encode(&v, std::str::from_utf8(&key).expect("from a str"))?;
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
    Ok(s.to_str()?.as_bytes().to_vec())
}

/// A blob-tier key: `bytes`, or `str` (UTF-8) as the reference accepts.
pub fn blob_key(k: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = k.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = k.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    /// `msgpack_numpy.encode`'s map for an array (`shape` given) or a numpy scalar.
    fn np_map(type_str: &str, shape: Option<&[u32]>, data: &[u8]) -> Vec<u8> {
        mp(|o| {
            enc::write_map_len(o, if shape.is_some() { 5 } else { 3 }).unwrap();
            enc::write_bin(o, b"nd").unwrap();
            enc::write_bool(o, shape.is_some()).unwrap();
            enc::write_bin(o, b"type").unwrap();
            enc::write_str(o, type_str).unwrap();
            if let Some(shape) = shape {
                enc::write_bin(o, b"kind").unwrap();
                enc::write_bin(o, if type_str == "|O" { b"O" } else { b"" }).unwrap();
                enc::write_bin(o, b"shape").unwrap();
                enc::write_array_len(o, shape.len() as u32).unwrap();
                for &d in shape {
                    enc::write_uint(o, d.into()).unwrap();
                }
            }
            enc::write_bin(o, b"data").unwrap();
            enc::write_bin(o, data).unwrap();
        })
    }

    #[test]
    fn numeric_reads_numbers_and_canonical_arrays_without_python() {
        let arr = np_map("<f4", Some(&[2, 3]), &[0u8; 24]);
        let n = numeric(&arr).unwrap();
        assert_eq!((n.type_str, n.shape.as_slice()), (&b"<f4"[..], &[2, 3][..]));
        assert_eq!(n.items.bytes().len(), 24);
        let scalar = np_map("<i2", None, &7i16.to_le_bytes());
        let n = numeric(&scalar).unwrap();
        assert_eq!((n.type_str, n.shape.as_slice()), (&b"<i2"[..], &[][..]));
        assert_eq!(n.items.bytes(), &[7, 0]);

        let float = mp(|o| enc::write_f64(o, 1.5).unwrap());
        let n = numeric(&float).unwrap();
        assert_eq!(
            (n.type_str, n.items.bytes()),
            (NATIVE_F8, &1.5f64.to_ne_bytes()[..])
        );
        let int = mp(|o| {
            enc::write_sint(o, -3).unwrap();
        });
        assert_eq!(numeric(&int).unwrap().items.bytes(), &(-3i64).to_ne_bytes());
        let yes = mp(|o| enc::write_bool(o, true).unwrap());
        let n = numeric(&yes).unwrap();
        assert_eq!((n.type_str, n.items.bytes()[0]), (BOOL, 1));
    }

    #[test]
    fn numeric_leaves_everything_else_to_python() {
        let huge = mp(|o| {
            enc::write_uint(o, u64::MAX).unwrap();
        });
        let text = mp(|o| enc::write_str(o, "x").unwrap());
        let nil = mp(|o| enc::write_nil(o).unwrap());
        let list = mp(|o| {
            enc::write_array_len(o, 1).unwrap();
            enc::write_f64(o, 1.0).unwrap();
        });
        let pickled = np_map("|O", Some(&[1]), &[0u8; 8]);
        let mut trailing = mp(|o| enc::write_f64(o, 1.0).unwrap());
        trailing.push(0xc0);
        for data in [&huge, &text, &nil, &list, &pickled, &trailing, &vec![]] {
            assert!(numeric(data).is_none(), "{data:?}");
        }
    }

    #[test]
    fn reader_reads_every_int_width() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
        ] {
            let b = mp(|o| {
                enc::write_sint(o, v).unwrap();
            });
            let mut r = Reader::new(&b);
            assert_eq!(r.read_u64().unwrap(), v as u64);
            assert_eq!(r.remaining(), 0);
        }
        for v in [
            -1i64,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64 - 1,
            i64::MIN,
        ] {
            let b = mp(|o| {
                enc::write_sint(o, v).unwrap();
            });
            let mut r = Reader::new(&b);
            let m = r.marker().unwrap();
            assert_eq!(r.int_after(m).unwrap(), Some(Int::I(v)));
        }
        let b = mp(|o| {
            enc::write_uint(o, u64::MAX).unwrap();
        });
        let mut r = Reader::new(&b);
        let m = r.marker().unwrap();
        assert_eq!(r.int_after(m).unwrap(), Some(Int::U(u64::MAX)));
    }

    #[test]
    fn skip_passes_over_nested_values_exactly() {
        let b = mp(|o| {
            enc::write_map_len(o, 2).unwrap();
            enc::write_bin(o, b"nd").unwrap();
            enc::write_array_len(o, 3).unwrap();
            enc::write_f64(o, 1.5).unwrap();
            enc::write_str(o, "x".repeat(40).as_str()).unwrap();
            enc::write_bin(o, &[0u8; 300]).unwrap();
            enc::write_str(o, "k").unwrap();
            enc::write_ext_meta(o, 2, 5).unwrap();
            o.extend_from_slice(&[1, 2]);
            enc::write_nil(o).unwrap();
        });
        let mut r = Reader::new(&b);
        r.skip().unwrap();
        assert_eq!(r.marker().unwrap(), Marker::Null);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn skip_refuses_truncated_and_oversized_containers() {
        let truncated = mp(|o| {
            enc::write_array_len(o, 2).unwrap();
            enc::write_nil(o).unwrap();
        });
        assert!(Reader::new(&truncated).skip().is_err());
        let huge = mp(|o| {
            enc::write_array_len(o, u32::MAX).unwrap();
        });
        assert!(Reader::new(&huge).skip().is_err());
        assert!(Reader::new(&[0xc1]).skip().is_err());
        assert!(Reader::new(&[]).skip().is_err());
    }

    #[test]
    fn str_and_bin_borrow_from_the_buffer() {
        let b = mp(|o| {
            enc::write_str(o, "calc.energy").unwrap();
            enc::write_bin(o, b"\x00\x01").unwrap();
        });
        let mut r = Reader::new(&b);
        assert_eq!(r.read_str().unwrap(), "calc.energy");
        assert_eq!(r.read_bin().unwrap(), b"\x00\x01");
        let mut r = Reader::new(&b);
        assert!(r.read_bin().is_err(), "a str is not a bin");
        let bad = [0xa2, 0xff, 0xfe];
        assert!(
            Reader::new(&bad).read_str().is_err(),
            "invalid UTF-8 is refused"
        );
    }

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

    #[test]
    fn error_paths_render_like_attribute_paths() {
        let e = EncodeError::new(Reason::TooDeep)
            .at(Seg::Key("b".into()))
            .at(Seg::Index(2))
            .at(Seg::Key("a".into()));
        assert_eq!(render_path("info.d", &e.rev_path), "info.d.a[2].b");
        assert_eq!(render_path("", &e.rev_path), "a[2].b");
        assert_eq!(render_path("calc.x", &[]), "calc.x");
        assert_eq!(render_path("", &[Seg::Index(0)]), "[0]");
        let deep = vec![Seg::Index(0); 600];
        assert_eq!(render_path("k", &deep), format!("k{}...", "[0]".repeat(8)));
    }
}
