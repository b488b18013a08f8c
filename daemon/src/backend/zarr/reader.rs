//! Reading Zarr arrays: the readers' view of the last commit ([`ZarrView`]) and the slab
//! reads shared with the writer's view.
//!
//! Layer: under the columnar core, which reads through [`EngineRead`]. A view holds zarrs
//! array handles whose metadata is that of one commit, so a reader never follows the
//! writer's resizes before they are committed.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use zarrs::array::{Array, ArrayBytes, ArraySubset};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::ReadableStorageTraits;

use super::layout::{meta_of, zarr_err};
use crate::backend::Result;
use crate::backend::columnar::engine::{ArrayMeta, EngineRead, Slab};

/// The subset a slab covers.
pub fn subset(slab: Slab<'_>) -> Result<ArraySubset> {
    ArraySubset::new_with_start_shape(slab.start.to_vec(), slab.count.to_vec())
        .map_err(|e| zarr_err("bad slab", e))
}

/// Reads a numeric slab as raw little-endian bytes.
pub fn read_slab<S: ?Sized + ReadableStorageTraits + 'static>(
    a: &Array<S>,
    slab: Slab<'_>,
) -> Result<Vec<u8>> {
    if slab.is_empty() {
        return Ok(Vec::new());
    }
    let bytes: ArrayBytes<'static> = a
        .retrieve_array_subset(&subset(slab)?)
        .map_err(|e| zarr_err("read", e))?;
    let raw = bytes.into_fixed().map_err(|e| zarr_err("read", e))?;
    Ok(raw.into_owned())
}

/// Reads strings of a 1-d string array.
pub fn read_strings<S: ?Sized + ReadableStorageTraits + 'static>(
    a: &Array<S>,
    start: u64,
    count: u64,
) -> Result<Vec<String>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    a.retrieve_array_subset::<Vec<String>>(&subset(Slab {
        start: &[start],
        count: &[count],
    })?)
    .map_err(|e| zarr_err("read", e))
}

/// The readers' view of one commit.
pub struct ZarrView {
    /// Array handles by name, with the committed metadata.
    pub arrays: HashMap<String, Arc<Array<FilesystemStore>>>,
    /// The committed group attributes (`None`: no group yet).
    pub attrs: Option<Map<String, Json>>,
}

impl std::fmt::Debug for ZarrView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrView")
            .field("arrays", &self.arrays.len())
            .finish_non_exhaustive()
    }
}

impl ZarrView {
    fn array(&self, name: &str) -> Result<&Arc<Array<FilesystemStore>>> {
        self.arrays
            .get(name)
            .ok_or_else(|| crate::backend::Error::corrupt(format!("zarr array {name} is missing")))
    }
}

impl EngineRead for ZarrView {
    fn read_attrs(&self) -> Result<Option<Map<String, Json>>> {
        Ok(self.attrs.clone())
    }

    fn list_arrays(&self) -> Result<Vec<String>> {
        Ok(self.arrays.keys().cloned().collect())
    }

    fn array_meta(&self, name: &str) -> Result<Option<ArrayMeta>> {
        self.arrays.get(name).map(|a| meta_of(a)).transpose()
    }

    fn read_slab(&self, name: &str, slab: Slab<'_>) -> Result<Vec<u8>> {
        read_slab(self.array(name)?, slab)
    }

    fn read_strings(&self, name: &str, start: u64, count: u64) -> Result<Vec<String>> {
        read_strings(self.array(name)?, start, count)
    }
}
