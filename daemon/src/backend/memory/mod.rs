//! The `memory://` backend: the reference implementation every other backend is measured
//! against, and the oracle of the contract suite's property tests.
//!
//! Layer: below [`crate::store`], beside the other backends. It offers every capability
//! except persistence. Data lives in a process-global table keyed by `(path, group)`, so a
//! store closed and reopened inside one daemon keeps its rows for the daemon's lifetime,
//! and [`Backend::remove`] is the only way to drop them.
//!
//! Every committed state is an immutable [`Table`] behind an `Arc`: a snapshot is two
//! reference-count increments, and a write transaction works on a private copy that is
//! published in one pointer swap only if the transaction succeeds, so a failed
//! transaction leaves nothing behind and readers never see half of one.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Capabilities, Key, Row};

use super::row::dedup;
use super::{
    Backend, BackendEntry, BackendInfo, Error, ErrorKind, LocationKind, OpenOptions, Reader,
    Result, Snapshot, Writer,
};

/// URI scheme and backend name.
pub const SCHEME: &str = "memory";

/// The memory backend's line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "memory",
    patterns: &[],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::Name,
    options: &[],
    open: |opts| Ok(Box::new(MemoryBackend::open(opts)?)),
    list_groups: |path| Ok(list_groups(path)),
};

/// Rows of one committed state. A row is shared between states until a write replaces it.
type Rows = Arc<Vec<Option<Arc<Row>>>>;

/// One committed state of a store.
#[derive(Clone, Debug, Default)]
struct Table {
    rows: Rows,
    /// Every key ever written; only grows, like the LMDB reference's `__schema__`.
    schema: Arc<BTreeSet<Key>>,
}

/// The published state of one `(path, group)`, shared by every backend and reader on it.
#[derive(Debug, Default)]
struct Slot {
    current: RwLock<Table>,
    /// Serialises write transactions of every backend open on this slot (normally one
    /// actor; a second writable open must not lose the first one's commits).
    writer: Mutex<()>,
}

impl Slot {
    fn load(&self) -> Table {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, table: Table) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = table;
    }
}

/// `(path, group)` → slot. The mutex is only held to look up or create a slot.
type Registry = Mutex<HashMap<(String, String), Arc<Slot>>>;

static STORES: LazyLock<Registry> = LazyLock::new(Registry::default);

fn registry() -> std::sync::MutexGuard<'static, HashMap<(String, String), Arc<Slot>>> {
    STORES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Groups that exist under `path` in this process (sorted).
pub fn list_groups(path: &str) -> Vec<String> {
    let mut groups: Vec<String> = registry()
        .keys()
        .filter(|(p, _)| p == path)
        .map(|(_, g)| g.clone())
        .collect();
    groups.sort();
    groups
}

/// An open memory store.
#[derive(Debug)]
pub struct MemoryBackend {
    info: BackendInfo,
    id: (String, String),
    slot: Arc<Slot>,
    removed: bool,
}

impl MemoryBackend {
    /// Opens (creating if needed) the store `opts.path#opts.group`. A read-only open gets
    /// the same data with every write capability switched off.
    pub fn open(opts: &OpenOptions) -> Result<Self> {
        let id = (opts.path.clone(), opts.group.clone());
        let slot = registry().entry(id.clone()).or_default().clone();
        let mut caps = Capabilities::all();
        caps.persistent = false;
        // Rows are kept as given; nothing to pack.
        caps.packed_columns = false;
        if opts.readonly {
            caps = caps.read_only();
        }
        let info = BackendInfo {
            scheme: SCHEME,
            canonical: format!("{SCHEME}://{}#{}", opts.path, opts.group),
            caps,
        };
        Ok(Self {
            info,
            id,
            slot,
            removed: false,
        })
    }

    /// Refuses writes to a removed or read-only store; the store layer checks first, this
    /// keeps the backend honest when used on its own.
    fn check_writable(&self) -> Result<()> {
        if self.removed {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{} was removed", self.info.canonical),
            ));
        }
        if !self.info.caps.write {
            return Err(Error::new(ErrorKind::ReadOnly, "Backend is read-only"));
        }
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(MemoryReader {
            slot: self.slot.clone(),
        })
    }

    fn write(&mut self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        self.check_writable()?;
        // Holding the writer lock from load to publish means no other commit can slip in
        // between and be overwritten by this one.
        let _guard = self
            .slot
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut txn = MemoryWriter {
            table: self.slot.load(),
        };
        f(&mut txn)?;
        self.slot.publish(txn.table);
        Ok(())
    }

    fn remove(&mut self) -> Result<()> {
        self.check_writable()?;
        if !self.info.caps.write_can_remove {
            return Err(Error::unsupported(SCHEME, "remove"));
        }
        let mut stores = registry();
        // A later open of the same name must start empty even while old readers still hold
        // this slot, so the entry is dropped, not emptied.
        if stores
            .get(&self.id)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            stores.remove(&self.id);
        }
        self.removed = true;
        Ok(())
    }
}

/// Hands out snapshots of the latest published state.
#[derive(Debug)]
struct MemoryReader {
    slot: Arc<Slot>,
}

impl Reader for MemoryReader {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        Ok(Box::new(MemorySnapshot {
            table: self.slot.load(),
        }))
    }
}

/// One immutable committed state.
#[derive(Debug)]
struct MemorySnapshot {
    table: Table,
}

impl Snapshot for MemorySnapshot {
    fn len(&self) -> Result<u64> {
        Ok(self.table.rows.len() as u64)
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        get_row(&self.table, index, keys)
    }

    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut fields: Vec<FieldRef<'_>> = Vec::with_capacity(16);
        for &index in indices {
            let Some(row) = row_at(&self.table, index)? else {
                if f(None).is_break() {
                    break;
                }
                continue;
            };
            fields.clear();
            match keys {
                None => fields.extend(row.iter().map(field_ref)),
                Some(keys) => fields.extend(
                    keys.iter()
                        .filter_map(|k| row.iter().find(|(have, _)| have == k).map(field_ref)),
                ),
            }
            if f(Some(&fields)).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn schema(&self) -> Result<Vec<Key>> {
        Ok(self.table.schema.iter().cloned().collect())
    }
}

/// A write transaction: a private copy of the table, copied lazily on first mutation.
#[derive(Debug)]
struct MemoryWriter {
    table: Table,
}

impl MemoryWriter {
    fn rows_mut(&mut self) -> &mut Vec<Option<Arc<Row>>> {
        Arc::make_mut(&mut self.table.rows)
    }

    fn check_index(&self, index: u64, bound: u64) -> Result<usize> {
        if index >= bound {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {index} out of range [0, {})", self.table.rows.len()),
            ));
        }
        usize::try_from(index)
            .map_err(|_| Error::new(ErrorKind::IndexOutOfRange, "index overflows usize"))
    }

    fn len_u64(&self) -> u64 {
        self.table.rows.len() as u64
    }

    /// Adds the keys of `row` to the schema, copying the set only if something is new.
    fn note_keys<'a>(&mut self, keys: impl Iterator<Item = &'a Key>) {
        for k in keys {
            if !self.table.schema.contains(k) {
                Arc::make_mut(&mut self.table.schema).insert(k.clone());
            }
        }
    }

    /// Stores `row` as given, turning an empty or missing row into a placeholder.
    fn prepare(&mut self, row: Option<Row>) -> Option<Arc<Row>> {
        let row = dedup(row?);
        if row.is_empty() {
            return None;
        }
        self.note_keys(row.iter().map(|(k, _)| k));
        Some(Arc::new(row))
    }
}

impl Snapshot for MemoryWriter {
    fn len(&self) -> Result<u64> {
        Ok(self.len_u64())
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        get_row(&self.table, index, keys)
    }

    fn schema(&self) -> Result<Vec<Key>> {
        Ok(self.table.schema.iter().cloned().collect())
    }
}

impl Writer for MemoryWriter {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> Result<u64> {
        let prepared: Vec<_> = rows.into_iter().map(|r| self.prepare(r)).collect();
        if !prepared.is_empty() {
            self.rows_mut().extend(prepared);
        }
        Ok(self.len_u64())
    }

    fn insert(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        let at = self.check_index(index, self.len_u64() + 1)?;
        let row = self.prepare(row);
        self.rows_mut().insert(at, row);
        Ok(())
    }

    fn set(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        let at = self.check_index(index, self.len_u64())?;
        let row = self.prepare(row);
        self.rows_mut()[at] = row;
        Ok(())
    }

    fn update(&mut self, index: u64, data: Row) -> Result<()> {
        let at = self.check_index(index, self.len_u64())?;
        if data.is_empty() {
            return Ok(());
        }
        self.note_keys(data.iter().map(|(k, _)| k));
        let slot = &mut self.rows_mut()[at];
        let mut row = slot.as_deref().cloned().unwrap_or_default();
        for (k, v) in data {
            match row.iter_mut().find(|(existing, _)| *existing == k) {
                Some(field) => field.1 = v,
                None => row.push((k, v)),
            }
        }
        *slot = Some(Arc::new(row));
        Ok(())
    }

    fn delete_range(&mut self, start: u64, stop: u64) -> Result<()> {
        if start > stop || stop > self.len_u64() {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!("range {start}..{stop} out of range [0, {}]", self.len_u64()),
            ));
        }
        if start < stop {
            // Both bounds are <= len, which is a usize.
            self.rows_mut().drain(start as usize..stop as usize);
        }
        Ok(())
    }

    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> Result<()> {
        let len = self.len_u64();
        let targets: Vec<usize> = match indices {
            Some(ix) => ix
                .iter()
                .map(|&i| self.check_index(i, len))
                .collect::<Result<_>>()?,
            None => (0..self.table.rows.len()).collect(),
        };
        if keys.is_empty() {
            return Ok(());
        }
        let drop_from = |row: &Row| -> Option<Option<Arc<Row>>> {
            if !row.iter().any(|(k, _)| keys.contains(k)) {
                return None;
            }
            let kept: Row = row
                .iter()
                .filter(|(k, _)| !keys.contains(k))
                .cloned()
                .collect();
            Some(if kept.is_empty() {
                None
            } else {
                Some(Arc::new(kept))
            })
        };
        // Decide first, then copy the table only if some row actually changes.
        let changes: Vec<(usize, Option<Arc<Row>>)> = targets
            .into_iter()
            .filter_map(|i| {
                self.table.rows[i]
                    .as_deref()
                    .and_then(drop_from)
                    .map(|r| (i, r))
            })
            .collect();
        if !changes.is_empty() {
            let rows = self.rows_mut();
            for (i, row) in changes {
                rows[i] = row;
            }
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<()> {
        if !self.table.rows.is_empty() {
            self.table.rows = Rows::default();
        }
        Ok(())
    }
}

/// Reads one row of `table`; with `keys`, only the requested keys the row has, in the
/// requested order.
fn get_row(table: &Table, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
    let Some(row) = row_at(table, index)? else {
        return Ok(None);
    };
    Ok(Some(match keys {
        None => row.clone(),
        Some(keys) => keys
            .iter()
            .filter_map(|k| row.iter().find(|(have, _)| have == k).cloned())
            .collect(),
    }))
}

fn field_ref((k, v): &(Key, asebytes_protocol::Bytes)) -> FieldRef<'_> {
    (k, v)
}

/// The row at `index` (`None` for a placeholder).
fn row_at(table: &Table, index: u64) -> Result<Option<&Row>> {
    let row = usize::try_from(index)
        .ok()
        .and_then(|i| table.rows.get(i))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {index} out of range [0, {})", table.rows.len()),
            )
        })?;
    Ok(row.as_deref())
}

#[cfg(test)]
mod tests {
    use asebytes_protocol::value::{key, row};

    use super::*;

    fn open(path: &str) -> MemoryBackend {
        let opts = OpenOptions {
            path: path.into(),
            group: "default".into(),
            ..OpenOptions::default()
        };
        MemoryBackend::open(&opts).expect("open")
    }

    fn snapshot_rows(b: &MemoryBackend) -> Vec<Option<Row>> {
        let reader = b.reader();
        let snap = reader.snapshot().expect("snapshot");
        let n = snap.len().expect("len");
        (0..n).map(|i| snap.get(i, None).expect("get")).collect()
    }

    #[test]
    fn test_rows_keep_written_field_order() {
        let mut b = open("unit-field-order");
        b.write(&mut |w| {
            w.extend(vec![Some(row([("z", "1"), ("a", "2"), ("m", "3")]))])
                .map(drop)
        })
        .expect("write");
        assert_eq!(
            snapshot_rows(&b),
            vec![Some(row([("z", "1"), ("a", "2"), ("m", "3")]))]
        );
    }

    #[test]
    fn test_update_keeps_positions_and_appends_new_keys() {
        let mut b = open("unit-update-order");
        b.write(&mut |w| {
            w.extend(vec![Some(row([("b", "1"), ("a", "2")]))])?;
            w.update(0, row([("c", "3"), ("b", "9")]))
        })
        .expect("write");
        assert_eq!(
            snapshot_rows(&b),
            vec![Some(row([("b", "9"), ("a", "2"), ("c", "3")]))]
        );
    }

    #[test]
    fn test_failed_transaction_publishes_nothing() {
        let mut b = open("unit-abort");
        b.write(&mut |w| w.extend(vec![Some(row([("a", "1")]))]).map(drop))
            .expect("write");
        let err = b
            .write(&mut |w| {
                w.extend(vec![Some(row([("new", "x")]))])?;
                w.set(7, None)
            })
            .expect_err("set out of range must fail");
        assert_eq!(err.kind, ErrorKind::IndexOutOfRange);
        assert_eq!(snapshot_rows(&b), vec![Some(row([("a", "1")]))]);
        assert_eq!(
            b.reader()
                .snapshot()
                .expect("snapshot")
                .schema()
                .expect("schema"),
            vec![key("a")]
        );
    }

    #[test]
    fn test_snapshot_is_unaffected_by_later_commits() {
        let mut b = open("unit-snapshot");
        b.write(&mut |w| w.extend(vec![Some(row([("a", "1")]))]).map(drop))
            .expect("write");
        let reader = b.reader();
        let snap = reader.snapshot().expect("snapshot");
        b.write(&mut |w| {
            w.set(0, Some(row([("a", "2")])))?;
            w.extend(vec![None]).map(drop)
        })
        .expect("write");
        assert_eq!(snap.len().expect("len"), 1);
        assert_eq!(snap.get(0, None).expect("get"), Some(row([("a", "1")])));
    }

    #[test]
    fn test_schema_only_grows() {
        let mut b = open("unit-schema");
        b.write(&mut |w| {
            w.extend(vec![Some(row([("b", "1"), ("a", "2")]))])?;
            w.drop_keys(&[key("a")], None)?;
            w.clear()
        })
        .expect("write");
        let snap_schema = b
            .reader()
            .snapshot()
            .expect("snapshot")
            .schema()
            .expect("schema");
        assert_eq!(snap_schema, vec![key("a"), key("b")]);
    }

    #[test]
    fn test_drop_keys_emptying_a_row_makes_a_placeholder() {
        let mut b = open("unit-drop");
        b.write(&mut |w| {
            w.extend(vec![
                Some(row([("a", "1")])),
                Some(row([("a", "1"), ("b", "2")])),
            ])?;
            w.drop_keys(&[key("a")], None)
        })
        .expect("write");
        assert_eq!(snapshot_rows(&b), vec![None, Some(row([("b", "2")]))]);
    }

    #[test]
    fn test_reopen_shares_data_and_remove_drops_it() {
        let mut first = open("unit-reopen");
        first
            .write(&mut |w| w.extend(vec![None, None]).map(drop))
            .expect("write");
        let mut second = open("unit-reopen");
        assert_eq!(snapshot_rows(&second).len(), 2);
        assert_eq!(list_groups("unit-reopen"), vec!["default".to_string()]);
        second.remove().expect("remove");
        assert!(list_groups("unit-reopen").is_empty());
        assert!(second.write(&mut |_| Ok(())).is_err());
        assert!(snapshot_rows(&open("unit-reopen")).is_empty());
    }

    #[test]
    fn test_readonly_open_has_no_write_caps() {
        let opts = OpenOptions {
            path: "unit-ro".into(),
            group: "g".into(),
            readonly: true,
            options: Default::default(),
        };
        let b = MemoryBackend::open(&opts).expect("open");
        assert!(!b.info().caps.write);
        assert!(b.info().caps.read && b.info().caps.concurrent_readers);
        assert!(!b.info().caps.persistent);
        assert_eq!(b.info().canonical, "memory://unit-ro#g");
    }
}
