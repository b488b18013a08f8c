//! Requests, one variant per operation. Every variant exists since
//! [`crate::version::HANDSHAKE`] unless its doc says otherwise.
//!
//! Indices are `i64` as the user gave them: the daemon normalises negatives against the
//! length it sees inside the operation's own transaction, so a concurrent writer can never
//! make a normalised index stale.

use serde::{Deserialize, Serialize};

use crate::options::OptionMap;
use crate::value::{Bytes, Key, Row};

/// A store id handed out by [`Request::Open`]; valid on every connection to the same daemon.
pub type StoreId = u64;

/// Every request a client can send after the handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness probe; answered with [`crate::Response::Pong`].
    Ping,
    /// Daemon status; answered with [`crate::Response::Status`].
    Status,
    /// Graceful shutdown: commit and close every store, then exit.
    Shutdown,
    /// Open (or join) a store; answered with [`crate::Response::Opened`].
    Open(Open),
    /// This connection no longer uses the store.
    Close(StoreRef),
    /// Number of rows; answered with `Len`.
    Len(StoreRef),
    /// One row; answered with `Row`.
    Get(Get),
    /// Several rows in one snapshot; answered with `Rows`.
    GetMany(GetMany),
    /// One key over several rows in one snapshot; answered with `Column`.
    GetColumn(GetColumn),
    /// The keys of one row; answered with `Keys`.
    Keys(Keys),
    /// Every key ever written to the store, sorted; answered with `Keys`.
    Schema(StoreRef),
    /// Append rows atomically; answered with the new `Len`.
    Extend(Extend),
    /// Insert one row before `index` (clamped like `list.insert`); answered with `Len`.
    Insert(Insert),
    /// Replace one row; answered with `Ok`.
    Set(Set),
    /// Replace several rows in one transaction; answered with `Ok`.
    SetMany(SetMany),
    /// Merge keys into one row; answered with `Ok`.
    Update(Update),
    /// Merge keys into several rows in one transaction; answered with `Ok`.
    UpdateMany(UpdateMany),
    /// Delete one row, shifting later rows; answered with `Len`.
    Delete(Delete),
    /// Delete rows `start..stop`; answered with `Len`.
    DeleteRange(DeleteRange),
    /// Remove keys from rows (all rows when `indices` is `None`); answered with `Ok`.
    DropKeys(DropKeys),
    /// Append `n` placeholder rows; answered with `Len`.
    Reserve(Reserve),
    /// Remove every row, keep the container; answered with `Ok`.
    Clear(StoreRef),
    /// Remove the container itself; answered with `Ok`. The store id is closed afterwards.
    Remove(StoreRef),
    /// Groups that exist at a location; answered with `Groups`.
    ListGroups(ListGroups),
    /// Wait until the store has more than `from` rows; answered with `Committed` as soon as
    /// a commit makes it so, or when `timeout_ms` passed. Since protocol 3
    /// ([`crate::version::FOLLOW`]).
    Follow(Follow),
}

impl Request {
    /// Short operation name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Status => "status",
            Request::Shutdown => "shutdown",
            Request::Open(_) => "open",
            Request::Close(_) => "close",
            Request::Len(_) => "len",
            Request::Get(_) => "get",
            Request::GetMany(_) => "get_many",
            Request::GetColumn(_) => "get_column",
            Request::Keys(_) => "keys",
            Request::Schema(_) => "schema",
            Request::Extend(_) => "extend",
            Request::Insert(_) => "insert",
            Request::Set(_) => "set",
            Request::SetMany(_) => "set_many",
            Request::Update(_) => "update",
            Request::UpdateMany(_) => "update_many",
            Request::Delete(_) => "delete",
            Request::DeleteRange(_) => "delete_range",
            Request::DropKeys(_) => "drop_keys",
            Request::Reserve(_) => "reserve",
            Request::Clear(_) => "clear",
            Request::Remove(_) => "remove",
            Request::ListGroups(_) => "list_groups",
            Request::Follow(_) => "follow",
        }
    }
}

/// Which store a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRef {
    /// From [`Request::Open`].
    pub store: StoreId,
}

/// Open a store. Opening the same location and group twice, from any client, joins the
/// same store (one writer actor).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Open {
    /// `lmdb:///abs/path.lmdb`, `memory://name`, or a plain path whose extension names the
    /// backend. Relative paths are resolved by the client, never by the daemon.
    pub location: String,
    /// Group inside the location; `None` means the backend's default (`"default"`).
    #[serde(default)]
    pub group: Option<String>,
    /// Refuse every write on this store id.
    #[serde(default)]
    pub readonly: bool,
    /// Initial LMDB map size in bytes; the map still grows on demand. Protocol 1's way to
    /// pass it; since protocol 2 it may also come as `options["map_size"]`.
    #[serde(default)]
    pub map_size: Option<u64>,
    /// Backend options by name (`compressor`, `clevel`, `chunk_frames`, `compression`, ...);
    /// the backend refuses names it does not know. Since protocol 2.
    #[serde(default, skip_serializing_if = "OptionMap::is_empty")]
    pub options: OptionMap,
}

/// Read one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Get {
    /// Store.
    pub store: StoreId,
    /// Row index; negative counts from the end.
    pub index: i64,
    /// Only these keys; a requested key missing from a non-placeholder row is `NotFound`.
    #[serde(default)]
    pub keys: Option<Vec<Key>>,
}

/// Read several rows from one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetMany {
    /// Store.
    pub store: StoreId,
    /// Row indices in the order wanted; duplicates allowed; negatives count from the end.
    pub indices: Vec<i64>,
    /// Only these keys.
    #[serde(default)]
    pub keys: Option<Vec<Key>>,
    /// With `keys`: a row lacking a key omits it instead of failing with `NotFound`.
    #[serde(default)]
    pub missing_ok: bool,
}

/// Read one key over rows from one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetColumn {
    /// Store.
    pub store: StoreId,
    /// The key.
    pub key: Key,
    /// Rows; `None` means every row.
    #[serde(default)]
    pub indices: Option<Vec<i64>>,
    /// Answer with one [`crate::PackedColumn`] (`Response::Packed`) where the store holds
    /// the key as an array; stores that do not answer `Column` as usual. Since protocol 2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub packed: bool,
}

/// The keys of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// Store.
    pub store: StoreId,
    /// Row index; negative counts from the end.
    pub index: i64,
}

/// Append rows atomically (all or none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extend {
    /// Store.
    pub store: StoreId,
    /// Rows; `None` (or an empty row) is a placeholder.
    pub rows: Vec<Option<Row>>,
}

/// Insert one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insert {
    /// Store.
    pub store: StoreId,
    /// Position, clamped to `[0, len]` after negative normalisation, as `list.insert` does.
    pub index: i64,
    /// The row; `None` is a placeholder.
    pub row: Option<Row>,
}

/// Replace one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Set {
    /// Store.
    pub store: StoreId,
    /// Row index in `[-len, len)`; `len` itself is out of range (use extend).
    pub index: i64,
    /// The new row; `None` makes it a placeholder.
    pub row: Option<Row>,
}

/// Replace several rows in one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMany {
    /// Store.
    pub store: StoreId,
    /// Row indices, one per row.
    pub indices: Vec<i64>,
    /// The new rows.
    pub rows: Vec<Option<Row>>,
}

/// Merge keys into one row (a placeholder becomes a real row).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Store.
    pub store: StoreId,
    /// Row index.
    pub index: i64,
    /// Keys and values to write.
    pub data: Row,
}

/// Merge keys into several rows in one transaction (also how column writes travel).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMany {
    /// Store.
    pub store: StoreId,
    /// Row indices, one per entry of `data`.
    pub indices: Vec<i64>,
    /// Keys and values per row.
    pub data: Vec<Row>,
}

/// Delete one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    /// Store.
    pub store: StoreId,
    /// Row index; negative counts from the end.
    pub index: i64,
}

/// Delete a contiguous range of rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRange {
    /// Store.
    pub store: StoreId,
    /// First row deleted.
    pub start: u64,
    /// One past the last row deleted; `start <= stop <= len`.
    pub stop: u64,
}

/// Remove keys from rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropKeys {
    /// Store.
    pub store: StoreId,
    /// Keys to remove (absent keys are ignored).
    pub keys: Vec<Key>,
    /// Rows; `None` means every row.
    #[serde(default)]
    pub indices: Option<Vec<i64>>,
}

/// Append placeholders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserve {
    /// Store.
    pub store: StoreId,
    /// How many.
    pub n: u64,
}

/// Wait for a store to grow past `from` rows (live follow). The daemon keeps nothing per
/// follower but the wait itself: the client reads the new rows with ordinary requests, in
/// batches of its choosing, and then asks again with the length it has seen. Since
/// protocol 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follow {
    /// Store.
    pub store: StoreId,
    /// Rows the client has seen: answered once the store has more.
    pub from: u64,
    /// Longest wait in milliseconds; `0` answers at once with the current state. The
    /// daemon caps it (a minute), so a follower that vanished holds nothing for long.
    pub timeout_ms: u64,
}

/// List groups at a location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListGroups {
    /// Same form as [`Open::location`].
    pub location: String,
}

/// Values for [`Request::GetColumn`] travel as optional bytes: `None` where a row lacks the
/// key or is a placeholder.
pub type ColumnValues = Vec<Option<Bytes>>;
