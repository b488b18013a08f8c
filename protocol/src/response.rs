//! Responses, one variant per kind of answer.

use serde::{Deserialize, Serialize};

use crate::capability::Capabilities;
use crate::column::PackedColumn;
use crate::error::WireError;
use crate::request::StoreId;
use crate::value::{Bytes, Key, Row};

/// The daemon's answer to one request (same envelope id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to return.
    Ok,
    /// Answer to `Ping`.
    Pong,
    /// A length (also the new length after writes that change it).
    Len(u64),
    /// Answer to `Open`.
    Opened(Opened),
    /// One row, or `None` for a placeholder.
    Row(Option<Row>),
    /// Rows in the order asked.
    Rows(Vec<Option<Row>>),
    /// Column values in the order asked; `None` where a row lacks the key.
    Column(Vec<Option<Bytes>>),
    /// A column as one array (answer to `GetColumn` with `packed`). Since protocol 2.
    Packed(PackedColumn),
    /// Keys.
    Keys(Vec<Key>),
    /// Group names.
    Groups(Vec<String>),
    /// Daemon status.
    Status(Status),
    /// The request failed; nothing was changed.
    Error(WireError),
}

/// A store was opened or joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// Id for later requests, valid on every connection.
    pub store: StoreId,
    /// Canonical location, e.g. `lmdb:///abs/data.lmdb#default`.
    pub canonical: String,
    /// Backend name (`lmdb`, `memory`).
    pub backend: String,
    /// What this store can do (write flags off for read-only opens).
    pub caps: Capabilities,
    /// Current number of rows.
    pub len: u64,
}

/// What `asebytesd status` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Daemon package version.
    pub version: String,
    /// Protocol version.
    pub protocol: u32,
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Connected clients right now.
    pub clients: u64,
    /// Socket path.
    pub socket: String,
    /// Idle timeout in seconds (0 = never).
    pub idle_timeout_secs: u64,
    /// Open stores.
    pub stores: Vec<StoreStatus>,
}

/// One open store in [`Status`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreStatus {
    /// Canonical location.
    pub canonical: String,
    /// Backend name.
    pub backend: String,
    /// Rows.
    pub len: u64,
    /// Connections using it.
    pub clients: u64,
    /// Write transactions committed since it was opened.
    pub commits: u64,
}
