//! Request semantics: the one place where the contract's rules on indices, bounds, key
//! strictness, placeholders and capabilities are applied.
//!
//! Layer: inside [`crate::store`], between the handle/actor and the [`crate::backend`]
//! traits. Backends never see a raw index: reads normalise against the length of the
//! snapshot they read, writes against the length inside their own write transaction, so a
//! concurrent writer can never make a normalised index stale.

use asebytes_protocol::request::{DropKeys, Get, GetMany};
use asebytes_protocol::{ErrorCode, Key, Request, Response, Row, WireError};

use crate::backend::row::{dedup, unique};
use crate::backend::{self, BackendInfo, Snapshot, Writer};

/// Most placeholder rows one `Reserve` may append: a bigger count would make the daemon
/// allocate without bound on a single request.
pub(crate) const MAX_RESERVE: u64 = 1 << 24;

/// How the store handle routes a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Answered from a snapshot.
    Read,
    /// Queued on the writer actor and group-committed.
    Write,
    /// Deletes the container; runs on the actor outside any write transaction.
    Remove,
    /// Waits on the connection's thread for the store to grow (live follow).
    Follow,
    /// Not a store request.
    Other,
}

/// Classifies a request.
pub(crate) fn route(req: &Request) -> Route {
    match req {
        Request::Len(_)
        | Request::Get(_)
        | Request::GetMany(_)
        | Request::GetColumn(_)
        | Request::Keys(_)
        | Request::Schema(_) => Route::Read,
        Request::Extend(_)
        | Request::Insert(_)
        | Request::Set(_)
        | Request::SetMany(_)
        | Request::Update(_)
        | Request::UpdateMany(_)
        | Request::Delete(_)
        | Request::DeleteRange(_)
        | Request::DropKeys(_)
        | Request::Reserve(_)
        | Request::Clear(_) => Route::Write,
        Request::Remove(_) => Route::Remove,
        Request::Follow(_) => Route::Follow,
        _ => Route::Other,
    }
}

/// Refuses a request the store cannot do, before anything is queued: a store opened
/// without `write` is read-only; a missing variant flag is `Unsupported`, naming the
/// backend and the operation.
pub(crate) fn check_capabilities(req: &Request, info: &BackendInfo) -> Result<(), WireError> {
    let caps = &info.caps;
    let route = route(req);
    if matches!(route, Route::Write | Route::Remove) && !caps.write {
        return Err(read_only());
    }
    let allowed = match req {
        Request::Get(Get { keys: Some(_), .. })
        | Request::GetMany(GetMany { keys: Some(_), .. }) => caps.read && caps.read_with_keys,
        _ if route == Route::Read => caps.read,
        Request::Insert(_) => caps.write_can_insert,
        Request::Set(_) | Request::SetMany(_) => caps.write_can_set,
        Request::Update(_) | Request::UpdateMany(_) => caps.write_can_update,
        Request::Delete(_) | Request::DeleteRange(_) => caps.write_can_delete,
        Request::DropKeys(_) => caps.write_can_drop_keys,
        Request::Remove(_) => caps.write_can_remove,
        _ => true,
    };
    if allowed {
        Ok(())
    } else {
        let op = match req {
            Request::Get(_) | Request::GetMany(_) if caps.read => "reading selected keys",
            other => other.name(),
        };
        Err(wire(backend::Error::unsupported(info.scheme, op)))
    }
}

/// The refusal every write gets on a read-only store or from a read-only client.
pub(crate) fn read_only() -> WireError {
    WireError::new(ErrorCode::ReadOnly, "Backend is read-only")
}

/// A backend failure as it travels; the message includes the native cause. A full disk
/// is also logged: the user who finds the daemon log should find why writes failed.
pub(crate) fn wire(e: backend::Error) -> WireError {
    if e.kind == backend::ErrorKind::DiskFull {
        log::error!("{e}");
    }
    match e.range {
        Some((index, len)) => {
            WireError::index_out_of_range(i64::try_from(index).unwrap_or(i64::MAX), len)
        }
        None => WireError::new(e.kind.code(), e.to_string()),
    }
}

/// A write as the actor applies it: payload already in its stored shape (duplicate keys
/// collapsed, empty rows made placeholders), indices still as the caller gave them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WriteOp {
    /// Append rows atomically.
    Extend { rows: Vec<Option<Row>> },
    /// Insert one row (clamped like `list.insert`).
    Insert { index: i64, row: Option<Row> },
    /// Replace rows (`Set` is the one-row case, which appends when its index is the
    /// length: `db[len(db)] = row`).
    Set {
        indices: Vec<i64>,
        rows: Vec<Option<Row>>,
        append_at_len: bool,
    },
    /// Merge keys into rows (`Update` is the one-row case).
    Update { indices: Vec<i64>, data: Vec<Row> },
    /// Delete one row.
    Delete { index: i64 },
    /// Delete `start..stop`.
    DeleteRange { start: u64, stop: u64 },
    /// Remove keys from rows (all rows when `None`).
    DropKeys {
        keys: Vec<Key>,
        indices: Option<Vec<i64>>,
    },
    /// Append `n` placeholders.
    Reserve { n: u64 },
    /// Remove every row.
    Clear,
}

impl WriteOp {
    /// Shapes a write request. Fails only on input that is wrong whatever the store holds
    /// (mismatched lengths, an oversized reserve); `None` for a request that is not a write.
    pub(crate) fn from_request(req: Request) -> Option<Result<WriteOp, WireError>> {
        Some(Ok(match req {
            Request::Extend(x) => WriteOp::Extend {
                rows: x.rows.into_iter().map(stored_row).collect(),
            },
            Request::Insert(x) => WriteOp::Insert {
                index: x.index,
                row: stored_row(x.row),
            },
            Request::Set(x) => WriteOp::Set {
                indices: vec![x.index],
                rows: vec![stored_row(x.row)],
                append_at_len: true,
            },
            Request::SetMany(x) => {
                if x.indices.len() != x.rows.len() {
                    return Some(Err(length_mismatch(
                        "set_many",
                        x.indices.len(),
                        "rows",
                        x.rows.len(),
                    )));
                }
                WriteOp::Set {
                    indices: x.indices,
                    rows: x.rows.into_iter().map(stored_row).collect(),
                    append_at_len: false,
                }
            }
            Request::Update(x) => WriteOp::Update {
                indices: vec![x.index],
                data: vec![dedup(x.data)],
            },
            Request::UpdateMany(x) => {
                if x.indices.len() != x.data.len() {
                    return Some(Err(length_mismatch(
                        "update_many",
                        x.indices.len(),
                        "data",
                        x.data.len(),
                    )));
                }
                WriteOp::Update {
                    indices: x.indices,
                    data: x.data.into_iter().map(dedup).collect(),
                }
            }
            Request::Delete(x) => WriteOp::Delete { index: x.index },
            Request::DeleteRange(x) => WriteOp::DeleteRange {
                start: x.start,
                stop: x.stop,
            },
            Request::DropKeys(DropKeys { keys, indices, .. }) => WriteOp::DropKeys {
                keys: unique(&keys),
                indices,
            },
            Request::Reserve(x) => {
                if x.n > MAX_RESERVE {
                    return Some(Err(WireError::new(
                        ErrorCode::InvalidArgument,
                        format!(
                            "reserve({}) exceeds the limit of {MAX_RESERVE} rows per call; reserve in steps",
                            x.n
                        ),
                    )));
                }
                WriteOp::Reserve { n: x.n }
            }
            Request::Clear(_) => WriteOp::Clear,
            _ => return None,
        }))
    }

    /// Key and value bytes carried, to bound one group commit.
    pub(crate) fn payload_bytes(&self) -> usize {
        fn row_bytes(row: &Row) -> usize {
            row.iter().map(|(k, v)| k.len() + v.len()).sum()
        }
        match self {
            WriteOp::Extend { rows } | WriteOp::Set { rows, .. } => {
                rows.iter().flatten().map(row_bytes).sum()
            }
            WriteOp::Insert { row, .. } => row.as_ref().map_or(0, row_bytes),
            WriteOp::Update { data, .. } => data.iter().map(row_bytes).sum(),
            WriteOp::DropKeys { keys, .. } => keys.iter().map(|k| k.len()).sum(),
            WriteOp::Delete { .. }
            | WriteOp::DeleteRange { .. }
            | WriteOp::Reserve { .. }
            | WriteOp::Clear => 0,
        }
    }
}

/// Applies one write inside a transaction.
///
/// The outer error is a backend failure: the transaction must be aborted, because an
/// operation made of several backend calls may be half done. The inner error is a
/// rejection decided before anything was mutated, so the transaction stays usable for the
/// rest of a group-committed batch.
pub(crate) fn apply(
    w: &mut dyn Writer,
    op: &WriteOp,
) -> backend::Result<Result<Response, WireError>> {
    let len = w.len()?;
    let out = match op {
        WriteOp::Extend { rows } => {
            if rows.is_empty() {
                Response::Len(len)
            } else {
                Response::Len(w.extend(rows.clone())?)
            }
        }
        WriteOp::Reserve { n } => {
            if *n == 0 {
                Response::Len(len)
            } else {
                // `n` is capped by MAX_RESERVE, so it fits a usize.
                Response::Len(w.extend(vec![None; *n as usize])?)
            }
        }
        WriteOp::Insert { index, row } => {
            w.insert(clamp(*index, len), row.clone())?;
            Response::Len(len + 1)
        }
        // `db[len(db)] = row` appends (CONTRACT "Indexing"); only the one-row `Set`, so a
        // view's write-back (`SetMany`) never grows the store.
        WriteOp::Set {
            indices,
            rows,
            append_at_len: true,
        } if u64::try_from(indices[0]).is_ok_and(|i| i == len) => {
            w.extend(rows.clone())?;
            Response::Ok
        }
        WriteOp::Set { indices, rows, .. } => {
            let at = match normalise_all(indices, len) {
                Ok(at) => at,
                Err(e) => return Ok(Err(e)),
            };
            for (&i, row) in at.iter().zip(rows) {
                w.set(i, row.clone())?;
            }
            Response::Ok
        }
        WriteOp::Update { indices, data } => {
            let at = match normalise_all(indices, len) {
                Ok(at) => at,
                Err(e) => return Ok(Err(e)),
            };
            match one_key(data) {
                // A column write: one key over many rows, written as array slices where
                // the backend stores columns.
                Some(key) if data.len() > 1 => {
                    let values = data.iter().map(|row| row[0].1.clone()).collect();
                    w.update_column(key, &at, values)?;
                }
                _ => {
                    for (&i, data) in at.iter().zip(data) {
                        if !data.is_empty() {
                            w.update(i, data.clone())?;
                        }
                    }
                }
            }
            Response::Ok
        }
        WriteOp::Delete { index } => {
            let i = match normalise(*index, len) {
                Ok(i) => i,
                Err(e) => return Ok(Err(e)),
            };
            w.delete_range(i, i + 1)?;
            Response::Len(len - 1)
        }
        WriteOp::DeleteRange { start, stop } => {
            if start > stop {
                return Ok(Err(WireError::new(
                    ErrorCode::InvalidArgument,
                    format!("delete_range start {start} is greater than stop {stop}"),
                )));
            }
            if *stop > len {
                return Ok(Err(WireError::index_out_of_range(
                    i64::try_from(*stop).unwrap_or(i64::MAX),
                    len,
                )));
            }
            if start < stop {
                w.delete_range(*start, *stop)?;
            }
            Response::Len(len - (stop - start))
        }
        WriteOp::DropKeys { keys, indices } => {
            let at = match indices {
                Some(ix) => match normalise_all(ix, len) {
                    Ok(mut at) => {
                        at.sort_unstable();
                        at.dedup();
                        Some(at)
                    }
                    Err(e) => return Ok(Err(e)),
                },
                None => None,
            };
            if !keys.is_empty() && at.as_ref().is_none_or(|at| !at.is_empty()) {
                w.drop_keys(keys, at.as_deref())?;
            }
            Response::Ok
        }
        WriteOp::Clear => {
            w.clear()?;
            Response::Ok
        }
    };
    Ok(Ok(out))
}

/// The key every row of an update writes, if each writes exactly that one key.
fn one_key(data: &[Row]) -> Option<&Key> {
    let key = &data.first()?.first()?.0;
    data.iter()
        .all(|row| row.len() == 1 && row[0].0 == *key)
        .then_some(key)
}

/// Python indexing: a negative index counts from the end; the result must be in `[0, len)`.
pub(crate) fn normalise(index: i64, len: u64) -> Result<u64, WireError> {
    let i = if index < 0 {
        i128::from(index) + i128::from(len)
    } else {
        i128::from(index)
    };
    if (0..i128::from(len)).contains(&i) {
        Ok(i as u64)
    } else {
        Err(WireError::index_out_of_range(index, len))
    }
}

/// The positions of `indices` for a read: normalised against the snapshot's length, or,
/// where the backend checks bounds in the read itself ([`Snapshot::checks_bounds`]) and no
/// index counts from the end, passed through without asking the length.
pub(crate) fn positions(snap: &dyn Snapshot, indices: &[i64]) -> Result<Vec<u64>, WireError> {
    if snap.checks_bounds() && indices.iter().all(|&i| i >= 0) {
        return Ok(indices.iter().map(|&i| i.unsigned_abs()).collect());
    }
    normalise_all(indices, snap.len().map_err(wire)?)
}

/// Normalises every index, failing on the first one out of range.
pub(crate) fn normalise_all(indices: &[i64], len: u64) -> Result<Vec<u64>, WireError> {
    indices.iter().map(|&i| normalise(i, len)).collect()
}

/// `list.insert` position: negative counts from the end, then clamped to `[0, len]`.
pub(crate) fn clamp(index: i64, len: u64) -> u64 {
    let i = if index < 0 {
        i128::from(index) + i128::from(len)
    } else {
        i128::from(index)
    };
    i.clamp(0, i128::from(len)) as u64
}

/// The stored shape of a row: repeated keys collapsed, and no keys at all is a placeholder.
fn stored_row(row: Option<Row>) -> Option<Row> {
    row.map(dedup).filter(|r| !r.is_empty())
}

fn length_mismatch(op: &str, n_indices: usize, what: &str, n: usize) -> WireError {
    WireError::new(
        ErrorCode::InvalidArgument,
        format!("{op}: {n_indices} indices but {n} {what}; pass one entry per index"),
    )
}

/// Renders names as Python prints a list of `str`, the form the reference's messages use.
pub(crate) fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| py_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// `repr(s)` of a Python `str`.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_normalise_counts_negatives_from_the_end() {
        assert_eq!(normalise(-1, 3).unwrap(), 2);
        assert_eq!(normalise(-3, 3).unwrap(), 0);
        assert_eq!(normalise(2, 3).unwrap(), 2);
    }

    #[test]
    fn test_normalise_out_of_range_keeps_the_original_index() {
        let e = normalise(-4, 3).unwrap_err();
        assert_eq!(e.message, "Index -4 out of range [0, 3)");
        assert_eq!((e.index, e.len), (Some(-4), Some(3)));
        assert_eq!(
            normalise(3, 3).unwrap_err().code,
            ErrorCode::IndexOutOfRange
        );
        assert_eq!(
            normalise(0, 0).unwrap_err().message,
            "Index 0 out of range [0, 0)"
        );
        assert!(normalise(i64::MIN, u64::MAX).is_ok());
        assert!(normalise(i64::MAX, 0).is_err());
    }

    #[test]
    fn test_clamp_follows_list_insert() {
        assert_eq!(clamp(-100, 3), 0);
        assert_eq!(clamp(-1, 3), 2);
        assert_eq!(clamp(100, 3), 3);
        assert_eq!(clamp(i64::MIN, 0), 0);
        assert_eq!(clamp(i64::MAX, 5), 5);
    }

    #[test]
    fn test_py_repr_matches_python() {
        assert_eq!(py_list(&["a".into(), "b c".into()]), "['a', 'b c']");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_repr("back\\slash\n"), "'back\\\\slash\\n'");
        assert_eq!(py_list(&[]), "[]");
    }

    #[test]
    fn test_stored_row_collapses_duplicates_and_empties() {
        use asebytes_protocol::value::row;
        assert_eq!(
            stored_row(Some(row([("a", "1"), ("b", "2"), ("a", "3")]))),
            Some(row([("a", "3"), ("b", "2")]))
        );
        assert_eq!(stored_row(Some(Row::new())), None);
        assert_eq!(stored_row(None), None);
    }
}
