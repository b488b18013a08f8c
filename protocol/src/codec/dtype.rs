//! numpy dtype strings (`dtype.str`: `<f8`, `|b1`, `<U5`, `<M8[ns]`) parsed into what a
//! store needs to know about an array's items: byte order, kind and item size.
//!
//! Part of [`crate::codec`]. Only dtypes whose items are plain bytes are accepted: object
//! (`O`, pickles) and structured/void (`V`) dtypes are refused here, so nothing downstream
//! ever builds an array whose items could be forged pointers.

use super::reader::{Corrupt, corrupt};

/// Longest dtype string accepted (`<M8[100ns]`-style units included); anything longer is
/// not a numpy `dtype.str`.
const MAX_LEN: usize = 32;

/// The byte order of a dtype's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `<`, or `=` on a little-endian machine.
    Little,
    /// `>`, or `=` on a big-endian machine.
    Big,
    /// `|`: single-byte items (bool, int8, bytes), where order does not apply.
    NotApplicable,
}

/// A parsed numpy dtype string, kept exactly as written (so re-encoding is byte-identical).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DType {
    text: Box<str>,
    order: ByteOrder,
    kind: u8,
    itemsize: usize,
}

impl DType {
    /// Parses a numpy `dtype.str` such as `<f8`, `|b1`, `>i4`, `<c16`, `<U5`, `|S3`,
    /// `<M8[ns]`. Refuses object, structured and unknown kinds, and item sizes numpy
    /// does not have for the kind.
    pub fn parse(text: &str) -> Result<Self, Corrupt> {
        let bad = |why: &str| corrupt(format!("bad dtype {text:?}: {why}"));
        if text.len() > MAX_LEN {
            return Err(bad("too long"));
        }
        let bytes = text.as_bytes();
        let (order_ch, rest) = match bytes.first() {
            Some(&c @ (b'<' | b'>' | b'|' | b'=')) => (c, &bytes[1..]),
            _ => (b'=', bytes),
        };
        let Some((&kind, rest)) = rest.split_first() else {
            return Err(bad("no kind"));
        };
        match kind {
            b'O' => {
                return Err(corrupt(format!(
                    "refusing dtype {text:?}: object-dtype values are never unpickled"
                )));
            }
            b'V' => {
                return Err(corrupt(format!(
                    "refusing dtype {text:?}: structured dtypes are not supported"
                )));
            }
            b'b' | b'i' | b'u' | b'f' | b'c' | b'S' | b'U' | b'M' | b'm' => {}
            _ => return Err(bad("unsupported kind")),
        }
        let digits_end = rest
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, unit) = rest.split_at(digits_end);
        if digits.is_empty() {
            return Err(bad("no item size"));
        }
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| bad("item size out of range"))?;
        let size_ok = match kind {
            b'b' => n == 1,
            b'i' | b'u' => matches!(n, 1 | 2 | 4 | 8),
            b'f' => matches!(n, 2 | 4 | 8 | 12 | 16),
            b'c' => matches!(n, 8 | 16 | 24 | 32),
            b'M' | b'm' => n == 8,
            _ => true,
        };
        if !size_ok {
            return Err(bad("no such item size for this kind"));
        }
        let unit_ok = match kind {
            b'M' | b'm' => {
                unit.is_empty()
                    || (unit.len() > 2
                        && unit[0] == b'['
                        && unit[unit.len() - 1] == b']'
                        && unit[1..unit.len() - 1]
                            .iter()
                            .all(u8::is_ascii_alphanumeric))
            }
            _ => unit.is_empty(),
        };
        if !unit_ok {
            return Err(bad("unexpected suffix"));
        }
        let itemsize = if kind == b'U' {
            n.checked_mul(4)
                .ok_or_else(|| bad("item size out of range"))?
        } else {
            n
        };
        let order = match order_ch {
            b'<' => ByteOrder::Little,
            b'>' => ByteOrder::Big,
            b'|' => ByteOrder::NotApplicable,
            _ if cfg!(target_endian = "little") => ByteOrder::Little,
            _ => ByteOrder::Big,
        };
        Ok(Self {
            text: text.into(),
            order,
            kind,
            itemsize,
        })
    }

    /// Parses a dtype string given as bytes (it travels as str or bin).
    pub fn parse_bytes(text: &[u8]) -> Result<Self, Corrupt> {
        let text = std::str::from_utf8(text).map_err(|_| corrupt("dtype string is not UTF-8"))?;
        Self::parse(text)
    }

    /// The dtype numpy's `dtype.str` gives for `kind` and `itemsize` in `order`
    /// (`U` counts characters, so its item size must be a multiple of 4); `None` where
    /// the parts do not make one of the plain dtypes (datetimes need their unit: parse
    /// their string instead).
    pub fn from_parts(order: ByteOrder, kind: u8, itemsize: usize) -> Option<Self> {
        let text = TypeStr::from_parts(order, kind, itemsize)?;
        let order = match text.as_str().as_bytes()[0] {
            b'<' => ByteOrder::Little,
            b'>' => ByteOrder::Big,
            _ => ByteOrder::NotApplicable,
        };
        Some(Self {
            text: text.as_str().into(),
            order,
            kind,
            itemsize,
        })
    }

    /// `<f8`: native little-endian float64, what a Python `float` becomes in numpy.
    pub fn f8() -> Self {
        Self::known("<f8", ByteOrder::Little, b'f', 8)
    }

    /// `<i8`: little-endian int64, what a Python `int` becomes in numpy.
    pub fn i8() -> Self {
        Self::known("<i8", ByteOrder::Little, b'i', 8)
    }

    /// `|b1`: numpy bool.
    pub fn bool() -> Self {
        Self::known("|b1", ByteOrder::NotApplicable, b'b', 1)
    }

    fn known(text: &str, order: ByteOrder, kind: u8, itemsize: usize) -> Self {
        Self {
            text: text.into(),
            order,
            kind,
            itemsize,
        }
    }

    /// The dtype string exactly as stored.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// numpy's kind character: `b i u f c S U M m`.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// Bytes per item (for `U`, 4 per character).
    pub fn itemsize(&self) -> usize {
        self.itemsize
    }

    /// The items' byte order.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// Bool, integer, float or complex: items a numeric column can hold.
    pub fn is_numeric(&self) -> bool {
        matches!(self.kind, b'b' | b'i' | b'u' | b'f' | b'c')
    }

    /// Whether items are stored big-endian (and must be swapped for a little-endian store).
    pub fn is_big_endian(&self) -> bool {
        self.order == ByteOrder::Big && self.swap_unit() > 1
    }

    /// The width of the units whose bytes a byte-order change swaps (1: nothing to swap):
    /// a complex swaps its two halves, a `U` string each 4-byte character.
    pub fn swap_unit(&self) -> usize {
        match self.kind {
            b'b' | b'S' => 1,
            b'c' => self.itemsize / 2,
            b'U' => 4,
            _ => self.itemsize,
        }
    }

    /// The same dtype with little-endian items (itself if it already is or order does not
    /// apply). Pair with [`super::NdArray::to_little_endian`] to convert the data.
    pub fn to_little_endian(&self) -> Self {
        if self.order != ByteOrder::Big {
            return self.clone();
        }
        let mut text = self.text.to_string();
        if text.starts_with('>') {
            text.replace_range(..1, "<");
        } else {
            text.insert(0, '<');
        }
        Self {
            text: text.into(),
            order: ByteOrder::Little,
            kind: self.kind,
            itemsize: self.itemsize,
        }
    }
}

/// A dtype string built from its parts on the stack (no allocation): what an encoder
/// writes for every array, so it must be cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeStr {
    buf: [u8; 24],
    len: u8,
}

impl TypeStr {
    /// `dtype.str` for the parts, as [`DType::from_parts`] describes.
    pub fn from_parts(order: ByteOrder, kind: u8, itemsize: usize) -> Option<Self> {
        let size_ok = match kind {
            b'b' => itemsize == 1,
            b'i' | b'u' => matches!(itemsize, 1 | 2 | 4 | 8),
            b'f' => matches!(itemsize, 2 | 4 | 8 | 12 | 16),
            b'c' => matches!(itemsize, 8 | 16 | 24 | 32),
            b'S' => true,
            b'U' => itemsize.is_multiple_of(4),
            _ => false,
        };
        if !size_ok {
            return None;
        }
        let single = matches!(kind, b'b' | b'S') || (itemsize == 1 && kind != b'U');
        let order_ch = match (single, order) {
            (true, _) | (_, ByteOrder::NotApplicable) => b'|',
            (false, ByteOrder::Little) => b'<',
            (false, ByteOrder::Big) => b'>',
        };
        let n = if kind == b'U' { itemsize / 4 } else { itemsize };
        let mut out = Self {
            buf: [0; 24],
            len: 2,
        };
        out.buf[0] = order_ch;
        out.buf[1] = kind;
        // The item size in decimal (at most 20 digits, so it fits).
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut rest = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let d = &digits[i..];
        out.buf[2..2 + d.len()].copy_from_slice(d);
        out.len += d.len() as u8;
        Some(out)
    }

    /// A dtype string that is already text (`<M8[ns]`), if it fits.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut out = Self {
            buf: [0; 24],
            len: u8::try_from(text.len()).ok()?,
        };
        out.buf
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(out)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numpy_dtype_strings() {
        for (s, kind, size, order) in [
            ("<f8", b'f', 8, ByteOrder::Little),
            (">i4", b'i', 4, ByteOrder::Big),
            ("|b1", b'b', 1, ByteOrder::NotApplicable),
            ("|u1", b'u', 1, ByteOrder::NotApplicable),
            ("<c16", b'c', 16, ByteOrder::Little),
            ("<U5", b'U', 20, ByteOrder::Little),
            ("|S3", b'S', 3, ByteOrder::NotApplicable),
            ("<M8[ns]", b'M', 8, ByteOrder::Little),
            ("<m8", b'm', 8, ByteOrder::Little),
            ("<f2", b'f', 2, ByteOrder::Little),
        ] {
            let d = DType::parse(s).unwrap();
            assert_eq!(
                (d.kind(), d.itemsize(), d.byte_order()),
                (kind, size, order)
            );
            assert_eq!(d.as_str(), s);
        }
    }

    #[test]
    fn refuses_object_structured_and_malformed_dtypes() {
        for s in [
            "|O",
            "|O8",
            "|V8",
            "",
            "<",
            "<f",
            "<f3",
            "<x8",
            "<f8x",
            "<M8[n",
            "<i99999999999999999999",
            "<U99999999999999999999",
        ] {
            assert!(DType::parse(s).is_err(), "{s:?}");
        }
        let e = DType::parse("|O").unwrap_err();
        assert!(e.0.contains("never unpickled"), "{e}");
    }

    #[test]
    fn builds_dtype_strings_from_parts() {
        let d = |o, k, n| DType::from_parts(o, k, n).map(|d| d.as_str().to_string());
        assert_eq!(d(ByteOrder::Little, b'f', 8).as_deref(), Some("<f8"));
        assert_eq!(d(ByteOrder::Little, b'b', 1).as_deref(), Some("|b1"));
        assert_eq!(d(ByteOrder::Little, b'i', 1).as_deref(), Some("|i1"));
        assert_eq!(d(ByteOrder::Big, b'U', 12).as_deref(), Some(">U3"));
        assert_eq!(d(ByteOrder::Little, b'S', 4).as_deref(), Some("|S4"));
        assert_eq!(d(ByteOrder::Little, b'M', 8), None);
        assert_eq!(d(ByteOrder::Little, b'O', 8), None);
    }

    #[test]
    fn little_endian_twin() {
        assert_eq!(
            DType::parse(">f8").unwrap().to_little_endian().as_str(),
            "<f8"
        );
        assert_eq!(
            DType::parse("|b1").unwrap().to_little_endian().as_str(),
            "|b1"
        );
        assert!(DType::parse(">c16").unwrap().is_big_endian());
        assert!(!DType::parse(">S4").unwrap().is_big_endian());
    }
}
