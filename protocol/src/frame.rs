//! Length-prefixed frames: a `u32` big-endian body length, then one MessagePack body.
//!
//! Bodies are [`Envelope`]s encoded as MessagePack maps (field names on the wire), so a
//! field added later with `#[serde(default)]` decodes on both sides.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};
use crate::value::FieldRef;

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

/// Writes a `Row` or `Rows` response frame field by field, straight from borrowed bytes.
///
/// The bytes are exactly what [`encode_into`] writes for `Response::Row(..)` /
/// `Response::Rows(..)` (pinned by `tests/roundtrip.rs`), so readers cannot tell the two
/// apart; the daemon uses it to copy stored values from the backend into the frame once,
/// without building owned rows first.
#[derive(Debug)]
pub struct RowsFrame<'o> {
    out: &'o mut Vec<u8>,
    /// Where this frame's length prefix starts in `out`.
    start: usize,
    /// Rows announced.
    announced: usize,
    /// Rows written so far.
    written: usize,
}

impl<'o> RowsFrame<'o> {
    /// Starts `Envelope {id, body: Response::Rows([..])}` of `n` rows at the end of `out`;
    /// exactly `n` rows must follow.
    pub fn rows(out: &'o mut Vec<u8>, id: u64, n: usize) -> Self {
        let f = Self::begin(out, id, "Rows", n);
        write_array_len(f.out, n);
        f
    }

    /// Starts `Envelope {id, body: Response::Row(..)}`; exactly one row must follow.
    pub fn row(out: &'o mut Vec<u8>, id: u64) -> Self {
        Self::begin(out, id, "Row", 1)
    }

    fn begin(out: &'o mut Vec<u8>, id: u64, variant: &str, n: usize) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        // {"id": id, "body": {variant: ...}}: the envelope as a map, the response
        // externally tagged, as `encode_into` serializes them.
        out.push(0x82);
        write_str(out, "id");
        write_uint(out, id);
        write_str(out, "body");
        out.push(0x81);
        write_str(out, variant);
        Self {
            out,
            start,
            announced: n,
            written: 0,
        }
    }

    /// Appends a placeholder row (`None`).
    pub fn placeholder(&mut self) {
        self.written += 1;
        self.out.push(0xc0);
    }

    /// Appends a row of `len` fields, which `fields` yields in order.
    ///
    /// # Panics
    /// If `fields` yields a different number of fields than `len`.
    pub fn row_fields<'a>(&mut self, len: usize, fields: impl IntoIterator<Item = FieldRef<'a>>) {
        self.written += 1;
        write_array_len(self.out, len);
        let mut n = 0;
        for (k, v) in fields {
            self.out.push(0x92);
            write_bin(self.out, k);
            write_bin(self.out, v);
            n += 1;
        }
        assert_eq!(n, len, "row announced {len} fields but yielded {n}");
    }

    /// Appends one row: its fields, or `None` for a placeholder.
    pub fn push(&mut self, row: Option<&[FieldRef<'_>]>) {
        match row {
            None => self.placeholder(),
            Some(fields) => self.row_fields(fields.len(), fields.iter().copied()),
        }
    }

    /// Completes the frame (writes the length prefix). Fails, leaving `out` as it was
    /// before the frame, if the rows written are not the number announced or the body
    /// outgrew the `u32` prefix.
    pub fn finish(self) -> Result<()> {
        let len = self.out.len() - self.start - HEADER_LEN;
        if self.written != self.announced {
            self.out.truncate(self.start);
            let msg = format!(
                "a rows frame announced {} rows but got {}",
                self.announced, self.written
            );
            return Err(Error::Encode(rmp_serde::encode::Error::Syntax(msg)));
        }
        let Ok(len32) = u32::try_from(len) else {
            self.out.truncate(self.start);
            return Err(Error::FrameTooLarge {
                len,
                max: u32::MAX as usize,
            });
        };
        self.out[self.start..self.start + HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
        Ok(())
    }

    /// Drops the unfinished frame, leaving `out` as it was before it.
    pub fn abandon(self) {
        self.out.truncate(self.start);
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() < 32, "only short field and variant names");
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// The smallest MessagePack unsigned int, as `rmp::encode::write_uint` picks it.
fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 1 << 8 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 1 << 16 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v < 1 << 32 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn write_array_len(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n < 1 << 16 {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n < 1 << 8 {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else if n < 1 << 16 {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// Reads the body length from a prefix and checks it against `max`.
pub fn body_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(Error::FrameTooLarge { len, max });
    }
    Ok(len)
}
