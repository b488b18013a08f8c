//! One split of a hub dataset as frames: its Parquet files concatenated in sorted path
//! order (as `datasets` gives them) under a global index, each row mapped to an `Atoms` row
//! by the column mapping, decoding only the columns the requested keys come from. Decoded
//! row groups are kept in a small LRU bounded by bytes, so reading a row group's rows one by
//! one, or again in a later epoch, decodes it once.
//!
//! Layer: inside [`super`] (the hub backend), the [`FrameSource`] its backend serves.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::RecordBatch;
use asebytes_protocol::Key;
use asebytes_protocol::codec::Value;

use super::mapping::{Mapping, Output};
use super::parquet::ParquetFile;
use super::values::cell;
use crate::backend::frames::{Frame, FrameSource, FrameView};
use crate::backend::{Error, ErrorKind, Result};

/// Decoded row groups kept, in bytes of arrow memory (at least one is always kept).
const CACHE_BYTES: usize = 256 << 20;

/// A decoded row group: (file, row group, columns) → batch.
type Entry = ((usize, usize, Arc<Vec<String>>), Arc<RecordBatch>, usize);

/// The files of one split and how their rows become frames.
#[derive(Debug)]
pub struct Dataset {
    files: Vec<ParquetFile>,
    /// First global row of each file, and the total at the end.
    starts: Vec<u64>,
    plan: Vec<Output>,
    species_are_strings: bool,
    dimension_types: bool,
    cache: Mutex<VecDeque<Entry>>,
}

impl Dataset {
    /// A dataset over `files` (in row order) with `mapping`; a mapped column the data
    /// lacks is an error naming the columns it has.
    pub fn new(files: Vec<ParquetFile>, mapping: &Mapping) -> Result<Self> {
        let columns = files.first().map(ParquetFile::columns).unwrap_or_default();
        let plan = mapping.plan(&columns)?;
        let mut starts = vec![0u64];
        for f in &files {
            starts.push(starts[starts.len() - 1] + f.rows());
        }
        Ok(Self {
            files,
            starts,
            plan,
            species_are_strings: mapping.species_are_strings,
            dimension_types: mapping.pbc_are_dimension_types,
            cache: Mutex::new(VecDeque::new()),
        })
    }

    /// Rows in the split.
    pub fn len(&self) -> u64 {
        self.starts[self.starts.len() - 1]
    }

    /// Whether the split has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The decoded columns `names` of row group `rg` of file `f`, from the cache or read.
    fn row_group(&self, f: usize, rg: usize, names: Arc<Vec<String>>) -> Result<Arc<RecordBatch>> {
        let key = (f, rg, names);
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = cache.iter().position(|(k, _, _)| *k == key) {
                let hit = cache.remove(at).expect("position is in range");
                let batch = hit.1.clone();
                cache.push_front(hit);
                return Ok(batch);
            }
        }
        let batch = Arc::new(self.files[f].read_row_group(rg, &key.2)?);
        let size = batch.get_array_memory_size();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.push_front((key, batch.clone(), size));
        let mut total: usize = cache.iter().map(|e| e.2).sum();
        while total > CACHE_BYTES && cache.len() > 1 {
            total -= cache.pop_back().map_or(0, |e| e.2);
        }
        Ok(batch)
    }

    /// Row `index` with the keys `keys` asks for (every key when `None`).
    pub fn frame(&self, index: u64, keys: Option<&[Key]>) -> Result<Frame> {
        if index >= self.len() {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {index} out of range [0, {})", self.len()),
            ));
        }
        let outputs: Vec<&Output> = match keys {
            None => self.plan.iter().collect(),
            Some(keys) => self
                .plan
                .iter()
                .filter(|o| keys.iter().any(|k| &k[..] == o.key.as_bytes()))
                .collect(),
        };
        let mut names: Vec<String> = outputs.iter().filter_map(|o| o.column.clone()).collect();
        names.sort();
        names.dedup();
        let f = self.starts.partition_point(|&s| s <= index) - 1;
        let file = &self.files[f];
        let (rg, row) = file.locate(index - self.starts[f]);
        let batch = if names.is_empty() {
            None
        } else {
            Some(self.row_group(f, rg, Arc::new(names))?)
        };
        let mut frame = Frame::with_capacity(outputs.len());
        for o in outputs {
            let raw = match (&o.column, &batch) {
                (Some(col), Some(b)) => match b.column_by_name(col) {
                    Some(array) => cell(array.as_ref(), row).map_err(|e| {
                        Error::new(
                            ErrorKind::Unsupported,
                            format!("{}: column '{col}': {e}", file.name),
                        )
                    })?,
                    None => Value::Nil,
                },
                _ => Value::Nil,
            };
            let value = o
                .value(raw, self.species_are_strings, self.dimension_types)
                .map_err(|e| {
                    Error::new(
                        e.kind,
                        format!(
                            "{} row {}: {}",
                            file.name,
                            index - self.starts[f],
                            e.message
                        ),
                    )
                })?;
            frame.push((o.key.clone(), value));
        }
        Ok(frame)
    }
}

impl FrameSource for Dataset {
    fn view(&self) -> Result<Box<dyn FrameView + '_>> {
        Ok(Box::new(View(self)))
    }
}

struct View<'a>(&'a Dataset);

impl FrameView for View<'_> {
    fn len(&self) -> u64 {
        self.0.len()
    }

    fn frame(&self, index: u64) -> Result<Frame> {
        self.0.frame(index, None)
    }

    fn frame_keys(&self, index: u64, keys: Option<&[Key]>) -> Result<Frame> {
        self.0.frame(index, keys)
    }
}
