//! The `hdf5` backend: the columnar layout of the reference `asebytes` 0.3.3
//! (`asebytes-behaviour.md` §4.2) in an HDF5 file, through hdf5-metno linked against the
//! system's libhdf5. `*.h5` holds the ragged layout, `*.h5p` the padded one; each group of
//! the store is a top-level HDF5 group.
//!
//! Layer: below [`crate::store`], beside the other backends. [`file`] opens files and
//! handles attributes, [`dataset`] creates and reads/writes column datasets,
//! [`dtype`] maps element types to h5py's HDF5 types, [`config`] parses the options.

pub mod attrs;
pub mod config;
pub mod dataset;
pub mod dtype;
pub mod engine;
pub mod file;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod tests;

/// URI scheme of the ragged layout (`*.h5`).
pub const SCHEME: &str = "hdf5";
/// URI scheme of the padded layout (`*.h5p`).
pub const SCHEME_PADDED: &str = "hdf5p";
