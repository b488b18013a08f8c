//! Backend options as they travel in [`crate::request::Open`]: a map from option name to a
//! plain value. The daemon hands the map to the backend named by the location; each
//! backend takes the options it knows and refuses the rest, listing what it accepts.
//!
//! Since protocol [`crate::version::OPTIONS_AND_PACKED`].

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// One option value: the plain types a Python keyword argument can carry.
///
/// Written as the bare value. Read by a visitor of its own rather than serde's `untagged`,
/// which first buffers whatever value arrives: a peer sending nested arrays that each
/// announce 50 000 items made that buffer preallocate a megabyte per level (a 314-byte
/// request, found by `fuzz/`, took more than 16 MiB; a frame of a few KiB could take a
/// gigabyte). Anything but a bool, number or string is refused at its first byte.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OptionValue {
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

impl<'de> Deserialize<'de> for OptionValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PlainValue)
    }
}

/// Accepts the plain values an option can be, as `untagged` did: integers beyond `i64`
/// become floats, strings may arrive as UTF-8 bytes.
struct PlainValue;

impl<'de> Visitor<'de> for PlainValue {
    type Value = OptionValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a bool, an integer, a float or a string")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OptionValue, E> {
        Ok(OptionValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OptionValue, E> {
        Ok(OptionValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OptionValue, E> {
        Ok(i64::try_from(v).map_or(OptionValue::Float(v as f64), OptionValue::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OptionValue, E> {
        Ok(OptionValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OptionValue, E> {
        Ok(OptionValue::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<OptionValue, E> {
        Ok(OptionValue::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<OptionValue, E> {
        match std::str::from_utf8(v) {
            Ok(s) => Ok(OptionValue::Str(s.to_owned())),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
        }
    }
}

impl OptionValue {
    /// The Python type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            OptionValue::Bool(_) => "bool",
            OptionValue::Int(_) => "int",
            OptionValue::Float(_) => "float",
            OptionValue::Str(_) => "str",
        }
    }
}

impl std::fmt::Display for OptionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionValue::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            OptionValue::Int(i) => write!(f, "{i}"),
            OptionValue::Float(x) => write!(f, "{x}"),
            OptionValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Options by name, sorted (so equal option sets compare and print alike).
pub type OptionMap = BTreeMap<String, OptionValue>;

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: &OptionValue) -> OptionValue {
        rmp_serde::from_slice(&rmp_serde::to_vec_named(v).unwrap()).unwrap()
    }

    #[test]
    fn plain_values_round_trip_as_bare_values() {
        for v in [
            OptionValue::Bool(true),
            OptionValue::Int(-3),
            OptionValue::Int(i64::MAX),
            OptionValue::Float(0.25),
            OptionValue::Str("gzip".into()),
        ] {
            assert_eq!(roundtrip(&v), v);
        }
        assert_eq!(rmp_serde::to_vec_named(&OptionValue::Int(5)).unwrap(), [5]);
        let big: OptionValue =
            rmp_serde::from_slice(&rmp_serde::to_vec(&u64::MAX).unwrap()).unwrap();
        assert_eq!(big, OptionValue::Float(u64::MAX as f64));
    }

    #[test]
    fn containers_and_nil_are_refused() {
        for bytes in [&[0x90u8][..], &[0x80], &[0xc0], &[0xdc, 0xdc, 0xdc, 0xdc]] {
            assert!(
                rmp_serde::from_slice::<OptionValue>(bytes).is_err(),
                "{bytes:?}"
            );
        }
    }
}
