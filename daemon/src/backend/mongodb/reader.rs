//! Reads: positions through the metadata document's `sort_keys`, rows by `_id`, a few
//! round trips per request whatever its size (never one per row).
//!
//! Layer: the [`Snapshot`] of the MongoDB backend, used outside transactions by readers on
//! connection threads and inside the write transaction by [`super::writer`] (same code,
//! with the transaction's session). Selected keys and columns are reduced on the server to
//! the literal fields asked for (`"calc.energy"` is one field, not a path).
//!
//! Outside a transaction a request reads the metadata, then the rows: another daemon may
//! write in between (MongoDB offers no snapshot across calls here, so `snapshots` is off).
//! A row deleted in that window is reported as such, never read as another row.

use std::cell::Cell;
use std::collections::HashMap;
use std::ops::ControlFlow;

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Key, Row};
use mongodb::bson::{Bson, Document, doc};

use super::layout::{
    self, COUNT, DATA, META_ID, NEXT_SORT_KEY, SCHEMA, SORT_KEYS, as_int, data_to_row, literal,
    meta_filter, sort_keys_filter,
};
use super::query::{Query, int};
use crate::backend::{Error, ErrorKind, Result, Snapshot};

/// What the metadata document says, without the sort keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Rows.
    pub count: u64,
    /// Next sort key to hand out.
    pub next_sort_key: i64,
}

/// A read view over one collection.
#[derive(Debug)]
pub struct MongoSnapshot<'a> {
    pub(super) q: Query<'a>,
    /// The metadata, read on first use (and kept current by the writer in a transaction).
    pub(super) meta: Cell<Option<Meta>>,
}

impl<'a> MongoSnapshot<'a> {
    /// A view reading through `q`.
    pub fn new(q: Query<'a>) -> Self {
        Self {
            q,
            meta: Cell::new(None),
        }
    }

    /// The metadata (one round trip the first time).
    pub fn meta(&self) -> Result<Meta> {
        if let Some(m) = self.meta.get() {
            return Ok(m);
        }
        let projection = doc! { COUNT: 1, NEXT_SORT_KEY: 1 };
        let d = self
            .q
            .find_one(meta_filter(), projection, "reading the metadata")?;
        self.learn_meta(d.as_ref())
    }

    /// The metadata from a read of the metadata document that also projected `count` and
    /// `next_sort_key` (`None`: no document), unless already known.
    fn learn_meta(&self, d: Option<&Document>) -> Result<Meta> {
        if let Some(m) = self.meta.get() {
            return Ok(m);
        }
        let m = match d {
            None => Meta::default(),
            Some(d) => {
                let count = match d.get(COUNT).and_then(as_int) {
                    Some(c) => c,
                    // Written by something that kept no count: the sort keys say it.
                    None => self.all_sort_keys()?.len() as i64,
                };
                Meta {
                    count: u64::try_from(count)
                        .map_err(|_| Error::corrupt(format!("metadata count is {count}")))?,
                    next_sort_key: d.get(NEXT_SORT_KEY).and_then(as_int).unwrap_or(0),
                }
            }
        };
        self.meta.set(Some(m));
        Ok(m)
    }

    fn all_sort_keys(&self) -> Result<Vec<i64>> {
        let d = self.q.find_one(
            meta_filter(),
            doc! { SORT_KEYS: 1 },
            "reading the sort keys",
        )?;
        match d.as_ref().and_then(|d| d.get(SORT_KEYS)) {
            None => Ok(Vec::new()),
            Some(b) => ints(b),
        }
    }

    /// The sort keys at row positions `indices` (in order, duplicates allowed), in one
    /// round trip: a slice when the positions are close together, else picked on the server.
    pub fn sort_keys_at(&self, indices: &[u64]) -> Result<Vec<i64>> {
        let (Some(&lo), Some(&hi)) = (indices.iter().min(), indices.iter().max()) else {
            return Ok(Vec::new());
        };
        let span = hi - lo + 1;
        let picked = if span <= 2 * indices.len() as u64 + 64 {
            let projection = doc! {
                "_id": 1, COUNT: 1, NEXT_SORT_KEY: 1,
                SORT_KEYS: { "$slice": [int(lo), int(span)] },
            };
            let d = self
                .q
                .find_one(meta_filter(), projection, "reading the sort keys")?;
            self.learn_meta(d.as_ref())?;
            let slice = match d.as_ref().and_then(|d| d.get(SORT_KEYS)) {
                Some(b) => ints(b)?,
                None => Vec::new(),
            };
            indices
                .iter()
                .map(|&i| slice.get((i - lo) as usize).copied())
                .collect::<Vec<_>>()
        } else {
            let at: Vec<Bson> = indices.iter().map(|&i| int(i)).collect();
            let pipeline = vec![
                doc! { "$match": { "_id": META_ID } },
                doc! { "$project": { COUNT: 1, NEXT_SORT_KEY: 1, "sks": { "$map": {
                    "input": literal(at),
                    "in": { "$arrayElemAt": ["$sort_keys", "$$this"] },
                } } } },
            ];
            let docs = self.q.aggregate(pipeline, "reading the sort keys")?;
            self.learn_meta(docs.first())?;
            let got = match docs.first().and_then(|d| d.get("sks")) {
                Some(Bson::Array(items)) => items.iter().map(as_int).collect(),
                _ => Vec::new(),
            };
            indices
                .iter()
                .enumerate()
                .map(|(j, _)| got.get(j).copied().flatten())
                .collect()
        };
        // The count came with the sort keys (or was known): bounds checked in the same read.
        let count = self.meta()?.count;
        if let Some(&past) = indices.iter().find(|&&i| i >= count) {
            return Err(Error::out_of_range(past, count));
        }
        picked
            .into_iter()
            .zip(indices)
            .map(|(sk, &i)| sk.ok_or_else(|| moved(i)))
            .collect()
    }

    /// The `data` of the rows with sort keys `sks` (all fields, or only `keys`), by sort
    /// key, in one round trip.
    pub fn data_by_sort_key(
        &self,
        sks: &[i64],
        keys: Option<&[String]>,
    ) -> Result<HashMap<i64, Bson>> {
        let mut unique = sks.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let docs = match keys {
            None => self.q.find(sort_keys_filter(&unique), "reading rows")?,
            Some(keys) => self.q.aggregate(
                vec![
                    doc! { "$match": sort_keys_filter(&unique) },
                    doc! { "$project": { DATA: layout::select_fields_expr(keys) } },
                ],
                "reading rows",
            )?,
        };
        let mut out = HashMap::with_capacity(docs.len());
        for mut d in docs {
            let Some(sk) = d.get("_id").and_then(as_int) else {
                continue;
            };
            out.insert(sk, d.remove(DATA).unwrap_or(Bson::Null));
        }
        Ok(out)
    }

    /// Rows at `indices` (placeholders as `None`), optionally reduced to `keys`.
    pub fn rows(&self, indices: &[u64], keys: Option<&[Key]>) -> Result<Vec<Option<Row>>> {
        let names = keys.map(names).transpose()?;
        let sks = self.sort_keys_at(indices)?;
        let data = self.data_by_sort_key(&sks, names.as_deref())?;
        sks.iter()
            .zip(indices)
            .map(|(sk, &i)| match data.get(sk) {
                Some(d) => data_to_row(Some(d)),
                None => Err(moved(i)),
            })
            .collect()
    }
}

/// Keys as field names (a key that cannot be one is in no row).
fn names(keys: &[Key]) -> Result<Vec<String>> {
    Ok(keys
        .iter()
        .filter_map(|k| layout::field_name(k).ok())
        .collect())
}

/// A row that another writer removed between reading positions and reading rows.
fn moved(index: u64) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "row {index} was deleted or moved by another writer while it was read; read it again"
        ),
    )
}

fn ints(b: &Bson) -> Result<Vec<i64>> {
    match b {
        Bson::Array(items) => items
            .iter()
            .map(|x| as_int(x).ok_or_else(|| Error::corrupt("a sort key is not an integer")))
            .collect(),
        _ => Err(Error::corrupt("sort_keys is not an array")),
    }
}

impl Snapshot for MongoSnapshot<'_> {
    fn len(&self) -> Result<u64> {
        Ok(self.meta()?.count)
    }

    /// Row reads fetch the count with the sort keys ([`MongoSnapshot::sort_keys_at`]).
    fn checks_bounds(&self) -> bool {
        true
    }

    fn get(&self, index: u64, keys: Option<&[Key]>) -> Result<Option<Row>> {
        Ok(self.rows(&[index], keys)?.pop().flatten())
    }

    fn visit_rows(
        &self,
        indices: &[u64],
        keys: Option<&[Key]>,
        f: &mut dyn FnMut(Option<&[FieldRef<'_>]>) -> ControlFlow<()>,
    ) -> Result<()> {
        for row in self.rows(indices, keys)? {
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
        let Ok(name) = layout::field_name(key) else {
            return Ok(vec![None; indices.len()]);
        };
        let sks = self.sort_keys_at(indices)?;
        let names = [name];
        let data = self.data_by_sort_key(&sks, Some(&names))?;
        sks.iter()
            .zip(indices)
            .map(|(sk, &i)| match data.get(sk) {
                Some(Bson::Document(d)) => d
                    .get(&names[0])
                    .map(|v| layout::bson_to_field(v).map(|b| b.into_vec()))
                    .transpose(),
                Some(_) => Ok(None),
                None => Err(moved(i)),
            })
            .collect()
    }

    fn keys(&self, index: u64) -> Result<Vec<Key>> {
        let sk = self.sort_keys_at(&[index])?[0];
        let pipeline = vec![
            doc! { "$match": { "_id": sk } },
            doc! { "$project": { "k": { "$map": {
                "input": { "$objectToArray": { "$ifNull": ["$data", {}] } },
                "in": "$$this.k",
            } } } },
        ];
        let docs = self.q.aggregate(pipeline, "reading a row's keys")?;
        let Some(d) = docs.first() else {
            return Err(moved(index));
        };
        Ok(strings(d.get("k")))
    }

    fn schema(&self) -> Result<Vec<Key>> {
        let pipeline = vec![
            doc! { "$match": layout::rows_filter() },
            doc! { "$project": { "k": { "$map": {
                "input": { "$objectToArray": { "$ifNull": ["$data", {}] } },
                "in": "$$this.k",
            } } } },
            doc! { "$unwind": "$k" },
            doc! { "$group": { "_id": "$k" } },
        ];
        let docs = self.q.aggregate(pipeline, "reading the schema")?;
        let recorded = self
            .q
            .find_one(meta_filter(), doc! { SCHEMA: 1 }, "reading the schema")?;
        let mut keys: Vec<Key> = docs
            .iter()
            .filter_map(|d| d.get_str("_id").ok())
            .map(|s| Key::from(s.as_bytes().to_vec()))
            .chain(strings(recorded.as_ref().and_then(|d| d.get(SCHEMA))))
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

fn strings(b: Option<&Bson>) -> Vec<Key> {
    match b {
        Some(Bson::Array(items)) => items
            .iter()
            .filter_map(Bson::as_str)
            .map(|s| Key::from(s.as_bytes().to_vec()))
            .collect(),
        _ => Vec::new(),
    }
}
