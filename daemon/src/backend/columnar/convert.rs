//! Values ⇄ column cells: what a decoded msgpack-numpy [`Value`] becomes in a column, and
//! the value a stored cell reads back as, so a client cannot tell a columnar store from a
//! row store.
//!
//! Part of the columnar core, under `writer` and `reader`. The rules (see
//! `docs/backends/columnar.md`):
//! - Python `float`, `int`, `bool`, `complex` → a scalar column of `<f8`, `<i8`, `|b1`,
//!   `<c16` (kind [`Kind::Py`]); numpy scalars keep their dtype (kind [`Kind::Np`]); numpy
//!   arrays keep dtype and shape (kind [`Kind::Nd`]).
//! - `str`, `list`, `dict`, `None` → JSON text in a string column (kind [`Kind::Json`]), as
//!   the reference does; a JSON column also takes Python scalars (their JSON keeps the
//!   type) and numpy values (as nested lists, like the reference: dtype is lost).
//! - A column whose values do not share one numpy type (a dtype or per-frame shape that
//!   changes, `bytes`, Python numbers mixed with arrays) is a JSON column too, in a form
//!   that keeps every type: arrays and numpy scalars as ASE's `{"__ndarray__": ...}`,
//!   complex numbers as ASE's `{"__complex__": [re, im]}`, bytes as `{"__bytes__":
//!   base64}`; non-finite array elements as the strings `"nan"`, `"inf"`, `"-inf"` (numpy
//!   reads them back). Only non-finite Python floats cannot be JSON: `InvalidArgument`
//!   naming the key, before anything is written.

use asebytes_protocol::codec::{self, NdArray, NdScalar, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value as Json;

use super::engine::DType;
use super::schema::{Column, Kind};
use crate::backend::{Error, ErrorKind, Result};

/// What a value is, for choosing or checking its column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// A Python scalar stored as one element of `DType`.
    Py(DType),
    /// A numpy scalar.
    Np(DType),
    /// A numpy array of this dtype and shape.
    Nd(DType, Vec<u64>),
    /// JSON text.
    Json,
}

/// A value ready for a column: raw little-endian element bytes, or JSON text.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Element bytes of one frame (per-frame item, or the frame's atoms).
    Bytes(Vec<u8>),
    /// JSON text of a string column.
    Text(String),
}

fn type_err(key: &str, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::TypeMismatch, format!("key '{key}': {why}"))
}

fn invalid(key: &str, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidArgument, format!("key '{key}': {why}"))
}

/// The engine dtype of a codec dtype, little-endian; `None` when a column cannot hold it.
pub fn engine_dtype(d: &codec::DType) -> Option<DType> {
    DType::from_numpy_str(d.to_little_endian().as_str())
}

/// Classifies a value; refuses what no column can hold (`bytes`, string/date arrays).
pub fn classify(key: &str, v: &Value) -> Result<Class> {
    Ok(match v {
        Value::Float(_) => Class::Py(DType::F64),
        Value::Int(_) => Class::Py(DType::I64),
        Value::UInt(_) => Class::Py(DType::U64),
        Value::Bool(_) => Class::Py(DType::Bool),
        Value::Complex(..) => Class::Py(DType::C128),
        Value::Nil | Value::Str(_) | Value::List(_) | Value::Map(_) | Value::Bin(_) => Class::Json,
        Value::Scalar(s) => Class::Np(engine_dtype(&s.dtype).ok_or_else(|| {
            type_err(
                key,
                format!(
                    "numpy {} scalars cannot be stored in a columnar store",
                    s.dtype.as_str()
                ),
            )
        })?),
        Value::Array(a) => Class::Nd(
            engine_dtype(&a.dtype).ok_or_else(|| {
                type_err(
                    key,
                    format!(
                        "arrays of dtype {} cannot be stored in a columnar store",
                        a.dtype.as_str()
                    ),
                )
            })?,
            a.shape.clone(),
        ),
    })
}

/// Little-endian bytes of a value already classified as numeric.
fn numeric_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::Float(x) => x.to_le_bytes().to_vec(),
        Value::Int(i) => i.to_le_bytes().to_vec(),
        Value::UInt(u) => u.to_le_bytes().to_vec(),
        Value::Bool(b) => vec![u8::from(*b)],
        Value::Complex(re, im) => [re.to_le_bytes(), im.to_le_bytes()].concat(),
        Value::Scalar(s) => {
            let a = NdArray {
                dtype: s.dtype.clone(),
                shape: Vec::new(),
                data: s.data.clone(),
            };
            a.to_little_endian().data
        }
        Value::Array(a) => a.to_little_endian().data,
        _ => Vec::new(),
    }
}

/// The cell `v` becomes in `col` for a frame of `n_atoms` atoms, or the error that refuses
/// it. `col.shape` is the per-frame item shape, or the trailing shape of a per-atom column.
pub fn to_cell(col: &Column, v: &Value, n_atoms: u64) -> Result<Cell> {
    let key = col.name.as_str();
    let class = classify(key, v)?;
    if col.kind == Kind::Json {
        return Ok(Cell::Text(to_json_text(key, v)?));
    }
    let fits = match (&class, col.kind) {
        (Class::Py(d), Kind::Py) => {
            *d == col.dtype
                // A Python int or bool in a Python-float column (the reference stores every
                // Python number as float64): stored as the float numpy would make of it.
                || (col.dtype == DType::F64 && matches!(d, DType::I64 | DType::U64 | DType::Bool))
        }
        (Class::Np(d), Kind::Np) => *d == col.dtype,
        (Class::Nd(d, shape), Kind::Nd) => {
            if *d != col.dtype {
                false
            } else if col.per_atom {
                if shape.first() != Some(&n_atoms) || shape[1..] != col.shape[..] {
                    return Err(invalid(
                        key,
                        format!(
                            "per-atom column needs shape ({n_atoms}, {}) for a frame of {n_atoms} atoms, got {shape:?}",
                            join(&col.shape)
                        ),
                    ));
                }
                true
            } else {
                if *shape != col.shape {
                    return Err(invalid(
                        key,
                        format!(
                            "per-frame column has item shape {:?}, got {shape:?}; a column's shape cannot change",
                            col.shape
                        ),
                    ));
                }
                true
            }
        }
        _ => false,
    };
    if !fits {
        return Err(type_err(
            key,
            format!(
                "column holds {} values of dtype {}, got {}",
                col.kind.describe(),
                col.dtype.numpy_str(),
                describe(&class)
            ),
        ));
    }
    if col.kind == Kind::Py && col.dtype == DType::F64 {
        let x = match v {
            Value::Float(x) => *x,
            Value::Int(i) => *i as f64,
            Value::UInt(u) => *u as f64,
            Value::Bool(b) => f64::from(u8::from(*b)),
            _ => 0.0,
        };
        return Ok(Cell::Bytes(x.to_le_bytes().to_vec()));
    }
    Ok(Cell::Bytes(numeric_bytes(v)))
}

fn join(shape: &[u64]) -> String {
    shape
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(c: &Class) -> String {
    match c {
        Class::Py(d) => format!("a Python {}", py_name(*d)),
        Class::Np(d) => format!("a numpy {} scalar", d.numpy_str()),
        Class::Nd(d, s) => format!("a {} array of shape {s:?}", d.numpy_str()),
        Class::Json => "a str/list/dict/None value".into(),
    }
}

fn py_name(d: DType) -> &'static str {
    match d {
        DType::F64 => "float",
        DType::Bool => "bool",
        DType::C128 => "complex",
        _ => "int",
    }
}

/// JSON text of a value (the reference's `json.dumps`); numpy values become (nested) lists.
pub fn to_json_text(key: &str, v: &Value) -> Result<String> {
    let j = to_json(key, v, 0)?;
    serde_json::to_string(&j).map_err(|e| invalid(key, format!("cannot write JSON: {e}")))
}

fn finite(key: &str, x: f64) -> Result<Json> {
    serde_json::Number::from_f64(x)
        .map(Json::Number)
        .ok_or_else(|| {
            invalid(
                key,
                format!("{x} inside a str/list/dict column cannot be stored as JSON"),
            )
        })
}

fn to_json(key: &str, v: &Value, depth: u32) -> Result<Json> {
    if depth > codec::MAX_DEPTH {
        return Err(invalid(key, "value nested too deeply"));
    }
    Ok(match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(x) => finite(key, *x)?,
        Value::Str(s) => Json::String(s.clone()),
        Value::List(items) => Json::Array(
            items
                .iter()
                .map(|x| to_json(key, x, depth + 1))
                .collect::<Result<_>>()?,
        ),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, x)| Ok((k.clone(), to_json(key, x, depth + 1)?)))
                .collect::<Result<_>>()?,
        ),
        Value::Complex(re, im) => tagged(
            COMPLEX_TAG,
            Json::Array(vec![finite(key, *re)?, finite(key, *im)?]),
        ),
        Value::Bin(b) => tagged(BYTES_TAG, Json::String(BASE64.encode(b))),
        Value::Scalar(s) => tagged_array_json(
            key,
            &NdArray {
                dtype: s.dtype.clone(),
                shape: Vec::new(),
                data: s.data.clone(),
            },
        )?,
        Value::Array(a) => tagged_array_json(key, a)?,
    })
}

/// ASE's JSON form of a complex number: `{"__complex__": [re, im]}`.
const COMPLEX_TAG: &str = "__complex__";
/// Bytes in a JSON column: `{"__bytes__": "<base64>"}` (not ASE's; only we write bytes).
const BYTES_TAG: &str = "__bytes__";

fn tagged(tag: &str, body: Json) -> Json {
    Json::Object([(tag.to_string(), body)].into_iter().collect())
}

/// The value a one-key tagged object stands for ([`COMPLEX_TAG`], [`BYTES_TAG`], ASE's
/// arrays), or `None` if the object is anything else (it then reads as a dict).
fn untag(m: &serde_json::Map<String, Json>) -> Option<Value> {
    if m.len() != 1 {
        return None;
    }
    if let Some(body) = m.get(COMPLEX_TAG) {
        let [re, im] = body.as_array()?.as_slice() else {
            return None;
        };
        return Some(Value::Complex(re.as_f64()?, im.as_f64()?));
    }
    if let Some(body) = m.get(BYTES_TAG) {
        return BASE64.decode(body.as_str()?).ok().map(Value::Bin);
    }
    tagged_array(m)
}

/// The key of ASE's JSON form of an array (`ase.io.jsonio`): `{"__ndarray__": [shape,
/// dtype, flat items]}`. Arrays and numpy scalars nested in a str/list/dict value are
/// written so, which keeps their dtype and shape (plain lists, as the reference writes,
/// would come back as lists); `ase.io.jsonio` decodes it as well.
const NDARRAY_TAG: &str = "__ndarray__";

fn tagged_array_json(key: &str, a: &NdArray) -> Result<Json> {
    let n: u64 = a.shape.iter().product();
    // Complex arrays go as their interleaved real and imaginary parts, as ASE writes them.
    let flat = match engine_dtype(&a.dtype) {
        Some(DType::C128) => {
            NdArray::from_f64s(vec![2 * n], &le_floats::<8>(a)).map_err(|e| invalid(key, e.0))?
        }
        Some(DType::C64) => NdArray::from_elements::<f32>(
            vec![2 * n],
            &le_floats::<4>(a)
                .iter()
                .map(|x| *x as f32)
                .collect::<Vec<_>>(),
        )
        .map_err(|e| invalid(key, e.0))?,
        _ => NdArray {
            dtype: a.dtype.clone(),
            shape: vec![n],
            data: a.data.clone(),
        },
    };
    let shape: Vec<Json> = a.shape.iter().map(|&d| Json::from(d)).collect();
    let body = Json::Array(vec![
        Json::Array(shape),
        Json::String(a.dtype.to_little_endian().as_str().to_string()),
        array_json(key, &flat)?,
    ]);
    Ok(tagged(NDARRAY_TAG, body))
}

/// The little-endian float parts (`W` bytes each) of a complex array, interleaved.
fn le_floats<const W: usize>(a: &NdArray) -> Vec<f64> {
    a.to_little_endian()
        .data
        .chunks_exact(W)
        .map(|c| match W {
            4 => f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))),
            _ => f64::from_le_bytes(c.try_into().unwrap_or([0; 8])),
        })
        .collect()
}

/// The array an ASE-form `{"__ndarray__": [shape, dtype, items]}` object stands for, or
/// `None` if the object is anything else (it then reads as a dict).
fn tagged_array(m: &serde_json::Map<String, Json>) -> Option<Value> {
    let [shape, dtype, items] = m.get(NDARRAY_TAG)?.as_array()?.as_slice() else {
        return None;
    };
    if m.len() != 1 {
        return None;
    }
    let shape: Vec<u64> = shape
        .as_array()?
        .iter()
        .map(Json::as_u64)
        .collect::<Option<_>>()?;
    let cdt = codec::DType::parse(dtype.as_str()?).ok()?;
    let d = engine_dtype(&cdt)?;
    let items = items.as_array()?;
    let parts = if matches!(d, DType::C64 | DType::C128) {
        2
    } else {
        1
    };
    if codec::value::element_count(&shape)? * parts != items.len() as u64 {
        return None;
    }
    let mut data = Vec::with_capacity(items.len() * d.itemsize());
    for item in items {
        match d {
            DType::Bool => data.push(u8::from(item.as_bool()?)),
            DType::F32 | DType::C64 => data.extend((float_item(item)? as f32).to_le_bytes()),
            DType::F64 | DType::C128 => data.extend(float_item(item)?.to_le_bytes()),
            DType::U8 | DType::U16 | DType::U32 | DType::U64 => {
                data.extend(&item.as_u64()?.to_le_bytes()[..d.itemsize()]);
            }
            DType::I8 | DType::I16 | DType::I32 | DType::I64 => {
                data.extend(&item.as_i64()?.to_le_bytes()[..d.itemsize()]);
            }
            _ => return None,
        }
    }
    let dtype = codec_dtype(d).ok()?;
    Some(if shape.is_empty() {
        Value::Scalar(NdScalar { dtype, data })
    } else {
        Value::Array(NdArray { dtype, shape, data })
    })
}

/// A float element of an ASE-form array: a number, or `"nan"` / `"inf"` / `"-inf"`.
fn float_item(item: &Json) -> Option<f64> {
    match item {
        Json::String(s) => match s.as_str() {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => item.as_f64(),
    }
}

/// A float array element as JSON: non-finite values as the strings numpy parses.
fn float_element(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or_else(
        || {
            Json::String(
                if x.is_nan() {
                    "nan"
                } else if x > 0.0 {
                    "inf"
                } else {
                    "-inf"
                }
                .into(),
            )
        },
        Json::Number,
    )
}

/// A numpy array as nested JSON lists (a 0-d array as its item).
fn array_json(key: &str, a: &NdArray) -> Result<Json> {
    let d = engine_dtype(&a.dtype).ok_or_else(|| {
        type_err(
            key,
            format!("dtype {} cannot be stored as JSON", a.dtype.as_str()),
        )
    })?;
    let le = a.to_little_endian();
    let n = d.itemsize();
    let items: Vec<Json> = le
        .data
        .chunks_exact(n.max(1))
        .map(|b| element_json(d, b))
        .collect();
    Ok(nest(&a.shape, &mut items.into_iter()))
}

fn element_json(d: DType, b: &[u8]) -> Json {
    let mut w = [0u8; 8];
    w[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    match d {
        DType::Bool => Json::Bool(b[0] != 0),
        DType::I8 => Json::from(b[0] as i8),
        DType::I16 => Json::from(i16::from_le_bytes([b[0], b[1]])),
        DType::I32 => Json::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        DType::I64 => Json::from(i64::from_le_bytes(w)),
        DType::U8 => Json::from(b[0]),
        DType::U16 => Json::from(u16::from_le_bytes([b[0], b[1]])),
        DType::U32 => Json::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        DType::U64 => Json::from(u64::from_le_bytes(w)),
        DType::F32 => float_element(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        _ => float_element(f64::from_le_bytes(w)),
    }
}

fn nest(shape: &[u64], items: &mut impl Iterator<Item = Json>) -> Json {
    match shape.split_first() {
        None => items.next().unwrap_or(Json::Null),
        Some((&n, rest)) => Json::Array((0..n).map(|_| nest(rest, items)).collect()),
    }
}

/// The value JSON text reads back as (text that is not JSON reads as the string itself,
/// as the reference does).
pub fn from_json_text(text: &str) -> Value {
    match serde_json::from_str::<Json>(text) {
        Ok(j) => from_json(j),
        Err(_) => Value::Str(text.to_string()),
    }
}

fn from_json(j: Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::Str(s),
        Json::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        Json::Object(m) => match untag(&m) {
            Some(array) => array,
            None => Value::Map(m.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
        },
    }
}

/// The codec dtype of an engine dtype.
fn codec_dtype(d: DType) -> Result<codec::DType> {
    codec::DType::parse(d.numpy_str())
        .map_err(|e| Error::corrupt(format!("dtype {}: {e}", d.numpy_str())))
}

/// The value a numeric cell reads back as. `bytes` holds the frame's elements: one item of
/// `col.shape` (per-frame) or `n_atoms` rows of `col.shape` (per-atom).
pub fn from_bytes(col: &Column, bytes: Vec<u8>, n_atoms: Option<u64>) -> Result<Value> {
    let d = col.dtype;
    let le8 = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        w
    };
    Ok(match col.kind {
        Kind::Py => match d {
            DType::F64 => Value::Float(f64::from_le_bytes(le8(&bytes))),
            DType::Bool => Value::Bool(bytes.first().is_some_and(|b| *b != 0)),
            DType::U64 => {
                let u = u64::from_le_bytes(le8(&bytes));
                i64::try_from(u).map_or(Value::UInt(u), Value::Int)
            }
            DType::C128 if bytes.len() == 16 => Value::Complex(
                f64::from_le_bytes(le8(&bytes[..8])),
                f64::from_le_bytes(le8(&bytes[8..])),
            ),
            _ => Value::Int(i64::from_le_bytes(le8(&bytes))),
        },
        Kind::Np => {
            Value::Scalar(NdScalar::new(codec_dtype(d)?, bytes).map_err(|e| Error::corrupt(e.0))?)
        }
        Kind::Nd | Kind::Json => {
            let mut shape = Vec::with_capacity(col.shape.len() + 1);
            if let Some(n) = n_atoms {
                shape.push(n);
            }
            shape.extend_from_slice(&col.shape);
            Value::Array(
                NdArray::new(codec_dtype(d)?, shape, bytes).map_err(|e| Error::corrupt(e.0))?,
            )
        }
    })
}

/// Whether element bytes are all NaN (the float fill, which reads as "missing").
pub fn all_nan(d: DType, bytes: &[u8]) -> bool {
    match d {
        DType::F64 | DType::C128 => bytes
            .chunks_exact(8)
            .all(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])).is_nan()),
        DType::F32 | DType::C64 => bytes
            .chunks_exact(4)
            .all(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])).is_nan()),
        _ => false,
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn nested_arrays_and_numpy_scalars_keep_dtype_and_shape_through_json() {
        let arr = NdArray::from_elements::<i32>(vec![2, 2], &[1, 2, 3, 4]).unwrap();
        let scalar = NdScalar::from_element(7u16);
        let v = Value::Map(vec![
            ("arr".into(), Value::Array(arr)),
            (
                "list".into(),
                Value::List(vec![Value::Scalar(scalar), Value::Int(3)]),
            ),
            (
                "plain".into(),
                Value::Map(vec![("x".into(), Value::Float(0.5))]),
            ),
        ]);
        let text = to_json_text("info.nested", &v).unwrap();
        assert!(text.contains("__ndarray__"), "{text}");
        assert_eq!(from_json_text(&text), v);
    }

    #[test]
    fn an_object_that_only_looks_tagged_stays_a_dict() {
        let text = r#"{"__ndarray__": [[2], "<f8", [1.0]], "other": 1}"#;
        assert!(matches!(from_json_text(text), Value::Map(m) if m.len() == 2));
        let wrong_count = r#"{"__ndarray__": [[2], "<f8", [1.0]]}"#;
        assert!(matches!(from_json_text(wrong_count), Value::Map(_)));
    }
}
