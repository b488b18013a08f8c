//! Rows as they travel: ordered lists of `(key, value)` byte pairs.
//!
//! The daemon never interprets values. For the object tier a value is one MessagePack
//! document in the msgpack-numpy layout (what the reference `asebytes` stores in LMDB),
//! encoded and decoded by the client; for the blob tier it is whatever bytes the user gave.
//! Keys are UTF-8 field names (`calc.energy`) for the object tier, arbitrary bytes for blobs.

use serde_bytes::ByteBuf;

/// Opaque bytes, serialized as MessagePack `bin`.
pub type Bytes = ByteBuf;

/// A field name.
pub type Key = ByteBuf;

/// A stored row: field names with their encoded values, in the order they were written.
/// A placeholder row travels as `None` (`Option<Row>`); an empty row is stored as a placeholder.
pub type Row = Vec<(Key, Bytes)>;

/// One field of a row, borrowed: `(key, value)`.
pub type FieldRef<'a> = (&'a [u8], &'a [u8]);

/// Builds a [`Key`] from anything byte-like.
pub fn key(k: impl AsRef<[u8]>) -> Key {
    ByteBuf::from(k.as_ref().to_vec())
}

/// Builds a row from `(key, value)` pairs, for tests and examples.
pub fn row<K: AsRef<[u8]>, V: AsRef<[u8]>>(fields: impl IntoIterator<Item = (K, V)>) -> Row {
    fields
        .into_iter()
        .map(|(k, v)| (key(k), ByteBuf::from(v.as_ref().to_vec())))
        .collect()
}
