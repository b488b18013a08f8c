//! Reads: positions through the metadata document's `sort_keys`, rows by `_id`, a few
//! round trips per request whatever its size (never one per row).
//!
//! Layer: the [`Snapshot`] of the MongoDB backend, used outside transactions by readers on
//! connection threads and inside the write transaction by [`super::writer`] (same code,
//! with the transaction's session). Selected keys and columns are reduced on the server to
//! the literal fields asked for (`"calc.energy"` is one field, not a path).
//!
//! A read of a few rows whose sort keys the store has seen ([`crate::backend::guess`]) is
//! ONE `find`: the metadata (count and the slice of `sort_keys` at those positions) and the
//! guessed rows by `_id`. The slice confirms each guess; a row is served only under the
//! sort key the slice names, so a guess gone stale (another writer inserted or deleted
//! rows) costs a second call for the right rows, never a wrong row. Other reads (and cold
//! ones) read the metadata, then the rows.
//!
//! Another daemon may write between the metadata and the rows (MongoDB offers no snapshot
//! across documents here, so `snapshots` is off). A row deleted in that window is reported
//! as such, never read as another row.

use std::cell::Cell;
use std::collections::HashMap;
use std::ops::ControlFlow;

use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{Key, Row};
use mongodb::bson::{Bson, Document, doc};

use super::layout::{
    self, COUNT, DATA, META_ID, NEXT_SORT_KEY, SCHEMA, SORT_KEYS, WINDOW, as_int, data_to_row,
    literal, meta_filter, sort_keys_filter, sort_keys_window,
};
use super::query::{Query, int};
use crate::backend::guess::{Guesses, Window};
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
    /// The store's guessed sort keys, for reads in one call (readers only).
    guesses: Option<&'a Guesses>,
}

impl<'a> MongoSnapshot<'a> {
    /// A view reading through `q`.
    pub fn new(q: Query<'a>) -> Self {
        Self {
            q,
            meta: Cell::new(None),
            guesses: None,
        }
    }

    /// A view reading through `q` that reads a few rows in one call when `guesses` knows
    /// their sort keys, and teaches `guesses` what it reads.
    pub fn with_guesses(q: Query<'a>, guesses: &'a Guesses) -> Self {
        Self {
            guesses: Some(guesses),
            ..Self::new(q)
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
                WINDOW: sort_keys_window(int(lo), int(span)),
            };
            let d = self
                .q
                .find_one(meta_filter(), projection, "reading the sort keys")?;
            self.learn_meta(d.as_ref())?;
            let slice = window(d.as_ref())?;
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
        self.checked(indices, picked)
    }

    /// The sort keys `picked` at `indices`, once the count that came with them (or was
    /// known) says every index is in bounds: bounds checked in the same read.
    fn checked(&self, indices: &[u64], picked: Vec<Option<i64>>) -> Result<Vec<i64>> {
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

    /// The sort keys at `indices` and the `data` of those rows (all fields, or only
    /// `keys`) by sort key: one call when the sort keys are guessed right, else two.
    fn locate(
        &self,
        indices: &[u64],
        keys: Option<&[String]>,
    ) -> Result<(Vec<i64>, HashMap<i64, Bson>)> {
        if let Some(g) = self.guesses
            && let Some(w) = g.window(indices)
        {
            return self.locate_guessed(g, w, indices, keys);
        }
        let sks = self.sort_keys_at(indices)?;
        let data = self.data_by_sort_key(&sks, keys)?;
        Ok((sks, data))
    }

    /// [`MongoSnapshot::locate`] in one `find` of the metadata (with the slice `w` of
    /// `sort_keys`) and the guessed rows; the rows the slice does not confirm are read in
    /// a second call.
    fn locate_guessed(
        &self,
        g: &Guesses,
        w: Window,
        indices: &[u64],
        keys: Option<&[String]>,
    ) -> Result<(Vec<i64>, HashMap<i64, Bson>)> {
        let guessed = g.get(indices);
        let mut asked: Vec<i64> = guessed.iter().flatten().copied().collect();
        asked.sort_unstable();
        asked.dedup();
        let ids: Vec<Bson> = std::iter::once(Bson::from(META_ID))
            .chain(asked.iter().map(|&sk| Bson::Int64(sk)))
            .collect();
        let mut projection = doc! {
            COUNT: 1, NEXT_SORT_KEY: 1,
            WINDOW: sort_keys_window(int(w.start), int(w.len)),
        };
        projection.extend(data_projection(keys));
        let docs = self.q.find(
            doc! { "_id": { "$in": ids } },
            Some(projection),
            "reading rows",
        )?;
        let mut meta = None;
        let mut data = HashMap::with_capacity(docs.len());
        for mut d in docs {
            match d.get("_id") {
                Some(Bson::String(id)) if id == META_ID => meta = Some(d),
                Some(id) => {
                    if let Some(sk) = as_int(id) {
                        data.insert(sk, row_data(&mut d, keys));
                    }
                }
                None => {}
            }
        }
        self.learn_meta(meta.as_ref())?;
        let slice = window(meta.as_ref())?;
        let picked = indices
            .iter()
            .map(|&i| slice.get((i - w.start) as usize).copied())
            .collect();
        let sks = self.checked(indices, picked)?;
        if guessed
            .iter()
            .zip(&sks)
            .any(|(guess, sk)| guess.is_some_and(|g| g != *sk))
        {
            // Rows moved since the guesses were made: the other guesses are as stale.
            g.forget();
        }
        g.learn(w.start, &slice);
        let mut missing: Vec<i64> = sks
            .iter()
            .copied()
            .filter(|sk| asked.binary_search(sk).is_err())
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            data.extend(self.data_by_sort_key(&missing, keys)?);
        }
        Ok((sks, data))
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
        let docs = self.q.find(
            sort_keys_filter(&unique),
            Some(data_projection(keys)),
            "reading rows",
        )?;
        let mut out = HashMap::with_capacity(docs.len());
        for mut d in docs {
            let Some(sk) = d.get("_id").and_then(as_int) else {
                continue;
            };
            out.insert(sk, row_data(&mut d, keys));
        }
        Ok(out)
    }

    /// Rows at `indices` (placeholders as `None`), optionally reduced to `keys`.
    pub fn rows(&self, indices: &[u64], keys: Option<&[Key]>) -> Result<Vec<Option<Row>>> {
        let names = keys.map(names).transpose()?;
        let (sks, data) = self.locate(indices, names.as_deref())?;
        sks.iter()
            .zip(indices)
            .map(|(sk, &i)| match data.get(sk) {
                Some(d) => data_to_row(Some(d)),
                None => Err(moved(i)),
            })
            .collect()
    }
}

/// The projection of a row's `data`: all of it, or reduced to `keys` on the server.
fn data_projection(keys: Option<&[String]>) -> Document {
    match keys {
        None => doc! { DATA: 1 },
        Some(keys) => layout::select_fields_projection(keys),
    }
}

/// A row document's `data`, projected by [`data_projection`] (`null` for a placeholder).
fn row_data(d: &mut Document, keys: Option<&[String]>) -> Bson {
    match keys {
        None => d.remove(DATA).unwrap_or(Bson::Null),
        Some(keys) => layout::selected_data(d, keys),
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

/// The slice of `sort_keys` a read projected as [`WINDOW`] (empty without metadata or
/// sort keys).
fn window(meta: Option<&Document>) -> Result<Vec<i64>> {
    match meta.and_then(|d| d.get(WINDOW)) {
        None | Some(Bson::Null) => Ok(Vec::new()),
        Some(b) => ints(b),
    }
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
        let names = [name];
        let (sks, data) = self.locate(indices, Some(&names))?;
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
