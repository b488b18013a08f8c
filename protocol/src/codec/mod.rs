//! The msgpack-numpy value codec, pure Rust: stored field bytes ⇄ [`Value`], byte-compatible
//! with `msgpack.packb(v, default=msgpack_numpy.encode)` / `msgpack.unpackb(b,
//! object_hook=msgpack_numpy.decode)` (`asebytes-behaviour.md` §3.1), so LMDB files of the
//! reference library are read and written unchanged.
//!
//! Row stores (LMDB, memory) pass stored bytes through untouched; stores that must
//! understand values decode on write and encode on read with this codec. The Python
//! client decodes bytes straight into Python objects (no tree, for speed) with the same
//! [`Reader`], [`layout`] and [`DType`] pieces, so the format is known in one place.
//!
//! # Layout
//! - [`reader`]: the MessagePack pull parser and the [`Corrupt`] error.
//! - [`dtype`]: numpy dtype strings.
//! - [`layout`]: where arrays, numpy scalars and complex numbers sit in a map; writers.
//! - [`complex`]: `repr(complex)` written and parsed as CPython does.
//! - [`value`]: the value model ([`Value`], [`NdArray`], [`NdScalar`]).
//! - [`decode`](mod@decode) / [`encode`](mod@encode): the tree codec.
//!
//! Differences from the reference, on purpose (`spec/CONTRACT.md`): nothing is pickled or
//! unpickled (object and structured arrays are refused), and dict keys must be `str`.

pub mod complex;
pub mod decode;
pub mod dtype;
pub mod encode;
pub mod layout;
pub mod reader;
pub mod value;

pub use decode::{decode, decode_next};
pub use dtype::{ByteOrder, DType};
pub use encode::{EncodeError, encode, encode_into};
pub use reader::{Corrupt, Int, Reader};
pub use value::{Element, NdArray, NdScalar, Value};

/// Nesting deeper than this is refused both ways: it can only be hostile or a cycle, and
/// the codecs recurse.
pub const MAX_DEPTH: u32 = 512;
