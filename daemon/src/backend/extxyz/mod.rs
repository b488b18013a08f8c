//! The extxyz backend (`*.xyz`, `*.extxyz`; read-only): ASE's extended XYZ dialect parsed
//! in Rust exactly as ASE 3.29's `ase.io.extxyz` reads it, over a persisted frame index so
//! `len()` is known at open and `db[i]` costs one frame's parse at any `i`. A file that
//! grows (an MD run appending) is followed: every read first checks the file and indexes
//! frames appended since.
//!
//! Layer: a file backend under [`crate::store`], on the read-only frames core
//! ([`crate::backend::frames`]): [`scan`] finds frames, [`key_val`] reads comment lines,
//! [`properties`] the per-atom columns, [`frame`] assembles an `Atoms` row.
//! `docs/backends/ase-files.md` says what is read how.

pub mod frame;
pub mod key_val;
pub mod properties;
pub mod scan;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use self::scan::XyzScanner;
use super::frames::index::{Offsets, TrackedFile};
use super::frames::{Frame, FrameSource, FrameView, FramesBackend};
use super::{BackendEntry, Error, ErrorKind, LocationKind, OpenOptions, Result};

/// URI scheme and backend name.
pub const SCHEME: &str = "extxyz";

/// Compressed spellings: refused at open with a message saying what to do.
const COMPRESSED: &[&str] = &[".gz", ".bz2", ".xz"];

/// The extxyz line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "ASE extxyz (read-only)",
    patterns: &[
        "*.xyz",
        "*.extxyz",
        "*.xyz.gz",
        "*.extxyz.gz",
        "*.xyz.bz2",
        "*.extxyz.bz2",
        "*.xyz.xz",
        "*.extxyz.xz",
    ],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::File,
    options: &[],
    open: |opts| Ok(Box::new(open(opts)?)),
    list_groups: |_| Ok(Vec::new()),
};

/// Opens an extxyz file read-only.
pub fn open(opts: &OpenOptions) -> Result<FramesBackend<XyzSource>> {
    let path = PathBuf::from(&opts.path);
    refuse_compressed(&path)?;
    let source = XyzSource::open(&path)?;
    Ok(FramesBackend::new(
        SCHEME,
        format!("{SCHEME}://{}#{}", opts.path, opts.group),
        source,
    ))
}

fn refuse_compressed(path: &Path) -> Result<()> {
    let name = path.to_string_lossy();
    let by_name = COMPRESSED.iter().find(|ext| name.ends_with(*ext));
    let mut magic = [0u8; 6];
    let by_magic = std::fs::File::open(path)
        .and_then(|f| std::os::unix::fs::FileExt::read_at(&f, &mut magic, 0))
        .ok()
        .and_then(|n| {
            let m = &magic[..n];
            if m.starts_with(&[0x1f, 0x8b]) {
                Some(".gz")
            } else if m.starts_with(b"BZh") {
                Some(".bz2")
            } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
                Some(".xz")
            } else {
                None
            }
        });
    match by_name.copied().or(by_magic) {
        None => Ok(()),
        Some(ext) => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{} is {ext}-compressed: a compressed extxyz cannot be indexed for random access; \
                 decompress it first (e.g. `gunzip -k`, `bunzip2 -k`, `unxz -k`) and open the .xyz/.extxyz",
                path.display()
            ),
        )),
    }
}

/// An extxyz file and its frame index, kept current.
#[derive(Debug)]
pub struct XyzSource {
    tracked: Mutex<TrackedFile>,
}

impl XyzSource {
    /// Opens `path` and indexes it (or takes its persisted index).
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            tracked: Mutex::new(TrackedFile::open(path, SCHEME, &XyzScanner)?),
        })
    }
}

impl FrameSource for XyzSource {
    fn view(&self) -> Result<Box<dyn FrameView + '_>> {
        let mut t = self.tracked.lock().unwrap_or_else(PoisonError::into_inner);
        t.refresh(&XyzScanner)?;
        Ok(Box::new(XyzView {
            file: t.file.clone(),
            offsets: t.offsets.clone(),
            path: t.path().to_path_buf(),
        }))
    }
}

/// The frames indexed when the view was taken.
struct XyzView {
    file: Arc<File>,
    offsets: Offsets,
    path: PathBuf,
}

impl FrameView for XyzView {
    fn len(&self) -> u64 {
        self.offsets.len()
    }

    fn frame(&self, index: u64) -> Result<Frame> {
        let bytes = super::frames::index::read_range(&self.file, &self.path, &self.offsets, index)?;
        let start = self.offsets.range(index).map_or(0, |r| r.0);
        let bad = |line: usize, offset: u64, message: String| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{}: frame {index}, line {} of the frame (byte {}): {message}",
                    self.path.display(),
                    line + 1,
                    start + offset
                ),
            )
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let before = &bytes[..e.valid_up_to()];
            let line = before.iter().filter(|&&b| b == b'\n').count();
            bad(line, e.valid_up_to() as u64, "not UTF-8 text".into())
        })?;
        frame::parse(text).map_err(|e| {
            let offset: usize = text.split_inclusive('\n').take(e.line).map(str::len).sum();
            bad(e.line, offset as u64, e.message)
        })
    }
}

#[cfg(test)]
mod tests;
