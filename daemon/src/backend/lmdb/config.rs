//! Tuning of LMDB environments: initial map size, how far the map may grow, reader slots,
//! and how long a forced map growth waits for readers. Read once per open from the
//! daemon's environment, so an operator can tune a deployment without a rebuild.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ASEBYTES_LMDB_MAP_SIZE` | `10G` | initial map size when the client gives no `map_size` |
//! | `ASEBYTES_LMDB_MAX_MAP_SIZE` | `4T` | the map never grows beyond this |
//! | `ASEBYTES_LMDB_MAX_READERS` | `1024` | reader slots in a lock file this process creates |
//! | `ASEBYTES_LMDB_RESIZE_WAIT_MS` | `10000` | how long a write that needs a bigger map waits for open snapshots to end |
//! | `ASEBYTES_LMDB_OS_SYNC_MS` | `1000` | `durability="os"`: longest time commits stay unflushed while writes keep coming |
//!
//! Sizes accept a plain byte count or a binary suffix (`64K`, `512M`, `10G`, `1T`).
//! The map is a sparse reservation of address space, so a large initial size costs
//! nothing on disk; it only has to be big enough that growth (which must wait until no
//! transaction is open in this process) stays rare.

use std::time::Duration;

use super::durability::{self, Durability};
use crate::backend::{Error, ErrorKind, Result};

/// The reference's default map size (10 GiB).
pub const DEFAULT_MAP_SIZE: u64 = 10 << 30;
/// Default growth ceiling.
pub const DEFAULT_MAX_MAP_SIZE: u64 = 4 << 40;
/// Default reader slots. LMDB's own default (126) is low for a daemon whose connection
/// threads all read at once; a slot costs 64 bytes of lock file.
pub const DEFAULT_MAX_READERS: u32 = 1024;
/// Default wait of a forced map growth for open snapshots.
pub const DEFAULT_RESIZE_WAIT: Duration = Duration::from_secs(10);

/// Settings for one LMDB environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmdbConfig {
    /// Initial map size in bytes (rounded up to the OS page size at open).
    pub map_size: u64,
    /// Growth ceiling in bytes; a write that needs more fails with `Unavailable`.
    pub max_map_size: u64,
    /// Reader slots. Only applies when this process creates the lock file; otherwise
    /// LMDB uses the size of the existing one.
    pub max_readers: u32,
    /// How long a write that hit a full map waits for this process's open snapshots to
    /// end before it gives up (growing the map needs no transaction open in-process).
    pub resize_wait: Duration,
    /// When commits are acknowledged (the `durability` open option).
    pub durability: Durability,
    /// `durability="os"`: flush at most this long after the oldest unflushed commit.
    pub os_sync_interval: Duration,
}

impl Default for LmdbConfig {
    fn default() -> Self {
        Self {
            map_size: DEFAULT_MAP_SIZE,
            max_map_size: DEFAULT_MAX_MAP_SIZE,
            max_readers: DEFAULT_MAX_READERS,
            resize_wait: DEFAULT_RESIZE_WAIT,
            durability: Durability::Disk,
            os_sync_interval: durability::DEFAULT_OS_SYNC_INTERVAL,
        }
    }
}

impl LmdbConfig {
    /// Defaults overridden by the `ASEBYTES_LMDB_*` variables; an unparsable value is an
    /// error naming the variable rather than a silently ignored setting.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`LmdbConfig::from_env`] over any variable source (tests pass a closure).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut cfg = Self::default();
        if let Some(v) = lookup("ASEBYTES_LMDB_MAP_SIZE") {
            cfg.map_size = parse_size("ASEBYTES_LMDB_MAP_SIZE", &v)?;
        }
        if let Some(v) = lookup("ASEBYTES_LMDB_MAX_MAP_SIZE") {
            cfg.max_map_size = parse_size("ASEBYTES_LMDB_MAX_MAP_SIZE", &v)?;
        }
        if let Some(v) = lookup("ASEBYTES_LMDB_MAX_READERS") {
            cfg.max_readers = v
                .trim()
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid("ASEBYTES_LMDB_MAX_READERS", &v))?;
        }
        if let Some(v) = lookup("ASEBYTES_LMDB_RESIZE_WAIT_MS") {
            let ms: u64 = v
                .trim()
                .parse()
                .map_err(|_| invalid("ASEBYTES_LMDB_RESIZE_WAIT_MS", &v))?;
            cfg.resize_wait = Duration::from_millis(ms);
        }
        cfg.os_sync_interval = durability::sync_interval_from(&lookup)?;
        Ok(cfg)
    }

    /// Uses the client's `map_size` when it gave one.
    pub fn with_map_size(mut self, map_size: Option<u64>) -> Self {
        if let Some(size) = map_size {
            self.map_size = size;
        }
        self
    }
}

/// Parses `123`, `64K`, `512M`, `10G`, `1T` (binary multiples; `KiB` etc. also accepted).
pub fn parse_size(name: &str, value: &str) -> Result<u64> {
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(digits);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(invalid(name, value)),
    };
    let n: u64 = num.parse().map_err(|_| invalid(name, value))?;
    n.checked_mul(1 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid(name, value))
}

fn invalid(name: &str, value: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "{name}={value:?} is not valid; use a positive number (sizes may end in K, M, G or T)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_defaults_match_the_reference_map_size() {
        let cfg = LmdbConfig::from_lookup(|_| None).unwrap();
        assert_eq!(cfg, LmdbConfig::default());
        assert_eq!(cfg.map_size, 10_737_418_240);
    }

    #[test]
    fn test_env_overrides_and_client_map_size() {
        let cfg = LmdbConfig::from_lookup(|name| match name {
            "ASEBYTES_LMDB_MAP_SIZE" => Some("64K".into()),
            "ASEBYTES_LMDB_MAX_MAP_SIZE" => Some("2G".into()),
            "ASEBYTES_LMDB_MAX_READERS" => Some("300".into()),
            "ASEBYTES_LMDB_RESIZE_WAIT_MS" => Some("250".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg.map_size, 64 << 10);
        assert_eq!(cfg.max_map_size, 2 << 30);
        assert_eq!(cfg.max_readers, 300);
        assert_eq!(cfg.resize_wait, Duration::from_millis(250));
        assert_eq!(cfg.clone().with_map_size(Some(1 << 20)).map_size, 1 << 20);
        assert_eq!(cfg.with_map_size(None).map_size, 64 << 10);
    }

    #[test]
    fn test_parse_size_units_and_errors() {
        assert_eq!(parse_size("X", "4096").unwrap(), 4096);
        assert_eq!(parse_size("X", " 10G ").unwrap(), 10 << 30);
        assert_eq!(parse_size("X", "3MiB").unwrap(), 3 << 20);
        assert_eq!(parse_size("X", "1t").unwrap(), 1 << 40);
        for bad in ["", "G", "0", "-1", "10X", "99999999999T"] {
            let err = parse_size("ASEBYTES_LMDB_MAP_SIZE", bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidArgument, "{bad:?}");
            assert!(err.message.contains("ASEBYTES_LMDB_MAP_SIZE"));
        }
        assert!(
            LmdbConfig::from_lookup(|n| (n == "ASEBYTES_LMDB_MAX_READERS").then(|| "0".into()))
                .is_err()
        );
    }
}
