//! Stored bytes → [`Value`]: the whole msgpack-numpy decoder as a tree, for stores that
//! must understand values (columnar backends) and for tests.
//!
//! Part of [`crate::codec`]. Reads like `msgpack.unpackb(b, object_hook=
//! msgpack_numpy.decode)` with the reference's defaults (`raw=False`,
//! `strict_map_key=True`), except that nothing is unpickled: object and structured arrays
//! are refused, and dict keys must be `str` (`spec/CONTRACT.md`). Hostile input errors:
//! lengths are checked against the bytes that remain, containers grow only as their items
//! arrive (so memory stays within a constant factor of the input: at most one [`Value`]
//! per input byte), array data must match its shape exactly, and nesting is bounded by
//! [`MAX_DEPTH`] without recursion.

use std::collections::HashMap;

use rmp::Marker;

use super::MAX_DEPTH;
use super::complex::parse_complex;
use super::dtype::DType;
use super::layout::{self, NdParts, Special};
use super::reader::{Corrupt, Int, Reader, corrupt};
use super::value::{NdArray, NdScalar, Value};

/// Decodes one stored value (the whole buffer; trailing bytes are an error).
pub fn decode(bytes: &[u8]) -> Result<Value, Corrupt> {
    let mut r = Reader::new(bytes);
    let v = decode_next(&mut r)?;
    if r.remaining() != 0 {
        return Err(corrupt(format!(
            "{} trailing bytes after the value",
            r.remaining()
        )));
    }
    Ok(v)
}

/// Decodes the next value from `r`, leaving it after the value.
///
/// Iterative (an explicit stack of open lists and dicts), so the depth a value may have
/// does not depend on the calling thread's stack.
pub fn decode_next(r: &mut Reader<'_>) -> Result<Value, Corrupt> {
    let mut open: Vec<Open> = Vec::new();
    loop {
        let mut v = match item(r)? {
            Item::Done(v) => v,
            Item::List(0) => Value::List(Vec::new()),
            Item::Map(0) => Value::Map(Vec::new()),
            Item::List(n) => {
                push(
                    &mut open,
                    Open::List(Vec::with_capacity(n.min(PREALLOC)), n),
                )?;
                continue;
            }
            Item::Map(n) => {
                let key = read_key(r)?;
                push(
                    &mut open,
                    Open::Map(Dict::with_capacity(n.min(PREALLOC)), n, key),
                )?;
                continue;
            }
        };
        // Hand the finished value to the innermost open container; close every container
        // it completes.
        loop {
            let Some(mut top) = open.pop() else {
                return Ok(v);
            };
            if top.add(v, r)? {
                open.push(top);
                break;
            }
            v = top.into_value();
        }
    }
}

/// Items reserved up front for a list or dict. Its announced length is only a claim: nested
/// containers could each announce as many items as bytes remain, so reserving all of it
/// would let a small input allocate (depth × length); beyond this, vectors grow as items
/// actually arrive, each of which consumes input.
const PREALLOC: usize = 16;

fn push(open: &mut Vec<Open>, container: Open) -> Result<(), Corrupt> {
    if open.len() >= MAX_DEPTH as usize {
        return Err(too_deep());
    }
    open.push(container);
    Ok(())
}

/// A list or dict being filled: its items so far and how many are still to come (and
/// for a dict, the key of the next value).
enum Open {
    List(Vec<Value>, usize),
    Map(Dict, usize, String),
}

impl Open {
    /// Adds the next item; `true` while more are to come (a dict then reads the next key).
    fn add(&mut self, v: Value, r: &mut Reader<'_>) -> Result<bool, Corrupt> {
        match self {
            Open::List(items, left) => {
                items.push(v);
                *left -= 1;
                Ok(*left > 0)
            }
            Open::Map(dict, left, key) => {
                dict.insert(std::mem::take(key), v);
                *left -= 1;
                if *left > 0 {
                    *key = read_key(r)?;
                }
                Ok(*left > 0)
            }
        }
    }

    fn into_value(self) -> Value {
        match self {
            Open::List(items, _) => Value::List(items),
            Open::Map(dict, ..) => Value::Map(dict.entries),
        }
    }
}

/// Dict entries in insertion order; a repeated key keeps its first position and its last
/// value, as a Python dict does.
struct Dict {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Dict {
    fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
            index: HashMap::new(),
        }
    }

    fn insert(&mut self, k: String, v: Value) {
        if self.entries.len() < 8 && self.index.is_empty() {
            // Small dicts (the usual case) need no index.
            if let Some(e) = self.entries.iter_mut().find(|e| e.0 == k) {
                e.1 = v;
                return;
            }
            if self.entries.len() < 7 {
                self.entries.push((k, v));
                return;
            }
            self.index = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.0.clone(), i))
                .collect();
        }
        match self.index.get(&k) {
            Some(&i) => self.entries[i].1 = v,
            None => {
                self.index.insert(k.clone(), self.entries.len());
                self.entries.push((k, v));
            }
        }
    }
}

/// The next value if it is complete in itself, or the header of a list or plain dict.
enum Item {
    Done(Value),
    List(usize),
    Map(usize),
}

fn item(r: &mut Reader<'_>) -> Result<Item, Corrupt> {
    let m = r.marker()?;
    Ok(Item::Done(match m {
        Marker::Null => Value::Nil,
        Marker::True => Value::Bool(true),
        Marker::False => Value::Bool(false),
        Marker::F32 => Value::Float(f64::from(f32::from_be_bytes(r.be()?))),
        Marker::F64 => Value::Float(f64::from_be_bytes(r.be()?)),
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            let n = r.len_after(m)?;
            let s = std::str::from_utf8(r.take(n)?).map_err(|_| bad_utf8())?;
            Value::Str(s.to_owned())
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let n = r.len_after(m)?;
            Value::Bin(r.take(n)?.to_vec())
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let n = r.len_after(m)?;
            if n > r.remaining() {
                return Err(corrupt("array announces more elements than bytes remain"));
            }
            return Ok(Item::List(n));
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = r.len_after(m)?;
            if n.saturating_mul(2) > r.remaining() {
                return Err(corrupt("map announces more entries than bytes remain"));
            }
            let start = r.pos();
            if let Some(v) = special_map(r, n)? {
                return Ok(Item::Done(v));
            }
            r.seek(start);
            return Ok(Item::Map(n));
        }
        _ => match r.int_after(m)? {
            Some(Int::I(v)) => Value::Int(v),
            Some(Int::U(v)) => match i64::try_from(v) {
                Ok(v) => Value::Int(v),
                Err(_) => Value::UInt(v),
            },
            None => return Err(not_a_value(m)),
        },
    }))
}

/// A plain dict's key: `str` only (`strict_map_key`, and `spec/CONTRACT.md`).
fn read_key(r: &mut Reader<'_>) -> Result<String, Corrupt> {
    match r.read_str() {
        Ok(k) => Ok(k.to_owned()),
        Err(_) => Err(corrupt(
            "dict keys must be str (a stored dict has a key of another type)",
        )),
    }
}

#[cold]
fn too_deep() -> Corrupt {
    corrupt(format!("value nested deeper than {MAX_DEPTH} levels"))
}

#[cold]
fn bad_utf8() -> Corrupt {
    corrupt("invalid UTF-8 in str")
}

/// The markers that start no value of the layout: extension types and 0xc1.
#[cold]
fn not_a_value(m: Marker) -> Corrupt {
    if m == Marker::Reserved {
        return corrupt("reserved marker 0xc1");
    }
    corrupt(format!(
        "MessagePack extension types are not part of the msgpack-numpy layout (got {m:?})"
    ))
}

/// The map of `n` entries as an array, numpy scalar or complex (what
/// `msgpack_numpy.decode` makes of it), or `None` (reader position then unspecified) if
/// it is a plain dict.
fn special_map(r: &mut Reader<'_>, n: usize) -> Result<Option<Value>, Corrupt> {
    let start = r.pos();
    if let Some(parts) = layout::read_canonical(r, n) {
        return nd(parts).map(Some);
    }
    r.seek(start);
    let fields = layout::scan_fields(r, n)?;
    if !fields.is_special() {
        return Ok(None);
    }
    let end = r.pos();
    let special = layout::read_special(r, &fields)?;
    r.seek(end);
    match special {
        Special::Nd(parts) => nd(parts).map(Some),
        Special::Complex(text) => {
            let text = String::from_utf8_lossy(text);
            let (re, im) = parse_complex(&text)?;
            Ok(Some(Value::Complex(re, im)))
        }
        Special::Dict => Ok(None),
    }
}

/// An array or numpy scalar from its parts, checked: a plain dtype, data exactly as long
/// as the shape needs (arrays) or one item long (scalars).
fn nd(parts: NdParts<'_>) -> Result<Value, Corrupt> {
    layout::refuse_kind(parts.kind)?;
    let dtype = DType::parse_bytes(parts.type_str)?;
    match parts.shape {
        Some(dims) => {
            let shape = dims.as_slice();
            layout::array_data_len(shape, dtype.itemsize(), parts.data.len())?;
            Ok(Value::Array(NdArray {
                dtype,
                shape: shape.to_vec(),
                data: parts.data.to_vec(),
            }))
        }
        None => {
            layout::scalar_data_len(dtype.itemsize(), parts.data.len())?;
            let item = parts.data[..dtype.itemsize()].to_vec();
            Ok(Value::Scalar(NdScalar::new(dtype, item)?))
        }
    }
}
