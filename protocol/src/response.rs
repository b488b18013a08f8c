//! Responses, one variant per kind of answer.

use serde::{Deserialize, Serialize};

use crate::capability::Capabilities;
use crate::column::PackedColumn;
use crate::error::WireError;
use crate::published::SlotRef;
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
    /// The state after a store's latest commit (answer to `Follow`). Since protocol 3.
    Committed(Committed),
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
    /// Where the daemon publishes this store's commit generation and length in shared
    /// memory (`<socket>.gen`, [`crate::published`]); `None` when it does not (the store
    /// lacks capability `exclusive`, every slot is taken, or an older daemon). Added without
    /// a protocol bump: an older client ignores it, an older daemon omits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<SlotRef>,
}

/// Where a store stands (answer to [`crate::request::Follow`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// Write transactions committed since the daemon opened the store (starts again when
    /// the store is re-opened): tells the client that something changed, not what.
    pub generation: u64,
    /// Rows after that commit; not more than `from` when the wait timed out.
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
    /// Seconds without requests after which a store's files are released (0 = never).
    /// Since daemon 0.1 status v2; absent (0) from older daemons.
    pub store_idle_secs: u64,
    /// The connected clients, oldest first. Absent (empty) from older daemons.
    pub connections: Vec<ClientStatus>,
}

/// One connected client in [`Status`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientStatus {
    /// The daemon's number for the connection.
    pub conn: u64,
    /// The client's process id (`SO_PEERCRED`; 0 if unknown).
    pub pid: u32,
    /// Its command line, shortened (empty if unreadable).
    pub program: String,
    /// When it connected, in seconds since the Unix epoch.
    pub since: u64,
    /// Stores it has open.
    pub stores: u64,
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
    /// Whether its files are released (closed while idle; the next request re-opens them).
    /// `len` is then the length at release. Absent (false) from older daemons.
    pub released: bool,
    /// Seconds since a request last used it (to the releaser's tick).
    pub idle_secs: u64,
    /// Requests being served on it right now (reads and writes).
    pub in_flight: u64,
    /// Commands waiting for, or being run by, its writer.
    pub queued: u64,
    /// Bytes of its file in use, where the backend knows (LMDB: pages in use); 0 if not.
    pub space_used: u64,
    /// Bytes reserved for it (LMDB: the map size); 0 if the backend has no such notion.
    pub space_reserved: u64,
    /// Connections waiting in `Follow` on it right now. Absent (0) from older daemons.
    pub followers: u64,
    /// For a source behind a read-through cache (`cache_to`): rows copied from the source
    /// into the cache since the store opened. Absent (0) from older daemons.
    pub cache_fills: u64,
}
