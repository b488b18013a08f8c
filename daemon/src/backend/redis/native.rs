//! Reads of a Redis store by native commands inside `MULTI`/`EXEC`, not through Lua: Redis
//! answers a row by `HGETALL` 5-8× faster than through the read script (every value
//! becomes a Lua string and back), and a one-row script call costs it ~35 µs of its own
//! time against ~3 µs for the commands themselves.
//!
//! A transaction cannot use what it reads, so the rows' sort keys must be known before it
//! is sent. [`read_by_exec`] (many rows) reads them first, then sends a transaction that
//! reads those sort keys again and the rows they name. [`read_guessed`] (a few rows) takes
//! them from the store's guesses ([`crate::backend::guess`]) and reads them in the same
//! transaction as the rows, one call. Sort keys are never reused, so the same sort keys at
//! the same positions inside the transaction mean the rows read are the rows at those
//! positions at that instant; otherwise (another writer moved rows) nothing is served and
//! the caller reads again.
//!
//! Layer: inside [`super`] (the Redis backend), called by [`super::reader::read_chunk`],
//! whose item shapes these reads return.

use redis::{Pipeline, Value};

use super::conn::Conn;
use super::layout::KeyNames;
use super::reader::{Mode, bad_reply, int, runs};
use crate::backend::guess::Guesses;
use crate::backend::{Error, Key, Result};

/// What a read asks for.
#[derive(Clone, Copy, Debug)]
pub struct Read<'a> {
    /// The group's keys.
    pub names: &'a KeyNames,
    /// The shape of each item.
    pub mode: Mode,
    /// The fields asked for ([`Mode::Fields`], [`Mode::Column`]).
    pub fields: &'a [Key],
    /// Row positions, checked on the server.
    pub positions: &'a [u64],
}

impl Read<'_> {
    /// Queues the commands reading the row with sort key `sk` into `t`.
    fn queue_row(&self, t: &mut Pipeline, sk: &[u8]) {
        let row_key = self.names.row(sk);
        match self.mode {
            Mode::Rows => {
                t.cmd("HGETALL").arg(&row_key);
            }
            Mode::Fields => {
                t.cmd("EXISTS").arg(&row_key);
                if !self.fields.is_empty() {
                    let hmget = t.cmd("HMGET").arg(&row_key);
                    for f in self.fields {
                        hmget.arg(&f[..]);
                    }
                }
            }
            Mode::Column => {
                t.cmd("HGET").arg(&row_key).arg(&self.fields[0][..]);
            }
            Mode::Names => {
                t.cmd("HKEYS").arg(&row_key);
            }
        }
    }

    /// The replies of the queued rows as the read script shapes its items.
    fn items(&self, mut replies: impl Iterator<Item = Value>) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(self.positions.len());
        while let Some(reply) = replies.next() {
            out.push(match (self.mode, reply) {
                // No hash: a placeholder.
                (Mode::Rows, Value::Array(flat)) if flat.is_empty() => Value::Nil,
                (Mode::Fields, Value::Int(exists)) => {
                    let values = if self.fields.is_empty() {
                        Value::Array(Vec::new())
                    } else {
                        replies.next().unwrap_or(Value::Nil)
                    };
                    if exists == 0 { Value::Nil } else { values }
                }
                (_, item) => item,
            });
        }
        if out.len() != self.positions.len() {
            return Err(bad_reply("row count"));
        }
        Ok(out)
    }

    /// `IndexOutOfRange` for the first position at or past `len`.
    fn check_bounds(&self, len: u64) -> Result<()> {
        match self.positions.iter().find(|&&p| p >= len) {
            Some(&past) => Err(Error::out_of_range(past, len)),
            None => Ok(()),
        }
    }
}

/// Reads `r` in two calls: the length and the sort keys at the positions, then a
/// transaction reading those sort keys again and their rows. `None` when the sort keys
/// changed in between (another writer got in): try again. Teaches `guesses` the sort keys.
pub fn read_by_exec(
    conn: &mut Conn<'_>,
    r: &Read<'_>,
    guesses: Option<&Guesses>,
) -> Result<Option<Vec<Value>>> {
    let list = &r.names.sort_keys;
    let runs = runs(r.positions);
    let lranges = |p: &mut Pipeline| {
        for &(start, count) in &runs {
            p.cmd("LRANGE").arg(list).arg(start).arg(start + count - 1);
        }
    };
    let mut locate = redis::pipe();
    locate.cmd("LLEN").arg(list);
    lranges(&mut locate);
    let mut located = conn.read(|c| locate.query::<Vec<Value>>(c))?.into_iter();
    r.check_bounds(int(located.next())?)?;
    let located: Vec<Value> = located.collect();

    let mut read = redis::pipe();
    read.atomic();
    lranges(&mut read);
    for (run, &(start, _)) in located.iter().zip(&runs) {
        let sks = bulk_strings(run)?;
        for sk in &sks {
            r.queue_row(&mut read, sk);
        }
        if let Some(g) = guesses {
            learn(g, start, &sks);
        }
    }
    let reply: Vec<Value> = conn.read(|c| read.query(c))?;
    if reply.len() < runs.len() || reply[..runs.len()] != located[..] {
        return Ok(None);
    }
    r.items(reply.into_iter().skip(runs.len())).map(Some)
}

/// Reads `r` (a few rows) in ONE transaction naming the rows by their guessed sort keys,
/// with the length and the sort keys at the positions to confirm them. Positions not
/// guessed yet are learned first (one more call, reading the sort keys around them).
/// `None` when the guesses cannot be used (too many rows, or a guess gone stale: then
/// they are all forgotten); the caller reads another way.
pub fn read_guessed(conn: &mut Conn<'_>, r: &Read<'_>, g: &Guesses) -> Result<Option<Vec<Value>>> {
    let list = &r.names.sort_keys;
    let Some(window) = g.window(r.positions) else {
        return Ok(None);
    };
    let mut sks = g.get(r.positions);
    if sks.iter().any(Option::is_none) {
        let (len, around): (u64, Vec<Vec<u8>>) = conn.read(|c| {
            redis::pipe()
                .cmd("LLEN")
                .arg(list)
                .cmd("LRANGE")
                .arg(list)
                .arg(window.start)
                // Redis takes signed 64-bit positions; past the end is fine.
                .arg((window.start + window.len - 1).min(i64::MAX as u64))
                .query(c)
        })?;
        r.check_bounds(len)?;
        learn(g, window.start, &around);
        sks = g.get(r.positions);
    }
    let Some(sks) = sks.into_iter().collect::<Option<Vec<i64>>>() else {
        // Sort keys that are not numbers (not the asebytes layout): the script reads them.
        return Ok(None);
    };
    let sks: Vec<String> = sks.iter().map(i64::to_string).collect();
    let mut read = redis::pipe();
    read.atomic();
    read.cmd("LLEN").arg(list);
    for &p in r.positions {
        read.cmd("LINDEX").arg(list).arg(p);
    }
    for sk in &sks {
        r.queue_row(&mut read, sk.as_bytes());
    }
    let mut reply = conn.read(|c| read.query::<Vec<Value>>(c))?.into_iter();
    r.check_bounds(int(reply.next())?)?;
    for sk in &sks {
        match reply.next() {
            Some(Value::BulkString(at)) if at == sk.as_bytes() => {}
            _ => {
                g.forget();
                return Ok(None);
            }
        }
    }
    r.items(reply).map(Some)
}

/// Teaches `g` that the sort keys from position `start` on are `sks` (as far as they are
/// numbers, as in the asebytes layout).
fn learn<S: AsRef<[u8]>>(g: &Guesses, start: u64, sks: &[S]) {
    let parsed: Vec<i64> = sks
        .iter()
        .map_while(|sk| std::str::from_utf8(sk.as_ref()).ok()?.parse().ok())
        .collect();
    g.learn(start, &parsed);
}

fn bulk_strings(v: &Value) -> Result<Vec<&[u8]>> {
    let Value::Array(items) = v else {
        return Err(bad_reply(&format!("{v:?} where sort keys were due")));
    };
    items
        .iter()
        .map(|sk| match sk {
            Value::BulkString(b) => Ok(&b[..]),
            other => Err(bad_reply(&format!("{other:?} where a sort key was due"))),
        })
        .collect()
}
