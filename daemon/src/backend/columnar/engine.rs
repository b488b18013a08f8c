//! The array engine: what a file format (Zarr via zarrs, HDF5 via hdf5-metno) must offer so
//! the shared columnar core (`schema`, `layout`, `reader`, `writer`) can keep the asebytes
//! columnar layout in it (`spec/asebytes-behaviour.md` §4.2).
//!
//! An engine is one *group* of one container (a Zarr group directory, an HDF5 group): a flat
//! set of named n-d arrays plus one JSON attribute map. The core never sees codecs, files or
//! handles; it speaks in array names, hyperslabs of raw little-endian C-order bytes, and the
//! attribute map whose atomic replacement is the store's **commit point**.
//!
//! # Stability
//! Other engines are written against this file: changes are additive only (new provided
//! methods, new `#[non_exhaustive]` enum variants).
//!
//! # Concurrency and crash contract
//! - `&self` everywhere: the store's writer actor calls the mutating methods, one at a time;
//!   reader threads read through [`Engine::committed`] at the same time where the engine can.
//! - Writes are staged and made visible by [`Engine::commit`], which is atomic: after a
//!   crash (even `kill -9` inside `commit`) the group is as at the previous commit or as at
//!   this one, never a mix, and never a torn chunk. How is the engine's business (Zarr:
//!   staged chunk files + a journal renamed into place; HDF5: documents what it can
//!   promise).
//! - The writer's own reads ([`EngineRead`] on the engine) see staged writes.
//! - Committed elements never move: resizes only add or cut at the end of an axis.

use serde_json::{Map, Value as Json};

use crate::backend::Result;

/// Element type of a stored array.
///
/// Numeric and bool arrays travel as raw little-endian bytes (bool as one byte, 0 or 1);
/// [`DType::Str`] arrays are variable-length UTF-8 and travel as `String`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// `|b1`: one byte, 0 or 1. Fill `false`.
    Bool,
    /// `|i1`. Fill 0.
    I8,
    /// `<i2`. Fill 0.
    I16,
    /// `<i4`. Fill 0.
    I32,
    /// `<i8`. Fill 0.
    I64,
    /// `|u1`. Fill 0.
    U8,
    /// `<u2`. Fill 0.
    U16,
    /// `<u4`. Fill 0.
    U32,
    /// `<u8`. Fill 0.
    U64,
    /// `<f4`. Fill NaN.
    F32,
    /// `<f8`. Fill NaN.
    F64,
    /// `<c8` (two `f4`). Fill NaN+NaNj.
    C64,
    /// `<c16` (two `f8`). Fill NaN+NaNj.
    C128,
    /// Variable-length UTF-8 string. Fill `""` (which the layout reads as "missing").
    Str,
}

impl DType {
    /// Every element type, numeric ones first, [`DType::Str`] last.
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F32,
        DType::F64,
        DType::C64,
        DType::C128,
        DType::Str,
    ];

    /// Bytes per element (0 for [`DType::Str`], which has no fixed size).
    pub fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 | DType::C64 => 8,
            DType::C128 => 16,
            DType::Str => 0,
        }
    }

    /// The numpy type string (`dtype.str`), e.g. `"<f8"`; `"|O"` stands for strings.
    pub fn numpy_str(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::C64 => "<c8",
            DType::C128 => "<c16",
            DType::Str => "|O",
        }
    }

    /// The type for a numpy type string (`"<f8"`, `"|b1"`, `"=i4"`, ...); `None` if not storable.
    pub fn from_numpy_str(s: &str) -> Option<DType> {
        let body = s.trim_start_matches(['<', '|', '=']);
        if s.starts_with('>') && !matches!(body, "b1" | "i1" | "u1") {
            return None;
        }
        let body = body.trim_start_matches('>');
        Some(match body {
            "b1" | "?" => DType::Bool,
            "i1" => DType::I8,
            "i2" => DType::I16,
            "i4" => DType::I32,
            "i8" => DType::I64,
            "u1" => DType::U8,
            "u2" => DType::U16,
            "u4" => DType::U32,
            "u8" => DType::U64,
            "f4" => DType::F32,
            "f8" => DType::F64,
            "c8" => DType::C64,
            "c16" => DType::C128,
            _ => return None,
        })
    }

    /// Whether missing elements are NaN (float and complex types).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::C64 | DType::C128)
    }

    /// One element of the fill value as little-endian bytes (§4.2: NaN, 0, `false`); empty
    /// for [`DType::Str`], whose fill is `""`.
    pub fn fill_bytes(self) -> Vec<u8> {
        match self {
            DType::F32 => f32::NAN.to_le_bytes().to_vec(),
            DType::F64 => f64::NAN.to_le_bytes().to_vec(),
            DType::C64 => [f32::NAN.to_le_bytes(), f32::NAN.to_le_bytes()].concat(),
            DType::C128 => [f64::NAN.to_le_bytes(), f64::NAN.to_le_bytes()].concat(),
            DType::Str => Vec::new(),
            other => vec![0; other.itemsize()],
        }
    }
}

/// What to create: the engine picks the codec from its own configuration and `dtype`
/// (e.g. Blosc-LZ4 for numbers, zstd for bool, vlen-utf8 for strings in Zarr; gzip in HDF5).
/// Every axis is resizable (HDF5: `maxshape` unlimited on every axis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArraySpec {
    /// Element type; the fill value is [`DType::fill_bytes`].
    pub dtype: DType,
    /// Initial shape (axis 0 may be 0).
    pub shape: Vec<u64>,
    /// Chunk shape, same rank as `shape`, every entry ≥ 1.
    pub chunks: Vec<u64>,
}

/// An existing array as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayMeta {
    /// Element type.
    pub dtype: DType,
    /// Current shape (may exceed the committed frame count after a crash; the core trusts
    /// the committed `n_frames`, not this).
    pub shape: Vec<u64>,
    /// Chunk shape.
    pub chunks: Vec<u64>,
}

/// A hyperslab: `start[d] .. start[d] + count[d]` on every axis (same rank as the array).
#[derive(Clone, Copy, Debug)]
pub struct Slab<'a> {
    /// First element on each axis.
    pub start: &'a [u64],
    /// Number of elements on each axis.
    pub count: &'a [u64],
}

impl Slab<'_> {
    /// Number of elements covered.
    pub fn len(&self) -> u64 {
        self.count.iter().product()
    }

    /// Whether the slab covers no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reading one group: names, metadata and data of its arrays plus its attribute map.
///
/// The engine itself implements it as the *writer's* view (it sees writes not yet
/// committed); [`Engine::committed`] hands out the *readers'* view of the last commit.
pub trait EngineRead: Send + Sync {
    /// The attribute map, or `None` if the group does not exist yet.
    fn read_attrs(&self) -> Result<Option<Map<String, Json>>>;

    /// Names of the arrays in the group (any order).
    fn list_arrays(&self) -> Result<Vec<String>>;

    /// Type, shape and chunking of an array, or `None` if it does not exist.
    fn array_meta(&self, name: &str) -> Result<Option<ArrayMeta>>;

    /// Reads a hyperslab of a numeric/bool array as raw little-endian C-order bytes.
    /// Elements never written read as the fill value.
    fn read_slab(&self, name: &str, slab: Slab<'_>) -> Result<Vec<u8>>;

    /// Reads `count` strings of a 1-d string array from `start` (fill reads as `""`).
    fn read_strings(&self, name: &str, start: u64, count: u64) -> Result<Vec<String>>;
}

/// One group of a columnar container, seen as named arrays plus an attribute map, written
/// in transactions: every mutation since the last [`Engine::commit`] is *staged*; `commit`
/// makes all of them visible at once (the commit point), [`Engine::rollback`] forgets them.
///
/// Array names are the flat column keys (`arrays.positions`, `calc.energy`, `_offsets`, ...),
/// which may contain dots but never `/`.
pub trait Engine: EngineRead {
    /// Short engine name for messages (`"zarr"`, `"hdf5"`).
    fn name(&self) -> &'static str;

    /// A view of the last commit that other threads may read while the writer stages the
    /// next transaction, or `None` if the engine cannot read concurrently (then reads go
    /// through the writer, e.g. HDF5). Call again after each commit for the new state.
    fn committed(&self) -> Option<std::sync::Arc<dyn EngineRead>>;

    /// Creates an array filled with the fill value. Fails with `AlreadyExists` if present.
    fn create_array(&self, name: &str, spec: &ArraySpec) -> Result<()>;

    /// Changes an array's shape (same rank). Elements inside both shapes keep their values;
    /// new elements read as the fill value.
    fn resize(&self, name: &str, shape: &[u64]) -> Result<()>;

    /// Writes a hyperslab of a numeric/bool array from raw little-endian C-order bytes
    /// (`slab.len() * itemsize` bytes). The slab lies inside the current shape.
    fn write_slab(&self, name: &str, slab: Slab<'_>, data: &[u8]) -> Result<()>;

    /// Writes `values` into a 1-d string array starting at `start` (inside its shape).
    fn write_strings(&self, name: &str, start: u64, values: &[String]) -> Result<()>;

    /// Deletes an array and its data. Not an error if it does not exist.
    fn delete_array(&self, name: &str) -> Result<()>;

    /// Makes every staged mutation plus the new attribute map visible atomically, creating
    /// the group if needed. Staged data is durable before the attribute map changes, so a
    /// crash at any point leaves the state of the previous commit or of this one.
    fn commit(&self, attrs: &Map<String, Json>) -> Result<()>;

    /// Forgets every staged mutation (the group is as at the last commit).
    fn rollback(&self) -> Result<()>;

    /// Deletes the whole group (its arrays and attributes) at once, outside any
    /// transaction. Not an error if absent.
    fn remove_group(&self) -> Result<()>;
}
