//! When an LMDB commit is acknowledged: once it is on disk (`durability="disk"`, the
//! default: LMDB flushes every commit) or once it reached the operating system
//! (`durability="os"`).
//!
//! Layer: part of the LMDB backend; [`super::LmdbBackend`] opens the environment with
//! [`Durability::env_flags`] and calls [`Flusher`] after each commit and at close.
//!
//! In `os` mode the environment runs with `MDB_NOSYNC`: a commit writes its pages into
//! the OS page cache and returns without `fsync`. A `kill -9` of the daemon (or any crash
//! of the process) loses nothing acknowledged: the pages belong to the kernel. A power
//! loss or kernel crash may lose the commits since the last flush and, as LMDB documents
//! for `MDB_NOSYNC`, may leave the newest commit unusable. To bound that window the
//! backend flushes (`mdb_env_sync`) at most every `ASEBYTES_LMDB_OS_SYNC_MS` (default
//! 1000 ms) while writes keep coming, and always when the store closes (idle release,
//! daemon shutdown). Meant for MD loops that append one frame at a time to a trajectory
//! they could regenerate; the default stays `disk`.

use std::time::{Duration, Instant};

use heed::{Env, EnvFlags, WithoutTls};

use super::map_heed_err;
use crate::backend::options::Options;
use crate::backend::{Error, ErrorKind, Result};

/// The open option's name.
pub const OPTION: &str = "durability";

/// How long `os` mode lets commits sit in the OS page cache at most while writes keep
/// coming, unless `ASEBYTES_LMDB_OS_SYNC_MS` says otherwise.
pub const DEFAULT_OS_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// When a commit is acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// After LMDB flushed it to disk (survives a power loss).
    #[default]
    Disk,
    /// After it reached the OS (survives a crash of the daemon, not of the machine).
    Os,
}

impl Durability {
    /// The `durability` open option (`"disk"` when absent).
    pub fn from_options(options: &Options) -> Result<Self> {
        Ok(match options.choice(OPTION, &["disk", "os"])? {
            Some("os") => Durability::Os,
            _ => Durability::Disk,
        })
    }

    /// The environment flags of this mode.
    pub fn env_flags(self) -> EnvFlags {
        match self {
            Durability::Disk => EnvFlags::empty(),
            Durability::Os => EnvFlags::NO_SYNC,
        }
    }

    /// The option's value, for logs and `status`.
    pub fn name(self) -> &'static str {
        match self {
            Durability::Disk => "disk",
            Durability::Os => "os",
        }
    }
}

/// Reads `ASEBYTES_LMDB_OS_SYNC_MS` from `lookup` (0 flushes after every commit, which
/// makes `os` behave like `disk`).
pub fn sync_interval_from(lookup: impl Fn(&str) -> Option<String>) -> Result<Duration> {
    const VAR: &str = "ASEBYTES_LMDB_OS_SYNC_MS";
    match lookup(VAR) {
        None => Ok(DEFAULT_OS_SYNC_INTERVAL),
        Some(v) => v.trim().parse().map(Duration::from_millis).map_err(|_| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("{VAR}={v:?} is not valid; use a whole number of milliseconds"),
            )
        }),
    }
}

/// Flushes an `os`-mode environment now and then; does nothing in `disk` mode.
#[derive(Debug)]
pub struct Flusher {
    mode: Durability,
    interval: Duration,
    /// Last flush, or `None` while nothing is waiting for one.
    pending_since: Option<Instant>,
}

impl Flusher {
    /// A flusher for an environment of `mode` flushing at most every `interval`.
    pub fn new(mode: Durability, interval: Duration) -> Self {
        Self {
            mode,
            interval,
            pending_since: None,
        }
    }

    /// The mode it serves.
    pub fn mode(&self) -> Durability {
        self.mode
    }

    /// After a commit: flushes when the oldest unflushed commit is `interval` old.
    pub fn committed(&mut self, env: &Env<WithoutTls>) -> Result<()> {
        if self.mode == Durability::Disk {
            return Ok(());
        }
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.interval {
            self.flush(env)?;
        }
        Ok(())
    }

    /// Flushes whatever commits are still only in the OS page cache.
    pub fn flush(&mut self, env: &Env<WithoutTls>) -> Result<()> {
        if self.pending_since.take().is_some() {
            env.force_sync().map_err(map_heed_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asebytes_protocol::OptionValue;

    #[test]
    fn test_durability_option_defaults_to_disk_and_takes_os() {
        let opts = |v: &str| Options::default().with(OPTION, OptionValue::Str(v.into()));
        assert_eq!(
            Durability::from_options(&Options::default()).unwrap(),
            Durability::Disk
        );
        assert_eq!(
            Durability::from_options(&opts("disk")).unwrap(),
            Durability::Disk
        );
        assert_eq!(
            Durability::from_options(&opts("os")).unwrap(),
            Durability::Os
        );
        let err = Durability::from_options(&opts("fast")).unwrap_err();
        assert!(err.message.contains("durability") && err.message.contains("disk, os"));
        assert_eq!(Durability::Os.env_flags(), EnvFlags::NO_SYNC);
        assert!(Durability::Disk.env_flags().is_empty());
    }

    #[test]
    fn test_sync_interval_reads_the_variable() {
        assert_eq!(
            sync_interval_from(|_| None).unwrap(),
            DEFAULT_OS_SYNC_INTERVAL
        );
        let ms = sync_interval_from(|_| Some("250".into())).unwrap();
        assert_eq!(ms, Duration::from_millis(250));
        assert!(sync_interval_from(|_| Some("soon".into())).is_err());
    }
}
