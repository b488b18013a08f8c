//! The MongoDB location: `mongodb://[user:pass@]host[:port][,host:port…][/db][?options]`
//! split into what the driver connects with and what this backend stores under.
//!
//! Layer: read once at open by [`super::MongoBackend::open`] and by `list_groups`. The path
//! names the database (default `asebytes`, as asebytes 0.3.3); the query options go to the
//! official driver's own URI parser (`authSource`, `replicaSet`, `tls`, `directConnection`,
//! `serverSelectionTimeoutMS`, …), which refuses what it does not know. asebytes 0.3.3
//! folds them into the database name; we do not. Without `authSource`, credentials are
//! checked against `admin`, as 0.3.3 does (it drops the path before connecting), so one
//! URI works for both. Nothing here formats the location raw: messages show it through
//! [`redact`] and scrub the password from the driver's own words.

use std::time::Duration;

use asebytes_protocol::redact::{HIDDEN, redact};
use mongodb::options::ClientOptions;

use crate::backend::{Error, ErrorKind, Result};

/// URI scheme.
pub const SCHEME: &str = "mongodb";
/// Database used when the location has no path (asebytes 0.3.3's default).
pub const DEFAULT_DATABASE: &str = "asebytes";
/// How long the driver looks for a server before a call fails, unless the URI says
/// (`serverSelectionTimeoutMS`): the driver's own default (30 s) would make a down server
/// look like a hang.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening one connection may take, unless the URI says (`connectTimeoutMS`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed MongoDB location.
#[derive(Clone, Debug)]
pub struct MongoConfig {
    /// Driver options: hosts, credentials, TLS, replica set, timeouts.
    pub client: ClientOptions,
    /// Database holding the groups (one collection per group).
    pub database: String,
    /// `host:port[,host:port]` without credentials, for messages.
    pub hosts: String,
    /// The location with its secrets hidden, for messages.
    pub shown: String,
}

impl MongoConfig {
    /// Parses `location` (the whole URL, credentials included).
    pub fn parse(location: &str) -> Result<Self> {
        let shown = redact(location).into_owned();
        let invalid = |reason: String| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("invalid MongoDB location {shown}: {reason}"),
            )
        };
        let rest = match location.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(SCHEME) => rest,
            _ => {
                return Err(invalid(format!(
                    "expected {SCHEME}://[user:pass@]host[:port][/db][?options]"
                )));
            }
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, q),
            None => (tail, ""),
        };
        let path = path.trim_start_matches('/').trim_end_matches('/');
        let database = if path.is_empty() {
            DEFAULT_DATABASE.to_string()
        } else {
            check_database(path).map_err(invalid)?;
            path.to_string()
        };
        if authority.is_empty() || authority.ends_with('@') {
            return Err(invalid("a MongoDB location needs a host".into()));
        }
        if let Some(bad) = query
            .split('&')
            .filter(|p| !p.is_empty())
            .find(|p| !p.contains('='))
        {
            return Err(invalid(format!(
                "option '{}' has no value (write name=value)",
                scrub(bad, secret(authority))
            )));
        }
        let driver_uri = if query.is_empty() {
            format!("{SCHEME}://{authority}/")
        } else {
            format!("{SCHEME}://{authority}/?{query}")
        };
        let mut client = ClientOptions::parse(driver_uri)
            .run()
            .map_err(|e| invalid(scrub(&e.to_string(), secret(authority))))?;
        client
            .server_selection_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        client
            .connect_timeout
            .get_or_insert(DEFAULT_CONNECT_TIMEOUT);
        client.app_name.get_or_insert_with(|| "asebytesd".into());
        let hosts = client
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self {
            client,
            database,
            hosts,
            shown,
        })
    }

    /// `message` with this location's password hidden (driver errors may quote it).
    pub fn scrub(&self, message: &str) -> String {
        let password = self
            .client
            .credential
            .as_ref()
            .and_then(|c| c.password.as_deref());
        scrub(message, password)
    }
}

/// The password in `user:password@host`, if any (before percent-decoding; the decoded one
/// is hidden too by [`MongoConfig::scrub`]).
fn secret(authority: &str) -> Option<&str> {
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, p)| p)
}

/// `message` with every occurrence of `password` replaced by [`HIDDEN`].
pub fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => message.replace(p, HIDDEN),
        _ => message.to_string(),
    }
}

/// A database name MongoDB accepts.
fn check_database(name: &str) -> std::result::Result<(), String> {
    if name.len() > 63 {
        return Err(format!("database name '{name}' is longer than 63 bytes"));
    }
    match name.chars().find(|c| {
        matches!(
            c,
            '/' | '\\' | '.' | ' ' | '"' | '$' | '*' | '<' | '>' | ':' | '|' | '\0'
        )
    }) {
        Some(c) => Err(format!(
            "database name '{name}' contains '{c}', which MongoDB does not allow"
        )),
        None => Ok(()),
    }
}

/// A collection name MongoDB accepts for group `group`.
pub fn check_group(group: &str) -> Result<()> {
    let bad = if group.is_empty() {
        Some("is empty")
    } else if group.contains('$') || group.contains('\0') {
        Some("contains '$' or a NUL byte")
    } else if group.starts_with("system.") {
        Some("starts with 'system.' (reserved by MongoDB)")
    } else {
        None
    };
    match bad {
        Some(why) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("group '{group}' cannot be a MongoDB collection name: it {why}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_splits_database_and_options() {
        let c = MongoConfig::parse(
            "mongodb://user:s3cret@db.example:27018/lab?authSource=admin&replicaSet=rs0&tls=true&directConnection=false",
        )
        .unwrap();
        assert_eq!(c.database, "lab");
        assert_eq!(c.hosts, "db.example:27018");
        assert_eq!(c.client.repl_set_name.as_deref(), Some("rs0"));
        assert_eq!(c.client.direct_connection, Some(false));
        assert!(matches!(
            c.client.tls,
            Some(mongodb::options::Tls::Enabled(_))
        ));
        let cred = c.client.credential.as_ref().unwrap();
        assert_eq!(cred.username.as_deref(), Some("user"));
        assert_eq!(cred.source.as_deref(), Some("admin"));
        assert_eq!(
            c.shown,
            "mongodb://user:***@db.example:27018/lab?authSource=admin&replicaSet=rs0&tls=true&directConnection=false"
        );
    }

    #[test]
    fn test_parse_defaults_database_and_timeouts() {
        let c = MongoConfig::parse("mongodb://localhost").unwrap();
        assert_eq!(c.database, DEFAULT_DATABASE);
        assert_eq!(c.hosts, "localhost:27017");
        assert_eq!(
            c.client.server_selection_timeout,
            Some(DEFAULT_SERVER_SELECTION_TIMEOUT)
        );
        let c = MongoConfig::parse("mongodb://h:1/db/?serverSelectionTimeoutMS=250").unwrap();
        assert_eq!(c.database, "db");
        assert_eq!(
            c.client.server_selection_timeout,
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn test_parse_refuses_bad_locations_without_showing_the_password() {
        for bad in [
            "mongodb://u:hunter2@h/db?notAnOption=1",
            "mongodb://u:hunter2@h/d.b",
            "mongodb://u:hunter2@/db",
            "mongodb://u:hunter2@h/db?tls",
            "redis://u:hunter2@h",
        ] {
            let e = MongoConfig::parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad}");
            assert!(!e.to_string().contains("hunter2"), "{bad}: {e}");
        }
    }

    #[test]
    fn test_groups_must_be_collection_names() {
        assert!(check_group("train").is_ok());
        assert!(check_group("md.run-7").is_ok());
        for bad in ["", "a$b", "system.users"] {
            assert_eq!(
                check_group(bad).unwrap_err().kind,
                ErrorKind::InvalidArgument
            );
        }
    }
}
