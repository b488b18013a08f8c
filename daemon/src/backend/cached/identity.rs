//! What a cache records about its source, so that it never serves rows of a source that
//! changed: the source's store key and, for a read-only file source (whose changes the
//! daemon does not see), the identity of its files (device, inode, size, modification
//! time). A writable source is only ever changed through the daemon, which invalidates
//! the rows it writes, so its key alone names it.
//!
//! Layer: inside [`super`] (the cached backend).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::backend::table::glob_match;

/// How to name the source a cache was filled from.
#[derive(Debug)]
pub(super) struct Identity {
    key: String,
    /// The source's files to watch: its location and, for a folder, the entry patterns
    /// that select its files (the shards of an `*.aselmdb` folder).
    files: Option<(String, &'static [&'static str])>,
}

impl Identity {
    /// The identity of the source stored at `key`; `files` for a read-only file source.
    pub(super) fn new(key: String, files: Option<(String, &'static [&'static str])>) -> Self {
        Self { key, files }
    }

    /// The source's store key.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    /// The identity now; `None` when it cannot change behind the daemon's back (so it
    /// need not be looked at on every read).
    pub(super) fn current(&self) -> Option<String> {
        self.files.as_ref().map(|_| self.describe())
    }

    /// The identity now, as recorded in the cache.
    pub(super) fn describe(&self) -> String {
        let mut out = self.key.clone();
        if let Some((path, patterns)) = &self.files {
            for part in parts(path) {
                stamp(&mut out, Path::new(part), patterns);
            }
        }
        out
    }
}

/// The files of a location: itself, or the `:`-joined list of shards it names.
fn parts(path: &str) -> Vec<&str> {
    if Path::new(path).exists() || !path.contains(':') {
        vec![path]
    } else {
        path.split(':').collect()
    }
}

/// Appends `path`'s identity; for a folder, that of each entry its patterns select.
fn stamp(out: &mut String, path: &Path, patterns: &[&str]) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            let mut names: Vec<String> = std::fs::read_dir(path)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| patterns.iter().any(|p| glob_match(p, n)))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            for n in names {
                stamp(out, &path.join(n), &[]);
            }
        }
        Ok(m) => out.push_str(&format!(
            "\n{} {}:{} {} {}.{}",
            path.display(),
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec()
        )),
        Err(_) => out.push_str(&format!("\n{} missing", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_identity_changes_when_the_file_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.extxyz");
        std::fs::write(&path, "1\n\nH 0 0 0\n").unwrap();
        let id = Identity::new("k".into(), Some((path.display().to_string(), &[])));
        let before = id.current().unwrap();
        assert_eq!(id.current().unwrap(), before);
        std::fs::write(&path, "1\n\nHe 0 0 0\n2\n\nH 0 0 0\nH 1 0 0\n").unwrap();
        assert_ne!(id.current().unwrap(), before);
    }

    #[test]
    fn test_a_writable_source_is_named_by_its_key() {
        let id = Identity::new("lmdb:///x.lmdb#default".into(), None);
        assert_eq!(id.current(), None);
        assert_eq!(id.describe(), "lmdb:///x.lmdb#default");
    }
}
