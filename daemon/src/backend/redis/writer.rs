//! Writes to a Redis store: a batch of writes (one group commit) is planned here against
//! the list length it saw, then sent as ONE [`scripts::WRITE`] call, which Redis runs with
//! no other client's command in between. If another daemon or an asebytes 0.3.3 client
//! changed the list since, the script changes nothing and reports the length it found;
//! the batch is planned again against it (the store layer re-normalises every index), so
//! no write ever lands on a row it did not mean.
//!
//! A batch that only appends many rows ([`NATIVE_APPEND_MIN_ROWS`] or more) is sent as
//! native commands instead ([`append_native`]): Redis takes about a third less time to
//! store a row by `HSET` than through the script (whose every argument becomes a Lua
//! string), at the price of one more call, which a large batch pays once.
//!
//! Layer: inside [`super`] (the Redis backend), driven by [`crate::backend::Backend::write`].
//! Planning reads nothing but the length; rows are sent as the client gave them (the
//! stored bytes are the wire bytes).

use std::cell::RefCell;
use std::ops::ControlFlow;

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Bytes, Key, Row};
use redis::{ScriptInvocation, Value};

use super::conn::{Conn, Pool};
use super::layout::KeyNames;
use super::{reader, scripts};
use crate::backend::guess::Guesses;
use crate::backend::{Error, ErrorKind, Result, Snapshot, Writer};

/// How often one batch is planned again because other writers got in first before we
/// call the store too contended.
const MAX_ATTEMPTS: usize = 1000;

/// Batches that append at least this many rows and do nothing else go as native commands.
pub const NATIVE_APPEND_MIN_ROWS: usize = 16;

/// The store a batch writes.
#[derive(Debug)]
pub struct Store<'a> {
    /// Its connections.
    pub pool: &'a Pool,
    /// Its keys.
    pub names: &'a KeyNames,
    /// Its readers' guessed sort keys: taught the rows a native append adds, forgotten
    /// when a batch moves rows (insert, delete, clear).
    pub guesses: &'a Guesses,
}

/// Runs `f` as one atomic batch. `known_len` is the length this store saw last (kept
/// between batches to save a round trip; a stale value costs one more attempt, never a
/// wrong write); it is updated to the length after the batch, or cleared on failure.
pub fn write(
    store: &Store<'_>,
    known_len: &mut Option<u64>,
    f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>,
) -> Result<()> {
    let mut conn = store.pool.take()?;
    let outcome = write_on(&mut conn, store, known_len, f);
    if outcome.is_err() {
        *known_len = None;
    }
    outcome
}

fn write_on(
    conn: &mut Conn<'_>,
    store: &Store<'_>,
    known_len: &mut Option<u64>,
    f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>,
) -> Result<()> {
    let names = store.names;
    for _ in 0..MAX_ATTEMPTS {
        let (planned_len, fresh) = match *known_len {
            Some(n) => (n, false),
            None => (reader::len(conn, names)?, true),
        };
        let mut txn = RedisTxn::new(conn, names, planned_len);
        let planned = f(&mut txn);
        let plan = txn.into_plan();
        if let Err(e) = planned {
            // A refusal decided against a remembered length may be wrong: check the
            // length and plan again if it moved.
            if !fresh {
                let now = reader::len(conn, names)?;
                if now != planned_len {
                    *known_len = Some(now);
                    continue;
                }
            }
            *known_len = Some(planned_len);
            return Err(e);
        }
        let inv = match plan {
            Plan::Nothing => {
                *known_len = Some(planned_len);
                return Ok(());
            }
            Plan::Append(rows) => match append_native(conn, names, planned_len, &rows)? {
                Ok((n, first)) => {
                    let sks: Vec<i64> = (first..).take(rows.len()).collect();
                    store.guesses.learn(planned_len, &sks);
                    *known_len = Some(n);
                    return Ok(());
                }
                Err(now) => {
                    *known_len = now;
                    continue;
                }
            },
            Plan::Script { inv, moves_rows } => {
                if moves_rows {
                    // Positions shift: the guesses would cost a wasted call each.
                    store.guesses.forget();
                }
                inv
            }
        };
        let reply: Vec<Value> = conn.run(|c| inv.invoke(c))?;
        match reply.as_slice() {
            [Value::Int(1), Value::Int(n)] => {
                *known_len = Some(u64::try_from(*n).unwrap_or(0));
                return Ok(());
            }
            [Value::Int(0), Value::Int(n)] => {
                *known_len = Some(u64::try_from(*n).unwrap_or(0));
            }
            other => {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("the Redis write script answered {other:?}"),
                ));
            }
        }
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        format!(
            "the Redis store changed under {MAX_ATTEMPTS} attempts in a row (other writers); \
             retry"
        ),
    ))
}

/// Appends `rows` as native commands in two calls: `WATCH` the list, read its length and
/// take `rows.len()` sort keys (`INCRBY`); then `MULTI`, each row's `HSET`, one `RPUSH`,
/// `EXEC`, which Redis refuses if the list changed after the `WATCH`. `Ok((length after,
/// first sort key))`, or `Err(length now, if known)` when the list is no longer
/// `planned_len` long (another writer got in): nothing was written, the batch is planned
/// again. Sort keys taken by a refused attempt stay unused, as after any failed write.
fn append_native(
    conn: &mut Conn<'_>,
    names: &KeyNames,
    planned_len: u64,
    rows: &[Option<Row>],
) -> Result<std::result::Result<(u64, i64), Option<u64>>> {
    let m = rows.len() as u64;
    let mut begin = redis::pipe();
    begin
        .cmd("WATCH")
        .arg(&names.sort_keys)
        .ignore()
        .cmd("LLEN")
        .arg(&names.sort_keys)
        .cmd("INCRBY")
        .arg(&names.next_sk)
        .arg(m);
    let (len, next) = match conn.run(|c| begin.query::<(u64, i64)>(c)) {
        Ok(v) => v,
        Err(e) => {
            // Maybe still watching: this connection must not serve another transaction.
            conn.discard();
            return Err(e);
        }
    };
    if len != planned_len {
        conn.run(|c| redis::cmd("UNWATCH").query::<()>(c))?;
        return Ok(Err(Some(len)));
    }
    let first = next - m as i64;
    let mut commit = redis::pipe();
    commit.atomic();
    let mut sks = Vec::with_capacity(rows.len());
    for (j, row) in rows.iter().enumerate() {
        let sk = (first + j as i64).to_string();
        if let Some(row) = row.as_ref().filter(|r| !r.is_empty()) {
            let hset = commit.cmd("HSET").arg(names.row(sk.as_bytes()));
            for (k, v) in row {
                hset.arg(&k[..]).arg(&v[..]);
            }
            hset.ignore();
        }
        sks.push(sk);
    }
    commit.cmd("RPUSH").arg(&names.sort_keys).arg(&sks);
    let committed: Option<(u64,)> = conn.run(|c| commit.query(c))?;
    Ok(committed.map(|(n,)| (n, first)).ok_or(None))
}

/// What a planned batch sends.
enum Plan {
    /// No write at all.
    Nothing,
    /// Only appends, enough rows for [`append_native`].
    Append(Vec<Option<Row>>),
    /// One call of the write script; `moves_rows` when it inserts or deletes rows.
    Script {
        inv: ScriptInvocation<'static>,
        moves_rows: bool,
    },
}

/// One planned batch: the script invocation being filled, and the length the store will
/// have after the ops planned so far.
struct RedisTxn<'c, 'p> {
    conn: RefCell<&'c mut Conn<'p>>,
    names: &'c KeyNames,
    inv: ScriptInvocation<'static>,
    len: u64,
    ops: usize,
    /// The rows of a batch that so far only appends, kept apart (a large batch of them is
    /// sent by [`append_native`]); the first other op moves them into the script.
    appended: Vec<Option<Row>>,
    /// Whether an op inserts or deletes rows (positions after it shift).
    moves_rows: bool,
}

impl<'c, 'p> RedisTxn<'c, 'p> {
    fn new(conn: &'c mut Conn<'p>, names: &'c KeyNames, len: u64) -> Self {
        let mut inv = scripts::WRITE.prepare_invoke();
        inv.key(&names.sort_keys)
            .key(&names.next_sk)
            .arg(&names.row_prefix)
            .arg(len);
        Self {
            conn: RefCell::new(conn),
            names,
            inv,
            len,
            ops: 0,
            appended: Vec::new(),
            moves_rows: false,
        }
    }

    fn op(&mut self, code: &str) -> &mut ScriptInvocation<'static> {
        self.script_appended();
        self.ops += 1;
        self.inv.arg(code)
    }

    /// Moves the rows kept apart into the script, as one `E` op.
    fn script_appended(&mut self) {
        if self.appended.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.appended);
        self.ops += 1;
        self.inv.arg("E").arg(rows.len());
        for row in &rows {
            self.push_row(row.as_ref());
        }
    }

    fn into_plan(mut self) -> Plan {
        if self.ops == 0 && self.appended.len() >= NATIVE_APPEND_MIN_ROWS {
            return Plan::Append(self.appended);
        }
        self.script_appended();
        if self.ops == 0 {
            Plan::Nothing
        } else {
            Plan::Script {
                inv: self.inv,
                moves_rows: self.moves_rows,
            }
        }
    }

    /// `c` then the pairs; a missing or empty row is a placeholder (`c = 0`).
    fn push_row(&mut self, row: Option<&Row>) {
        let row = row.map_or(&[][..], Vec::as_slice);
        self.inv.arg(row.len());
        for (k, v) in row {
            self.inv.arg(&k[..]).arg(&v[..]);
        }
    }

    fn positioned(&mut self, code: &str, pos: u64, row: Option<&Row>) {
        self.op(code).arg(pos);
        self.push_row(row);
    }

    /// Reads inside a batch see the store as committed; refused once the batch holds a
    /// write it could not see (the store layer reads only the length, which is tracked).
    fn committed(&self) -> Result<std::cell::RefMut<'_, &'c mut Conn<'p>>> {
        if self.ops > 0 || !self.appended.is_empty() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "a Redis write batch cannot read rows after planning a write",
            ));
        }
        Ok(self.conn.borrow_mut())
    }
}

impl Snapshot for RedisTxn<'_, '_> {
    fn len(&self) -> Result<u64> {
        Ok(self.len)
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        let mut out = None;
        self.visit_rows(&[index], keys, &mut |row| {
            out = row.map(|fields| {
                fields
                    .iter()
                    .map(|(k, v)| (Key::from(k.to_vec()), Bytes::from(v.to_vec())))
                    .collect()
            });
            ControlFlow::Break(())
        })?;
        Ok(out)
    }

    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        reader::visit(&mut **self.committed()?, self.names, None, indices, keys, f)
    }

    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        reader::column(&mut **self.committed()?, self.names, None, key, indices)
    }

    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        let mut out = Vec::new();
        reader::names_of(
            &mut **self.committed()?,
            self.names,
            None,
            &[index],
            &mut |k| {
                out = k;
            },
        )?;
        Ok(out)
    }

    fn schema(&self) -> Result<Vec<Key>> {
        reader::schema(&mut **self.committed()?, self.names)
    }
}

impl Writer for RedisTxn<'_, '_> {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> Result<u64> {
        if rows.is_empty() {
            return Ok(self.len);
        }
        self.len += rows.len() as u64;
        if self.ops == 0 {
            self.appended.extend(rows);
        } else {
            self.op("E").arg(rows.len());
            for row in &rows {
                self.push_row(row.as_ref());
            }
        }
        Ok(self.len)
    }

    fn insert(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        self.positioned("I", index, row.as_ref());
        self.moves_rows = true;
        self.len += 1;
        Ok(())
    }

    fn set(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        self.positioned("S", index, row.as_ref());
        Ok(())
    }

    fn update(&mut self, index: u64, data: Row) -> Result<()> {
        if !data.is_empty() {
            self.positioned("U", index, Some(&data));
        }
        Ok(())
    }

    fn update_column(&mut self, key: &Key, indices: &[u64], values: Vec<Bytes>) -> Result<()> {
        if indices.len() != values.len() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "a column write got {} positions and {} values",
                    indices.len(),
                    values.len()
                ),
            ));
        }
        if indices.is_empty() {
            return Ok(());
        }
        self.op("C").arg(&key[..]).arg(indices.len());
        for (&i, v) in indices.iter().zip(&values) {
            self.inv.arg(i).arg(&v[..]);
        }
        Ok(())
    }

    fn delete_range(&mut self, start: u64, stop: u64) -> Result<()> {
        if start >= stop {
            return Ok(());
        }
        self.op("D").arg(start).arg(stop);
        self.moves_rows = true;
        self.len -= stop - start;
        Ok(())
    }

    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> Result<()> {
        if keys.is_empty() || indices.is_some_and(<[u64]>::is_empty) {
            return Ok(());
        }
        self.op("K").arg(keys.len());
        for k in keys {
            self.inv.arg(&k[..]);
        }
        match indices {
            None => {
                self.inv.arg(-1);
            }
            Some(at) => {
                self.inv.arg(at.len());
                for &i in at {
                    self.inv.arg(i);
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<()> {
        self.op("X");
        self.moves_rows = true;
        self.len = 0;
        Ok(())
    }
}
