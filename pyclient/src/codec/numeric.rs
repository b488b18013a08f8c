//! Numbers and numeric arrays read from stored bytes without touching Python: what
//! `to_numpy()` copies straight from a column reply into one packed array.
//!
//! Part of the Python client's [`crate::codec`]; the layout is read with the protocol
//! crate's [`layout::read_canonical`].

use asebytes_protocol::codec::layout::{self, Dims};
use asebytes_protocol::codec::{Int, Reader};
use rmp::Marker;

/// `dtype.str` of the dtype numpy gives a Python `float`, `int`, `bool`.
pub const NATIVE_F8: &[u8] = if cfg!(target_endian = "little") {
    b"<f8"
} else {
    b">f8"
};
const NATIVE_I8: &[u8] = if cfg!(target_endian = "little") {
    b"<i8"
} else {
    b">i8"
};
/// `dtype.str` of numpy's bool.
pub const BOOL: &[u8] = b"|b1";

/// A stored number or numeric array, read without touching Python.
#[derive(Debug)]
pub struct Numeric<'a> {
    /// numpy's `dtype.str` of the items (a Python scalar gets the dtype numpy gives it).
    pub type_str: &'a [u8],
    /// The value's shape; empty for a scalar.
    pub shape: Dims,
    /// The items, C-ordered, as stored (their length is checked by whoever copies them).
    pub items: Items<'a>,
}

/// Where a [`Numeric`]'s bytes are.
#[derive(Debug)]
pub enum Items<'a> {
    /// Borrowed from the stored value (an array's or numpy scalar's `data`).
    Stored(&'a [u8]),
    /// A Python scalar in native byte order (a bool uses the first byte).
    Word([u8; 8]),
}

impl Items<'_> {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Items::Stored(b) => b,
            Items::Word(w) => w,
        }
    }
}

impl Numeric<'static> {
    fn word(type_str: &'static [u8], word: [u8; 8]) -> Self {
        Self {
            type_str,
            shape: Dims::default(),
            items: Items::Word(word),
        }
    }
}

/// The stored value `data` as a [`Numeric`] if it is a Python float, int (within `i64`) or
/// bool, or a msgpack-numpy array or numpy scalar in the canonical layout (not of object or
/// structured kind; the dtype itself is vetted by whoever builds the array); `None` for
/// anything else, which the caller then decodes through Python.
pub fn numeric(data: &[u8]) -> Option<Numeric<'_>> {
    let mut r = Reader::new(data);
    let m = r.marker().ok()?;
    let value = match m {
        Marker::True | Marker::False => {
            Numeric::word(BOOL, [u8::from(m == Marker::True), 0, 0, 0, 0, 0, 0, 0])
        }
        Marker::F64 => Numeric::word(NATIVE_F8, f64::from_be_bytes(r.be().ok()?).to_ne_bytes()),
        Marker::F32 => {
            let v = f64::from(f32::from_be_bytes(r.be().ok()?));
            Numeric::word(NATIVE_F8, v.to_ne_bytes())
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = r.len_after(m).ok()?;
            let c = layout::read_canonical(&mut r, n)?;
            layout::refuse_kind(c.kind).ok()?;
            Numeric {
                type_str: c.type_str,
                shape: c.shape.unwrap_or_default(),
                items: Items::Stored(c.data),
            }
        }
        _ => {
            let v = match r.int_after(m).ok()?? {
                Int::I(v) => v,
                Int::U(v) => i64::try_from(v).ok()?,
            };
            Numeric::word(NATIVE_I8, v.to_ne_bytes())
        }
    };
    (r.remaining() == 0).then_some(value)
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

    /// `msgpack_numpy.encode`'s map for an array (`shape` given) or a numpy scalar.
    fn np_map(type_str: &str, shape: Option<&[u32]>, data: &[u8]) -> Vec<u8> {
        mp(|o| {
            enc::write_map_len(o, if shape.is_some() { 5 } else { 3 }).unwrap();
            enc::write_bin(o, b"nd").unwrap();
            enc::write_bool(o, shape.is_some()).unwrap();
            enc::write_bin(o, b"type").unwrap();
            enc::write_str(o, type_str).unwrap();
            if let Some(shape) = shape {
                enc::write_bin(o, b"kind").unwrap();
                enc::write_bin(o, if type_str == "|O" { b"O" } else { b"" }).unwrap();
                enc::write_bin(o, b"shape").unwrap();
                enc::write_array_len(o, shape.len() as u32).unwrap();
                for &d in shape {
                    enc::write_uint(o, d.into()).unwrap();
                }
            }
            enc::write_bin(o, b"data").unwrap();
            enc::write_bin(o, data).unwrap();
        })
    }

    #[test]
    fn numeric_reads_numbers_and_canonical_arrays_without_python() {
        let arr = np_map("<f4", Some(&[2, 3]), &[0u8; 24]);
        let n = numeric(&arr).unwrap();
        assert_eq!((n.type_str, n.shape.as_slice()), (&b"<f4"[..], &[2, 3][..]));
        assert_eq!(n.items.bytes().len(), 24);
        let scalar = np_map("<i2", None, &7i16.to_le_bytes());
        let n = numeric(&scalar).unwrap();
        assert_eq!((n.type_str, n.shape.as_slice()), (&b"<i2"[..], &[][..]));
        assert_eq!(n.items.bytes(), &[7, 0]);

        let float = mp(|o| enc::write_f64(o, 1.5).unwrap());
        let n = numeric(&float).unwrap();
        assert_eq!(
            (n.type_str, n.items.bytes()),
            (NATIVE_F8, &1.5f64.to_ne_bytes()[..])
        );
        let int = mp(|o| {
            enc::write_sint(o, -3).unwrap();
        });
        assert_eq!(numeric(&int).unwrap().items.bytes(), &(-3i64).to_ne_bytes());
        let yes = mp(|o| enc::write_bool(o, true).unwrap());
        let n = numeric(&yes).unwrap();
        assert_eq!((n.type_str, n.items.bytes()[0]), (BOOL, 1));
    }

    #[test]
    fn numeric_leaves_everything_else_to_python() {
        let huge = mp(|o| {
            enc::write_uint(o, u64::MAX).unwrap();
        });
        let text = mp(|o| enc::write_str(o, "x").unwrap());
        let nil = mp(|o| enc::write_nil(o).unwrap());
        let list = mp(|o| {
            enc::write_array_len(o, 1).unwrap();
            enc::write_f64(o, 1.0).unwrap();
        });
        let pickled = np_map("|O", Some(&[1]), &[0u8; 8]);
        let mut trailing = mp(|o| enc::write_f64(o, 1.0).unwrap());
        trailing.push(0xc0);
        for data in [&huge, &text, &nil, &list, &pickled, &trailing, &vec![]] {
            assert!(numeric(data).is_none(), "{data:?}");
        }
    }
}
