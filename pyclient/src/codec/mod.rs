//! The msgpack-numpy field codec of the Python client: Python values ⇄ stored bytes,
//! byte-compatible with `msgpack.packb(v, default=msgpack_numpy.encode)` /
//! `msgpack.unpackb(b, object_hook=msgpack_numpy.decode)` (`asebytes-behaviour.md` §3.1).
//!
//! The format lives in the protocol crate ([`asebytes_protocol::codec`]: the reader,
//! dtype strings, the array/scalar/complex layout, writers, golden tests); this module only
//! converts Python objects to and from it, straight between objects and bytes (no value
//! tree in between), which keeps a 9-atom frame at a couple of microseconds.
//!
//! - [`decode`](mod@decode): bytes → Python objects and rows.
//! - [`encode`](mod@encode): Python objects → bytes, with path-naming errors.
//! - [`row`]: rows and keys from Python.
//! - [`numeric`]: numbers and numeric arrays read without Python (`to_numpy()`).
//! - [`cache`]: per-process dtype and key caches.
//!
//! Differences from the reference, on purpose (`spec/CONTRACT.md`): nothing is ever
//! pickled or unpickled (object-dtype arrays are refused both ways), dict keys must be
//! `str`, and decoded arrays are writable copies the caller owns instead of read-only views.

pub mod cache;
pub mod decode;
pub mod encode;
pub mod numeric;
pub mod row;

pub use cache::{dtype_for, key_str};
pub use decode::{blob_row, decode, decode_field, decode_row};
pub use encode::{EncodeError, encode, encode_into};
pub use numeric::{Items, Numeric, numeric};
pub use row::{blob_field, blob_key, blob_row_in, encode_row, key_utf8, object_key};
