//! The first two frames on every connection. **Frozen**: fields are only ever appended,
//! always with `#[serde(default)]`, so version 1 can tell version 9 that it is too old.

use serde::{Deserialize, Serialize};

use crate::error::WireError;

/// First frame from the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Highest protocol version the client speaks.
    pub protocol: u32,
    /// Lowest protocol version the client accepts.
    pub min_protocol: u32,
    /// The client's package version, for diagnostics.
    #[serde(default)]
    pub client_version: String,
    /// Identifies the build, so a client can tell a daemon from another build.
    #[serde(default)]
    pub build_id: String,
}

/// The daemon accepted the connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The negotiated protocol version.
    pub protocol: u32,
    /// The daemon's package version.
    #[serde(default)]
    pub daemon_version: String,
    /// The daemon's build id.
    #[serde(default)]
    pub build_id: String,
    /// The daemon's process id.
    #[serde(default)]
    pub pid: u32,
    /// Seconds since the Unix epoch when the daemon started.
    #[serde(default)]
    pub started_at: u64,
}

/// The daemon's answer to [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted; requests may follow.
    Welcome(Welcome),
    /// Refused (`VersionMismatch`, `BadRequest`); the daemon closes the connection.
    Refused(WireError),
}

impl Hello {
    /// The `Hello` this build sends.
    pub fn current(build_id: impl Into<String>) -> Self {
        Self {
            protocol: crate::version::CURRENT,
            min_protocol: crate::version::MIN_SUPPORTED,
            client_version: crate::version::PACKAGE_VERSION.to_string(),
            build_id: build_id.into(),
        }
    }
}
