//! The backend table: every backend this build serves declares itself here once — scheme,
//! the file patterns and URI scheme that select it, how its location is made canonical,
//! the options it accepts, and how to open it and list its groups. The registry, its
//! error messages, `ListGroups` and the Python registry (through `_native.backends()`)
//! all read this table; nothing else names backends.

use std::path::Path;

use super::{Backend, OpenOptions, Result};

/// How a backend's location becomes the canonical part of a store key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocationKind {
    /// A file or directory: an absolute path, canonicalised (symlinks, `..`).
    File,
    /// A name inside the daemon (`memory://name`); empty means `default`.
    Name,
    /// A server URL (`redis://host:6379/2`, `mongodb://user:pw@host/db?tls=true`): the
    /// backend receives the whole location, credentials included; the store key and
    /// everything shown to anyone carry it redacted
    /// ([`asebytes_protocol::redact::redact`]).
    Url,
    /// A file, or a directory whose entries match the patterns: the shards of one dataset
    /// (a folder of `*.aselmdb`). Canonicalised as [`LocationKind::File`].
    Shards,
}

/// One backend's declaration.
#[derive(Debug)]
pub struct BackendEntry {
    /// URI scheme and short name (`lmdb`, `zarr`, `memory`).
    pub scheme: &'static str,
    /// What it is, for messages (`LMDB`, `Zarr (ragged columnar)`).
    pub label: &'static str,
    /// Whole-location `fnmatch` patterns that select it (`*.lmdb`); empty for URI-only.
    pub patterns: &'static [&'static str],
    /// Patterns that select it only for an existing file that [`BackendEntry::sniff`]
    /// accepts (H5MD content in a `*.h5`); checked before every plain pattern.
    pub sniffed_patterns: &'static [&'static str],
    /// Looks at an existing file's content (cheap; never fails, `false` when unsure).
    pub sniff: Option<fn(&Path) -> bool>,
    /// The group a store opens when the client names none (`None`: `default`), from the
    /// canonical location (H5MD: the first particles group of an existing file).
    pub default_group: Option<fn(&str) -> String>,
    /// How its location is made canonical.
    pub location: LocationKind,
    /// Option names `Open` may carry for it; any other name is refused.
    pub options: &'static [&'static str],
    /// Opens a store.
    pub open: fn(&OpenOptions) -> Result<Box<dyn Backend>>,
    /// Groups that exist at a canonical location (sorted).
    pub list_groups: fn(&str) -> Result<Vec<String>>,
}

/// Every backend of this build, in matching order (first match wins).
pub static BACKENDS: &[BackendEntry] = &[
    #[cfg(feature = "lmdb")]
    super::lmdb::ENTRY,
    super::memory::ENTRY,
    #[cfg(feature = "zarr")]
    super::zarr::ENTRY,
    #[cfg(feature = "zarr")]
    super::zarr::ENTRY_PADDED,
    #[cfg(feature = "hdf5")]
    super::hdf5::ENTRY,
    #[cfg(feature = "hdf5")]
    super::hdf5::ENTRY_PADDED,
    #[cfg(feature = "hdf5")]
    super::h5md::ENTRY,
    #[cfg(feature = "redis")]
    super::redis::ENTRY,
    #[cfg(feature = "redis")]
    super::redis::ENTRY_TLS,
    #[cfg(feature = "asefiles")]
    super::extxyz::ENTRY,
    #[cfg(feature = "asefiles")]
    super::traj::ENTRY,
    #[cfg(feature = "asefiles")]
    super::aselmdb::ENTRY,
    #[cfg(feature = "mongodb")]
    super::mongodb::ENTRY,
    #[cfg(feature = "hub")]
    super::hub::ENTRY_HF,
    #[cfg(feature = "hub")]
    super::hub::ENTRY_COLABFIT,
    #[cfg(feature = "hub")]
    super::hub::ENTRY_OPTIMADE,
];

/// The entry for `scheme`.
pub fn by_scheme(scheme: &str) -> Option<&'static BackendEntry> {
    BACKENDS.iter().find(|e| e.scheme == scheme)
}

/// Opens a backend by scheme (tests and benches; the registry goes through [`Location`]
/// parsing first).
///
/// [`Location`]: crate::registry::Location
pub fn open(scheme: &str, opts: &OpenOptions) -> Result<Box<dyn Backend>> {
    match by_scheme(scheme) {
        Some(e) => (e.open)(opts),
        None => Err(super::Error::new(
            super::ErrorKind::NotFound,
            format!("no backend for scheme '{scheme}'; known: {}", known()),
        )),
    }
}

/// The entry whose patterns match a plain (scheme-less) location: first an entry whose
/// sniffed patterns match an existing file its sniff accepts, then the first plain match.
pub fn by_pattern(location: &str) -> Option<&'static BackendEntry> {
    BACKENDS.iter().find(|e| sniffed(e, location)).or_else(|| {
        BACKENDS
            .iter()
            .find(|e| e.patterns.iter().any(|p| glob_match(p, location)))
    })
}

/// Whether `e` claims `location` by content (see [`BackendEntry::sniffed_patterns`]).
pub fn sniffed(e: &BackendEntry, location: &str) -> bool {
    let Some(sniff) = e.sniff else {
        return false;
    };
    e.sniffed_patterns.iter().any(|p| glob_match(p, location)) && sniff(Path::new(location))
}

/// The entry of kind [`LocationKind::Shards`] whose patterns match an entry of the
/// directory `location` (a folder of shards names its dataset).
pub fn by_directory(location: &str) -> Option<&'static BackendEntry> {
    let entries: Vec<String> = std::fs::read_dir(location)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    BACKENDS.iter().find(|e| {
        e.location == LocationKind::Shards
            && entries
                .iter()
                .any(|name| e.patterns.iter().any(|p| glob_match(p, name)))
    })
}

/// What this build knows, for "no backend" messages: `*.lmdb, memory://`.
pub fn known() -> String {
    let patterns = BACKENDS.iter().flat_map(|e| e.patterns.iter().copied());
    let schemes = BACKENDS
        .iter()
        .filter(|e| e.patterns.is_empty())
        .map(|e| e.scheme);
    patterns
        .map(str::to_string)
        .chain(schemes.map(|s| format!("{s}://")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `fnmatch` on the whole string for the patterns the table uses: `*` matches any run
/// of characters, everything else matches itself.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_the_whole_string() {
        assert!(glob_match("*.lmdb", "/a/b.lmdb"));
        assert!(glob_match("*.lmdb", "s3://bucket/x.lmdb"));
        assert!(!glob_match("*.lmdb", "/a/b.lmdb/"));
        assert!(!glob_match("*.zarr", "/a/b.zarrp"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXc"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn every_entry_is_reachable_and_unique() {
        for (i, e) in BACKENDS.iter().enumerate() {
            assert!(
                BACKENDS[..i].iter().all(|o| o.scheme != e.scheme),
                "{}",
                e.scheme
            );
            assert_eq!(by_scheme(e.scheme).map(|x| x.scheme), Some(e.scheme));
        }
        assert!(known().contains("memory://"), "{}", known());
    }
}
