//! [`Value`] → stored bytes, byte-identical to `msgpack.packb(v, default=
//! msgpack_numpy.encode)` for the corresponding Python value.
//!
//! Part of [`crate::codec`]: ints in their shortest form (unsigned markers for
//! non-negative values), floats as float64, `str` as str, `bytes` as bin, dict keys as
//! str, arrays and numpy scalars as msgpack-numpy's bin-keyed maps, complex as the map of
//! its `repr`.

use rmp::encode as enc;

use super::MAX_DEPTH;
use super::layout::{self, TooLong};
use super::value::{Value, byte_len};

/// Why a [`Value`] cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string, bytes, list, map or array longer than MessagePack can describe.
    #[error("cannot encode value: {0}")]
    TooLong(#[from] TooLong),
    /// An array or scalar whose data does not match its dtype and shape.
    #[error("cannot encode value: {0}")]
    Inconsistent(String),
    /// Nested deeper than the decoder accepts.
    #[error("cannot encode value: nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Encodes `v` into a fresh buffer.
pub fn encode(v: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    encode_into(v, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `v` to `out` (on error, `out` may hold a partial value).
pub fn encode_into(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write(v, out, 0)
}

// Writing into a Vec cannot fail: rmp's writers only fail on I/O errors.
fn ok<T, E>(r: Result<T, E>) {
    debug_assert!(r.is_ok());
}

fn write(v: &Value, out: &mut Vec<u8>, depth: u32) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    match v {
        Value::Nil => ok(enc::write_nil(out)),
        Value::Bool(b) => ok(enc::write_bool(out, *b)),
        Value::Int(i) => layout::write_int(out, *i),
        Value::UInt(u) => ok(enc::write_uint(out, *u)),
        Value::Float(x) => ok(enc::write_f64(out, *x)),
        Value::Str(s) => layout::write_str(out, s.as_bytes())?,
        Value::Bin(b) => layout::write_bin(out, b)?,
        Value::List(items) => {
            ok(enc::write_array_len(out, layout::len32(items.len())?));
            for item in items {
                write(item, out, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            ok(enc::write_map_len(out, layout::len32(entries.len())?));
            for (k, item) in entries {
                layout::write_str(out, k.as_bytes())?;
                write(item, out, depth + 1)?;
            }
        }
        Value::Array(a) => {
            if byte_len(&a.shape, a.dtype.itemsize()) != Some(a.data.len()) {
                return Err(EncodeError::Inconsistent(format!(
                    "array of {} with shape {:?} has {} data bytes",
                    a.dtype,
                    a.shape,
                    a.data.len()
                )));
            }
            layout::write_array_head(out, a.dtype.as_str(), a.shape.iter().copied(), a.data.len())?;
            out.extend_from_slice(&a.data);
        }
        Value::Scalar(s) => {
            if s.data.len() != s.dtype.itemsize() || s.data.is_empty() {
                return Err(EncodeError::Inconsistent(format!(
                    "scalar of {} has {} data bytes",
                    s.dtype,
                    s.data.len()
                )));
            }
            layout::write_scalar(out, s.dtype.as_str(), &s.data)?;
        }
        Value::Complex(re, im) => layout::write_complex(out, *re, *im),
    }
    Ok(())
}
