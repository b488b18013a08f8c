//! Length-prefixed frames: a `u32` big-endian body length, then one MessagePack body.
//!
//! Bodies are [`Envelope`]s encoded as MessagePack maps (field names on the wire), so a
//! field added later with `#[serde(default)]` decodes on both sides.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Default cap on a frame body after the handshake (1 GiB): large enough for one atomic
/// `extend` of a big trajectory, small enough that a garbage length is refused.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 30;

/// Cap on a frame body before the handshake has completed: a stranger sending garbage
/// is refused after a few bytes, not after a gigabyte.
pub const HANDSHAKE_MAX_FRAME_LEN: usize = 64 * 1024;

/// The frame cap in force: `ASEBYTES_MAX_FRAME` (bytes) if set, else the default.
pub fn max_frame_len() -> usize {
    std::env::var("ASEBYTES_MAX_FRAME")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_FRAME_LEN)
}

/// One message with the id that pairs a response with its request (pipelining).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Request id chosen by the client; the response carries the same id.
    pub id: u64,
    /// The message.
    pub body: T,
}

/// Encodes `body` with request id `id` into a complete frame (prefix included).
pub fn encode<T: Serialize>(id: u64, body: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    encode_into(&mut out, id, body)?;
    Ok(out)
}

/// Appends a complete frame to `out`; lets a sender reuse one buffer.
pub fn encode_into<T: Serialize>(out: &mut Vec<u8>, id: u64, body: &T) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let env = Envelope { id, body };
    env.serialize(&mut rmp_serde::Serializer::new(&mut *out).with_struct_map())?;
    let len = out.len() - start - HEADER_LEN;
    let len32 = u32::try_from(len).map_err(|_| Error::FrameTooLarge {
        len,
        max: u32::MAX as usize,
    })?;
    out[start..start + HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Decodes a frame body (without its prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<Envelope<T>> {
    Ok(rmp_serde::from_slice(body)?)
}

/// Decodes a frame body that may borrow from `body`.
pub fn decode_borrowed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<Envelope<T>> {
    Ok(rmp_serde::from_slice(body)?)
}

/// Reads the body length from a prefix and checks it against `max`.
pub fn body_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(Error::FrameTooLarge { len, max });
    }
    Ok(len)
}
