//! Where a store lives: `Open.location` parsed into a backend and a canonical path, so two
//! spellings of one file name one store.
//!
//! Layer: inside [`super`] (the registry), which keys its stores by [`Location::key`].

use std::io;
use std::path::{Component, Path, PathBuf};

use asebytes_protocol::OptionValue;
use asebytes_protocol::redact::redact;
use asebytes_protocol::request::Open;

use super::DEFAULT_GROUP;
use crate::backend::Options;
use crate::backend::cached::CACHE_TO;
use crate::backend::table::{self, BackendEntry, LocationKind};
use crate::error::{Error, Result};

/// A parsed `Open.location`: which backend, and its canonical path (or memory name).
#[derive(Clone, Debug)]
pub struct Location {
    /// The backend's table entry.
    pub entry: &'static BackendEntry,
    /// Canonical absolute path for file backends, the store name for named ones.
    pub path: String,
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        self.entry.scheme == other.entry.scheme && self.path == other.path
    }
}

impl Eq for Location {}

impl Location {
    /// Parses `<scheme>://<rest>` for a scheme in the backend table, or a plain absolute
    /// path that a table pattern matches (`/data/x.lmdb`), and canonicalises file paths
    /// (a path that does not exist yet is resolved through its nearest existing ancestor).
    pub fn parse(location: &str) -> Result<Self> {
        let unknown = || Error::UnknownBackend {
            location: redact(location).into_owned(),
            known: table::known(),
        };
        let (entry, rest) = match location.split_once("://") {
            Some((scheme, rest)) => (table::by_scheme(scheme).ok_or_else(unknown)?, rest),
            None => (
                table::by_pattern(location)
                    .or_else(|| table::by_directory(location))
                    .ok_or_else(unknown)?,
                location,
            ),
        };
        let path = match entry.location {
            LocationKind::Name if rest.is_empty() => DEFAULT_GROUP.to_string(),
            LocationKind::Name => rest.to_string(),
            LocationKind::File => canonical_file(location, rest)?,
            LocationKind::Url => canonical_url(location)?,
            LocationKind::Shards => canonical_shards(location, rest)?,
        };
        Ok(Self { entry, path })
    }

    /// Backend scheme (`lmdb`, `memory`).
    pub fn scheme(&self) -> &'static str {
        self.entry.scheme
    }

    /// The registry key for `group`. A URL location's secrets are hidden (the key is
    /// logged and shown by `status`), but they still tell stores apart: a URL with a
    /// secret gets a fingerprint of the whole URL, salted per daemon, so opening it with
    /// a wrong password never joins the store opened with the right one.
    pub fn key(&self, group: &str) -> String {
        match self.entry.location {
            LocationKind::Url => {
                let shown = redact(&self.path);
                if shown == self.path {
                    format!("{shown}#{group}")
                } else {
                    format!("{shown}#{group}~{:016x}", fingerprint(&self.path))
                }
            }
            _ => format!("{}://{}#{}", self.scheme(), self.path, group),
        }
    }

    /// The registry key of the store opened with `options` in `group`: the location's key
    /// with its options ([`Location::key_with`]), and for a source behind a read-through
    /// cache, the cache's key.
    pub fn store_key(&self, group: &str, options: &Options) -> String {
        let key = self.key_with(group, &options.without(CACHE_TO));
        match options.get(CACHE_TO) {
            Some(OptionValue::Str(cache)) => {
                let sep = if key.contains('?') { '&' } else { '?' };
                format!("{key}{sep}cache_to={cache}")
            }
            _ => key,
        }
    }

    /// The registry key for `group` opened with `options`. A URL location's options name
    /// what it serves (a hub dataset's split, config and mapping), so two opens that differ
    /// in them are two stores; an option that is a secret ([`SECRET_OPTIONS`]) joins the key
    /// only as a fingerprint, as a URL's password does.
    pub fn key_with(&self, group: &str, options: &Options) -> String {
        let key = self.key(group);
        if self.entry.location != LocationKind::Url || options.is_empty() {
            return key;
        }
        let mut shown = Vec::new();
        let mut secret = String::new();
        for name in options.names() {
            let Some(value) = options.get(name) else {
                continue;
            };
            if SECRET_OPTIONS.contains(&name) {
                secret.push_str(&format!("{name}={value}\0"));
            } else {
                shown.push(format!("{name}={value}"));
            }
        }
        let mut key = format!("{key}?{}", shown.join("&"));
        if !secret.is_empty() {
            key.push_str(&format!("~{:016x}", fingerprint(&secret)));
        }
        key
    }

    /// The backend's options from an `Open`, refusing names it does not take. Protocol 1
    /// carried `map_size` as a field; it joins the map here.
    pub(super) fn options(&self, req: &Open) -> Result<Options> {
        let mut map = req.options.clone();
        if let Some(m) = req.map_size {
            map.entry("map_size".into())
                .or_insert(OptionValue::Int(i64::try_from(m).unwrap_or(i64::MAX)));
        }
        let accepted = self.entry.options;
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !accepted.contains(&k.as_str()) && k.as_str() != CACHE_TO)
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(Error::UnknownOptions {
                backend: self.entry.label,
                unknown,
                accepted,
            });
        }
        if let Some(target) = map.remove(CACHE_TO) {
            let key = self.cache_key(&target)?;
            map.insert(CACHE_TO.into(), OptionValue::Str(key));
        }
        Ok(Options::new(map))
    }

    /// The store key of the read-through cache a `cache_to` option names: a file or
    /// named store that is not this source (its default group).
    fn cache_key(&self, target: &OptionValue) -> Result<String> {
        let OptionValue::Str(target) = target else {
            return Err(Error::InvalidLocation {
                location: format!("{target:?}"),
                reason: "cache_to must be a location string (e.g. 'cache.lmdb')".into(),
            });
        };
        let cache = Location::parse(target)?;
        if !matches!(
            cache.entry.location,
            LocationKind::File | LocationKind::Name
        ) {
            return Err(Error::InvalidLocation {
                location: redact(target).into_owned(),
                reason: format!(
                    "cache_to must be a file or memory store; {} is not",
                    cache.entry.label
                ),
            });
        }
        if cache == *self {
            return Err(Error::InvalidLocation {
                location: target.clone(),
                reason: "cache_to names the source itself".into(),
            });
        }
        Ok(cache.key(DEFAULT_GROUP))
    }
}

/// Options whose values are secrets: never shown in a store key, log or status.
pub const SECRET_OPTIONS: &[&str] = &["token", "password"];

/// A hash of `secret` under a key drawn once per daemon process: equal secrets give equal
/// fingerprints within one daemon, and nothing about the secret can be read back from it.
fn fingerprint(secret: &str) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static SALT: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    SALT.get_or_init(RandomState::new).hash_one(secret)
}

/// A server URL as the backend receives it: the scheme lower-cased, a trailing `/` of an
/// empty path dropped (`redis://h:1/` and `redis://h:1` name one server); the rest is the
/// backend's to parse (its `Config` refuses what it cannot use, without echoing secrets).
pub(super) fn canonical_url(location: &str) -> Result<String> {
    let (scheme, rest) = location.split_once("://").unwrap_or(("", location));
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(Error::InvalidLocation {
            location: redact(location).into_owned(),
            reason: "a server URL needs a host (scheme://host[:port]/...)".into(),
        });
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    Ok(format!("{}://{rest}", scheme.to_ascii_lowercase()))
}

fn canonical_file(location: &str, path: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(invalid(
            "the daemon needs an absolute path (the client resolves relative ones)".into(),
        ));
    }
    let canonical =
        canonicalize_lenient(p).map_err(|e| invalid(format!("cannot resolve the path: {e}")))?;
    canonical
        .into_os_string()
        .into_string()
        .map_err(|_| invalid("the path is not valid UTF-8".into()))
}

/// A shards location: one path, or several joined by `:` (a list of shards as one
/// dataset), each made canonical.
fn canonical_shards(location: &str, rest: &str) -> Result<String> {
    if !rest.contains(':') || Path::new(rest).exists() {
        return canonical_file(location, rest);
    }
    let parts: Vec<String> = rest
        .split(':')
        .map(|p| canonical_file(location, p))
        .collect::<Result<_>>()?;
    Ok(parts.join(":"))
}

/// `fs::canonicalize`, except that components that do not exist yet are appended to the
/// canonical form of their nearest existing ancestor.
fn canonicalize_lenient(p: &Path) -> io::Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(c),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let Some(parent) = p.parent() else {
                return Err(e);
            };
            let base = canonicalize_lenient(parent)?;
            Ok(match p.components().next_back() {
                Some(Component::ParentDir) => base.parent().map(Path::to_path_buf).unwrap_or(base),
                Some(Component::Normal(name)) => base.join(name),
                _ => base,
            })
        }
        Err(e) => Err(e),
    }
}

/// Groups that exist at `location` (for `ListGroups`).
pub fn list_groups(location: &str) -> Result<Vec<String>> {
    let loc = Location::parse(location)?;
    Ok((loc.entry.list_groups)(&loc.path)?)
}
