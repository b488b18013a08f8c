//! The on-disk key schema of the reference `asebytes` 0.3.3 LMDB layout
//! (`asebytes-behaviour.md` §4.1), and the in-memory block index it describes.
//!
//! Pure code, no LMDB calls: [`super::reader`] and [`super::writer`] move these bytes in
//! and out of a transaction. Everything here must stay byte-identical to what the
//! reference writes, because both programs may open the same file.
//!
//! ```text
//! {sort_key}-{field}       row data; sort_key in ASCII decimal, no padding
//! __blk__<u32 LE>          block b: up to 1024 sort keys as u64 LE; rows = blocks in order
//! __blk_count__            u32 LE number of blocks
//! __blk_sizes__            u32 LE entries per block (absent when there are no blocks)
//! __meta__count            ASCII decimal row count
//! __meta__next_sort_key    ASCII decimal next sort key (keys are never reused)
//! __schema__               sorted union of every field name ever written, joined by b"\n"
//! ```

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use crate::backend::{Error, ErrorKind, Result};

/// Sort keys per block; `extend` opens a new block when the last one is full, `insert`
/// splits a block that grows past it.
pub const BLOCK_SIZE: usize = 1024;
/// Prefix of the block keys; the block number follows as `u32` little-endian.
pub const BLOCK_PREFIX: &[u8] = b"__blk__";
/// Number of blocks, `u32` little-endian.
pub const BLOCK_COUNT_KEY: &[u8] = b"__blk_count__";
/// Entries per block, `n × u32` little-endian.
pub const BLOCK_SIZES_KEY: &[u8] = b"__blk_sizes__";
/// Row count, ASCII decimal.
pub const COUNT_KEY: &[u8] = b"__meta__count";
/// Next sort key to allocate, ASCII decimal.
pub const NEXT_SORT_KEY_KEY: &[u8] = b"__meta__next_sort_key";
/// Every field name ever written, sorted, joined by `\n`.
pub const SCHEMA_KEY: &[u8] = b"__schema__";
/// Every data key starts with an ASCII digit and every metadata key with `_`, so
/// `[b"0", b":")` (`:` follows `9`) covers exactly the row data.
pub const DATA_KEYS_START: &[u8] = b"0";
/// Exclusive end of the data key range, see [`DATA_KEYS_START`].
pub const DATA_KEYS_END: &[u8] = b":";

/// The key of block `b`.
pub fn block_key(b: u32) -> [u8; 11] {
    let mut key = [0u8; 11];
    key[..7].copy_from_slice(BLOCK_PREFIX);
    key[7..].copy_from_slice(&b.to_le_bytes());
    key
}

/// Number of ASCII digits of `n`.
pub fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Replaces `buf` with `{sort_key}-`, the prefix every data key of that row shares.
///
/// `-` is not a digit, so the prefix of row 1 never matches row 10: the keys of one row
/// are contiguous in LMDB's lexicographic order and one prefix scan reads the whole row.
pub fn write_row_prefix(buf: &mut Vec<u8>, sort_key: u64) {
    buf.clear();
    push_decimal(buf, sort_key);
    buf.push(b'-');
}

/// Replaces `buf` with the data key `{sort_key}-{field}`.
pub fn write_data_key(buf: &mut Vec<u8>, sort_key: u64, field: &[u8]) {
    write_row_prefix(buf, sort_key);
    buf.extend_from_slice(field);
}

/// Appends `n` in ASCII decimal without going through `fmt` (this runs per row read).
fn push_decimal(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

/// `n` as ASCII decimal, as the reference writes `__meta__count` and
/// `__meta__next_sort_key`.
pub fn encode_decimal(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(decimal_len(n));
    push_decimal(&mut out, n);
    out
}

/// Parses an ASCII decimal metadata value; a missing key counts as 0, as in the reference.
pub fn decode_decimal(name: &[u8], bytes: Option<&[u8]>) -> Result<u64> {
    let Some(bytes) = bytes else { return Ok(0) };
    let parsed = std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()));
    parsed.and_then(|s| s.parse().ok()).ok_or_else(|| {
        Error::corrupt(format!(
            "LMDB key {} holds {:?}, not a decimal number",
            show(name),
            show(bytes)
        ))
    })
}

/// `__blk_count__` value.
pub fn encode_u32(n: u32) -> [u8; 4] {
    n.to_le_bytes()
}

/// Parses `__blk_count__`; a missing key means no blocks.
pub fn decode_u32(name: &[u8], bytes: Option<&[u8]>) -> Result<u32> {
    let Some(bytes) = bytes else { return Ok(0) };
    let raw: [u8; 4] = bytes.try_into().map_err(|_| {
        Error::corrupt(format!(
            "LMDB key {} holds {} bytes, expected 4",
            show(name),
            bytes.len()
        ))
    })?;
    Ok(u32::from_le_bytes(raw))
}

/// `__blk_sizes__` value for the given block sizes.
pub fn encode_sizes(sizes: impl IntoIterator<Item = u32>) -> Vec<u8> {
    sizes.into_iter().flat_map(u32::to_le_bytes).collect()
}

/// Parses `__blk_sizes__` for `n_blocks` blocks.
pub fn decode_sizes(bytes: Option<&[u8]>, n_blocks: u32) -> Result<Vec<u32>> {
    let bytes = bytes.ok_or_else(|| {
        Error::corrupt("corrupt LMDB metadata: __blk_count__ > 0 but no __blk_sizes__")
    })?;
    if bytes.len() != n_blocks as usize * 4 {
        return Err(Error::corrupt(format!(
            "corrupt LMDB metadata: __blk_sizes__ has {} bytes for {n_blocks} blocks",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// A block value: its sort keys as `u64` little-endian.
pub fn encode_block(sort_keys: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sort_keys.len() * 8);
    for sk in sort_keys {
        out.extend_from_slice(&sk.to_le_bytes());
    }
    out
}

/// Parses block `b`, which `__blk_sizes__` says holds `size` sort keys.
pub fn decode_block(b: u32, bytes: Option<&[u8]>, size: u32) -> Result<Vec<u64>> {
    let bytes = bytes
        .ok_or_else(|| Error::corrupt(format!("corrupt LMDB layout: block {b} is missing")))?;
    if bytes.len() != size as usize * 8 {
        return Err(Error::corrupt(format!(
            "corrupt LMDB layout: block {b} has {} bytes, __blk_sizes__ says {size} sort keys",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect())
}

/// Parses `__schema__`. An empty value is an empty schema, as in the reference (which
/// therefore also loses a schema that consists of the single field name `b""`).
pub fn decode_schema(bytes: Option<&[u8]>) -> BTreeSet<Vec<u8>> {
    match bytes {
        None | Some(b"") => BTreeSet::new(),
        Some(bytes) => bytes.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect(),
    }
}

/// `__schema__` value: the names in byte order (Python's `sorted` on `bytes`).
pub fn encode_schema(schema: &BTreeSet<Vec<u8>>) -> Vec<u8> {
    schema
        .iter()
        .map(Vec::as_slice)
        .collect::<Vec<_>>()
        .join(&b'\n')
}

/// The longest field name any row can hold: a data key is `{sort_key}-{field}`, LMDB keys
/// are at most `max_key` bytes, and a sort key has up to 20 digits. One limit for every
/// row, so a name accepted in row 0 is accepted in row 10**19 too (and every message
/// quotes the same number).
pub fn max_field_len(max_key: usize) -> usize {
    max_key.saturating_sub(decimal_len(u64::MAX) + 1)
}

/// Checks that `field` can be stored in any row: the schema is newline-separated, and
/// LMDB limits keys to `max_key` bytes (see [`max_field_len`]).
pub fn check_field(field: &[u8], max_key: usize) -> Result<()> {
    if field.contains(&b'\n') {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "field name {} contains a newline, which the LMDB layout cannot store",
                show(field)
            ),
        ));
    }
    let limit = max_field_len(max_key);
    if field.len() > limit {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "field name {}… is {} bytes; field names can be at most {limit} bytes \
                 (LMDB keys are limited to {max_key} bytes, including the row prefix)",
                show(&field[..field.len().min(40)]),
                field.len(),
            ),
        ));
    }
    Ok(())
}

/// Bytes for an error message.
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Which blocks an index operation changed, so the writer rewrites only those.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touched {
    /// These block numbers changed in place.
    Blocks(Range<usize>),
    /// Blocks were added or removed at this number: it and every later block moved.
    From(usize),
}

/// Row position → sort key: the concatenation of the blocks.
///
/// Blocks sit behind `Arc`s so a write transaction can start from the cached index for
/// the price of one pointer copy per block, copying only the blocks it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockIndex {
    blocks: Vec<Arc<Vec<u64>>>,
    /// `starts[b]` = position of the first row of block `b`.
    starts: Vec<u64>,
    len: u64,
}

impl BlockIndex {
    /// An index over the given blocks.
    pub fn from_blocks(blocks: Vec<Vec<u64>>) -> Self {
        let mut index = Self {
            blocks: blocks.into_iter().map(Arc::new).collect(),
            ..Self::default()
        };
        index.recount(0);
        index
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of blocks.
    pub fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The sort keys of block `b`.
    pub fn block(&self, b: usize) -> &[u64] {
        &self.blocks[b]
    }

    /// Entries per block, as stored in `__blk_sizes__`.
    pub fn sizes(&self) -> impl Iterator<Item = u32> + '_ {
        self.blocks.iter().map(|b| b.len() as u32)
    }

    /// `(block, offset)` of the row at `pos < len`.
    fn locate(&self, pos: u64) -> Option<(usize, usize)> {
        if pos >= self.len {
            return None;
        }
        // The last block starting at or before `pos`; empty blocks (never written by the
        // reference, but harmless) share their start with the next one and are skipped.
        let b = self.starts.partition_point(|&s| s <= pos) - 1;
        Some((b, (pos - self.starts[b]) as usize))
    }

    /// The sort key of the row at `pos`, `None` past the end.
    pub fn sort_key(&self, pos: u64) -> Option<u64> {
        self.locate(pos).map(|(b, o)| self.blocks[b][o])
    }

    /// The sort keys of rows `start..stop` (`stop <= len`), in order.
    pub fn sort_keys(&self, start: u64, stop: u64) -> impl Iterator<Item = u64> + '_ {
        let first = self.locate(start).filter(|_| start < stop);
        let (b0, o0) = first.unwrap_or((self.blocks.len(), 0));
        let n = stop.saturating_sub(start) as usize;
        self.blocks[b0..]
            .iter()
            .enumerate()
            .flat_map(move |(i, blk)| blk[if i == 0 { o0 } else { 0 }..].iter().copied())
            .take(n)
    }

    /// Every sort key, in row order.
    pub fn all_sort_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.iter().flat_map(|b| b.iter().copied())
    }

    /// Appends a row the way the reference's `extend` does: into the last block, or a new
    /// block when the last one is full.
    pub fn push(&mut self, sort_key: u64) -> Touched {
        match self.blocks.last_mut() {
            Some(last) if last.len() < BLOCK_SIZE => Arc::make_mut(last).push(sort_key),
            _ => {
                self.blocks.push(Arc::new(vec![sort_key]));
                self.starts.push(self.len);
            }
        }
        self.len += 1;
        let b = self.blocks.len() - 1;
        Touched::Blocks(b..b + 1)
    }

    /// Inserts a row before `pos` (`pos <= len`) the way the reference's `insert` does:
    /// into the block holding `pos` (the last block when `pos == len`, even if full), and
    /// a block that grows past [`BLOCK_SIZE`] is split in half, renumbering later blocks.
    pub fn insert(&mut self, pos: u64, sort_key: u64) -> Touched {
        assert!(
            pos <= self.len,
            "insert position {pos} beyond length {}",
            self.len
        );
        if self.blocks.is_empty() {
            self.blocks.push(Arc::new(vec![sort_key]));
            self.starts.push(0);
            self.len = 1;
            return Touched::Blocks(0..1);
        }
        let (b, offset) = match self.locate(pos) {
            Some(found) => found,
            None => (
                self.blocks.len() - 1,
                self.blocks[self.blocks.len() - 1].len(),
            ),
        };
        let block = Arc::make_mut(&mut self.blocks[b]);
        block.insert(offset, sort_key);
        if block.len() > BLOCK_SIZE {
            let right = block.split_off(block.len() / 2);
            self.blocks.insert(b + 1, Arc::new(right));
            self.starts.insert(b + 1, 0);
            self.recount(b);
            return Touched::From(b);
        }
        self.len += 1;
        for start in &mut self.starts[b + 1..] {
            *start += 1;
        }
        Touched::Blocks(b..b + 1)
    }

    /// Removes rows `start..stop` (`start < stop <= len`) and returns their sort keys.
    ///
    /// Gives the same blocks as the reference deleting the rows one by one: each block
    /// loses exactly its rows in the range, and a block left empty is dropped, renumbering
    /// the later blocks.
    pub fn remove_range(&mut self, start: u64, stop: u64) -> (Vec<u64>, Touched) {
        assert!(
            start < stop && stop <= self.len,
            "remove range {start}..{stop} invalid for length {}",
            self.len
        );
        let removed: Vec<u64> = self.sort_keys(start, stop).collect();
        let (b0, o0) = self.locate(start).expect("start < len");
        let (b1, o1) = self.locate(stop - 1).expect("stop - 1 < len");
        let mut emptied = false;
        for b in b0..=b1 {
            let from = if b == b0 { o0 } else { 0 };
            let to = if b == b1 {
                o1 + 1
            } else {
                self.blocks[b].len()
            };
            if from == 0 && to == self.blocks[b].len() {
                self.blocks[b] = Arc::new(Vec::new());
                emptied = true;
            } else {
                Arc::make_mut(&mut self.blocks[b]).drain(from..to);
            }
        }
        let touched = if emptied {
            let mut b = 0;
            self.blocks.retain(|blk| {
                let keep = b < b0 || b > b1 || !blk.is_empty();
                b += 1;
                keep
            });
            Touched::From(b0)
        } else {
            Touched::Blocks(b0..b1 + 1)
        };
        self.recount(b0);
        (removed, touched)
    }

    /// Removes every row.
    pub fn clear(&mut self) -> Touched {
        *self = Self::default();
        Touched::From(0)
    }

    /// Recomputes `starts` and `len` from block `b` on.
    fn recount(&mut self, b: usize) {
        self.starts.resize(self.blocks.len(), 0);
        let mut at = if b == 0 || self.blocks.is_empty() {
            0
        } else {
            self.starts[b - 1] + self.blocks[b - 1].len() as u64
        };
        for (blk, start) in self.blocks[b..].iter().zip(&mut self.starts[b..]) {
            *start = at;
            at += blk.len() as u64;
        }
        self.len = if self.blocks.is_empty() {
            0
        } else {
            let last = self.blocks.len() - 1;
            self.starts[last] + self.blocks[last].len() as u64
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block sizes of an index.
    fn sizes(index: &BlockIndex) -> Vec<u32> {
        index.sizes().collect()
    }

    #[test]
    fn test_data_key_is_decimal_sort_key_dash_field() {
        let mut buf = Vec::new();
        write_data_key(&mut buf, 0, b"calc.energy");
        assert_eq!(buf, b"0-calc.energy");
        write_data_key(&mut buf, 18_446_744_073_709_551_615, b"x");
        assert_eq!(buf, b"18446744073709551615-x");
        write_row_prefix(&mut buf, 1024);
        assert_eq!(buf, b"1024-");
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(9), 1);
        assert_eq!(decimal_len(10), 2);
        assert_eq!(decimal_len(u64::MAX), 20);
    }

    #[test]
    fn test_metadata_values_match_the_reference_bytes() {
        assert_eq!(block_key(0), *b"__blk__\x00\x00\x00\x00");
        assert_eq!(block_key(258), *b"__blk__\x02\x01\x00\x00");
        assert_eq!(encode_u32(1), [1, 0, 0, 0]);
        assert_eq!(encode_sizes([2, 1024]), b"\x02\x00\x00\x00\x00\x04\x00\x00");
        assert_eq!(
            encode_block(&[0, 1]),
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(encode_decimal(0), b"0");
        assert_eq!(encode_decimal(4096), b"4096");
        let schema: BTreeSet<Vec<u8>> = [
            b"pbc".to_vec(),
            b"cell".to_vec(),
            b"arrays.numbers".to_vec(),
        ]
        .into();
        assert_eq!(encode_schema(&schema), b"arrays.numbers\ncell\npbc");
    }

    #[test]
    fn test_metadata_values_round_trip() {
        assert_eq!(decode_decimal(COUNT_KEY, Some(b"4096")).unwrap(), 4096);
        assert_eq!(decode_decimal(COUNT_KEY, None).unwrap(), 0);
        assert_eq!(
            decode_u32(BLOCK_COUNT_KEY, Some(&encode_u32(7))).unwrap(),
            7
        );
        assert_eq!(decode_u32(BLOCK_COUNT_KEY, None).unwrap(), 0);
        assert_eq!(
            decode_sizes(Some(&encode_sizes([3, 1, 1024])), 3).unwrap(),
            vec![3, 1, 1024]
        );
        assert_eq!(
            decode_block(0, Some(&encode_block(&[9, 3, u64::MAX])), 3).unwrap(),
            vec![9, 3, u64::MAX]
        );
        let schema: BTreeSet<Vec<u8>> = [b"a".to_vec(), b"b.c".to_vec()].into();
        assert_eq!(decode_schema(Some(&encode_schema(&schema))), schema);
        assert!(decode_schema(Some(b"")).is_empty());
        assert!(decode_schema(None).is_empty());
    }

    #[test]
    fn test_malformed_metadata_is_corrupt() {
        for bad in [&b""[..], b"-1", b"1 ", b"x", b"99999999999999999999999"] {
            assert_eq!(
                decode_decimal(COUNT_KEY, Some(bad)).unwrap_err().kind,
                ErrorKind::Corrupt,
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_u32(BLOCK_COUNT_KEY, Some(b"\x01\x00"))
                .unwrap_err()
                .kind,
            ErrorKind::Corrupt
        );
        assert_eq!(decode_sizes(None, 1).unwrap_err().kind, ErrorKind::Corrupt);
        assert_eq!(
            decode_sizes(Some(b"\x01\x00\x00\x00"), 2).unwrap_err().kind,
            ErrorKind::Corrupt
        );
        assert_eq!(
            decode_block(3, None, 1).unwrap_err().kind,
            ErrorKind::Corrupt
        );
        assert_eq!(
            decode_block(3, Some(&[0; 8]), 2).unwrap_err().kind,
            ErrorKind::Corrupt
        );
    }

    #[test]
    fn test_check_field_rejects_newlines_and_overlong_names() {
        assert!(check_field(b"calc.energy", 511).is_ok());
        assert!(check_field(b"", 511).is_ok());
        assert_eq!(
            check_field(b"a\nb", 511).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        // The largest sort key's prefix, "18446744073709551615-", plus 490 bytes is 511.
        assert_eq!(max_field_len(511), 490);
        assert!(check_field(&[b'x'; 490], 511).is_ok());
        let err = check_field(&[b'x'; 491], 511).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        assert!(err.message.contains("at most 490 bytes"), "{}", err.message);
    }

    #[test]
    fn test_push_fills_blocks_of_1024_then_opens_a_new_one() {
        let mut index = BlockIndex::default();
        for sk in 0..1024 {
            assert_eq!(index.push(sk), Touched::Blocks(0..1));
        }
        assert_eq!(index.push(1024), Touched::Blocks(1..2));
        assert_eq!(sizes(&index), vec![1024, 1]);
        assert_eq!(index.len(), 1025);
        assert_eq!(index.sort_key(1023), Some(1023));
        assert_eq!(index.sort_key(1024), Some(1024));
        assert_eq!(index.sort_key(1025), None);
    }

    #[test]
    fn test_insert_splits_a_block_exceeding_1024_in_half() {
        let mut index = BlockIndex::from_blocks(vec![(0..1024).collect(), vec![5000, 5001]]);
        assert_eq!(index.insert(10, 9999), Touched::From(0));
        assert_eq!(sizes(&index), vec![512, 513, 2]);
        assert_eq!(index.len(), 1027);
        assert_eq!(index.sort_key(10), Some(9999));
        assert_eq!(index.sort_key(11), Some(10));
        assert_eq!(index.sort_key(512), Some(511));
        assert_eq!(index.sort_key(1025), Some(5000));
        let flat: Vec<u64> = index.all_sort_keys().collect();
        let mut expected: Vec<u64> = (0..10).chain([9999]).chain(10..1024).collect();
        expected.extend([5000, 5001]);
        assert_eq!(flat, expected);
    }

    #[test]
    fn test_insert_goes_into_the_block_holding_the_position() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1], vec![2, 3]]);
        // Position 2 is the first row of block 1, not the end of block 0.
        assert_eq!(index.insert(2, 7), Touched::Blocks(1..2));
        assert_eq!(sizes(&index), vec![2, 3]);
        // At the end: the last block, like the reference's `_find_block(len)`.
        assert_eq!(index.insert(5, 8), Touched::Blocks(1..2));
        assert_eq!(
            index.all_sort_keys().collect::<Vec<_>>(),
            vec![0, 1, 7, 2, 3, 8]
        );
        let mut empty = BlockIndex::default();
        assert_eq!(empty.insert(0, 3), Touched::Blocks(0..1));
        assert_eq!(empty.all_sort_keys().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn test_insert_at_the_end_of_a_full_last_block_splits_it() {
        let mut index = BlockIndex::from_blocks(vec![(0..1024).collect()]);
        assert_eq!(index.insert(1024, 2000), Touched::From(0));
        assert_eq!(sizes(&index), vec![512, 513]);
        assert_eq!(index.sort_key(1024), Some(2000));
    }

    #[test]
    fn test_remove_inside_one_block_keeps_the_numbering() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1, 2], vec![3, 4]]);
        let (removed, touched) = index.remove_range(1, 2);
        assert_eq!(removed, vec![1]);
        assert_eq!(touched, Touched::Blocks(0..1));
        assert_eq!(sizes(&index), vec![2, 2]);
        assert_eq!(index.sort_key(2), Some(3));
    }

    #[test]
    fn test_an_emptied_block_is_removed_and_later_blocks_renumbered() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1], vec![2], vec![3, 4]]);
        let (removed, touched) = index.remove_range(2, 3);
        assert_eq!(removed, vec![2]);
        assert_eq!(touched, Touched::From(1));
        assert_eq!(sizes(&index), vec![2, 2]);
        assert_eq!(index.sort_key(2), Some(3));
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn test_remove_across_blocks_matches_deleting_row_by_row() {
        let blocks = vec![vec![0, 1, 2], vec![3, 4], vec![5], vec![6, 7, 8], vec![9]];
        for start in 0..10u64 {
            for stop in start + 1..=10 {
                let mut bulk = BlockIndex::from_blocks(blocks.clone());
                let (removed, _) = bulk.remove_range(start, stop);
                assert_eq!(removed, (start..stop).collect::<Vec<_>>());
                // The reference: delete(i) for i in reversed(range(start, stop)).
                let mut one_by_one = BlockIndex::from_blocks(blocks.clone());
                for i in (start..stop).rev() {
                    one_by_one.remove_range(i, i + 1);
                }
                assert_eq!(bulk, one_by_one, "{start}..{stop}");
            }
        }
    }

    #[test]
    fn test_remove_touches_only_changed_blocks_unless_one_empties() {
        let mut index = BlockIndex::from_blocks(vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert_eq!(index.remove_range(1, 3).1, Touched::Blocks(0..2));
        assert_eq!(index.remove_range(1, 3).1, Touched::From(1));
        assert_eq!(index.all_sort_keys().collect::<Vec<_>>(), vec![0, 5]);
        assert_eq!(sizes(&index), vec![1, 1]);
        assert_eq!(index.remove_range(0, 2).1, Touched::From(0));
        assert!(index.is_empty());
        assert_eq!(index.n_blocks(), 0);
    }

    #[test]
    fn test_sort_keys_of_a_range_cross_block_borders() {
        let index = BlockIndex::from_blocks(vec![vec![10, 11], vec![12], vec![13, 14]]);
        assert_eq!(index.sort_keys(1, 4).collect::<Vec<_>>(), vec![11, 12, 13]);
        assert_eq!(
            index.sort_keys(0, 5).collect::<Vec<_>>(),
            vec![10, 11, 12, 13, 14]
        );
        assert_eq!(index.sort_keys(3, 3).count(), 0);
        assert_eq!(index.sort_keys(5, 5).count(), 0);
    }

    #[test]
    fn test_clear_empties_the_index() {
        let mut index = BlockIndex::from_blocks(vec![vec![1, 2]]);
        assert_eq!(index.clear(), Touched::From(0));
        assert_eq!(index, BlockIndex::default());
    }
}
