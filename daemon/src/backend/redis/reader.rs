//! Reads of a Redis store: the length, rows, one field of rows, field names. Each read of
//! up to [`CHUNK`] rows comes from one instant even while other daemons write; successive
//! chunks may not (`snapshots` is off for Redis).
//!
//! A few rows (up to [`SCRIPT_MAX_ROWS`]) are one server call: guessed rows
//! ([`native::read_guessed`]) or the [`scripts::READ`] script. More rows are two calls of
//! native commands ([`native::read_by_exec`]), which Redis answers 5-8× faster than Lua.
//!
//! Layer: inside [`super`] (the Redis backend). Readers take their own connections from
//! the store's pool, so they run beside the writer (`concurrent_readers`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Key, Row};
use redis::Value;
use serde_bytes::ByteBuf;

use super::conn::{Conn, Pool};
use super::layout::KeyNames;
use super::{native, scripts};
use crate::backend::guess::Guesses;
use crate::backend::{Error, ErrorKind, Reader, Result, Snapshot};

/// Most rows one read script touches (bounds the reply and the time the server is busy).
pub const CHUNK: usize = 1024;

/// What the read script returns per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Whole rows.
    Rows,
    /// The given fields of each row.
    Fields,
    /// One field of each row.
    Column,
    /// Field names of each row.
    Names,
}

impl Mode {
    fn code(self) -> &'static str {
        match self {
            Mode::Rows => "R",
            Mode::Fields => "K",
            Mode::Column => "C",
            Mode::Names => "H",
        }
    }
}

/// The number of rows.
pub fn len(conn: &mut Conn<'_>, names: &KeyNames) -> Result<u64> {
    conn.read(|c| redis::cmd("LLEN").arg(&names.sort_keys).query(c))
}

/// Reads that the read script (or guessed sort keys) answer in one call; larger ones take
/// two calls of native commands ([`native::read_by_exec`]).
pub const SCRIPT_MAX_ROWS: usize = 16;
/// Transactional reads raced by other writers before the script reads the chunk instead.
const EXEC_ATTEMPTS: usize = 4;

/// Reads `positions` (at most [`CHUNK`] of them) in one instant, returning one item per
/// position, as the read script shapes them: whole rows as flat field/value lists, the
/// asked fields' values, one value, or field names; `Nil` for a placeholder (field names:
/// an empty list). A position past the end is `IndexOutOfRange`.
///
/// `guesses`: the store's guessed sort keys (readers), learned from and used for reads of a
/// few rows.
pub fn read_chunk(
    conn: &mut Conn<'_>,
    names: &KeyNames,
    guesses: Option<&Guesses>,
    mode: Mode,
    fields: &[Key],
    positions: &[u64],
) -> Result<Vec<Value>> {
    let read = native::Read {
        names,
        mode,
        fields,
        positions,
    };
    if positions.len() > SCRIPT_MAX_ROWS {
        for _ in 0..EXEC_ATTEMPTS {
            if let Some(items) = native::read_by_exec(conn, &read, guesses)? {
                return Ok(items);
            }
        }
    } else if let Some(g) = guesses
        && let Some(items) = native::read_guessed(conn, &read, g)?
    {
        return Ok(items);
    }
    read_by_script(conn, names, mode, fields, positions)
}

/// [`read_chunk`] as one call of the read script.
fn read_by_script(
    conn: &mut Conn<'_>,
    names: &KeyNames,
    mode: Mode,
    fields: &[Key],
    positions: &[u64],
) -> Result<Vec<Value>> {
    let runs = runs(positions);
    let reply: Vec<Value> = conn.read(|c| {
        let mut inv = scripts::READ.prepare_invoke();
        inv.key(&names.sort_keys)
            .arg(&names.row_prefix)
            .arg(mode.code())
            .arg(fields.len());
        for f in fields {
            inv.arg(&f[..]);
        }
        for &(start, count) in &runs {
            inv.arg(start).arg(count);
        }
        inv.invoke(c)
    })?;
    let mut items = reply.into_iter();
    let n = int(items.next())?;
    let items: Vec<Value> = items.collect();
    if items.len() != positions.len() {
        if items.is_empty() {
            let past = positions.iter().copied().find(|&p| p >= n).unwrap_or(n);
            return Err(Error::out_of_range(past, n));
        }
        return Err(bad_reply("row count"));
    }
    Ok(items)
}

/// Consecutive ascending positions as `(start, count)` runs, in order.
pub(super) fn runs(positions: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &p in positions {
        match out.last_mut() {
            Some((start, count)) if *start + *count == p => *count += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}

/// A length in a read's reply.
pub(super) fn int(v: Option<Value>) -> Result<u64> {
    match v {
        Some(Value::Int(n)) => Ok(u64::try_from(n).unwrap_or(0)),
        other => Err(bad_reply(&format!("length {other:?}"))),
    }
}

pub(super) fn bad_reply(what: &str) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("the Redis server answered a read with something unexpected ({what})"),
    )
}

/// A bulk string's bytes.
fn bytes(v: Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(bad_reply(&format!("{other:?} where bytes were due"))),
    }
}

fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(bad_reply(&format!("{other:?} where a list was due"))),
    }
}

/// One read item as a row: `None` for a placeholder. With `fields`, the present ones of
/// them in that order; without, every field as stored.
fn to_row(item: Value, fields: Option<&[Key]>) -> Result<Option<Row>> {
    if matches!(item, Value::Nil) {
        return Ok(None);
    }
    let flat = array(item)?;
    let row = match fields {
        None => {
            let mut row = Row::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                row.push((ByteBuf::from(bytes(k)?), ByteBuf::from(bytes(v)?)));
            }
            row
        }
        Some(fields) => {
            let mut row = Row::with_capacity(fields.len());
            for (k, v) in fields.iter().zip(flat) {
                if !matches!(v, Value::Nil) {
                    row.push((k.clone(), ByteBuf::from(bytes(v)?)));
                }
            }
            row
        }
    };
    Ok(Some(row))
}

/// Reads every row at `positions` (chunked), handing each to `f`.
pub fn visit(
    conn: &mut Conn<'_>,
    names: &KeyNames,
    guesses: Option<&Guesses>,
    positions: &[u64],
    fields: Option<&[Key]>,
    f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
) -> Result<()> {
    let mode = if fields.is_some() {
        Mode::Fields
    } else {
        Mode::Rows
    };
    for chunk in positions.chunks(CHUNK) {
        let rows = read_chunk(conn, names, guesses, mode, fields.unwrap_or(&[]), chunk)?
            .into_iter()
            .map(|item| to_row(item, fields))
            .collect::<Result<Vec<_>>>()?;
        let mut borrowed: Vec<FieldRef<'_>> = Vec::with_capacity(16);
        for row in &rows {
            let flow = match row {
                None => f(None),
                Some(row) => {
                    borrowed.clear();
                    borrowed.extend(row.iter().map(|(k, v)| (&k[..], &v[..])));
                    f(Some(&borrowed))
                }
            };
            if flow.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One field of each row at `positions`; `None` where absent or a placeholder.
pub fn column(
    conn: &mut Conn<'_>,
    names: &KeyNames,
    guesses: Option<&Guesses>,
    key: &Key,
    positions: &[u64],
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::with_capacity(positions.len());
    for chunk in positions.chunks(CHUNK) {
        let key = std::slice::from_ref(key);
        let items = read_chunk(conn, names, guesses, Mode::Column, key, chunk)?;
        for item in items {
            out.push(match item {
                Value::Nil => None,
                v => Some(bytes(v)?),
            });
        }
    }
    Ok(out)
}

/// Field names of each row at `positions`, each list passed to `f`.
pub fn names_of(
    conn: &mut Conn<'_>,
    names: &KeyNames,
    guesses: Option<&Guesses>,
    positions: &[u64],
    f: &mut dyn FnMut(Vec<Key>),
) -> Result<()> {
    for chunk in positions.chunks(CHUNK) {
        for item in read_chunk(conn, names, guesses, Mode::Names, &[], chunk)? {
            let keys = array(item)?
                .into_iter()
                .map(|k| bytes(k).map(ByteBuf::from))
                .collect::<Result<Vec<Key>>>()?;
            f(keys);
        }
    }
    Ok(())
}

/// Every field name any row has (sorted). Redis keeps no schema, so this reads the
/// names of every row, a chunk at a time.
pub fn schema(conn: &mut Conn<'_>, names: &KeyNames) -> Result<Vec<Key>> {
    let n = len(conn, names)?;
    let mut all = BTreeSet::new();
    let mut start = 0;
    while start < n {
        let stop = (start + CHUNK as u64).min(n);
        let positions: Vec<u64> = (start..stop).collect();
        match names_of(conn, names, None, &positions, &mut |keys| all.extend(keys)) {
            Ok(()) => {}
            // The list shrank under us: what was read so far is the answer.
            Err(e) if e.kind == ErrorKind::IndexOutOfRange => break,
            Err(e) => return Err(e),
        }
        start = stop;
    }
    Ok(all.into_iter().collect())
}

/// Hands out snapshots, each on a pooled connection.
#[derive(Debug)]
pub struct RedisReader {
    pub(super) pool: Arc<Pool>,
    pub(super) names: Arc<KeyNames>,
    /// The store's guessed sort keys (shared with its writer, which forgets them when it
    /// moves rows).
    pub(super) guesses: Arc<Guesses>,
}

impl Reader for RedisReader {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        Ok(Box::new(RedisSnapshot {
            conn: RefCell::new(self.pool.take()?),
            names: &self.names,
            guesses: &self.guesses,
            len: Cell::new(None),
        }))
    }
}

/// Reads on one connection. The length is read once and kept, so normalising an index
/// and reading its row cost two round trips, not three; the read script checks bounds
/// again on the server.
#[derive(Debug)]
pub struct RedisSnapshot<'a> {
    conn: RefCell<Conn<'a>>,
    names: &'a KeyNames,
    guesses: &'a Guesses,
    len: Cell<Option<u64>>,
}

impl Snapshot for RedisSnapshot<'_> {
    fn len(&self) -> Result<u64> {
        if let Some(n) = self.len.get() {
            return Ok(n);
        }
        let n = len(&mut self.conn.borrow_mut(), self.names)?;
        self.len.set(Some(n));
        Ok(n)
    }

    /// Every read script checks its positions against the list's length (see
    /// [`read_chunk`]).
    fn checks_bounds(&self) -> bool {
        true
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        let mut items = read_chunk(
            &mut self.conn.borrow_mut(),
            self.names,
            Some(self.guesses),
            if keys.is_some() {
                Mode::Fields
            } else {
                Mode::Rows
            },
            keys.unwrap_or(&[]),
            &[index],
        )?;
        to_row(items.pop().unwrap_or(Value::Nil), keys)
    }

    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        let g = Some(self.guesses);
        visit(&mut self.conn.borrow_mut(), self.names, g, indices, keys, f)
    }

    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let g = Some(self.guesses);
        column(&mut self.conn.borrow_mut(), self.names, g, key, indices)
    }

    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        let mut out = Vec::new();
        names_of(
            &mut self.conn.borrow_mut(),
            self.names,
            Some(self.guesses),
            &[index],
            &mut |k| out = k,
        )?;
        Ok(out)
    }

    fn schema(&self) -> Result<Vec<Key>> {
        schema(&mut self.conn.borrow_mut(), self.names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_become_runs() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[3, 4, 5, 9, 2, 3]), vec![(3, 3), (9, 1), (2, 2)]);
        assert_eq!(runs(&[7, 7]), vec![(7, 1), (7, 1)]);
    }
}
