//! Read requests: answered from one snapshot, as owned responses ([`read`]) or, for rows,
//! straight into the response frame ([`read_into`]).
//!
//! Layer: inside [`crate::store`], beside [`super::ops`] (whose index and error rules it
//! applies) and above the [`crate::backend`] traits.

use std::ops::ControlFlow;

use asebytes_protocol::frame::{self, RowsFrame};
use asebytes_protocol::request::{Get, GetColumn, GetMany};
use asebytes_protocol::value::FieldRef;
use asebytes_protocol::{ErrorCode, Key, Request, Response, Row, WireError};
use serde_bytes::ByteBuf;

use super::ops::{positions, py_list, wire};
use crate::backend::Snapshot;
use crate::backend::row::unique;

/// Answers a read request from one snapshot.
pub(crate) fn read(snap: &dyn Snapshot, req: &Request) -> Result<Response, WireError> {
    match req {
        Request::Len(_) => Ok(Response::Len(snap.len().map_err(wire)?)),
        Request::Get(g) => {
            let mut rows = Vec::with_capacity(1);
            get(snap, g, &mut rows)?;
            Ok(Response::Row(rows.pop().flatten()))
        }
        Request::GetMany(g) => {
            let mut rows = Vec::with_capacity(g.indices.len());
            get_many(snap, g, &mut rows)?;
            Ok(Response::Rows(rows))
        }
        Request::GetColumn(g) => get_column(snap, g),
        Request::Keys(k) => {
            let at = positions(snap, &[k.index])?;
            Ok(Response::Keys(snap.keys(at[0]).map_err(wire)?))
        }
        Request::Schema(_) => Ok(Response::Keys(snap.schema().map_err(wire)?)),
        other => Err(WireError::new(
            ErrorCode::BadRequest,
            format!("{} is not a read request", other.name()),
        )),
    }
}

/// [`read`], answered as a complete response frame with id `id` appended to `out`.
/// `Get` and `GetMany` rows go from the snapshot into the frame in one copy, with no
/// owned rows in between. On error `out` may hold a partial frame; the caller drops it.
pub(crate) fn read_into(
    snap: &dyn Snapshot,
    req: &Request,
    id: u64,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let finished = match req {
        Request::Get(g) => {
            let mut frame = RowsFrame::row(out, id);
            get(snap, g, &mut frame)?;
            frame.finish()
        }
        Request::GetMany(g) => {
            let mut frame = RowsFrame::rows(out, id, g.indices.len());
            get_many(snap, g, &mut frame)?;
            frame.finish()
        }
        other => frame::encode_into(out, id, &read(snap, other)?),
    };
    finished.map_err(|e| {
        WireError::new(
            ErrorCode::Unexpected,
            format!("cannot encode the answer: {e}"),
        )
    })
}

/// Where the rows of a `Get`/`GetMany` answer go, in order: straight into the response
/// frame ([`read_into`]) or into owned rows ([`read`]).
trait RowSink {
    fn placeholder(&mut self);
    fn row<'a>(&mut self, len: usize, fields: impl Iterator<Item = FieldRef<'a>>);
}

impl RowSink for RowsFrame<'_> {
    fn placeholder(&mut self) {
        RowsFrame::placeholder(self);
    }
    fn row<'a>(&mut self, len: usize, fields: impl Iterator<Item = FieldRef<'a>>) {
        self.row_fields(len, fields);
    }
}

impl RowSink for Vec<Option<Row>> {
    fn placeholder(&mut self) {
        self.push(None);
    }
    fn row<'a>(&mut self, len: usize, fields: impl Iterator<Item = FieldRef<'a>>) {
        let mut row = Row::with_capacity(len);
        row.extend(fields.map(|(k, v)| (ByteBuf::from(k), ByteBuf::from(v))));
        self.push(Some(row));
    }
}

fn get(snap: &dyn Snapshot, g: &Get, sink: &mut impl RowSink) -> Result<(), WireError> {
    let at = positions(snap, &[g.index])?;
    let keys = g.keys.as_deref().map(unique);
    emit_rows(snap, &at, &[g.index], keys.as_deref(), true, sink)
}

fn get_many(snap: &dyn Snapshot, g: &GetMany, sink: &mut impl RowSink) -> Result<(), WireError> {
    let at = positions(snap, &g.indices)?;
    let keys = g.keys.as_deref().map(unique);
    emit_rows(snap, &at, &g.indices, keys.as_deref(), !g.missing_ok, sink)
}

/// Reads the rows at `at` (normalised `given`) into `sink`: every field, or with `keys`
/// (unique) just those, in that order (`[]` still tells a placeholder from a row). With
/// `strict`, a real row lacking a requested key is `NotFound` naming the index as given.
fn emit_rows(
    snap: &dyn Snapshot,
    at: &[u64],
    given: &[i64],
    keys: Option<&[Key]>,
    strict: bool,
    sink: &mut impl RowSink,
) -> Result<(), WireError> {
    let mut seen = 0;
    let mut failed = None;
    snap.visit_rows(at, keys, &mut |row| {
        let index = given.get(seen).copied().unwrap_or_default();
        seen += 1;
        match (row, keys) {
            (None, _) => sink.placeholder(),
            (Some(fields), None) => sink.row(fields.len(), fields.iter().copied()),
            (Some(fields), Some(keys)) => {
                let find = |k: &Key| fields.iter().find(|(have, _)| *have == &k[..]).copied();
                let found = keys.iter().filter(|&k| find(k).is_some()).count();
                if strict && found < keys.len() {
                    let missing: Vec<String> = keys
                        .iter()
                        .filter(|&k| find(k).is_none())
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .collect();
                    failed = Some(WireError::not_found(
                        format!("Invalid keys at index {index}: {}", py_list(&missing)),
                        missing,
                    ));
                    return ControlFlow::Break(());
                }
                sink.row(found, keys.iter().filter_map(find));
            }
        }
        ControlFlow::Continue(())
    })
    .map_err(wire)?;
    if let Some(e) = failed {
        return Err(e);
    }
    // A backend lending the wrong number of rows is a bug there, reported rather than
    // passed on as a misaligned answer.
    if seen != at.len() {
        return Err(WireError::new(
            ErrorCode::Unexpected,
            format!("backend returned {seen} results for {} rows", at.len()),
        ));
    }
    Ok(())
}

fn get_column(snap: &dyn Snapshot, g: &GetColumn) -> Result<Response, WireError> {
    let at = match &g.indices {
        Some(ix) => positions(snap, ix)?,
        None => (0..snap.len().map_err(wire)?).collect(),
    };
    if g.packed
        && let Some(col) = snap.get_column_packed(&g.key, &at).map_err(wire)?
    {
        if col.rows() != at.len() as u64 {
            return Err(WireError::new(
                ErrorCode::Unexpected,
                format!("backend packed {} rows for {} asked", col.rows(), at.len()),
            ));
        }
        if (0..at.len()).all(|r| !col.is_present(r)) {
            refuse_unknown_key(snap, &g.key, &at)?;
        }
        return Ok(Response::Packed(col));
    }
    let values = checked_count(snap.get_column(&g.key, &at).map_err(wire)?, at.len())?;
    if values.iter().all(Option::is_none) {
        refuse_unknown_key(snap, &g.key, &at)?;
    }
    Ok(Response::Column(
        values.into_iter().map(|v| v.map(ByteBuf::from)).collect(),
    ))
}

/// For a column that came back empty everywhere: a key no selected real row has is a
/// typo (`KeyError`), but a selection of placeholders alone is just empty. Only all-empty
/// columns pay for this.
fn refuse_unknown_key(snap: &dyn Snapshot, key: &Key, at: &[u64]) -> Result<(), WireError> {
    for &i in at {
        if !snap.keys(i).map_err(wire)?.is_empty() {
            let name = String::from_utf8_lossy(key).into_owned();
            return Err(WireError::not_found(name.clone(), vec![name]));
        }
    }
    Ok(())
}

/// A backend returning the wrong number of results is a bug there, reported rather than
/// passed on as a misaligned answer.
fn checked_count<T>(items: Vec<T>, want: usize) -> Result<Vec<T>, WireError> {
    if items.len() == want {
        Ok(items)
    } else {
        Err(WireError::new(
            ErrorCode::Unexpected,
            format!("backend returned {} results for {want} rows", items.len()),
        ))
    }
}
