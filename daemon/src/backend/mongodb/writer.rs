//! Writes: every write transaction of the store actor is one MongoDB multi-document
//! transaction, so a batch is all-or-nothing on the server, whoever else writes.
//!
//! Layer: the [`Writer`] of the MongoDB backend; [`super::MongoBackend::write`] opens the
//! transaction, runs the batch through a [`MongoTxn`], commits, and runs it again when
//! the server reports a write conflict with another daemon or client. Inside the
//! transaction the metadata is read once and kept current here; every change to it is
//! one update of the metadata document, which the server orders against every other
//! writer (a conflicting writer aborts and retries, never interleaves).
//!
//! Sort keys come from the metadata read inside the transaction (never from a
//! `findAndModify` pre-image, which SecantusDB serves stale under concurrency). The
//! readers' guessed sort keys ([`crate::backend::guess`]) learn the rows this store appends
//! and are forgotten when it moves rows (insert, delete, clear); they are only guesses, so a
//! transaction that aborts afterwards leaves nothing wrong behind.

use std::collections::HashSet;

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Bytes, Key, Row};
use mongodb::bson::{Bson, Document, doc};

use super::layout::{
    self, COUNT, DATA, NEXT_SORT_KEY, SCHEMA, SORT_KEYS, field_name, field_to_bson, literal,
    meta_filter, row_document, rows_filter, sort_keys_filter,
};
use super::query::Query;
use super::reader::{Meta, MongoSnapshot};
use crate::backend::guess::Guesses;
use crate::backend::{Error, ErrorKind, Result, Snapshot, Writer};

/// The keys of `rows` as field names (keys that cannot be one were refused already).
fn row_names<'r>(rows: impl Iterator<Item = &'r Row>) -> impl Iterator<Item = &'r str> {
    rows.flat_map(|r| r.iter())
        .filter_map(|(k, _)| std::str::from_utf8(k).ok())
}

/// Most rows one column update sends in one command (bounded well under the 16 MiB
/// command size for typical per-row values; larger updates take several commands).
const COLUMN_CHUNK: usize = 2048;

/// One write transaction over one collection.
#[derive(Debug)]
pub struct MongoTxn<'a> {
    snap: MongoSnapshot<'a>,
    /// Keys already recorded in the metadata's `schema` (by earlier commits).
    known: &'a HashSet<String>,
    /// Keys this transaction records; known once it commits.
    recorded: Vec<String>,
    /// The readers' guessed sort keys.
    guesses: &'a Guesses,
}

impl<'a> MongoTxn<'a> {
    /// A transaction writing through `q` (whose session has a transaction started);
    /// `known` are the keys earlier commits recorded in the schema; `guesses` the readers'
    /// guessed sort keys, kept in step with the rows this transaction moves.
    pub fn new(q: Query<'a>, known: &'a HashSet<String>, guesses: &'a Guesses) -> Self {
        Self {
            snap: MongoSnapshot::new(q),
            known,
            recorded: Vec::new(),
            guesses,
        }
    }

    /// The keys this transaction recorded in the schema (to remember once committed).
    pub fn into_recorded(self) -> Vec<String> {
        self.recorded
    }

    /// Which of `names` the schema does not have yet; remembered as recorded by this
    /// transaction (the caller adds them to the metadata in the same transaction).
    fn unrecorded<'n>(&mut self, names: impl Iterator<Item = &'n str>) -> Vec<String> {
        let mut new = Vec::new();
        for n in names {
            if !self.known.contains(n) && !self.recorded.iter().any(|r| r == n) {
                self.recorded.push(n.to_string());
                new.push(n.to_string());
            }
        }
        new
    }

    /// Records `names` in the schema when any is new (one metadata update).
    fn record(&mut self, names: &[String]) -> Result<()> {
        let new = self.unrecorded(names.iter().map(String::as_str));
        if new.is_empty() {
            return Ok(());
        }
        self.q().update_one(
            meta_filter(),
            doc! { "$addToSet": { SCHEMA: { "$each": new } } },
            true,
            "recording keys",
        )?;
        Ok(())
    }

    fn q(&self) -> &Query<'a> {
        &self.snap.q
    }

    fn set_meta(&self, meta: Meta) {
        self.snap.meta.set(Some(meta));
    }

    /// Reserves `n` new sort keys (inside this transaction, so no other writer gets them).
    fn reserve(&self, n: u64) -> Result<(Meta, i64)> {
        let meta = self.snap.meta()?;
        let first = meta.next_sort_key;
        let n_i64 = i64::try_from(n)
            .map_err(|_| Error::new(ErrorKind::InvalidArgument, "too many rows"))?;
        first
            .checked_add(n_i64)
            .ok_or_else(|| Error::corrupt("next_sort_key overflows"))?;
        Ok((meta, first))
    }

    fn sort_key(&self, index: u64) -> Result<i64> {
        Ok(self.snap.sort_keys_at(&[index])?[0])
    }
}

impl Snapshot for MongoTxn<'_> {
    fn len(&self) -> Result<u64> {
        self.snap.len()
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        self.snap.get(index, keys)
    }
    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> std::ops::ControlFlow<()>,
    ) -> Result<()> {
        self.snap.visit_rows(indices, keys, f)
    }
    fn get_column(&self, key: &Key, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        self.snap.get_column(key, indices)
    }
    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        self.snap.keys(index)
    }
    fn schema(&self) -> Result<Vec<Key>> {
        self.snap.schema()
    }
}

impl Writer for MongoTxn<'_> {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> Result<u64> {
        let n = rows.len() as u64;
        let (meta, first) = self.reserve(n)?;
        // Every document is built (and every value checked) before anything is sent.
        let docs = rows
            .iter()
            .zip(first..)
            .map(|(row, sk)| row_document(sk, row.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let sks: Vec<i64> = (first..first + n as i64).collect();
        let new = self.unrecorded(row_names(rows.iter().flatten()));
        self.q().insert_many(docs, "appending rows")?;
        self.q().update_one(
            meta_filter(),
            doc! {
                "$push": { SORT_KEYS: { "$each": sks.as_slice() } },
                "$inc": { COUNT: n as i64, NEXT_SORT_KEY: n as i64 },
                "$addToSet": { SCHEMA: { "$each": new } },
            },
            true,
            "appending rows",
        )?;
        self.guesses.learn(meta.count, &sks);
        let meta = Meta {
            count: meta.count + n,
            next_sort_key: first + n as i64,
        };
        self.set_meta(meta);
        Ok(meta.count)
    }

    fn insert(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        let (meta, sk) = self.reserve(1)?;
        let doc = row_document(sk, row.as_ref())?;
        let new = self.unrecorded(row_names(row.iter()));
        self.q().insert_many(vec![doc], "inserting a row")?;
        self.q().update_one(
            meta_filter(),
            doc! {
                "$push": { SORT_KEYS: { "$each": [sk], "$position": super::query::int(index) } },
                "$inc": { COUNT: 1i64, NEXT_SORT_KEY: 1i64 },
                "$addToSet": { SCHEMA: { "$each": new } },
            },
            true,
            "inserting a row",
        )?;
        self.guesses.forget();
        self.set_meta(Meta {
            count: meta.count + 1,
            next_sort_key: sk + 1,
        });
        Ok(())
    }

    fn set(&mut self, index: u64, row: Option<Row>) -> Result<()> {
        let sk = self.sort_key(index)?;
        let doc = row_document(sk, row.as_ref())?;
        self.q()
            .replace_one(doc! { "_id": sk }, doc, "replacing a row")
    }

    fn update(&mut self, index: u64, data: Row) -> Result<()> {
        let fields = data
            .iter()
            .map(|(k, v)| Ok((field_name(k)?, field_to_bson(k, v)?)))
            .collect::<Result<Vec<_>>>()?;
        if fields.is_empty() {
            return Ok(());
        }
        let sk = self.sort_key(index)?;
        let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
        let pipeline = vec![doc! { "$set": { DATA: layout::set_fields_expr(fields) } }];
        self.q()
            .update_one(doc! { "_id": sk }, pipeline, false, "updating a row")?;
        self.record(&names)
    }

    fn update_column(&mut self, key: &Key, indices: &[u64], values: Vec<Bytes>) -> Result<()> {
        let name = field_name(key)?;
        let values = values
            .iter()
            .map(|v| field_to_bson(key, v))
            .collect::<Result<Vec<_>>>()?;
        let sks = self.snap.sort_keys_at(indices)?;
        // A row named twice takes its last value, as row-by-row updates would leave it.
        let mut last: Vec<(i64, Bson)> = Vec::with_capacity(sks.len());
        let mut seen = std::collections::HashMap::with_capacity(sks.len());
        for (sk, v) in sks.into_iter().zip(values) {
            match seen.get(&sk) {
                Some(&at) => last[at] = (sk, v),
                None => {
                    seen.insert(sk, last.len());
                    last.push((sk, v));
                }
            }
        }
        for chunk in last.chunks(COLUMN_CHUNK) {
            let (sks, vals): (Vec<i64>, Vec<Bson>) = chunk.iter().cloned().unzip();
            let value = doc! { "$arrayElemAt": [
                literal(vals),
                { "$indexOfArray": [literal(sks.clone()), "$_id"] },
            ] };
            let pipeline = vec![doc! { "$set": { DATA: { "$setField": {
                "field": literal(name.clone()),
                "input": { "$ifNull": ["$data", {}] },
                "value": value,
            } } } }];
            self.q()
                .update_many(sort_keys_filter(&sks), pipeline, "updating a column")?;
        }
        self.record(&[name])
    }

    fn delete_range(&mut self, start: u64, stop: u64) -> Result<()> {
        let meta = self.snap.meta()?;
        let at: Vec<u64> = (start..stop).collect();
        let sks = self.snap.sort_keys_at(&at)?;
        let n = sks.len() as i64;
        // Sort keys are unique, so pulling them by value removes exactly these rows.
        self.q().update_one(
            meta_filter(),
            doc! { "$pull": { SORT_KEYS: { "$in": sks.clone() } }, "$inc": { COUNT: -n } },
            false,
            "deleting rows",
        )?;
        self.q()
            .delete_many(sort_keys_filter(&sks), "deleting rows")?;
        self.guesses.forget();
        self.set_meta(Meta {
            count: meta.count - n as u64,
            ..meta
        });
        Ok(())
    }

    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> Result<()> {
        let names: Vec<String> = keys.iter().filter_map(|k| field_name(k).ok()).collect();
        if names.is_empty() {
            return Ok(());
        }
        let filter: Document = match indices {
            None => rows_filter(),
            Some(ix) => sort_keys_filter(&self.snap.sort_keys_at(ix)?),
        };
        let pipeline = vec![doc! { "$set": { DATA: layout::drop_fields_expr(&names) } }];
        self.q().update_many(filter, pipeline, "dropping keys")
    }

    fn clear(&mut self) -> Result<()> {
        self.q().delete_many(rows_filter(), "clearing rows")?;
        self.q().update_one(
            meta_filter(),
            doc! { "$set": { SORT_KEYS: [], COUNT: 0i64, NEXT_SORT_KEY: 0i64 } },
            true,
            "clearing rows",
        )?;
        self.guesses.forget();
        self.set_meta(Meta::default());
        Ok(())
    }
}
