//! Seed inputs: one valid example of each message and value kind, so the fuzzer starts
//! from the shapes the daemon accepts instead of discovering MessagePack field names.

use std::io;
use std::path::Path;

use asebytes_protocol::codec::{self, DType, NdArray, NdScalar, Value};
use asebytes_protocol::frame::{self, HEADER_LEN};
use asebytes_protocol::request::{
    DeleteRange, DropKeys, Extend, Get, GetColumn, GetMany, Insert, Keys, ListGroups, Open,
    Reserve, Set, SetMany, StoreRef, Update, UpdateMany,
};
use asebytes_protocol::value::{key, row};
use asebytes_protocol::{Hello, OptionMap, OptionValue, Request, Row};

/// Field values of every codec kind.
pub fn values() -> Vec<Value> {
    let positions = NdArray::from_f64s(vec![2, 3], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]).unwrap();
    let numbers = NdArray::from_elements(vec![3], &[1i32, 6, 8]).unwrap();
    let flags = NdArray::from_elements(vec![2], &[true, false]).unwrap();
    let big_endian = NdArray::new(DType::parse(">u2").unwrap(), vec![2], vec![0, 1, 0, 2]).unwrap();
    let scalar =
        NdScalar::new(DType::parse("<f4").unwrap(), 1.5f32.to_le_bytes().to_vec()).unwrap();
    vec![
        Value::Nil,
        Value::Bool(true),
        Value::Int(-7),
        Value::UInt(u64::MAX),
        Value::Float(-1.25),
        Value::Str("H2O".into()),
        Value::Bin(vec![0, 1, 2]),
        Value::List(vec![Value::Int(1), Value::Str("a".into())]),
        Value::Map(vec![
            ("pbc".into(), Value::Bool(false)),
            ("n".into(), Value::Int(3)),
        ]),
        Value::Array(positions),
        Value::Array(numbers),
        Value::Array(flags),
        Value::Array(big_endian),
        Value::Scalar(scalar),
        Value::Complex(1.0, -2.0),
    ]
}

fn sample_row() -> Row {
    let enc = |v: &Value| serde_bytes::ByteBuf::from(codec::encode(v).unwrap());
    let vals = values();
    vec![
        (key("calc.energy"), enc(&vals[4])),
        (key("arrays.positions"), enc(&vals[9])),
        (key("arrays.numbers"), enc(&vals[10])),
        (key("info.meta"), enc(&vals[8])),
    ]
}

/// One request of every kind.
pub fn requests() -> Vec<Request> {
    let store = 1;
    let mut options = OptionMap::new();
    options.insert("compression".into(), OptionValue::Str("gzip".into()));
    options.insert("clevel".into(), OptionValue::Int(5));
    options.insert("readers".into(), OptionValue::Bool(true));
    options.insert("ratio".into(), OptionValue::Float(0.5));
    vec![
        Request::Ping,
        Request::Status,
        Request::Shutdown,
        Request::Open(Open {
            location: "/tmp/x.lmdb".into(),
            group: Some("g".into()),
            readonly: true,
            map_size: Some(1 << 20),
            options,
        }),
        Request::Close(StoreRef { store }),
        Request::Len(StoreRef { store }),
        Request::Get(Get {
            store,
            index: -1,
            keys: Some(vec![key("calc.energy")]),
        }),
        Request::GetMany(GetMany {
            store,
            indices: vec![0, 2, -1],
            keys: None,
            missing_ok: true,
        }),
        Request::GetColumn(GetColumn {
            store,
            key: key("calc.energy"),
            indices: None,
            packed: true,
        }),
        Request::Keys(Keys { store, index: 0 }),
        Request::Schema(StoreRef { store }),
        Request::Extend(Extend {
            store,
            rows: vec![Some(sample_row()), None, Some(row([("a", "b")]))],
        }),
        Request::Insert(Insert {
            store,
            index: 0,
            row: Some(sample_row()),
        }),
        Request::Set(Set {
            store,
            index: 1,
            row: None,
        }),
        Request::SetMany(SetMany {
            store,
            indices: vec![0],
            rows: vec![Some(sample_row())],
        }),
        Request::Update(Update {
            store,
            index: 0,
            data: sample_row(),
        }),
        Request::UpdateMany(UpdateMany {
            store,
            indices: vec![0, 1],
            data: vec![sample_row(), Vec::new()],
        }),
        Request::Delete(asebytes_protocol::request::Delete { store, index: 3 }),
        Request::DeleteRange(DeleteRange {
            store,
            start: 1,
            stop: 4,
        }),
        Request::DropKeys(DropKeys {
            store,
            keys: vec![key("info.meta")],
            indices: Some(vec![0]),
        }),
        Request::Reserve(Reserve { store, n: 10 }),
        Request::Clear(StoreRef { store }),
        Request::Remove(StoreRef { store }),
        Request::ListGroups(ListGroups {
            location: "/tmp/x.h5".into(),
        }),
    ]
}

/// Writes the seeds of target `name` into `dir`; returns how many.
pub fn write(name: &str, dir: &Path) -> io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let frames: Vec<Vec<u8>> = requests()
        .iter()
        .enumerate()
        .map(|(i, r)| frame::encode(i as u64 + 1, r).unwrap())
        .collect();
    let hello = frame::encode(0, &Hello::current("fuzz")).unwrap();
    let seeds: Vec<Vec<u8>> = match name {
        "codec" => values().iter().map(|v| codec::encode(v).unwrap()).collect(),
        "request" => frames.iter().map(|f| f[HEADER_LEN..].to_vec()).collect(),
        "session" => {
            // The handshake alone, then with each request behind it, then with all.
            let mut s = vec![hello.clone()];
            s.extend(frames.iter().map(|f| [hello.as_slice(), f].concat()));
            s.push([vec![hello.clone()], frames.clone()].concat().concat());
            s
        }
        other => return Err(io::Error::other(format!("no fuzz target {other}"))),
    };
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), s)?;
    }
    Ok(seeds.len())
}
