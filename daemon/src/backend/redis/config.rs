//! Where a Redis store's server is and how to talk to it: the location
//! `redis[s]://[[user]:password@]host[:port][/db]` plus the open options, parsed once per
//! open. `rediss://` is TLS (rustls): the server's certificate is checked against the
//! system's roots, or against `tls_ca_file=` (a PEM file) for a private CA;
//! `tls_cert_file=` and `tls_key_file=` present a client certificate (mutual TLS).
//!
//! Layer: inside [`super`] (the Redis backend). Nothing here prints the location: every
//! message names the server as `host:port` only, so a password never reaches a log, a
//! status line or an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use asebytes_protocol::OptionValue;

use crate::backend::{Error, ErrorKind, Options, Result};

/// Redis's default port.
pub const DEFAULT_PORT: u16 = 6379;
/// How long opening a connection may take unless `connect_timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one server call may take unless `timeout` says otherwise (a large batch is
/// one call).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The option names a Redis open accepts (the backend table lists them).
pub const OPTIONS: &[&str] = &[
    "connect_timeout",
    "timeout",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
];

/// A parsed Redis location and its options.
#[derive(Clone, PartialEq)]
pub struct RedisConfig {
    /// Server host name or address (IPv6 without brackets).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Logical database (`SELECT`).
    pub db: i64,
    /// ACL user name, if any.
    pub username: Option<String>,
    /// Password, if any. Never shown.
    pub password: Option<String>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read/write timeout of one call.
    pub timeout: Duration,
    /// `rediss://`: TLS to the server.
    pub tls: bool,
    /// PEM file of the CA that signed the server's certificate (instead of the system's
    /// roots).
    pub tls_ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for a server that asks for one.
    pub tls_client: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("server", &self.server())
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_client", &self.tls_client)
            .finish()
    }
}

impl RedisConfig {
    /// Parses `location` (the whole URL) and the open's options.
    pub fn from_options(location: &str, options: &Options) -> Result<Self> {
        let mut cfg = Self::parse_url(location)?;
        if let Some(t) = seconds(options, "connect_timeout")? {
            cfg.connect_timeout = t;
        }
        if let Some(t) = seconds(options, "timeout")? {
            cfg.timeout = t;
        }
        cfg.tls_ca_file = file(options, "tls_ca_file")?;
        cfg.tls_client = match (
            file(options, "tls_cert_file")?,
            file(options, "tls_key_file")?,
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "a client certificate needs both options tls_cert_file= and tls_key_file="
                        .into(),
                ));
            }
        };
        if !cfg.tls && (cfg.tls_ca_file.is_some() || cfg.tls_client.is_some()) {
            return Err(invalid(format!(
                "the options tls_ca_file=, tls_cert_file= and tls_key_file= are for a TLS \
                 server: write its location rediss://{}/{}",
                cfg.server(),
                cfg.db
            )));
        }
        Ok(cfg)
    }

    /// Parses `redis[s]://[[user]:password@]host[:port][/db]` (what redis-py accepts for
    /// a TCP server, `rediss` with TLS); user and password may be percent-encoded.
    pub fn parse_url(location: &str) -> Result<Self> {
        let (tls, rest) = match location.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("redis") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("rediss") => (true, rest),
            Some((scheme, _)) => {
                return Err(invalid(format!(
                    "a Redis location starts with redis:// or rediss:// (TLS), not {scheme}://"
                )));
            }
            None => {
                return Err(invalid(
                    "a Redis location starts with redis:// or rediss:// (TLS)".into(),
                ));
            }
        };
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        if !fragment.is_empty() {
            return Err(invalid(
                "a Redis location has no #fragment (give the group with group=...)".into(),
            ));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !query.is_empty() {
            let names: Vec<&str> = query
                .split('&')
                .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
                .collect();
            return Err(invalid(format!(
                "query parameters are not taken in a Redis location (got {}); use the \
                 options connect_timeout= and timeout=",
                names.join(", ")
            )));
        }
        // The last '@' ends the user info: a password may contain '@' (and '/', so the
        // authority is not split at '/' before the user info is taken off).
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (authority, path) = hostpart.split_once('/').unwrap_or((hostpart, ""));
        let (host, port) = split_host_port(authority)?;
        let db = match path.trim_end_matches('/') {
            "" => 0,
            p => p.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
                invalid(format!(
                    "the path of a Redis location is the database number (redis://{}/0), \
                     not '{p}'; the group goes in group=...",
                    show_server(&host, port)
                ))
            })?,
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = (!user.is_empty())
                    .then(|| percent_decode(user))
                    .transpose()?;
                let pass = pass.map(percent_decode).transpose()?;
                (user, pass)
            }
        };
        Ok(Self {
            host,
            port,
            db,
            username,
            password,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            tls,
            tls_ca_file: None,
            tls_client: None,
        })
    }

    /// `host:port` (`[v6]:port`), for messages.
    pub fn server(&self) -> String {
        show_server(&self.host, self.port)
    }

    /// What the driver needs to connect.
    pub fn connection_info(&self) -> Result<redis::ConnectionInfo> {
        use redis::IntoConnectionInfo;
        let addr = if self.tls {
            redis::ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        let mut settings = redis::RedisConnectionInfo::default()
            .set_db(self.db)
            .set_skip_set_lib_name();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        let info = addr.into_connection_info().map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot use the Redis server {}: {e}", self.server()),
            )
        })?;
        Ok(info.set_redis_settings(settings))
    }

    /// The PEM files the TLS options name, read now (`None` without them: the system's
    /// roots, no client certificate). A file that cannot be read is reported by name.
    pub fn tls_certificates(&self) -> Result<Option<redis::TlsCertificates>> {
        if self.tls_ca_file.is_none() && self.tls_client.is_none() {
            return Ok(None);
        }
        let read = |path: &Path| std::fs::read(path).map_err(|e| Error::io("read", path, e));
        let root_cert = self.tls_ca_file.as_deref().map(read).transpose()?;
        let client_tls = match &self.tls_client {
            Some((cert, key)) => Some(redis::ClientTlsConfig {
                client_cert: read(cert)?,
                client_key: read(key)?,
            }),
            None => None,
        };
        Ok(Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

fn show_server(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn split_host_port(authority: &str) -> Result<(String, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 host needs its closing ']'".into()))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid(
            "a Redis location needs a host (redis://host:6379/0)".into(),
        ));
    }
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(format!(
                "the port of the Redis server {host} must be a number from 1 to 65535, not '{p}'"
            ))
        })?,
    };
    Ok((host.to_string(), port))
}

/// `%XX` decoding of user info; the decoded text must be UTF-8. The message never shows
/// the text (it may be a password).
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    invalid("the user or password of a Redis location has a bad %-escape".into())
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| invalid("the user or password of a Redis location is not UTF-8".into()))
}

/// A positive duration in seconds (int or float).
fn seconds(options: &Options, name: &str) -> Result<Option<Duration>> {
    let secs = match options.get(name) {
        None => return Ok(None),
        Some(OptionValue::Int(i)) => *i as f64,
        Some(OptionValue::Float(f)) => *f,
        Some(v) => {
            return Err(Error::new(
                ErrorKind::TypeMismatch,
                format!(
                    "option {name}={v} ({}) is not valid: expected seconds as an int or float",
                    v.type_name()
                ),
            ));
        }
    };
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("option {name}={secs} is not valid: expected seconds from 0 to 86400"),
        ));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// A file path option (a string).
fn file(options: &Options, name: &str) -> Result<Option<PathBuf>> {
    match options.get(name) {
        None => Ok(None),
        Some(OptionValue::Str(s)) if !s.is_empty() => Ok(Some(PathBuf::from(s))),
        Some(v) => Err(Error::new(
            ErrorKind::TypeMismatch,
            format!(
                "option {name}= ({}) is not valid: expected the path of a PEM file",
                v.type_name()
            ),
        )),
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RedisConfig> {
        RedisConfig::parse_url(s)
    }

    #[test]
    fn host_port_and_db_are_read_with_defaults() {
        let c = parse("redis://cache-host:6380/2").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("cache-host", 6380, 2));
        let c = parse("redis://cache-host").unwrap();
        assert_eq!((c.port, c.db), (DEFAULT_PORT, 0));
        let c = parse("redis://[::1]:7000/").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.server()),
            ("::1", 7000, "[::1]:7000".into())
        );
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let c = parse("redis://:s%40cr%2Fet@h:1/0").unwrap();
        assert_eq!(c.password.as_deref(), Some("s@cr/et"));
        assert_eq!(c.username, None);
        let c = parse("redis://alice:p@ss/w@h:1/3").unwrap();
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("p@ss/w"));
        assert_eq!((c.host.as_str(), c.db), ("h", 3));
        let shown = format!("{c:?}");
        assert!(!shown.contains("p@ss"), "{shown}");
    }

    #[test]
    fn bad_locations_are_refused_without_echoing_secrets() {
        for bad in [
            "redis://:hunter2@h:1/bench_prefix",
            "redis://:hunter2@h:99999/0",
            "redis://:hunter2@/0",
            "redis://:hunter2@h:1/0?password=hunter2",
            "redis://:hunter2@h:1/0#g",
            "mongodb://:hunter2@h:1/0",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad}");
            assert!(!e.message.contains("hunter2"), "{bad}: {}", e.message);
        }
        let e = parse("redis://h:1/bench_prefix").unwrap_err();
        assert!(e.message.contains("database number"), "{}", e.message);
    }

    #[test]
    fn rediss_is_tls_and_the_tls_options_need_it() {
        let c = parse("rediss://:pw@h:6380/1").unwrap();
        assert!(c.tls);
        assert!(!parse("REDIS://h").unwrap().tls);
        let o = Options::default()
            .with("tls_ca_file", OptionValue::Str("/ca.pem".into()))
            .with("tls_cert_file", OptionValue::Str("/c.pem".into()))
            .with("tls_key_file", OptionValue::Str("/k.pem".into()));
        let c = RedisConfig::from_options("rediss://h", &o).unwrap();
        assert_eq!(c.tls_ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(
            c.tls_client,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
        let e = RedisConfig::from_options("redis://:pw@h", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("rediss://h:6379/0"), "{}", e.message);
        let half = Options::default().with("tls_cert_file", OptionValue::Str("/c".into()));
        let e = RedisConfig::from_options("rediss://h", &half).unwrap_err();
        assert!(e.message.contains("both"), "{}", e.message);
        let e = RedisConfig::from_options(
            "rediss://h",
            &Options::default().with("tls_ca_file", OptionValue::Int(1)),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TypeMismatch);
    }

    #[test]
    fn a_missing_pem_file_is_named() {
        let o = Options::default().with(
            "tls_ca_file",
            OptionValue::Str("/nonexistent/ca.pem".into()),
        );
        let c = RedisConfig::from_options("rediss://h", &o).unwrap();
        let e = c.tls_certificates().unwrap_err();
        assert_eq!(e.kind, ErrorKind::FileNotFound);
        assert!(e.message.contains("/nonexistent/ca.pem"), "{}", e.message);
    }

    #[test]
    fn timeouts_are_seconds() {
        let o = Options::default()
            .with("timeout", OptionValue::Float(0.5))
            .with("connect_timeout", OptionValue::Int(2));
        let c = RedisConfig::from_options("redis://h", &o).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        let o = Options::default().with("timeout", OptionValue::Int(0));
        let e = RedisConfig::from_options("redis://h", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        let o = Options::default().with("timeout", OptionValue::Str("1".into()));
        let e = RedisConfig::from_options("redis://h", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TypeMismatch);
    }
}
