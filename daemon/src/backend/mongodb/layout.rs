//! What the MongoDB backend writes where: asebytes 0.3.3's documents, so either library
//! reads what the other wrote (`asebytes-behaviour.md` §4.4).
//!
//! - One collection per group. The metadata document
//!   `{_id: "__meta__", sort_keys: [int…], count: int, next_sort_key: int}` orders the rows:
//!   row `i` is the document whose `_id` is `sort_keys[i]`. We add `schema` (every key
//!   ever written), which 0.3.3 neither reads nor removes.
//! - Rows: `{_id: <int sort key>, data: {<flat key>: value, …}}`; a placeholder is
//!   `data: null`. Flat keys are stored literally (`"calc.energy"` is one field), and unlike
//!   0.3.3 every read and write addresses them literally too (`$getField`/`$setField`,
//!   never a dotted path).
//! - Values: numpy arrays (and everything BSON cannot hold with its type: numpy scalars,
//!   complex numbers, `bytes`, ints beyond `i64`) are BSON binary (subtype 0) holding the
//!   value's msgpack-numpy bytes, which 0.3.3 unpacks on read; everything else is plain BSON
//!   (numbers, strings, lists, dicts, `None`).
//!
//! Layer: pure conversions, used by [`super::reader`] and [`super::writer`].

use asebytes_protocol::codec::{self, Value};
use asebytes_protocol::{Bytes, Key, Row};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};

use crate::backend::{Error, ErrorKind, Result};

/// `_id` of the metadata document.
pub const META_ID: &str = "__meta__";
/// Field of a row document holding its keys and values.
pub const DATA: &str = "data";
/// Metadata fields.
pub const SORT_KEYS: &str = "sort_keys";
/// Number of rows (kept equal to the length of `sort_keys`).
pub const COUNT: &str = "count";
/// The next sort key to hand out.
pub const NEXT_SORT_KEY: &str = "next_sort_key";
/// Every key ever written through this backend (ours; asebytes 0.3.3 ignores the field and
/// its writes leave it alone). The schema is this plus the keys rows have now, so keys
/// written by 0.3.3 clients are in it too.
pub const SCHEMA: &str = "schema";

/// The metadata document's filter.
pub fn meta_filter() -> Document {
    doc! { "_id": META_ID }
}

/// Filter for every row document (everything but the metadata).
pub fn rows_filter() -> Document {
    doc! { "_id": { "$ne": META_ID } }
}

/// Filter for the rows with these sort keys.
pub fn sort_keys_filter(sks: &[i64]) -> Document {
    doc! { "_id": { "$in": sks } }
}

/// A row document for sort key `sk`.
pub fn row_document(sk: i64, row: Option<&Row>) -> Result<Document> {
    let data = match row {
        Some(row) if !row.is_empty() => Bson::Document(row_to_data(row)?),
        _ => Bson::Null,
    };
    Ok(doc! { "_id": sk, DATA: data })
}

/// A row's fields as the `data` subdocument.
pub fn row_to_data(row: &Row) -> Result<Document> {
    let mut data = Document::new();
    for (k, v) in row {
        data.insert(field_name(k)?, field_to_bson(k, v)?);
    }
    Ok(data)
}

/// A key as a BSON field name: UTF-8 without NUL bytes.
pub fn field_name(key: &Key) -> Result<String> {
    match std::str::from_utf8(key) {
        Ok(s) if !s.contains('\0') => Ok(s.to_string()),
        _ => Err(Error::new(
            ErrorKind::TypeMismatch,
            format!(
                "key {:?} cannot be a MongoDB field name (it must be UTF-8 text without NUL bytes)",
                String::from_utf8_lossy(key)
            ),
        )),
    }
}

/// One stored field (msgpack-numpy bytes) as the BSON value 0.3.3 would have written.
pub fn field_to_bson(key: &Key, bytes: &[u8]) -> Result<Bson> {
    let value = codec::decode(bytes).map_err(|e| {
        Error::new(
            ErrorKind::TypeMismatch,
            format!(
                "value of key {:?} is not msgpack-numpy: {e}",
                String::from_utf8_lossy(key)
            ),
        )
    })?;
    Ok(match value {
        // Already the exact msgpack-numpy bytes of this value: stored as given.
        v if needs_binary(&v) => binary(bytes.to_vec()),
        v => value_to_bson(v)?,
    })
}

/// Values plain BSON cannot hold with their type.
fn needs_binary(v: &Value) -> bool {
    matches!(
        v,
        Value::Array(_) | Value::Scalar(_) | Value::Complex(..) | Value::Bin(_) | Value::UInt(_)
    )
}

fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

fn value_to_bson(v: Value) -> Result<Bson> {
    Ok(match v {
        Value::Nil => Bson::Null,
        Value::Bool(b) => Bson::Boolean(b),
        // pymongo's choice: int32 where it fits.
        Value::Int(i) => match i32::try_from(i) {
            Ok(small) => Bson::Int32(small),
            Err(_) => Bson::Int64(i),
        },
        Value::Float(f) => Bson::Double(f),
        Value::Str(s) => Bson::String(s),
        Value::List(items) => Bson::Array(
            items
                .into_iter()
                .map(value_to_bson)
                .collect::<Result<Vec<_>>>()?,
        ),
        Value::Map(entries) if entries.iter().all(|(k, _)| !k.contains('\0')) => {
            let mut d = Document::new();
            for (k, v) in entries {
                d.insert(k, value_to_bson(v)?);
            }
            Bson::Document(d)
        }
        other => binary(codec::encode(&other).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot store value: {e}"),
            )
        })?),
    })
}

/// A stored BSON value as msgpack-numpy bytes.
pub fn bson_to_field(value: &Bson) -> Result<Bytes> {
    if let Bson::Binary(b) = value
        && codec::decode(&b.bytes).is_ok()
    {
        return Ok(Bytes::from(b.bytes.clone()));
    }
    let v = bson_to_value(value);
    codec::encode(&v)
        .map(Bytes::from)
        .map_err(|e| Error::corrupt(format!("cannot encode a stored value: {e}")))
}

fn bson_to_value(value: &Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Nil,
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Int32(i) => Value::Int(i64::from(*i)),
        Bson::Int64(i) => Value::Int(*i),
        Bson::Double(f) => Value::Float(*f),
        Bson::String(s) => Value::Str(s.clone()),
        Bson::Array(items) => Value::List(items.iter().map(bson_to_value).collect()),
        Bson::Document(d) => Value::Map(
            d.iter()
                .map(|(k, v)| (k.clone(), bson_to_value(v)))
                .collect(),
        ),
        // What 0.3.3 does: try msgpack, else the bytes themselves.
        Bson::Binary(b) => codec::decode(&b.bytes).unwrap_or_else(|_| Value::Bin(b.bytes.clone())),
        Bson::DateTime(t) => Value::Str(
            t.try_to_rfc3339_string()
                .unwrap_or_else(|_| t.timestamp_millis().to_string()),
        ),
        Bson::ObjectId(o) => Value::Str(o.to_hex()),
        other => Value::Str(other.to_string()),
    }
}

/// A row document's `data` as a row; `None` for a placeholder (`data: null` or missing).
pub fn data_to_row(data: Option<&Bson>) -> Result<Option<Row>> {
    match data {
        Some(Bson::Document(d)) => d
            .iter()
            .map(|(k, v)| Ok((Key::from(k.as_bytes().to_vec()), bson_to_field(v)?)))
            .collect::<Result<Row>>()
            .map(Some),
        None | Some(Bson::Null) => Ok(None),
        Some(other) => Err(Error::corrupt(format!(
            "a row's data is {:?}, not a document",
            other.element_type()
        ))),
    }
}

/// An integer field (`_id`, `count`, sort keys), whichever int type wrote it.
pub fn as_int(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        _ => None,
    }
}

/// `{$literal: v}`: a value inside an aggregation expression, never read as a path or an
/// operator (a string `"$x"` stays a string).
pub fn literal(v: impl Into<Bson>) -> Bson {
    Bson::Document(doc! { "$literal": v.into() })
}

/// The expression of a `data` document with `fields` set to their values (literal names:
/// `"calc.energy"` is one field). A placeholder's `null` becomes a document.
pub fn set_fields_expr(fields: Vec<(String, Bson)>) -> Bson {
    let mut expr = Bson::Document(doc! { "$ifNull": ["$data", {}] });
    for (name, value) in fields {
        expr = Bson::Document(doc! {
            "$setField": { "field": literal(name), "input": expr, "value": literal(value) }
        });
    }
    expr
}

/// The expression of a `data` document without `keys`; `null` (a placeholder) when no key
/// is left. Replaces `$unsetField`, which not every server has.
pub fn drop_fields_expr(keys: &[String]) -> Bson {
    Bson::Document(doc! {
        "$let": {
            "vars": { "kept": { "$filter": {
                "input": { "$objectToArray": { "$ifNull": ["$data", {}] } },
                "cond": { "$not": [{ "$in": ["$$this.k", literal(keys.to_vec())] }] },
            } } },
            "in": { "$cond": [{ "$eq": ["$$kept", []] }, Bson::Null, { "$arrayToObject": "$$kept" }] },
        }
    })
}

/// Field of the projected metadata holding a slice of `sort_keys` ([`sort_keys_window`]).
pub const WINDOW: &str = "w";

/// The expression of `sort_keys[start..start + len]` (shorter at the end of the array;
/// `null` in row documents). The aggregation `$slice` rather than the projection operator
/// `sort_keys: {$slice: …}`: same result, but SecantusDB runs the operator through a slow
/// path (about 3 ms against 0.5 ms per call for 200 rows).
pub fn sort_keys_window(start: Bson, len: Bson) -> Bson {
    Bson::Document(doc! {
        "$cond": [
            { "$isArray": "$sort_keys" },
            { "$slice": ["$sort_keys", start, len] },
            Bson::Null,
        ]
    })
}

/// Field of a row projected by [`select_fields_projection`] holding the BSON type of its
/// `data` (`"object"` for a row, `"null"` for a placeholder).
pub const DATA_TYPE: &str = "t";

/// A projection of row documents reduced to `keys` (literal names: `"calc.energy"` is one
/// field): field `f<j>` holds the value of `keys[j]` where the row has it (and is absent
/// where it does not), [`DATA_TYPE`] tells a row from a placeholder. One `$getField` per
/// key costs the server less than filtering the whole `data` document.
pub fn select_fields_projection(keys: &[String]) -> Document {
    let mut p = doc! { DATA_TYPE: { "$type": "$data" } };
    for (j, k) in keys.iter().enumerate() {
        p.insert(
            format!("f{j}"),
            doc! { "$getField": { "field": literal(k.as_str()), "input": "$data" } },
        );
    }
    p
}

/// The `data` of a row document projected by [`select_fields_projection`]: the keys it has
/// as a document, `null` for a placeholder.
pub fn selected_data(d: &mut Document, keys: &[String]) -> Bson {
    if d.get_str(DATA_TYPE) != Ok("object") {
        return Bson::Null;
    }
    let mut data = Document::new();
    for (j, k) in keys.iter().enumerate() {
        if let Some(v) = d.remove(format!("f{j}")) {
            data.insert(k.clone(), v);
        }
    }
    Bson::Document(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use asebytes_protocol::codec::{DType, NdArray, NdScalar};

    fn field(v: &Value) -> Vec<u8> {
        codec::encode(v).unwrap()
    }

    fn round_trip(v: Value) -> Value {
        let key = Key::from(b"k".to_vec());
        let b = field_to_bson(&key, &field(&v)).unwrap();
        codec::decode(&bson_to_field(&b).unwrap()).unwrap()
    }

    #[test]
    fn test_plain_values_are_plain_bson() {
        let key = Key::from(b"k".to_vec());
        assert_eq!(
            field_to_bson(&key, &field(&Value::Float(1.5))).unwrap(),
            Bson::Double(1.5)
        );
        assert_eq!(
            field_to_bson(&key, &field(&Value::Int(3))).unwrap(),
            Bson::Int32(3)
        );
        let map = Value::Map(vec![("a.b".into(), Value::Str("$x".into()))]);
        assert_eq!(
            field_to_bson(&key, &field(&map)).unwrap(),
            Bson::Document(doc! { "a.b": "$x" })
        );
    }

    #[test]
    fn test_arrays_are_msgpack_numpy_binary_and_keep_their_type() {
        let arr = Value::Array(NdArray {
            dtype: DType::parse("<f8").unwrap(),
            shape: vec![2],
            data: [1.0f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect(),
        });
        let key = Key::from(b"k".to_vec());
        let bytes = field(&arr);
        match field_to_bson(&key, &bytes).unwrap() {
            Bson::Binary(b) => assert_eq!(b.bytes, bytes),
            other => panic!("{other:?}"),
        }
        assert_eq!(round_trip(arr.clone()), arr);
        let scalar = Value::Scalar(NdScalar {
            dtype: DType::parse("<i4").unwrap(),
            data: 7i32.to_le_bytes().to_vec(),
        });
        assert_eq!(round_trip(scalar.clone()), scalar);
        for v in [
            Value::UInt(u64::MAX),
            Value::Bin(b"raw".to_vec()),
            Value::Int(i64::MIN),
            Value::Nil,
            Value::Bool(true),
            Value::List(vec![Value::Int(1), arr.clone()]),
        ] {
            assert_eq!(round_trip(v.clone()), v);
        }
    }

    #[test]
    fn test_foreign_bytes_read_as_bytes() {
        let raw = Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![0xc1],
        });
        let back = codec::decode(&bson_to_field(&raw).unwrap()).unwrap();
        assert_eq!(back, Value::Bin(vec![0xc1]));
    }

    #[test]
    fn test_bad_keys_and_values_are_refused() {
        let e = field_name(&Key::from(b"a\0b".to_vec())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TypeMismatch);
        let e = field_to_bson(&Key::from(b"k".to_vec()), &[0xc1]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TypeMismatch);
    }

    #[test]
    fn test_selected_fields_keep_rows_and_placeholders_apart() {
        let keys = ["calc.energy".to_string(), "info.gone".to_string()];
        let p = select_fields_projection(&keys);
        assert_eq!(p.len(), 3);
        let mut row = doc! { "_id": 1, DATA_TYPE: "object", "f0": -1.5 };
        assert_eq!(
            selected_data(&mut row, &keys),
            Bson::Document(doc! { "calc.energy": -1.5 })
        );
        let mut empty = doc! { "_id": 2, DATA_TYPE: "object" };
        assert_eq!(selected_data(&mut empty, &keys), Bson::Document(doc! {}));
        let mut placeholder = doc! { "_id": 3, DATA_TYPE: "null", "f0": Bson::Null };
        assert_eq!(selected_data(&mut placeholder, &keys), Bson::Null);
    }

    #[test]
    fn test_placeholder_documents_have_null_data() {
        assert_eq!(
            row_document(4, None).unwrap(),
            doc! { "_id": 4i64, "data": Bson::Null }
        );
        assert_eq!(data_to_row(Some(&Bson::Null)).unwrap(), None);
    }
}
