//! The frame index of a text file (byte offset of every frame), built once by scanning,
//! persisted in the daemon's cache directory keyed by the canonical path, and validated on
//! every use against the file's identity: device, inode, size, mtime, and checksums of the
//! first and the last indexed bytes, so a rewritten file is detected and re-indexed, and a
//! file that grew (an MD run appending frames) is indexed from where the last scan ended.
//!
//! Layer: inside [`super`] (the read-only frames core); the format's [`Scanner`] finds the
//! frames, this module keeps their offsets.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{Error, ErrorKind, Result};

/// Bytes checksummed at each end of the indexed region.
const CHECK_BYTES: u64 = 4096;
/// Persisted index files start with this (the last byte is the layout version).
const MAGIC: &[u8; 8] = b"ABFIDX\x00\x01";
const HEADER: usize = 8 + 8 * 7 + 4 * 2 + 8;

/// What one scan found from a starting offset.
#[derive(Debug, Default)]
pub struct Scan {
    /// Start offset of each complete frame found.
    pub starts: Vec<u64>,
    /// Offset just past the last complete frame (where the next scan starts).
    pub end: u64,
    /// The last frame ends at end of file without a final newline: it may still be being
    /// written, so the next scan re-reads it.
    pub open_tail: bool,
    /// The format's end marker was seen (a blank line in xyz): nothing after counts.
    pub stopped: bool,
}

/// Finds the frames of one format.
pub trait Scanner {
    /// Scans `file` from `from` (a frame start) to `size` bytes.
    fn scan(&self, file: &File, from: u64, size: u64) -> Result<Scan>;
}

/// Who the file is: a change of any of these means the index must be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        }
    }
}

/// The frames of one file as last indexed.
#[derive(Clone, Debug, Default)]
pub struct Offsets {
    /// Start of every frame.
    pub starts: Arc<Vec<u64>>,
    /// End of the last frame.
    pub end: u64,
}

impl Offsets {
    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.starts.len() as u64
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The byte range of frame `i`.
    pub fn range(&self, i: u64) -> Option<(u64, u64)> {
        let i = usize::try_from(i).ok()?;
        let start = *self.starts.get(i)?;
        let stop = self.starts.get(i + 1).copied().unwrap_or(self.end);
        Some((start, stop))
    }
}

/// A file and its up-to-date frame index.
#[derive(Debug)]
pub struct TrackedFile {
    path: PathBuf,
    cache: Option<PathBuf>,
    /// The open file (replaced when the path names a new file).
    pub file: Arc<File>,
    /// The frames indexed so far.
    pub offsets: Offsets,
    id: Identity,
    head_crc: u32,
    tail_crc: u32,
    open_tail: bool,
    stopped: bool,
    persisted: u64,
    /// A last frame without a final newline was left out because the file changed less
    /// than [`SETTLE`] ago (a writer may be mid-line); it is looked at again later.
    pending_tail: bool,
}

/// How long a file must be unchanged before a last line without a newline counts.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

fn settled(id: &Identity) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    now.saturating_sub(id.mtime_ns) >= SETTLE.as_nanos() as i64
}

fn crc_of(file: &File, start: u64, stop: u64) -> u32 {
    let mut buf = vec![0u8; stop.saturating_sub(start) as usize];
    match file.read_exact_at(&mut buf, start) {
        Ok(()) => crc32fast::hash(&buf),
        Err(_) => 0,
    }
}

fn head_tail(file: &File, end: u64) -> (u32, u32) {
    (
        crc_of(file, 0, end.min(CHECK_BYTES)),
        crc_of(file, end.saturating_sub(CHECK_BYTES), end),
    )
}

/// Where persisted frame indexes live: `$ASEBYTES_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/asebytes`, else `~/.cache/asebytes`; then `frame-index/`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("ASEBYTES_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(|d| PathBuf::from(d).join("asebytes"))
        })
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache").join("asebytes"))
        })?;
    Some(base.join("frame-index"))
}

/// FNV-1a, stable across builds (std's hasher is not), for cache file names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn cache_file(path: &Path, format: &str) -> Option<PathBuf> {
    let key = format!("{format}\0{}", path.display());
    let name = path.file_name()?.to_string_lossy();
    Some(cache_dir()?.join(format!(
        "{:016x}-{name}.{format}.idx",
        fnv1a(key.as_bytes())
    )))
}

impl TrackedFile {
    /// Opens `path` (canonical) and brings its index up to date: from the persisted index
    /// when it still describes the file, else by scanning. `format` names the scanner
    /// (part of the cache key).
    pub fn open(path: &Path, format: &str, scanner: &dyn Scanner) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        if meta.is_dir() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{} is a directory, not a file", path.display()),
            ));
        }
        let mut t = Self {
            path: path.to_path_buf(),
            cache: cache_file(path, format),
            file: Arc::new(file),
            offsets: Offsets::default(),
            id: Identity::default(),
            head_crc: 0,
            tail_crc: 0,
            open_tail: false,
            stopped: false,
            persisted: 0,
            pending_tail: false,
        };
        if !t.load(&Identity::of(&meta)) {
            t.rebuild(scanner, Identity::of(&meta))?;
        }
        t.refresh(scanner)?;
        Ok(t)
    }

    /// Catches up with the file: nothing when it is unchanged, the new frames when it grew,
    /// a full re-index when it was replaced or rewritten.
    pub fn refresh(&mut self, scanner: &dyn Scanner) -> Result<()> {
        let meta = std::fs::metadata(&self.path).map_err(|e| Error::io("stat", &self.path, e))?;
        let now = Identity::of(&meta);
        if now == self.id && !(self.pending_tail && settled(&now)) {
            return Ok(());
        }
        if now.dev != self.id.dev || now.ino != self.id.ino {
            let file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
            self.file = Arc::new(file);
            return self.rebuild(scanner, now);
        }
        if now.size < self.offsets.end
            || head_tail(&self.file, self.offsets.end) != (self.head_crc, self.tail_crc)
        {
            return self.rebuild(scanner, now);
        }
        if (!self.stopped && now.size > self.offsets.end) || self.open_tail || self.pending_tail {
            let mut starts = (*self.offsets.starts).clone();
            let from = if self.open_tail {
                starts.pop().unwrap_or(0)
            } else {
                self.offsets.end
            };
            let scan = scanner.scan(&self.file, from, now.size)?;
            starts.extend_from_slice(&scan.starts);
            self.set(starts, &scan, now);
        } else {
            self.id = now;
        }
        self.persist_if_due();
        Ok(())
    }

    fn rebuild(&mut self, scanner: &dyn Scanner, id: Identity) -> Result<()> {
        let scan = scanner.scan(&self.file, 0, id.size)?;
        self.persisted = 0;
        self.set(scan.starts.clone(), &scan, id);
        self.persist_if_due();
        Ok(())
    }

    fn set(&mut self, mut starts: Vec<u64>, scan: &Scan, id: Identity) {
        let mut end = if starts.is_empty() { 0 } else { scan.end };
        let mut open_tail = scan.open_tail;
        self.pending_tail = false;
        if open_tail && !settled(&id) {
            end = starts.pop().unwrap_or(0);
            if starts.is_empty() {
                end = 0;
            }
            open_tail = false;
            self.pending_tail = true;
        }
        self.offsets = Offsets {
            starts: Arc::new(starts),
            end,
        };
        self.open_tail = open_tail;
        self.stopped = scan.stopped && !self.pending_tail;
        self.id = id;
        (self.head_crc, self.tail_crc) = head_tail(&self.file, end);
    }

    /// Persists after a full scan, and after growth once enough new frames justify
    /// rewriting the file (a followed MD run would otherwise rewrite it on every poll;
    /// what is not persisted is re-scanned at the next open, from the persisted end).
    fn persist_if_due(&mut self) {
        let n = self.offsets.len();
        let due =
            (self.persisted == 0 && n > 0) || n >= self.persisted + (self.persisted / 16).max(1024);
        if !due {
            return;
        }
        match self.save() {
            Ok(()) => self.persisted = n,
            Err(e) => log::debug!("frame index of {} not persisted: {e}", self.path.display()),
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(target) = &self.cache else {
            return Ok(());
        };
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut out = Vec::with_capacity(HEADER + 8 * self.offsets.starts.len());
        out.extend_from_slice(MAGIC);
        for x in [
            self.id.dev,
            self.id.ino,
            self.id.size,
            self.id.mtime_ns as u64,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        let flags = u64::from(self.open_tail) | u64::from(self.stopped) << 1;
        for x in [self.offsets.end, flags, self.offsets.len()] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.head_crc.to_le_bytes());
        out.extend_from_slice(&self.tail_crc.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        for s in self.offsets.starts.iter() {
            out.extend_from_slice(&s.to_le_bytes());
        }
        let tmp = target.with_extension(format!("tmp{}", std::process::id()));
        let mut f = File::create(&tmp)?;
        f.write_all(&out)?;
        drop(f);
        std::fs::rename(&tmp, target)
    }

    /// Takes the persisted index if it still describes this file; `false` otherwise.
    fn load(&mut self, now: &Identity) -> bool {
        let Some(target) = &self.cache else {
            return false;
        };
        let Ok(mut f) = File::open(target) else {
            return false;
        };
        let mut head = vec![0u8; HEADER];
        if f.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
            return false;
        }
        let word = |i: usize| {
            let at = 8 + 8 * i;
            u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or([0; 8]))
        };
        let (dev, ino, size, mtime) = (word(0), word(1), word(2), word(3) as i64);
        let (end, flags, n) = (word(4), word(5), word(6));
        let crc = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap_or([0; 4]));
        let (head_crc, tail_crc) = (crc(8 + 56), crc(8 + 60));
        if dev != now.dev || ino != now.ino || end > now.size {
            return false;
        }
        // The offsets must all be there and no more than the file could hold.
        let Ok(meta) = f.metadata() else {
            return false;
        };
        if n > end || meta.len() != HEADER as u64 + 8 * n {
            return false;
        }
        let mut raw = vec![0u8; 8 * n as usize];
        if f.read_exact(&mut raw).is_err() {
            return false;
        }
        if head_tail(&self.file, end) != (head_crc, tail_crc) {
            return false;
        }
        let starts: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        if starts.windows(2).any(|w| w[0] >= w[1]) || starts.last().is_some_and(|&s| s >= end) {
            return false;
        }
        self.persisted = n;
        self.offsets = Offsets {
            starts: Arc::new(starts),
            end,
        };
        self.open_tail = flags & 1 != 0;
        self.stopped = flags & 2 != 0;
        self.head_crc = head_crc;
        self.tail_crc = tail_crc;
        self.id = Identity {
            dev,
            ino,
            size,
            mtime_ns: mtime,
        };
        true
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The bytes of frame `i` of `file` (at `path`, for messages).
pub fn read_range(file: &File, path: &Path, offsets: &Offsets, i: u64) -> Result<Vec<u8>> {
    let (start, stop) = offsets.range(i).ok_or_else(|| {
        Error::new(
            ErrorKind::IndexOutOfRange,
            format!("Index {i} out of range [0, {})", offsets.len()),
        )
    })?;
    let mut buf = vec![0u8; (stop - start) as usize];
    file.read_exact_at(&mut buf, start)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}
