//! Wire types of the asebytes daemon protocol, shared by the daemon and the client.
//!
//! Every message is one frame: a `u32` big-endian length followed by one MessagePack body
//! (an [`Envelope`] carrying a request id). The first frame on a connection is the frozen
//! [`Hello`] / [`HelloReply`] handshake; after it, requests and responses follow.
//!
//! # Layout
//! - [`version`]: protocol version constants.
//! - [`handshake`]: `Hello` / `Welcome`, frozen forever.
//! - [`frame`]: length-prefixed framing, size caps, encode/decode of envelopes.
//! - [`budget`]: a byte budget that bounds the receive buffers of many streams together.
//! - [`stream`]: a blocking Unix-socket frame stream with a bounded busy-poll before blocking.
//! - [`spin`]: who may busy-poll: a machine-wide count of spinning waiters.
//! - [`published`]: per-store commit generation and length in shared memory (`<socket>.gen`).
//! - [`request`] / [`response`]: one request and one response variant per operation.
//! - [`value`]: rows, keys and field values as they travel (opaque bytes).
//! - [`options`]: backend options by name, carried by `Open`.
//! - [`column`]: a packed column (one array for many rows).
//! - [`capability`]: what a backend can do, sent to clients on open.
//! - [`redact`]: secrets (passwords, tokens) out of locations shown to anyone.
//! - [`error`]: typed wire error codes and the codec error.
//! - [`codec`]: the msgpack-numpy value codec (stored field bytes ⇄ [`codec::Value`]).
#![deny(missing_docs)]

pub mod budget;
pub mod capability;
pub mod codec;
pub mod column;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod options;
pub mod published;
pub mod redact;
pub mod request;
pub mod response;
pub mod spin;
pub mod stream;
pub mod value;
pub mod version;

pub use capability::Capabilities;
pub use column::PackedColumn;
pub use error::{Error, ErrorCode, Result, WireError};
pub use frame::Envelope;
pub use handshake::{Hello, HelloReply, Welcome};
pub use options::{OptionMap, OptionValue};
pub use request::Request;
pub use response::Response;
pub use value::{Bytes, Key, Row};
