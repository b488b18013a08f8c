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
