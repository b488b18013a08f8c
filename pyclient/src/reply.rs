//! The replies of the daemon read without copying: the hot ones (`Row`, `Rows`, `Column`,
//! `Len`, `Ok`) parsed by hand straight from the receive buffer, so stored values reach the
//! decoder as borrowed slices; every other reply through the protocol crate's serde types.
//! The unit tests in [`crate::client`] pin the hand parser to what `frame::encode` writes.

use std::ops::Range;

use asebytes_protocol::codec::{Corrupt, Reader};
use asebytes_protocol::{Response, WireError, frame};

use crate::errors::ClientError;

/// One field of a row: key and stored value, borrowed from the receive buffer.
pub type Field<'a> = (&'a [u8], &'a [u8]);

/// Rows as one flat field list plus each row's range (`None` for a placeholder).
#[derive(Debug, Default, PartialEq)]
pub struct RowsRef<'a> {
    /// Every field of every row, in order.
    pub fields: Vec<Field<'a>>,
    /// Per row: its slice of `fields`, or `None` for a placeholder.
    pub rows: Vec<Option<Range<usize>>>,
}

impl<'a> RowsRef<'a> {
    /// The fields of row `i` (`None` for a placeholder).
    pub fn row(&self, i: usize) -> Option<&[Field<'a>]> {
        self.rows[i].clone().map(|r| &self.fields[r])
    }
}

/// A reply, borrowing from the connection's buffer where it matters.
#[derive(Debug, PartialEq)]
pub enum Reply<'a> {
    /// `Ok`.
    Ok,
    /// `Pong`.
    Pong,
    /// `Len(n)`.
    Len(u64),
    /// `Row`: one row (`RowsRef` with one entry) or a placeholder.
    Row(RowsRef<'a>),
    /// `Rows`.
    Rows(RowsRef<'a>),
    /// `Column`: a value or `None` per row.
    Column(Vec<Option<&'a [u8]>>),
    /// `Error`.
    Error(WireError),
    /// Anything else, decoded by serde.
    Other(Response),
}

impl Reply<'_> {
    /// A name for "unexpected reply" messages.
    pub fn name(&self) -> String {
        match self {
            Reply::Ok => "Ok".into(),
            Reply::Pong => "Pong".into(),
            Reply::Len(_) => "Len".into(),
            Reply::Row(_) => "Row".into(),
            Reply::Rows(_) => "Rows".into(),
            Reply::Column(_) => "Column".into(),
            Reply::Error(e) => format!("Error({e})"),
            Reply::Other(r) => format!("{r:?}").chars().take(80).collect(),
        }
    }

    /// The reply as an error if it is one.
    pub fn into_result(self) -> Result<Self, ClientError> {
        match self {
            Reply::Error(e) => Err(ClientError::Wire(e)),
            other => Ok(other),
        }
    }
}

/// Parses a frame body: `{"id": u64, "body": <externally tagged Response>}`.
pub fn parse_reply(body: &[u8]) -> Result<(u64, Reply<'_>), Corrupt> {
    let mut r = Reader::new(body);
    let n = r.read_map_len()?;
    let mut id = None;
    let mut reply = None;
    for _ in 0..n {
        match r.read_str()? {
            "id" => id = Some(r.read_u64()?),
            "body" => reply = Some(parse_body(&mut r, body)?),
            _ => r.skip()?,
        }
    }
    match (id, reply) {
        (Some(id), Some(reply)) => Ok((id, reply)),
        _ => Err(Corrupt("reply frame lacks id or body".into())),
    }
}

fn parse_body<'a>(r: &mut Reader<'a>, whole: &'a [u8]) -> Result<Reply<'a>, Corrupt> {
    use rmp::Marker;
    match r.peek_marker()? {
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => match r.read_str()? {
            "Ok" => return Ok(Reply::Ok),
            "Pong" => return Ok(Reply::Pong),
            _ => {}
        },
        Marker::FixMap(1) => {
            let at = r.pos();
            r.marker()?;
            match r.read_str()? {
                "Len" => return Ok(Reply::Len(r.read_u64()?)),
                "Row" => {
                    let mut rows = RowsRef::default();
                    read_opt_row(r, &mut rows)?;
                    return Ok(Reply::Row(rows));
                }
                "Rows" => {
                    let n = r.read_array_len()?;
                    if n > r.remaining() {
                        return Err(Corrupt("Rows announces more rows than bytes remain".into()));
                    }
                    let mut rows = RowsRef {
                        fields: Vec::new(),
                        rows: Vec::with_capacity(n),
                    };
                    for _ in 0..n {
                        read_opt_row(r, &mut rows)?;
                    }
                    return Ok(Reply::Rows(rows));
                }
                "Column" => {
                    let n = r.read_array_len()?;
                    if n > r.remaining() {
                        return Err(Corrupt(
                            "Column announces more values than bytes remain".into(),
                        ));
                    }
                    let mut col = Vec::with_capacity(n);
                    for _ in 0..n {
                        col.push(if r.eat_nil()? {
                            None
                        } else {
                            Some(r.read_bin()?)
                        });
                    }
                    return Ok(Reply::Column(col));
                }
                _ => r.seek(at),
            }
        }
        _ => {}
    }
    // Not a hot reply: let serde read the whole envelope.
    r.skip()?;
    let env = frame::decode::<Response>(whole).map_err(|e| Corrupt(e.to_string()))?;
    Ok(match env.body {
        Response::Error(e) => Reply::Error(e),
        other => Reply::Other(other),
    })
}

/// Reads `nil` or `[[key, value], ...]` into `rows`.
fn read_opt_row<'a>(r: &mut Reader<'a>, rows: &mut RowsRef<'a>) -> Result<(), Corrupt> {
    if r.eat_nil()? {
        rows.rows.push(None);
        return Ok(());
    }
    let n = r.read_array_len()?;
    if n > r.remaining() {
        return Err(Corrupt(
            "row announces more fields than bytes remain".into(),
        ));
    }
    let start = rows.fields.len();
    rows.fields.reserve(n);
    for _ in 0..n {
        if r.read_array_len()? != 2 {
            return Err(Corrupt("a row field is not a [key, value] pair".into()));
        }
        let k = r.read_bin()?;
        let v = r.read_bin()?;
        rows.fields.push((k, v));
    }
    rows.rows.push(Some(start..rows.fields.len()));
    Ok(())
}
