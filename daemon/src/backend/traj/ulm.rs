//! ASE's ULM container (`ase/io/ulm.py`), read side: the 48-byte header (`- of Ulm` or
//! `AFFormat`, a 16-byte tag, version, item count, the offset of the item-offset table),
//! then item `i` at `offsets[i]`: an int64 length and that many bytes of JSON whose
//! `"name."` entries are either arrays (`{"ndarray": [shape, dtype, offset]}`, raw C-order
//! data elsewhere in the file, little-endian unless `_little_endian` is false) or child
//! items (`calculator.`).
//!
//! Layer: part of the traj backend; the JSON is the frames core's
//! ([`crate::backend::frames::json`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use asebytes_protocol::codec::{DType, NdArray, Value};

use crate::backend::frames::json;
use crate::backend::{Error, ErrorKind, Result};

/// Largest item JSON accepted (a frame's JSON is small; arrays live outside it).
const MAX_ITEM: u64 = 1 << 30;

/// The header as it is now.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// Number of complete items.
    pub nitems: u64,
    /// Offset of the item-offset table.
    pub pos0: u64,
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Corrupt, format!("{}: {what}", path.display()))
}

fn read_exact(file: &File, path: &Path, at: u64, n: u64) -> Result<Vec<u8>> {
    if n > MAX_ITEM {
        return Err(corrupt(
            path,
            format!("a {n}-byte read at {at} is not plausible"),
        ));
    }
    let mut buf = vec![0u8; n as usize];
    file.read_exact_at(&mut buf, at)
        .map_err(|e| corrupt(path, format!("cannot read {n} bytes at {at}: {e}")))?;
    Ok(buf)
}

fn int_at(file: &File, path: &Path, at: u64) -> Result<u64> {
    let b = read_exact(file, path, at, 8)?;
    let v = i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    u64::try_from(v).map_err(|_| corrupt(path, format!("negative integer at {at}")))
}

/// Reads the header; the tag must be `tag`.
pub fn header(file: &File, path: &Path, tag: &str) -> Result<Header> {
    let h = read_exact(file, path, 0, 48).map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{} is not an ULM file (too short)", path.display()),
        )
    })?;
    if &h[..8] != b"- of Ulm" && &h[..8] != b"AFFormat" {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{} is not an ASE trajectory (ULM) file", path.display()),
        ));
    }
    let found = String::from_utf8_lossy(&h[8..24]).trim_end().to_string();
    if found != tag {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} is a ULM file tagged {found:?}, not a trajectory",
                path.display()
            ),
        ));
    }
    let word = |i: usize| i64::from_le_bytes(h[i..i + 8].try_into().unwrap_or([0; 8]));
    let (nitems, pos0) = (word(32), word(40));
    if nitems < 0 || pos0 < 0 {
        return Err(corrupt(path, "negative item count or table offset"));
    }
    Ok(Header {
        nitems: nitems as u64,
        pos0: pos0 as u64,
    })
}

/// numpy's `dtype.name` → `dtype.str`.
fn dtype_of(name: &str, little: bool) -> Option<DType> {
    let (kind, size) = match name {
        "float64" => ('f', 8),
        "float32" => ('f', 4),
        "float16" => ('f', 2),
        "int64" => ('i', 8),
        "int32" => ('i', 4),
        "int16" => ('i', 2),
        "int8" => ('i', 1),
        "uint64" => ('u', 8),
        "uint32" => ('u', 4),
        "uint16" => ('u', 2),
        "uint8" => ('u', 1),
        "bool" => ('b', 1),
        "complex128" => ('c', 16),
        "complex64" => ('c', 8),
        _ => return None,
    };
    let order = if size == 1 {
        '|'
    } else if little {
        '<'
    } else {
        '>'
    };
    DType::parse(&format!("{order}{kind}{size}")).ok()
}

/// One item, its arrays not yet read.
#[derive(Debug)]
pub struct Item {
    /// Plain entries (`pbc`, `info`, `name`, ...).
    pub plain: Vec<(String, Value)>,
    /// Array entries: name → (shape, dtype, offset).
    arrays: Vec<(String, Vec<u64>, DType, u64)>,
    /// Child items (`calculator`).
    pub children: Vec<(String, Item)>,
}

impl Item {
    fn parse(doc: Value, little: bool, path: &Path) -> Result<Self> {
        let Value::Map(entries) = doc else {
            return Err(corrupt(path, "an item is not a JSON object"));
        };
        let little = entries
            .iter()
            .find(|(k, _)| k == "_little_endian")
            .map_or(little, |(_, v)| *v != Value::Bool(false));
        let mut item = Item {
            plain: Vec::new(),
            arrays: Vec::new(),
            children: Vec::new(),
        };
        for (k, v) in entries {
            if k == "_little_endian" {
                continue;
            }
            let Some(name) = k.strip_suffix('.') else {
                item.plain.push((k, v));
                continue;
            };
            let spec = match &v {
                Value::Map(m) => m
                    .iter()
                    .find(|(k, _)| k == "ndarray")
                    .map(|(_, s)| s.clone()),
                _ => None,
            };
            match spec {
                Some(Value::List(parts)) => {
                    let [Value::List(shape), Value::Str(dtype), offset] = parts.as_slice() else {
                        return Err(corrupt(path, format!("bad array entry {k}")));
                    };
                    let shape: Vec<u64> = shape
                        .iter()
                        .map(|d| match d {
                            Value::Int(i) => u64::try_from(*i).ok(),
                            _ => None,
                        })
                        .collect::<Option<_>>()
                        .ok_or_else(|| corrupt(path, format!("bad shape of {k}")))?;
                    let dtype = dtype_of(dtype, little).ok_or_else(|| {
                        corrupt(path, format!("unsupported dtype {dtype} of {k}"))
                    })?;
                    let Value::Int(offset) = offset else {
                        return Err(corrupt(path, format!("bad offset of {k}")));
                    };
                    item.arrays
                        .push((name.to_string(), shape, dtype, *offset as u64));
                }
                _ => item
                    .children
                    .push((name.to_string(), Item::parse(v, little, path)?)),
            }
        }
        Ok(item)
    }

    /// Whether the item has an entry (plain, array or child) called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.plain.iter().any(|(k, _)| k == name)
            || self.arrays.iter().any(|(k, ..)| k == name)
            || self.children.iter().any(|(k, _)| k == name)
    }

    /// Entry `name`: a plain value, or an array read from the file (little-endian).
    pub fn get(&self, name: &str, file: &File, path: &Path) -> Result<Option<Value>> {
        if let Some((_, v)) = self.plain.iter().find(|(k, _)| k == name) {
            return Ok(Some(v.clone()));
        }
        let Some((_, shape, dtype, offset)) = self.arrays.iter().find(|(k, ..)| k == name) else {
            return Ok(None);
        };
        let n = asebytes_protocol::codec::value::byte_len(shape, dtype.itemsize())
            .ok_or_else(|| corrupt(path, format!("array {name} is too large")))?;
        let data = read_exact(file, path, *offset, n as u64)?;
        let a = NdArray::new(dtype.clone(), shape.clone(), data).map_err(|e| corrupt(path, e))?;
        Ok(Some(Value::Array(a.to_little_endian())))
    }

    /// Child item `name`.
    pub fn child(&self, name: &str) -> Option<&Item> {
        self.children
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, c)| c)
    }
}

/// Item `i` (`< header.nitems`).
pub fn item(file: &File, path: &Path, h: &Header, i: u64) -> Result<Item> {
    let at = int_at(file, path, h.pos0 + 8 * i)?;
    let n = int_at(file, path, at)?;
    let raw = read_exact(file, path, at + 8, n)?;
    let text =
        std::str::from_utf8(&raw).map_err(|_| corrupt(path, format!("item {i} is not UTF-8")))?;
    let doc = json::parse(text).map_err(|e| corrupt(path, format!("item {i}: {e}")))?;
    Item::parse(doc, true, path)
}
