//! The columnar store as a [`Backend`]: one generic implementation over any [`Engine`],
//! which the Zarr and HDF5 backends wrap with their own factory.
//!
//! Part of the columnar core, the layer the store actor talks to. A write transaction
//! works on a copy of the committed [`State`] and the engine's staged writes; `commit`
//! makes both visible at once, then the new state is published to readers in one pointer
//! swap, with a fresh chunk cache (readers of the old state keep theirs).

use std::ops::ControlFlow;
use std::sync::{Arc, PoisonError, RwLock};

use asebytes_protocol::codec::{self, Value};
use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Bytes, Key, PackedColumn, Row};
use serde_bytes::ByteBuf;

use super::cache::ChunkCache;
use super::engine::{Engine, EngineRead};
use super::layout::{Layout, State};
use super::reader::{Packed, View};
use super::writer::{self, Tx};
use crate::backend::{Backend, BackendInfo, Error, ErrorKind, Reader, Result, Snapshot, Writer};

/// What readers see: one committed state, the engine view it describes, its cache.
struct Published {
    st: Arc<State>,
    view: Arc<dyn EngineRead>,
    cache: ChunkCache,
}

type Slot = Arc<RwLock<Arc<Published>>>;

/// A columnar store over engine `E`.
pub struct ColumnarBackend<E: Engine> {
    info: BackendInfo,
    engine: Arc<E>,
    state: State,
    slot: Slot,
    cache_bytes: usize,
    removed: bool,
}

impl<E: Engine> std::fmt::Debug for ColumnarBackend<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnarBackend")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<E: Engine + 'static> ColumnarBackend<E> {
    /// Loads the committed state of `engine`'s group.
    pub fn new(
        info: BackendInfo,
        engine: E,
        layout: Layout,
        chunk_frames: Option<u64>,
        cache_bytes: usize,
    ) -> Result<Self> {
        let engine = Arc::new(engine);
        let state = State::load(&*engine, layout, chunk_frames)?;
        let slot = Arc::new(RwLock::new(Arc::new(Published {
            st: Arc::new(state.clone()),
            view: reader_view(&engine),
            cache: ChunkCache::new(cache_bytes),
        })));
        Ok(Self {
            info,
            engine,
            state,
            slot,
            cache_bytes,
            removed: false,
        })
    }

    fn publish(&self) {
        let p = Arc::new(Published {
            st: Arc::new(self.state.clone()),
            view: reader_view(&self.engine),
            cache: ChunkCache::new(self.cache_bytes),
        });
        *self.slot.write().unwrap_or_else(PoisonError::into_inner) = p;
    }
}

/// The engine's committed view, or the engine itself when it cannot read concurrently
/// (then the store routes reads through the actor anyway).
fn reader_view<E: Engine + 'static>(engine: &Arc<E>) -> Arc<dyn EngineRead> {
    engine
        .committed()
        .unwrap_or_else(|| engine.clone() as Arc<dyn EngineRead>)
}

impl<E: Engine + 'static> Backend for ColumnarBackend<E> {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(ColumnarReader {
            slot: self.slot.clone(),
        })
    }

    fn write(&mut self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        if self.removed {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{} was removed", self.info.canonical),
            ));
        }
        let mut st = self.state.clone();
        let mut w = Wtx {
            tx: Tx {
                st: &mut st,
                eng: &*self.engine,
                failed: false,
            },
        };
        let result = f(&mut w);
        let failed = w.tx.failed;
        let outcome = match result {
            Ok(()) if failed => Err(Error::new(
                ErrorKind::Unexpected,
                "a write failed half-way; the transaction was rolled back",
            )),
            Ok(()) => self.engine.commit(&st.attrs()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                self.state = st;
                self.publish();
                Ok(())
            }
            Err(e) => {
                self.engine.rollback()?;
                Err(e)
            }
        }
    }

    fn remove(&mut self) -> Result<()> {
        self.engine.remove_group()?;
        self.removed = true;
        self.state = State::empty(self.state.layout, self.state.chunk_frames);
        self.publish();
        Ok(())
    }
}

/// Reads without the actor.
struct ColumnarReader {
    slot: Slot,
}

impl Reader for ColumnarReader {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        let p = self
            .slot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(Box::new(Snap(p)))
    }
}

/// One committed state.
struct Snap(Arc<Published>);

impl Snap {
    fn view(&self) -> View<'_> {
        View {
            st: &self.0.st,
            eng: &*self.0.view,
            cache: Some(&self.0.cache),
        }
    }
}

/// Encodes a read value for the wire.
fn encode(v: &Value) -> Result<ByteBuf> {
    codec::encode(v)
        .map(ByteBuf::from)
        .map_err(|e| Error::corrupt(format!("stored value cannot be encoded: {e}")))
}

fn key_strs(keys: Option<&[Key]>) -> Option<Vec<&str>> {
    keys.map(|ks| {
        ks.iter()
            .filter_map(|k| std::str::from_utf8(k).ok())
            .collect()
    })
}

/// The read half shared by snapshots and write transactions.
fn get(v: &View<'_>, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
    let ks = key_strs(keys);
    let Some(fields) = v.row(index, ks.as_deref())? else {
        return Ok(None);
    };
    fields
        .iter()
        .map(|(k, val)| Ok((ByteBuf::from(k.as_bytes().to_vec()), encode(val)?)))
        .collect::<Result<Row>>()
        .map(Some)
}

fn get_column(v: &View<'_>, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
    let Some(c) = std::str::from_utf8(key).ok().and_then(|k| v.st.column(k)) else {
        return Ok(vec![None; indices.len()]);
    };
    indices
        .iter()
        .map(|&i| {
            Ok(v.cell(c, i)?
                .map(|val| encode(&val))
                .transpose()?
                .map(ByteBuf::into_vec))
        })
        .collect()
}

fn schema(st: &State) -> Vec<Key> {
    st.known
        .iter()
        .map(|k| ByteBuf::from(k.as_bytes().to_vec()))
        .collect()
}

/// The packed form of a column (see [`View::packed`]); `None` for string columns and keys
/// that are not columns (the caller then reads per row).
fn packed(v: &View<'_>, key: &Key, indices: &[u64]) -> Result<Option<PackedColumn>> {
    let Ok(k) = std::str::from_utf8(key) else {
        return Ok(None);
    };
    Ok(v.packed(k, indices)?.map(wire_packed))
}

fn wire_packed(p: Packed) -> PackedColumn {
    PackedColumn {
        dtype: p.dtype,
        shape: p.shape,
        data: ByteBuf::from(p.data),
        present: p.present.map(ByteBuf::from),
        offsets: p.offsets,
    }
}

impl Snapshot for Snap {
    fn len(&self) -> Result<u64> {
        Ok(self.0.st.n_frames)
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        get(&self.view(), index, keys)
    }
    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        let view = self.view();
        for &i in indices {
            let row = get(&view, i, keys)?;
            let fields: Option<Vec<FieldRef<'_>>> = row
                .as_ref()
                .map(|r| r.iter().map(|(k, v)| (&k[..], &v[..])).collect());
            if f(fields.as_deref()).is_break() {
                break;
            }
        }
        Ok(())
    }
    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        get_column(&self.view(), key, indices)
    }
    fn get_column_packed(&self, key: &Key, indices: &[u64]) -> Result<Option<PackedColumn>> {
        packed(&self.view(), key, indices)
    }
    fn schema(&self) -> Result<Vec<Key>> {
        Ok(schema(&self.0.st))
    }
}

/// A write transaction.
struct Wtx<'a> {
    tx: Tx<'a>,
}

impl Wtx<'_> {
    fn view(&self) -> View<'_> {
        View {
            st: self.tx.st,
            eng: self.tx.eng,
            cache: None,
        }
    }
}

fn decode_rows(rows: Vec<Option<Row>>) -> Result<Vec<Option<writer::Fields>>> {
    rows.into_iter()
        .map(|r| r.map(|r| writer::decode_row(&r)).transpose())
        .collect()
}

impl Snapshot for Wtx<'_> {
    fn len(&self) -> Result<u64> {
        Ok(self.tx.st.n_frames)
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        get(&self.view(), index, keys)
    }
    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        get_column(&self.view(), key, indices)
    }
    fn get_column_packed(&self, key: &Key, indices: &[u64]) -> Result<Option<PackedColumn>> {
        packed(&self.view(), key, indices)
    }
    fn schema(&self) -> Result<Vec<Key>> {
        Ok(schema(self.tx.st))
    }
}

impl Writer for Wtx<'_> {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> Result<u64> {
        let rows = decode_rows(rows)?;
        self.tx.extend(rows)
    }
    fn insert(&mut self, _index: u64, _row: Option<Row>) -> Result<()> {
        Err(Error::unsupported(self.tx.eng.name(), "insert"))
    }
    fn set(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        let row = row.map(|r| writer::decode_row(&r)).transpose()?;
        self.tx.set(index, row.filter(|r| !r.is_empty()))
    }
    fn update(&mut self, index: u64, data: Row) -> Result<()> {
        let data = writer::decode_row(&data)?;
        self.tx.update(index, data)
    }
    fn update_column(&mut self, key: &Key, indices: &[u64], values: Vec<Bytes>) -> Result<()> {
        let k = std::str::from_utf8(key).map_err(|_| {
            Error::new(
                ErrorKind::TypeMismatch,
                "keys of a columnar store must be UTF-8",
            )
        })?;
        let values = values
            .iter()
            .map(|v| {
                codec::decode(v).map_err(|e| {
                    Error::new(
                        ErrorKind::TypeMismatch,
                        format!("key '{k}': value cannot be stored: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<Value>>>()?;
        self.tx.update_column(k, indices, values)
    }
    fn delete_range(&mut self, _start: u64, _stop: u64) -> Result<()> {
        Err(Error::unsupported(self.tx.eng.name(), "delete"))
    }
    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> Result<()> {
        let ks = key_strs(Some(keys)).unwrap_or_default();
        self.tx.drop_keys(&ks, indices)
    }
    fn clear(&mut self) -> Result<()> {
        self.tx.clear()
    }
}
