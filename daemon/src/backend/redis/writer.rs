//! Writes to a Redis store: a batch of writes (one group commit) is planned here against
//! the list length it saw, then sent as ONE [`scripts::WRITE`] call, which Redis runs with
//! no other client's command in between. If another daemon or an asebytes 0.3.3 client
//! changed the list since, the script changes nothing and reports the length it found;
//! the batch is planned again against it (the store layer re-normalises every index), so
//! no write ever lands on a row it did not mean.
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
use crate::backend::{Error, ErrorKind, Result, Snapshot, Writer};

/// How often one batch is planned again because other writers got in first before we
/// call the store too contended.
const MAX_ATTEMPTS: usize = 1000;

/// Runs `f` as one atomic batch. `known_len` is the length this store saw last (kept
/// between batches to save a round trip; a stale value costs one more attempt, never a
/// wrong write); it is updated to the length after the batch, or cleared on failure.
pub fn write(
    pool: &Pool,
    names: &KeyNames,
    known_len: &mut Option<u64>,
    f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>,
) -> Result<()> {
    let mut conn = pool.take()?;
    let outcome = write_on(&mut conn, names, known_len, f);
    if outcome.is_err() {
        *known_len = None;
    }
    outcome
}

fn write_on(
    conn: &mut Conn<'_>,
    names: &KeyNames,
    known_len: &mut Option<u64>,
    f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>,
) -> Result<()> {
    for _ in 0..MAX_ATTEMPTS {
        let (planned_len, fresh) = match *known_len {
            Some(n) => (n, false),
            None => (reader::len(conn, names)?, true),
        };
        let mut txn = RedisTxn::new(conn, names, planned_len);
        let planned = f(&mut txn);
        let RedisTxn { inv, ops, .. } = txn;
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
        if ops == 0 {
            *known_len = Some(planned_len);
            return Ok(());
        }
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

/// One planned batch: the script invocation being filled, and the length the store will
/// have after the ops planned so far.
struct RedisTxn<'c, 'p> {
    conn: RefCell<&'c mut Conn<'p>>,
    names: &'c KeyNames,
    inv: ScriptInvocation<'static>,
    len: u64,
    ops: usize,
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
        }
    }

    fn op(&mut self, code: &str) -> &mut ScriptInvocation<'static> {
        self.ops += 1;
        self.inv.arg(code)
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
        if self.ops > 0 {
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
        reader::visit(&mut **self.committed()?, self.names, indices, keys, f)
    }

    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        reader::column(&mut **self.committed()?, self.names, key, indices)
    }

    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        let mut out = Vec::new();
        reader::names_of(&mut **self.committed()?, self.names, &[index], &mut |k| {
            out = k;
        })?;
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
        self.op("E").arg(rows.len());
        for row in &rows {
            self.push_row(row.as_ref());
        }
        self.len += rows.len() as u64;
        Ok(self.len)
    }

    fn insert(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        self.positioned("I", index, row.as_ref());
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
        self.len = 0;
        Ok(())
    }
}
