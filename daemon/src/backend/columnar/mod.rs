//! The columnar core shared by the Zarr and HDF5 backends: the asebytes columnar layout
//! (`spec/asebytes-behaviour.md` §4.2, without its bugs) kept in any array [`engine`].
//!
//! Layer: under a file backend (`backend/zarr/`, `backend/hdf5/`), above its engine. The
//! backend provides an [`engine::Engine`]; this core turns rows of msgpack-numpy values into
//! column arrays and back.

pub mod apply;
pub mod cache;
pub mod convert;
pub mod engine;
pub mod layout;
pub mod reader;
pub mod schema;
pub mod store;
pub mod writer;

pub use layout::Layout;
pub use store::ColumnarBackend;

use asebytes_protocol::Capabilities;

/// What every columnar store can do; `concurrent_readers` is the engine's to say.
///
/// A failed batch is undone (Zarr: staged files; HDF5: an undo log), so batches are
/// atomic while the daemon lives. Inserting or deleting in the middle would shift every
/// later frame of every column, a rewrite of the whole group per call, so both are
/// refused. Readers see whole commits, but a multi-row read may span two commits. Values
/// are decoded into typed columns (`typed_values`), so raw bytes must come as a bin.
pub fn capabilities(concurrent_readers: bool, readonly: bool) -> Capabilities {
    let caps = Capabilities {
        atomic_batches: true,
        packed_columns: true,
        write_can_insert: false,
        write_can_delete: false,
        concurrent_readers,
        snapshots: false,
        typed_values: true,
        ..Capabilities::all()
    };
    if readonly { caps.read_only() } else { caps }
}
