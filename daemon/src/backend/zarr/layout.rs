//! What the Zarr engine writes where: one Zarr v3 group directory per asebytes group
//! (`<path>/<group>/zarr.json` holding the attributes), one array per column directly under
//! it (chunk keys `c/0/0`), codecs as asebytes 0.3.3 writes them (Blosc-LZ4 byte-shuffle
//! for numbers, `bytes`+zstd(0) for bool, `vlen-utf8`+zstd(0) for strings).
//!
//! Layer: the [`Engine`] the columnar core drives. Writes go to zarrs arrays on a
//! [`StagedStore`] (see [`super::writer`]); readers get a [`ZarrView`] of the last commit.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::{Map, Value as Json};
use zarrs::array::codec::api::BytesToBytesCodecTraits;
use zarrs::array::codec::{
    BloscCodec, BloscCompressionLevel, BloscShuffleMode, BytesCodec, VlenUtf8Codec, ZstdCodec,
};
use zarrs::array::{Array, ArrayBuilder, ArrayBytes, data_type};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::Bytes;

use super::config::{Compressor, ZarrConfig};
use super::reader::{self, ZarrView, subset};
use super::writer::{self, StagedStore};
use crate::backend::columnar::engine::{ArrayMeta, ArraySpec, DType, Engine, EngineRead, Slab};
use crate::backend::{Error, ErrorKind, Result};

/// A zarrs failure as a backend error. zarrs passes file errors on as text, so a full
/// disk is recognised by the OS's words for it.
pub fn zarr_err(what: &str, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    if says_disk_full(&text) {
        return Error::new(
            ErrorKind::DiskFull,
            format!("the disk is full (ENOSPC): zarr {what}: {text}; {DISK_FULL_HINT}"),
        );
    }
    Error::new(ErrorKind::Unexpected, format!("zarr {what}: {text}"))
}

/// What a user is told after a full disk stopped a write: the commit protocol left the
/// store as it was before the write.
const DISK_FULL_HINT: &str = "rows written before are intact. Free some space and retry";

fn says_disk_full(text: &str) -> bool {
    // ENOSPC and EDQUOT as std prints them.
    ["(os error 28)", "(os error 122)"]
        .iter()
        .any(|code| text.contains(code))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::ReadOnly,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            return Error::new(
                ErrorKind::DiskFull,
                format!(
                    "the disk holding {} is full (ENOSPC): {what} it: {e}; {DISK_FULL_HINT}",
                    path.display()
                ),
            );
        }
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, format!("{what} {}: {e}", path.display()))
}

/// The zarr `data_type` name of a dtype.
fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::I8 => "int8",
        DType::I16 => "int16",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::U8 => "uint8",
        DType::U16 => "uint16",
        DType::U32 => "uint32",
        DType::U64 => "uint64",
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::C64 => "complex64",
        DType::C128 => "complex128",
        _ => "string",
    }
}

fn dtype_of_name(name: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|d| dtype_name(*d) == name)
}

/// Type, shape and chunks of an open array, from its metadata document.
pub fn meta_of<S: ?Sized>(a: &Array<S>) -> Result<ArrayMeta> {
    let m = serde_json::to_value(a.metadata()).map_err(|e| zarr_err("metadata", e))?;
    let dt = m
        .get("data_type")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let dtype = dtype_of_name(dt).ok_or_else(|| {
        Error::corrupt(format!(
            "zarr data type {dt:?} is not one a columnar store holds"
        ))
    })?;
    let chunks = m
        .pointer("/chunk_grid/configuration/chunk_shape")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_u64).collect())
        .unwrap_or_else(|| a.shape().to_vec());
    Ok(ArrayMeta {
        dtype,
        shape: a.shape().to_vec(),
        chunks,
    })
}

/// Builds (without storing) the array for a spec with the configured codecs.
fn build<S: ?Sized>(
    cfg: &ZarrConfig,
    spec: &ArraySpec,
    store: Arc<S>,
    path: &str,
) -> Result<Array<S>> {
    let dt = match spec.dtype {
        DType::Bool => data_type::bool(),
        DType::I8 => data_type::int8(),
        DType::I16 => data_type::int16(),
        DType::I32 => data_type::int32(),
        DType::I64 => data_type::int64(),
        DType::U8 => data_type::uint8(),
        DType::U16 => data_type::uint16(),
        DType::U32 => data_type::uint32(),
        DType::U64 => data_type::uint64(),
        DType::F32 => data_type::float32(),
        DType::F64 => data_type::float64(),
        DType::C64 => data_type::complex64(),
        DType::C128 => data_type::complex128(),
        _ => data_type::string(),
    };
    let chunks: Vec<u64> = spec.chunks.iter().map(|c| (*c).max(1)).collect();
    let mut b = if spec.dtype == DType::Str {
        let mut b = ArrayBuilder::new(spec.shape.clone(), chunks, dt, "");
        b.array_to_bytes_codec(Arc::new(VlenUtf8Codec::new()));
        b
    } else {
        let mut b = ArrayBuilder::new(
            spec.shape.clone(),
            chunks,
            dt,
            zarrs::array::FillValue::new(spec.dtype.fill_bytes()),
        );
        let endian = (spec.dtype.itemsize() > 1).then_some(zarrs::array::Endianness::Little);
        b.array_to_bytes_codec(Arc::new(BytesCodec::new(endian)));
        b
    };
    let numeric = !matches!(spec.dtype, DType::Bool | DType::Str);
    let codecs: Vec<Arc<dyn BytesToBytesCodecTraits>> = match (&cfg.compressor, numeric) {
        (Compressor::None, _) => Vec::new(),
        (Compressor::Blosc(cname), true) => {
            let level =
                BloscCompressionLevel::try_from(cfg.clevel).map_err(|e| zarr_err("clevel", e))?;
            let shuffle = if cfg.shuffle {
                BloscShuffleMode::Shuffle
            } else {
                BloscShuffleMode::NoShuffle
            };
            vec![Arc::new(
                BloscCodec::new(*cname, level, None, shuffle, Some(spec.dtype.itemsize()))
                    .map_err(|e| zarr_err("blosc", e))?,
            )]
        }
        _ => vec![Arc::new(ZstdCodec::new(0, false))],
    };
    b.bytes_to_bytes_codecs(codecs);
    b.build(store, path)
        .map_err(|e| zarr_err("create array", e))
}

fn node(name: &str) -> String {
    format!("/{name}")
}

/// The group document `zarr.json` with these attributes.
pub fn group_doc(attrs: &Map<String, Json>) -> Result<Vec<u8>> {
    let mut m = Map::new();
    m.insert("attributes".into(), Json::Object(attrs.clone()));
    m.insert("zarr_format".into(), Json::from(3));
    m.insert("node_type".into(), Json::from("group"));
    serde_json::to_vec_pretty(&Json::Object(m)).map_err(|e| zarr_err("group metadata", e))
}

/// Reads a group directory's attributes (`None` if it has no `zarr.json`).
fn read_group(dir: &Path) -> Result<Option<Map<String, Json>>> {
    let path = dir.join("zarr.json");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("cannot read", &path, e)),
    };
    let doc: Json = serde_json::from_slice(&text)
        .map_err(|e| Error::corrupt(format!("{} is not JSON: {e}", path.display())))?;
    Ok(Some(
        doc.get("attributes")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default(),
    ))
}

/// The writer's handles: arrays touched or read in this transaction.
#[derive(Default)]
struct Working {
    arrays: HashMap<String, Arc<Array<StagedStore>>>,
    deleted: HashSet<String>,
}

/// One Zarr group as an [`Engine`].
pub struct ZarrEngine {
    dir: PathBuf,
    cfg: ZarrConfig,
    fs: Arc<FilesystemStore>,
    staged: Arc<StagedStore>,
    working: Mutex<Working>,
    view: RwLock<Arc<ZarrView>>,
}

impl std::fmt::Debug for ZarrEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrEngine")
            .field("dir", &self.dir)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl ZarrEngine {
    /// Opens the group directory `dir` (finishing or discarding an interrupted commit).
    pub fn open(dir: PathBuf, cfg: ZarrConfig, readonly: bool) -> Result<Self> {
        if dir.exists()
            && let Err(e) = writer::apply_journal(&dir)
            && !readonly
        {
            // Read-only opens finish an interrupted commit too when they may write here.
            return Err(io_err("cannot recover", &dir, e));
        }
        let fs = Arc::new(FilesystemStore::new(&dir).map_err(|e| zarr_err("open", e))?);
        let staged = Arc::new(StagedStore::new(dir.clone(), fs.clone(), cfg.fsync));
        let mut arrays = HashMap::new();
        let attrs = read_group(&dir)?;
        if attrs.is_some() {
            for entry in std::fs::read_dir(&dir).map_err(|e| io_err("cannot list", &dir, e))? {
                let entry = entry.map_err(|e| io_err("cannot list", &dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".") || !entry.path().join("zarr.json").is_file() {
                    continue;
                }
                let a = Array::open(fs.clone(), &node(&name))
                    .map_err(|e| zarr_err(&format!("open array {name}"), e))?;
                arrays.insert(name, Arc::new(a));
            }
        }
        Ok(Self {
            dir,
            cfg,
            fs,
            staged,
            working: Mutex::default(),
            view: RwLock::new(Arc::new(ZarrView { arrays, attrs })),
        })
    }

    fn current(&self) -> Arc<ZarrView> {
        self.view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn working(&self) -> std::sync::MutexGuard<'_, Working> {
        self.working.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer's handle of an array (from the committed metadata on first use).
    fn array(&self, name: &str) -> Result<Arc<Array<StagedStore>>> {
        let mut w = self.working();
        if let Some(a) = w.arrays.get(name) {
            return Ok(a.clone());
        }
        let view = self.current();
        let committed = view
            .arrays
            .get(name)
            .filter(|_| !w.deleted.contains(name))
            .ok_or_else(|| Error::corrupt(format!("zarr array {name} is missing")))?;
        let a = Arc::new(
            Array::new_with_metadata(
                self.staged.clone(),
                &node(name),
                committed.metadata().clone(),
            )
            .map_err(|e| zarr_err("open array", e))?,
        );
        w.arrays.insert(name.to_string(), a.clone());
        Ok(a)
    }
}

impl EngineRead for ZarrEngine {
    fn read_attrs(&self) -> Result<Option<Map<String, Json>>> {
        Ok(self.current().attrs.clone())
    }

    fn list_arrays(&self) -> Result<Vec<String>> {
        let view = self.current();
        let w = self.working();
        let mut names: HashSet<String> = view
            .arrays
            .keys()
            .filter(|n| !w.deleted.contains(*n))
            .cloned()
            .collect();
        names.extend(w.arrays.keys().cloned());
        Ok(names.into_iter().collect())
    }

    fn array_meta(&self, name: &str) -> Result<Option<ArrayMeta>> {
        let known = {
            let w = self.working();
            w.arrays.contains_key(name)
                || (!w.deleted.contains(name) && self.current().arrays.contains_key(name))
        };
        if !known {
            return Ok(None);
        }
        meta_of(&*self.array(name)?).map(Some)
    }

    fn read_slab(&self, name: &str, slab: Slab<'_>) -> Result<Vec<u8>> {
        reader::read_slab(&*self.array(name)?, slab)
    }

    fn read_strings(&self, name: &str, start: u64, count: u64) -> Result<Vec<String>> {
        reader::read_strings(&*self.array(name)?, start, count)
    }
}

impl Engine for ZarrEngine {
    fn name(&self) -> &'static str {
        "zarr"
    }

    fn committed(&self) -> Option<Arc<dyn EngineRead>> {
        Some(self.current())
    }

    fn create_array(&self, name: &str, spec: &ArraySpec) -> Result<()> {
        if self.array_meta(name)?.is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("zarr array {name} exists"),
            ));
        }
        let a = build(&self.cfg, spec, self.staged.clone(), &node(name))?;
        // A deleted array of the same name must not leave chunks behind.
        self.staged.stage_erase_prefix(&format!("{name}/"));
        a.store_metadata()
            .map_err(|e| zarr_err("store metadata", e))?;
        let mut w = self.working();
        w.deleted.insert(name.to_string());
        w.arrays.insert(name.to_string(), Arc::new(a));
        Ok(())
    }

    fn resize(&self, name: &str, shape: &[u64]) -> Result<()> {
        let cur = self.array(name)?;
        let mut a =
            Array::new_with_metadata(self.staged.clone(), &node(name), cur.metadata().clone())
                .map_err(|e| zarr_err("open array", e))?;
        a.set_shape(shape.to_vec())
            .map_err(|e| zarr_err("resize", e))?;
        a.store_metadata()
            .map_err(|e| zarr_err("store metadata", e))?;
        self.working().arrays.insert(name.to_string(), Arc::new(a));
        Ok(())
    }

    fn write_slab(&self, name: &str, slab: Slab<'_>, data: &[u8]) -> Result<()> {
        if slab.is_empty() {
            return Ok(());
        }
        let a = self.array(name)?;
        a.store_array_subset(&subset(slab)?, ArrayBytes::new_flen(data.to_vec()))
            .map_err(|e| zarr_err(&format!("write {name}"), e))
    }

    fn write_strings(&self, name: &str, start: u64, values: &[String]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let a = self.array(name)?;
        let sub = subset(Slab {
            start: &[start],
            count: &[values.len() as u64],
        })?;
        a.store_array_subset(&sub, values.to_vec())
            .map_err(|e| zarr_err(&format!("write {name}"), e))
    }

    fn delete_array(&self, name: &str) -> Result<()> {
        self.staged.stage_erase_prefix(&format!("{name}/"));
        let mut w = self.working();
        w.arrays.remove(name);
        w.deleted.insert(name.to_string());
        Ok(())
    }

    fn commit(&self, attrs: &Map<String, Json>) -> Result<()> {
        self.staged
            .stage("zarr.json", Bytes::from(group_doc(attrs)?));
        ensure_root_group(&self.dir)?;
        self.staged
            .commit()
            .map_err(|e| io_err("cannot commit to", &self.dir, e))?;
        let old = self.current();
        let mut w = self.working();
        let mut arrays: HashMap<String, Arc<Array<FilesystemStore>>> = old
            .arrays
            .iter()
            .filter(|(n, _)| !w.deleted.contains(*n))
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect();
        for (name, a) in w.arrays.drain() {
            let r = Array::new_with_metadata(self.fs.clone(), &node(&name), a.metadata().clone())
                .map_err(|e| zarr_err("reopen array", e))?;
            arrays.insert(name, Arc::new(r));
        }
        w.deleted.clear();
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ZarrView {
            arrays,
            attrs: Some(attrs.clone()),
        });
        Ok(())
    }

    fn rollback(&self) -> Result<()> {
        self.staged.rollback();
        *self.working() = Working::default();
        Ok(())
    }

    fn remove_group(&self) -> Result<()> {
        self.rollback()?;
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err("cannot remove", &self.dir, e));
            }
            _ => {}
        }
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ZarrView {
            arrays: HashMap::new(),
            attrs: None,
        });
        Ok(())
    }
}

/// Gives the container a root group document so zarr-python can open it as a group
/// (asebytes 0.3.3 writes none and ignores it). Written once, atomically.
fn ensure_root_group(group_dir: &Path) -> Result<()> {
    let Some(root) = group_dir.parent() else {
        return Ok(());
    };
    let doc = root.join("zarr.json");
    if doc.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(root).map_err(|e| io_err("cannot create", root, e))?;
    let tmp = root.join(".zarr.json.asebytes-tmp");
    std::fs::write(&tmp, group_doc(&Map::new())?).map_err(|e| io_err("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, &doc).map_err(|e| io_err("cannot write", &doc, e))
}
