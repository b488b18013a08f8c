//! Parquet files read by byte range: the footer once at open (so the row count is known
//! without reading data), then, per row group, only the column chunks of the columns a read
//! needs, fetched in as few ranges as adjacency allows and decoded with arrow-rs. The same
//! code serves a file in the HF cache (`pread`) and a file on the Hub (HTTP `Range`).
//!
//! Layer: inside [`super`] (the hub backend); [`super::dataset`] strings files together.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::{Buf, Bytes};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};

use super::http::Http;
use crate::backend::{Error, ErrorKind, Result};

/// Bytes read from the end of a file at open: the footer of most files fits.
const TAIL: usize = 64 << 10;
/// Ranges closer than this are fetched as one.
const COALESCE: u64 = 256 << 10;
/// The largest footer accepted (a corrupt length must not make us allocate without bound).
const MAX_FOOTER: usize = 256 << 20;

/// Where a file's bytes come from.
#[derive(Debug)]
pub enum Origin {
    /// A file on disk (the HF cache).
    Local(File),
    /// A URL on the Hub, read by range.
    Remote {
        /// The `resolve` URL, pinned to a commit.
        url: String,
        /// The agent.
        http: Http,
    },
}

/// One Parquet file of a dataset.
#[derive(Debug)]
pub struct ParquetFile {
    /// Its path in the repository (for messages).
    pub name: String,
    origin: Origin,
    size: u64,
    meta: ArrowReaderMetadata,
    /// First row of each row group, and the file's row count at the end.
    starts: Vec<u64>,
}

fn corrupt(name: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("{name}: not a readable Parquet file: {e}"),
    )
}

impl ParquetFile {
    /// Opens a file on disk.
    pub fn local(name: String, path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
        let size = file
            .metadata()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("{name}: {e}")))?
            .len();
        let origin = Origin::Local(file);
        let tail_start = size.saturating_sub(TAIL as u64);
        let tail = read(&origin, &name, tail_start, (size - tail_start) as usize)?;
        Self::with_tail(name, origin, size, tail)
    }

    /// Opens a file on the Hub (one request for its tail, another if the footer is larger).
    pub fn remote(name: String, url: String, http: Http) -> Result<Self> {
        let (tail, size) = http.tail(&url, &name, TAIL)?;
        Self::with_tail(name, Origin::Remote { url, http }, size, tail)
    }

    fn with_tail(name: String, origin: Origin, size: u64, tail: Bytes) -> Result<Self> {
        if tail.len() < 8 {
            return Err(corrupt(&name, "shorter than a Parquet footer"));
        }
        let mut last8 = [0u8; 8];
        last8.copy_from_slice(&tail[tail.len() - 8..]);
        let footer = FooterTail::try_new(&last8).map_err(|e| corrupt(&name, e))?;
        let meta_len = footer.metadata_length();
        if meta_len > MAX_FOOTER || meta_len as u64 + 8 > size {
            return Err(corrupt(
                &name,
                format!("footer length {meta_len} is not plausible"),
            ));
        }
        let meta_bytes = if meta_len + 8 <= tail.len() {
            tail.slice(tail.len() - 8 - meta_len..tail.len() - 8)
        } else {
            read(&origin, &name, size - 8 - meta_len as u64, meta_len)?
        };
        let metadata =
            ParquetMetaDataReader::decode_metadata(&meta_bytes).map_err(|e| corrupt(&name, e))?;
        let meta = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
            .map_err(|e| corrupt(&name, e))?;
        let mut starts = vec![0u64];
        for rg in meta.metadata().row_groups() {
            let n = u64::try_from(rg.num_rows()).map_err(|e| corrupt(&name, e))?;
            starts.push(starts[starts.len() - 1] + n);
        }
        Ok(Self {
            name,
            origin,
            size,
            meta,
            starts,
        })
    }

    /// Rows in the file.
    pub fn rows(&self) -> u64 {
        self.starts[self.starts.len() - 1]
    }

    /// Top-level column names, in schema order.
    pub fn columns(&self) -> Vec<String> {
        self.meta
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The row group holding row `row` of this file, and the row's offset in it.
    pub fn locate(&self, row: u64) -> (usize, usize) {
        let rg = self.starts.partition_point(|&s| s <= row) - 1;
        (rg, (row - self.starts[rg]) as usize)
    }

    /// Decodes the columns `names` (those the file has) of row group `rg`.
    pub fn read_row_group(&self, rg: usize, names: &[String]) -> Result<RecordBatch> {
        let schema = self.meta.parquet_schema();
        let fields = self.meta.schema().fields();
        let roots: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| names.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        let group = self.meta.metadata().row_group(rg);
        let mut ranges: Vec<(u64, u64)> = (0..group.num_columns())
            .filter(|&leaf| roots.contains(&schema.get_column_root_idx(leaf)))
            .map(|leaf| {
                let (start, len) = group.column(leaf).byte_range();
                (start, start + len)
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 + COALESCE => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let mut chunks = Vec::with_capacity(merged.len());
        for (s, e) in merged {
            if e > self.size {
                return Err(corrupt(
                    &self.name,
                    "a column chunk lies past the end of the file",
                ));
            }
            chunks.push((s, read(&self.origin, &self.name, s, (e - s) as usize)?));
        }
        let rows = (self.starts[rg + 1] - self.starts[rg]).max(1) as usize;
        let reader = Sparse {
            size: self.size,
            chunks,
        };
        let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(reader, self.meta.clone())
            .with_projection(ProjectionMask::roots(schema, roots))
            .with_row_groups(vec![rg])
            .with_batch_size(rows)
            .build()
            .map_err(|e| corrupt(&self.name, e))?;
        let mut out = None;
        for batch in batches {
            let batch = batch.map_err(|e| corrupt(&self.name, e))?;
            if out.is_some() {
                return Err(corrupt(
                    &self.name,
                    "a row group decoded into several batches",
                ));
            }
            out = Some(batch);
        }
        out.ok_or_else(|| corrupt(&self.name, format!("row group {rg} decoded to nothing")))
    }
}

fn read(origin: &Origin, name: &str, start: u64, len: usize) -> Result<Bytes> {
    match origin {
        Origin::Local(file) => {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, start)
                .map_err(|e| Error::new(ErrorKind::Unexpected, format!("reading {name}: {e}")))?;
            Ok(Bytes::from(buf))
        }
        Origin::Remote { url, http } => {
            let bytes = http.range(url, name, start, len)?;
            if bytes.len() != len {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("{name}: the Hub sent {} of {len} bytes", bytes.len()),
                ));
            }
            Ok(bytes)
        }
    }
}

/// The fetched ranges of one file, as arrow-rs reads a file.
struct Sparse {
    size: u64,
    chunks: Vec<(u64, Bytes)>,
}

impl Sparse {
    fn find(&self, start: u64, len: usize) -> parquet::errors::Result<Bytes> {
        for (s, b) in &self.chunks {
            if start >= *s && start + len as u64 <= s + b.len() as u64 {
                let at = (start - s) as usize;
                return Ok(b.slice(at..at + len));
            }
        }
        Err(parquet::errors::ParquetError::General(format!(
            "bytes {start}..{} were not fetched",
            start + len as u64
        )))
    }
}

impl Length for Sparse {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Sparse {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        for (s, b) in &self.chunks {
            if start >= *s && start < s + b.len() as u64 {
                return Ok(b.slice((start - s) as usize..).reader());
            }
        }
        Err(parquet::errors::ParquetError::General(format!(
            "offset {start} was not fetched"
        )))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.find(start, length)
    }
}
