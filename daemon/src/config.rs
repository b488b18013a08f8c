//! Daemon settings, resolved weakest first: built-in defaults, then the environment
//! (`ASEBYTES_SOCKET`, `ASEBYTES_IDLE_TIMEOUT`, `ASEBYTES_LOG`, `ASEBYTES_LOG_LEVEL`,
//! `ASEBYTES_MAX_FRAME`, `ASEBYTES_MAX_BUFFERED`), then
//! command-line flags (applied by [`crate::cli`]).
//!
//! Read once at start-up and handed to [`crate::server::run`]; nothing below the server
//! reads the environment for these settings.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::paths;

/// Idle timeout when nothing is configured, as sccache's default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a graceful shutdown waits for connections to finish their current request
/// before the stores are closed anyway.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new connection may take to complete the handshake; a peer that connects and
/// stays silent is closed then, and does not keep the daemon from idle exit meanwhile.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a peer may leave a started frame without sending more bytes.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Floor of the default [`Config::max_buffered`].
const MIN_BUFFERED: usize = 256 << 20;

/// Everything the server needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The listening socket's path (reported by `status`, removed on exit).
    pub socket: PathBuf,
    /// Exit after this long without connections; zero means never.
    pub idle_timeout: Duration,
    /// Where `asebytesd run` writes its log (unless logging to the terminal).
    pub log_file: PathBuf,
    /// Most verbose level logged (`error`, `warn`, `info`, `debug`, `trace`, `off`).
    pub log_level: log::LevelFilter,
    /// Cap on a frame after the handshake, in bytes.
    pub max_frame: usize,
    /// Cap on the bytes the receive buffers of all connections hold together.
    pub max_buffered: usize,
    /// Time a new connection has to complete the handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for more bytes of a frame that has begun.
    pub stall_timeout: Duration,
    /// Graceful-shutdown wait for in-flight requests.
    pub drain_timeout: Duration,
    /// Remove the socket file on exit. Off when the socket belongs to someone else
    /// (systemd socket activation).
    pub unlink_socket: bool,
}

impl Config {
    /// Defaults for a daemon on `socket`: idle timeout 600 s, log beside the socket.
    pub fn for_socket(socket: impl Into<PathBuf>) -> Self {
        let socket = socket.into();
        Self {
            log_file: paths::log_path(&socket),
            socket,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            log_level: log::LevelFilter::Info,
            max_frame: asebytes_protocol::frame::DEFAULT_MAX_FRAME_LEN,
            max_buffered: default_max_buffered(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            unlink_socket: true,
        }
    }

    /// Defaults overridden by this process's environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// Defaults overridden by the variables `var` returns (a lookup, so tests need not
    /// touch the process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let socket = paths::socket_path_from(
            var(paths::SOCKET_ENV),
            var("XDG_RUNTIME_DIR"),
            paths::effective_uid(),
        );
        let mut config = Self::for_socket(socket);
        if let Some(v) = var("ASEBYTES_IDLE_TIMEOUT").filter(|v| !v.is_empty()) {
            config.idle_timeout = parse_seconds("ASEBYTES_IDLE_TIMEOUT", &v.to_string_lossy())?;
        }
        if let Some(v) = var("ASEBYTES_LOG").filter(|v| !v.is_empty()) {
            config.log_file = paths::absolute(Path::new(&v));
        }
        if let Some(v) = var("ASEBYTES_LOG_LEVEL").filter(|v| !v.is_empty()) {
            let v = v.to_string_lossy();
            config.log_level = v.trim().parse().map_err(|_| {
                Error::Config(format!("ASEBYTES_LOG_LEVEL must be one of off, error, warn, info, debug, trace; got '{v}'"))
            })?;
        }
        if let Some(v) = var("ASEBYTES_MAX_FRAME").filter(|v| !v.is_empty()) {
            let v = v.to_string_lossy();
            config.max_frame = v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "ASEBYTES_MAX_FRAME must be a number of bytes, got '{v}'"
                ))
            })?;
        }
        if let Some(v) = var("ASEBYTES_MAX_BUFFERED").filter(|v| !v.is_empty()) {
            let v = v.to_string_lossy();
            config.max_buffered = v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "ASEBYTES_MAX_BUFFERED must be a number of bytes, got '{v}'"
                ))
            })?;
        }
        Ok(config)
    }

    /// Moves the socket (made absolute); the log follows it unless it was set explicitly.
    pub fn set_socket(&mut self, socket: PathBuf) {
        let socket = paths::absolute(&socket);
        if self.log_file == paths::log_path(&self.socket) {
            self.log_file = paths::log_path(&socket);
        }
        self.socket = socket;
    }

    /// The idle timeout, or `None` when idle exit is disabled.
    pub fn idle_limit(&self) -> Option<Duration> {
        (!self.idle_timeout.is_zero()).then_some(self.idle_timeout)
    }
}

/// Half the physical memory, at least 256 MiB: what incoming requests of all connections
/// may hold before further growth is refused.
fn default_max_buffered() -> usize {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let physical = usize::try_from(pages)
        .ok()
        .zip(usize::try_from(page).ok())
        .map_or(0, |(n, size)| n.saturating_mul(size));
    (physical / 2).max(MIN_BUFFERED)
}

/// Parses a whole number of seconds (`0` allowed) for the setting `name`.
pub fn parse_seconds(name: &str, value: &str) -> Result<Duration> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| {
            Error::Config(format!(
                "{name} must be a whole number of seconds, got '{value}'"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_when_environment_is_empty() {
        let c = Config::from_vars(vars(&[("XDG_RUNTIME_DIR", "/run/user/5")])).unwrap();
        assert_eq!(
            c.socket,
            PathBuf::from("/run/user/5/asebytes/asebytesd.sock")
        );
        assert_eq!(
            c.log_file,
            PathBuf::from("/run/user/5/asebytes/asebytesd.log")
        );
        assert_eq!(c.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert!(c.max_buffered >= MIN_BUFFERED);
        assert!(c.unlink_socket);
    }

    #[test]
    fn environment_overrides_defaults() {
        let c = Config::from_vars(vars(&[
            ("ASEBYTES_SOCKET", "/s/d.sock"),
            ("ASEBYTES_IDLE_TIMEOUT", "0"),
            ("ASEBYTES_LOG", "/l/x.log"),
            ("ASEBYTES_MAX_FRAME", "4096"),
            ("ASEBYTES_LOG_LEVEL", "debug"),
            ("ASEBYTES_MAX_BUFFERED", "8192"),
        ]))
        .unwrap();
        assert_eq!(c.max_buffered, 8192);
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        assert_eq!(c.socket, PathBuf::from("/s/d.sock"));
        assert_eq!(c.idle_limit(), None);
        assert_eq!(c.log_file, PathBuf::from("/l/x.log"));
        assert_eq!(c.max_frame, 4096);
    }

    #[test]
    fn bad_idle_timeout_is_a_config_error() {
        let err = Config::from_vars(vars(&[("ASEBYTES_IDLE_TIMEOUT", "soon")])).unwrap_err();
        assert!(err.to_string().contains("ASEBYTES_IDLE_TIMEOUT"), "{err}");
    }

    #[test]
    fn moving_the_socket_moves_a_default_log_only() {
        let mut c = Config::for_socket("/a/s.sock");
        c.set_socket("/b/s.sock".into());
        assert_eq!(c.log_file, PathBuf::from("/b/asebytesd.log"));
        c.log_file = "/l/x.log".into();
        c.set_socket("/c/s.sock".into());
        assert_eq!(c.log_file, PathBuf::from("/l/x.log"));
    }
}
