//! A pull parser over one borrowed MessagePack buffer, and the [`Corrupt`] error every
//! reading path of the codec reports.
//!
//! Lowest layer of [`crate::codec`]: the tree decoder ([`super::decode`]), the
//! msgpack-numpy layout parser ([`super::layout`]) and the Python client's direct decoder
//! all read through it. Strings and bins borrow from the buffer; nothing here allocates
//! except error messages, and every length is checked against the bytes that remain.

use rmp::Marker;

/// Bytes that are not the MessagePack (or msgpack-numpy layout) we expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corrupt {}

/// A [`Corrupt`] with `msg`.
pub(crate) fn corrupt(msg: impl Into<String>) -> Corrupt {
    Corrupt(msg.into())
}

/// An integer as MessagePack carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int {
    /// Non-negative (any unsigned marker or a positive fixint).
    U(u64),
    /// Negative or signed marker.
    I(i64),
}

/// A pull parser over one borrowed MessagePack buffer; strings and bins borrow from it.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Moves back to an offset seen earlier (an offset past the end reads as truncated).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` raw bytes, consumed.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.remaining() < n {
            return Err(corrupt(format!(
                "truncated: need {n} bytes at offset {}",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `N` raw bytes as an array (the big-endian payload of a number), consumed.
    #[inline]
    pub fn be<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next marker, consumed.
    #[inline]
    pub fn marker(&mut self) -> Result<Marker, Corrupt> {
        let b = self.take(1)?[0];
        Ok(Marker::from_u8(b))
    }

    /// The next marker, not consumed.
    #[inline]
    pub fn peek_marker(&self) -> Result<Marker, Corrupt> {
        self.buf
            .get(self.pos)
            .map(|&b| Marker::from_u8(b))
            .ok_or_else(|| corrupt("truncated: no marker"))
    }

    /// The length that follows a str/bin/array/map/ext marker (for ext, the payload length
    /// without the type byte).
    #[inline]
    pub fn len_after(&mut self, m: Marker) -> Result<usize, Corrupt> {
        Ok(match m {
            Marker::FixStr(n) | Marker::FixArray(n) | Marker::FixMap(n) => n as usize,
            Marker::Str8 | Marker::Bin8 | Marker::Ext8 => self.be::<1>()?[0] as usize,
            Marker::Str16 | Marker::Bin16 | Marker::Array16 | Marker::Map16 | Marker::Ext16 => {
                u16::from_be_bytes(self.be()?) as usize
            }
            Marker::Str32 | Marker::Bin32 | Marker::Array32 | Marker::Map32 | Marker::Ext32 => {
                u32::from_be_bytes(self.be()?) as usize
            }
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            other => {
                return Err(corrupt(format!(
                    "expected a length-carrying marker, got {other:?}"
                )));
            }
        })
    }

    /// The integer after `m`, if `m` is an integer marker.
    #[inline]
    pub fn int_after(&mut self, m: Marker) -> Result<Option<Int>, Corrupt> {
        Ok(Some(match m {
            Marker::FixPos(n) => Int::U(n as u64),
            Marker::FixNeg(n) => Int::I(n as i64),
            Marker::U8 => Int::U(self.be::<1>()?[0] as u64),
            Marker::U16 => Int::U(u16::from_be_bytes(self.be()?) as u64),
            Marker::U32 => Int::U(u32::from_be_bytes(self.be()?) as u64),
            Marker::U64 => Int::U(u64::from_be_bytes(self.be()?)),
            Marker::I8 => Int::I(i8::from_be_bytes(self.be()?) as i64),
            Marker::I16 => Int::I(i16::from_be_bytes(self.be()?) as i64),
            Marker::I32 => Int::I(i32::from_be_bytes(self.be()?) as i64),
            Marker::I64 => Int::I(i64::from_be_bytes(self.be()?)),
            _ => return Ok(None),
        }))
    }

    /// A non-negative integer.
    #[inline]
    pub fn read_u64(&mut self) -> Result<u64, Corrupt> {
        let m = self.marker()?;
        match self.int_after(m)? {
            Some(Int::U(v)) => Ok(v),
            Some(Int::I(v)) if v >= 0 => Ok(v as u64),
            _ => Err(corrupt(format!("expected an unsigned integer, got {m:?}"))),
        }
    }

    /// A map header; returns the number of pairs.
    #[inline]
    pub fn read_map_len(&mut self) -> Result<usize, Corrupt> {
        match self.marker()? {
            m @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => self.len_after(m),
            m => Err(corrupt(format!("expected a map, got {m:?}"))),
        }
    }

    /// An array header; returns the number of elements.
    #[inline]
    pub fn read_array_len(&mut self) -> Result<usize, Corrupt> {
        match self.marker()? {
            m @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => self.len_after(m),
            m => Err(corrupt(format!("expected an array, got {m:?}"))),
        }
    }

    /// A str, borrowed.
    #[inline]
    pub fn read_str(&mut self) -> Result<&'a str, Corrupt> {
        match self.marker()? {
            m @ (Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32) => {
                let n = self.len_after(m)?;
                std::str::from_utf8(self.take(n)?)
                    .map_err(|e| corrupt(format!("invalid UTF-8 in str: {e}")))
            }
            m => Err(corrupt(format!("expected a str, got {m:?}"))),
        }
    }

    /// A bin, borrowed.
    #[inline]
    pub fn read_bin(&mut self) -> Result<&'a [u8], Corrupt> {
        match self.marker()? {
            m @ (Marker::Bin8 | Marker::Bin16 | Marker::Bin32) => {
                let n = self.len_after(m)?;
                self.take(n)
            }
            m => Err(corrupt(format!("expected a bin, got {m:?}"))),
        }
    }

    /// A bin or a str, as bytes (keys travel as either, depending on the writer).
    pub fn read_bytes_like(&mut self) -> Result<&'a [u8], Corrupt> {
        match self.marker()? {
            m @ (Marker::Bin8
            | Marker::Bin16
            | Marker::Bin32
            | Marker::FixStr(_)
            | Marker::Str8
            | Marker::Str16
            | Marker::Str32) => {
                let n = self.len_after(m)?;
                self.take(n)
            }
            m => Err(corrupt(format!("expected bytes, got {m:?}"))),
        }
    }

    /// Consumes `lit` if the next bytes are exactly `lit`.
    #[inline]
    pub fn eat(&mut self, lit: &[u8]) -> bool {
        if self.buf[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            return true;
        }
        false
    }

    /// Consumes `nil` if it comes next.
    #[inline]
    pub fn eat_nil(&mut self) -> Result<bool, Corrupt> {
        if self.peek_marker()? == Marker::Null {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Skips one complete value (iteratively, so hostile nesting cannot overflow the stack).
    pub fn skip(&mut self) -> Result<(), Corrupt> {
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.marker()?;
            let fixed = match m {
                Marker::FixPos(_)
                | Marker::FixNeg(_)
                | Marker::Null
                | Marker::True
                | Marker::False => 0,
                Marker::U8 | Marker::I8 => 1,
                Marker::U16 | Marker::I16 => 2,
                Marker::U32 | Marker::I32 | Marker::F32 => 4,
                Marker::U64 | Marker::I64 | Marker::F64 => 8,
                Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                    pending = pending.saturating_add(self.len_after(m)?);
                    0
                }
                Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                    pending = pending.saturating_add(self.len_after(m)?.saturating_mul(2));
                    0
                }
                Marker::FixExt1
                | Marker::FixExt2
                | Marker::FixExt4
                | Marker::FixExt8
                | Marker::FixExt16
                | Marker::Ext8
                | Marker::Ext16
                | Marker::Ext32 => self.len_after(m)? + 1,
                Marker::Reserved => return Err(corrupt("reserved marker 0xc1")),
                _ => self.len_after(m)?,
            };
            self.take(fixed)?;
            // Every pending element needs at least one byte: a count beyond what is left
            // is corrupt, and checking here bounds the loop by the buffer length.
            if pending > self.remaining() {
                return Err(corrupt(
                    "container announces more elements than bytes remain",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmp::encode as enc;

    fn mp(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    #[test]
    fn reader_reads_every_int_width() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
        ] {
            let b = mp(|o| {
                enc::write_sint(o, v).unwrap();
            });
            let mut r = Reader::new(&b);
            assert_eq!(r.read_u64().unwrap(), v as u64);
            assert_eq!(r.remaining(), 0);
        }
        for v in [
            -1i64,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64 - 1,
            i64::MIN,
        ] {
            let b = mp(|o| {
                enc::write_sint(o, v).unwrap();
            });
            let mut r = Reader::new(&b);
            let m = r.marker().unwrap();
            assert_eq!(r.int_after(m).unwrap(), Some(Int::I(v)));
        }
        let b = mp(|o| {
            enc::write_uint(o, u64::MAX).unwrap();
        });
        let mut r = Reader::new(&b);
        let m = r.marker().unwrap();
        assert_eq!(r.int_after(m).unwrap(), Some(Int::U(u64::MAX)));
    }

    #[test]
    fn skip_passes_over_nested_values_exactly() {
        let b = mp(|o| {
            enc::write_map_len(o, 2).unwrap();
            enc::write_bin(o, b"nd").unwrap();
            enc::write_array_len(o, 3).unwrap();
            enc::write_f64(o, 1.5).unwrap();
            enc::write_str(o, "x".repeat(40).as_str()).unwrap();
            enc::write_bin(o, &[0u8; 300]).unwrap();
            enc::write_str(o, "k").unwrap();
            enc::write_ext_meta(o, 2, 5).unwrap();
            o.extend_from_slice(&[1, 2]);
            enc::write_nil(o).unwrap();
        });
        let mut r = Reader::new(&b);
        r.skip().unwrap();
        assert_eq!(r.marker().unwrap(), Marker::Null);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn skip_refuses_truncated_and_oversized_containers() {
        let truncated = mp(|o| {
            enc::write_array_len(o, 2).unwrap();
            enc::write_nil(o).unwrap();
        });
        assert!(Reader::new(&truncated).skip().is_err());
        let huge = mp(|o| {
            enc::write_array_len(o, u32::MAX).unwrap();
        });
        assert!(Reader::new(&huge).skip().is_err());
        assert!(Reader::new(&[0xc1]).skip().is_err());
        assert!(Reader::new(&[]).skip().is_err());
    }

    #[test]
    fn str_and_bin_borrow_from_the_buffer() {
        let b = mp(|o| {
            enc::write_str(o, "calc.energy").unwrap();
            enc::write_bin(o, b"\x00\x01").unwrap();
        });
        let mut r = Reader::new(&b);
        assert_eq!(r.read_str().unwrap(), "calc.energy");
        assert_eq!(r.read_bin().unwrap(), b"\x00\x01");
        let mut r = Reader::new(&b);
        assert!(r.read_bin().is_err(), "a str is not a bin");
        let bad = [0xa2, 0xff, 0xfe];
        assert!(
            Reader::new(&bad).read_str().is_err(),
            "invalid UTF-8 is refused"
        );
    }
}
