//! Request builders for the contract suite and the store tests: one function per request
//! kind, with the store id left 0 (the store handle ignores it; the id is the registry's
//! business), plus the key and row shorthands they take.

use asebytes_protocol::request::{
    Delete, DeleteRange, DropKeys, Extend, Get, GetColumn, GetMany, Insert, Keys, Reserve, Set,
    SetMany, StoreRef, Update, UpdateMany,
};
use asebytes_protocol::{Key, Request, Row};
use serde_bytes::ByteBuf;

/// A key.
pub fn k(name: &str) -> Key {
    ByteBuf::from(name.as_bytes().to_vec())
}

/// Keys.
pub fn ks(names: &[&str]) -> Vec<Key> {
    names.iter().map(|n| k(n)).collect()
}

/// A row from `(key, value)` string pairs.
pub fn r(fields: &[(&str, &str)]) -> Row {
    fields
        .iter()
        .map(|(key, v)| (k(key), ByteBuf::from(v.as_bytes().to_vec())))
        .collect()
}

/// `Len`.
pub fn len() -> Request {
    Request::Len(StoreRef { store: 0 })
}
/// `Get` of a whole row.
pub fn get(index: i64) -> Request {
    Request::Get(Get {
        store: 0,
        index,
        keys: None,
    })
}
/// `Get` of some keys.
pub fn get_keys(index: i64, keys: &[&str]) -> Request {
    Request::Get(Get {
        store: 0,
        index,
        keys: Some(ks(keys)),
    })
}
/// `GetMany`.
pub fn get_many(indices: Vec<i64>, keys: Option<&[&str]>) -> Request {
    Request::GetMany(GetMany {
        store: 0,
        indices,
        keys: keys.map(ks),
        missing_ok: false,
    })
}
/// `GetMany` leaving absent keys out.
pub fn get_many_missing_ok(indices: Vec<i64>, keys: &[&str]) -> Request {
    Request::GetMany(GetMany {
        store: 0,
        indices,
        keys: Some(ks(keys)),
        missing_ok: true,
    })
}
/// `GetColumn`.
pub fn get_column(key: &str, indices: Option<Vec<i64>>) -> Request {
    Request::GetColumn(GetColumn {
        store: 0,
        key: k(key),
        indices,
        packed: false,
    })
}
/// `Keys`.
pub fn keys(index: i64) -> Request {
    Request::Keys(Keys { store: 0, index })
}
/// `Schema`.
pub fn schema() -> Request {
    Request::Schema(StoreRef { store: 0 })
}
/// `Extend`.
pub fn extend(rows: Vec<Option<Row>>) -> Request {
    Request::Extend(Extend { store: 0, rows })
}
/// `Insert`.
pub fn insert(index: i64, row: Option<Row>) -> Request {
    Request::Insert(Insert {
        store: 0,
        index,
        row,
    })
}
/// `Set`.
pub fn set(index: i64, row: Option<Row>) -> Request {
    Request::Set(Set {
        store: 0,
        index,
        row,
    })
}
/// `SetMany`.
pub fn set_many(indices: Vec<i64>, rows: Vec<Option<Row>>) -> Request {
    Request::SetMany(SetMany {
        store: 0,
        indices,
        rows,
    })
}
/// `Update`.
pub fn update(index: i64, data: Row) -> Request {
    Request::Update(Update {
        store: 0,
        index,
        data,
    })
}
/// `UpdateMany`.
pub fn update_many(indices: Vec<i64>, data: Vec<Row>) -> Request {
    Request::UpdateMany(UpdateMany {
        store: 0,
        indices,
        data,
    })
}
/// `Delete`.
pub fn delete(index: i64) -> Request {
    Request::Delete(Delete { store: 0, index })
}
/// `DeleteRange`.
pub fn delete_range(start: u64, stop: u64) -> Request {
    Request::DeleteRange(DeleteRange {
        store: 0,
        start,
        stop,
    })
}
/// `DropKeys`.
pub fn drop_keys(keys: &[&str], indices: Option<Vec<i64>>) -> Request {
    Request::DropKeys(DropKeys {
        store: 0,
        keys: ks(keys),
        indices,
    })
}
/// `Reserve`.
pub fn reserve(n: u64) -> Request {
    Request::Reserve(Reserve { store: 0, n })
}
/// `Clear`.
pub fn clear() -> Request {
    Request::Clear(StoreRef { store: 0 })
}
/// `Remove`.
pub fn remove() -> Request {
    Request::Remove(StoreRef { store: 0 })
}

/// One of every write request, each valid on a store of at least 2 rows.
pub fn every_write() -> Vec<Request> {
    vec![
        extend(vec![Some(r(&[("a", "1")]))]),
        insert(0, Some(r(&[("a", "1")]))),
        set(0, Some(r(&[("a", "1")]))),
        set_many(vec![0], vec![None]),
        update(0, r(&[("a", "2")])),
        update_many(vec![0, 1], vec![r(&[("a", "3")]), r(&[("b", "4")])]),
        delete(0),
        delete_range(0, 1),
        drop_keys(&["a"], None),
        reserve(2),
        clear(),
        remove(),
    ]
}
