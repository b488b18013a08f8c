//! Finds where the frames of an (ext)xyz file start, as ASE 3.29's `read_xyz` walks the
//! file: a line holding the atom count, the comment line, that many atom lines, then up to
//! three `VEC` lines; a blank line where a count is expected ends the file. A frame whose
//! lines are not all there yet (a writer mid-frame) is left for the next scan.
//!
//! Layer: the [`Scanner`] of the extxyz backend, used by [`crate::backend::frames::index`].

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::backend::frames::index::{Scan, Scanner};
use crate::backend::{Error, ErrorKind, Result};

/// Bytes read from the file per refill.
const CHUNK: usize = 1 << 20;

/// The xyz frame scanner.
#[derive(Debug, Default)]
pub struct XyzScanner;

/// A line reader over `[from, size)` of a file that keeps positions as file offsets.
struct Lines<'a> {
    file: &'a File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    /// File offset of the next unread byte.
    at: u64,
    /// Bytes before this offset may be dropped from the buffer.
    mark: u64,
    size: u64,
    /// Start, end (without newline) and whether the last line read had a newline.
    line: (u64, u64, bool),
}

impl<'a> Lines<'a> {
    fn new(file: &'a File, from: u64, size: u64) -> Self {
        Self {
            file,
            buf: Vec::new(),
            base: from,
            at: from,
            mark: from,
            size,
            line: (from, from, true),
        }
    }

    fn buffered_end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Reads more of the file; `false` at the end of the scanned region.
    fn fill(&mut self) -> Result<bool> {
        let end = self.buffered_end();
        if end >= self.size {
            return Ok(false);
        }
        let drop = (self.mark - self.base) as usize;
        if drop > 0 {
            self.buf.drain(..drop);
            self.base = self.mark;
        }
        let want = CHUNK.min((self.size - end) as usize);
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        self.file
            .read_exact_at(&mut self.buf[old..], end)
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("cannot read: {e}")))?;
        Ok(true)
    }

    /// Advances over the next line; `false` at the end of the region.
    fn next(&mut self) -> Result<bool> {
        loop {
            let from = (self.at - self.base) as usize;
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[from..]) {
                let start = self.at;
                self.at += nl as u64 + 1;
                self.line = (start, start + nl as u64, true);
                return Ok(true);
            }
            if !self.fill()? {
                if self.at < self.buffered_end() {
                    self.line = (self.at, self.buffered_end(), false);
                    self.at = self.buffered_end();
                    return Ok(true);
                }
                return Ok(false);
            }
        }
    }

    fn text(&self) -> &[u8] {
        let (s, e, _) = self.line;
        &self.buf[(s - self.base) as usize..(e - self.base) as usize]
    }

    /// Whether the next line starts with `VEC` (after spaces), without consuming it.
    fn next_is_vec(&mut self) -> Result<bool> {
        let (save_at, save_line) = (self.at, self.line);
        let vec = self.next()? && self.text().trim_ascii_start().starts_with(b"VEC");
        self.at = save_at;
        self.line = save_line;
        Ok(vec)
    }
}

/// Python's `int(line)` for an atom count: optional sign, digits, surrounding spaces.
pub fn atom_count(line: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(line).ok()?.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    t.replace('_', "").parse().ok()
}

impl Scanner for XyzScanner {
    fn scan(&self, file: &File, from: u64, size: u64) -> Result<Scan> {
        let mut lines = Lines::new(file, from, size);
        let mut scan = Scan {
            end: from,
            ..Scan::default()
        };
        loop {
            let frame = lines.at;
            lines.mark = frame;
            if !lines.next()? {
                break;
            }
            if lines.text().trim_ascii().is_empty() {
                scan.stopped = true;
                break;
            }
            let Some(natoms) = atom_count(lines.text()) else {
                // ASE stops reading the whole file here; the frames before stay readable.
                log::warn!(
                    "xyz: expected an atom count at byte {frame}, got {:?}; frames after it are not indexed",
                    String::from_utf8_lossy(&lines.text()[..lines.text().len().min(80)])
                );
                scan.stopped = true;
                break;
            };
            let mut complete = true;
            let mut terminated = lines.line.2;
            let mut remaining = natoms.saturating_add(1);
            while remaining > 0 {
                if !lines.next()? {
                    complete = false;
                    break;
                }
                terminated = lines.line.2;
                remaining -= 1;
            }
            if !complete {
                break;
            }
            let mut nvec = 0;
            while terminated && nvec < 3 && lines.next_is_vec()? {
                lines.next()?;
                terminated = lines.line.2;
                nvec += 1;
            }
            scan.starts.push(frame);
            scan.end = lines.at;
            if !terminated {
                scan.open_tail = true;
                break;
            }
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn scan_text(text: &str) -> Scan {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        XyzScanner.scan(&f, 0, text.len() as u64).unwrap()
    }

    #[test]
    fn frames_are_found_and_a_partial_frame_is_left() {
        let two = "1\nc\nH 0 0 0\n2\n\nH 0 0 0\nH 1 0 0\n";
        let s = scan_text(two);
        assert_eq!(s.starts, [0, 12]);
        assert_eq!(
            (s.end, s.open_tail, s.stopped),
            (two.len() as u64, false, false)
        );
        let s = scan_text(&format!("{two}3\nc\nH 0 0 0\n"));
        assert_eq!(s.starts.len(), 2);
        assert_eq!(s.end, two.len() as u64);
    }

    #[test]
    fn blank_line_stops_unterminated_tail_is_open_vec_lines_belong_to_the_frame() {
        let s = scan_text("1\nc\nH 0 0 0\n\n1\nc\nH 0 0 0\n");
        assert_eq!((s.starts.len(), s.stopped), (1, true));
        let s = scan_text("1\nc\nH 0 0 0");
        assert_eq!((s.starts.len(), s.open_tail), (1, true));
        let s = scan_text("1\nc\nH 0 0 0\nVEC1 1 0 0\n  VEC2 0 1 0\n1\nc\nH 0 0 0\n");
        assert_eq!(s.starts, [0, 36]);
        let s = scan_text("1\nc\nH 0 0 0\nnot a count\n");
        assert_eq!((s.starts.len(), s.stopped), (1, true));
    }
}
