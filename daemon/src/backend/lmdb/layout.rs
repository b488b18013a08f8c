//! The on-disk key schema of the reference `asebytes` 0.3.3 LMDB layout
//! (`asebytes-behaviour.md` §4.1); the block index it describes is [`super::block_index`].
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
