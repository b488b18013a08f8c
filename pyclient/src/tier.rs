//! How rows are typed on the Python side, and the blob tier on stores that decode values.
//!
//! Layer: between the plans of [`crate::ops`] and the senders ([`crate::store`],
//! [`crate::astore`]). A plan is made before the store is open, for the handle's tier;
//! once the daemon has said what the store is (`Opened.caps`), [`Tier::on`] gives the tier
//! its rows really take and [`Outgoing::aim`] adapts the planned request to it.
//!
//! Why: LMDB and memory keep each value as the bytes given, so a blob row travels as is.
//! A columnar store (capability `typed_values`) decodes every value as msgpack-numpy, so
//! raw bytes would be refused (`b"\x00\xff"`) or retyped (`b"1"` is the int 49). There the
//! blob tier wraps each value as a msgpack bin (stored as a `bytes` value) and unwraps it
//! on the way out; a value written through the object tier reads back as its msgpack
//! bytes, as the reference's `ObjectToBlob` adapter returns.

use asebytes_protocol::codec::Reader;
use asebytes_protocol::codec::layout::write_bin;
use asebytes_protocol::{Bytes, Request, Row};
use pyo3::prelude::*;

use crate::errors::AsebytesValueError;

/// How rows are typed on the Python side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// `dict[str, Any]`, values in the msgpack-numpy layout.
    Object,
    /// `dict[bytes, bytes]`, stored as given.
    Blob,
    /// `dict[bytes, bytes]` on a store with `typed_values`: each value travels as a
    /// msgpack bin. Never a handle's tier: what [`Tier::Blob`] becomes on such a store.
    TypedBlob,
}

impl Tier {
    /// The name the constructors take.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Object => "object",
            Tier::Blob | Tier::TypedBlob => "blob",
        }
    }

    /// The tier a constructor names.
    pub fn parse(tier: &str) -> PyResult<Self> {
        match tier {
            "object" => Ok(Tier::Object),
            "blob" => Ok(Tier::Blob),
            other => Err(AsebytesValueError::new_err(format!(
                "tier must be 'object' or 'blob', got {other:?}"
            ))),
        }
    }

    /// The tier rows take on a store whose backend does (`typed_values`) or does not
    /// decode values.
    pub fn on(self, typed_values: bool) -> Self {
        match self {
            Tier::Blob | Tier::TypedBlob if typed_values => Tier::TypedBlob,
            Tier::TypedBlob => Tier::Blob,
            other => other,
        }
    }

    /// Rows are `dict[bytes, bytes]`.
    pub fn is_blob(self) -> bool {
        self != Tier::Object
    }
}

/// A planned request on its way to a store, and the tier its reply is read in.
#[derive(Debug)]
pub struct Outgoing {
    req: Request,
    tier: Tier,
}

impl Outgoing {
    /// A request planned for a handle of `tier`.
    pub fn new(req: Request, tier: Tier) -> Self {
        Self { req, tier }
    }

    /// Adapts the request to a store that does (`typed_values`) or does not decode
    /// values, returning the tier to read its reply in: blob values are wrapped as bins
    /// the first time it goes to a typed store. A location's backend never changes, so a
    /// wrapped request is never sent elsewhere.
    pub fn aim(&mut self, typed_values: bool) -> PyResult<Tier> {
        let tier = self.tier.on(typed_values);
        if tier == Tier::TypedBlob && self.tier != Tier::TypedBlob {
            wrap_values(&mut self.req)?;
        }
        debug_assert!(!(self.tier == Tier::TypedBlob && tier == Tier::Blob));
        self.tier = tier;
        Ok(tier)
    }

    /// The request as last aimed.
    pub fn req(&self) -> &Request {
        &self.req
    }

    /// The request as last aimed, to point it at a store id.
    pub fn req_mut(&mut self) -> &mut Request {
        &mut self.req
    }

    /// The tier to read the reply in (as last aimed).
    pub fn tier(&self) -> Tier {
        self.tier
    }
}

/// Wraps every value a write request carries as a msgpack bin.
fn wrap_values(req: &mut Request) -> PyResult<()> {
    match req {
        Request::Extend(r) => r.rows.iter_mut().flatten().try_for_each(wrap_row),
        Request::SetMany(r) => r.rows.iter_mut().flatten().try_for_each(wrap_row),
        Request::Insert(r) => r.row.iter_mut().try_for_each(wrap_row),
        Request::Set(r) => r.row.iter_mut().try_for_each(wrap_row),
        Request::Update(r) => wrap_row(&mut r.data),
        Request::UpdateMany(r) => r.data.iter_mut().try_for_each(wrap_row),
        _ => Ok(()),
    }
}

fn wrap_row(row: &mut Row) -> PyResult<()> {
    for (key, value) in row.iter_mut() {
        let mut out = Vec::with_capacity(value.len() + 5);
        write_bin(&mut out, value).map_err(|e| {
            AsebytesValueError::new_err(format!(
                "blob value for key {:?}: {e}",
                String::from_utf8_lossy(key)
            ))
        })?;
        *value = Bytes::from(out);
    }
    Ok(())
}

/// A value read from a typed store as blob bytes: a msgpack bin's payload; any other value
/// (written through the object tier) as its msgpack bytes.
pub fn unwrap(v: &[u8]) -> &[u8] {
    let mut r = Reader::new(v);
    match r.read_bin() {
        Ok(payload) if r.remaining() == 0 => payload,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use asebytes_protocol::request::{Extend, Get, Update};
    use asebytes_protocol::value::row;

    use super::*;

    fn values(req: &Request) -> Vec<Vec<u8>> {
        match req {
            Request::Extend(r) => r
                .rows
                .iter()
                .flatten()
                .flat_map(|row| row.iter().map(|(_, v)| v.to_vec()))
                .collect(),
            Request::Update(r) => r.data.iter().map(|(_, v)| v.to_vec()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn blob_becomes_typed_blob_only_on_a_typed_store() {
        assert_eq!(Tier::Blob.on(true), Tier::TypedBlob);
        assert_eq!(Tier::Blob.on(false), Tier::Blob);
        assert_eq!(Tier::Object.on(true), Tier::Object);
        assert_eq!(Tier::TypedBlob.name(), "blob");
    }

    #[test]
    fn aim_wraps_blob_values_once_for_a_typed_store() {
        let extend = Request::Extend(Extend {
            store: 0,
            rows: vec![
                Some(row([("a", b"1".to_vec()), ("b", vec![0, 0xff])])),
                None,
            ],
        });
        let mut out = Outgoing::new(extend, Tier::Blob);
        out.aim(true).unwrap();
        out.aim(true).unwrap();
        assert_eq!(out.tier(), Tier::TypedBlob);
        let want = [b"\xc4\x011".to_vec(), b"\xc4\x02\x00\xff".to_vec()];
        assert_eq!(values(out.req()), want);
        for (w, raw) in want.iter().zip([&b"1"[..], b"\x00\xff"]) {
            assert_eq!(unwrap(w), raw);
        }
    }

    #[test]
    fn aim_leaves_untyped_stores_and_the_object_tier_alone() {
        let update = || {
            Request::Update(Update {
                store: 0,
                index: 0,
                data: row([("a", b"\x00".to_vec())]),
            })
        };
        let mut blob = Outgoing::new(update(), Tier::Blob);
        blob.aim(false).unwrap();
        assert_eq!(values(blob.req()), [b"\x00".to_vec()]);
        let mut object = Outgoing::new(update(), Tier::Object);
        object.aim(true).unwrap();
        assert_eq!(values(object.req()), [b"\x00".to_vec()]);
        let mut read = Outgoing::new(
            Request::Get(Get {
                store: 0,
                index: 0,
                keys: None,
            }),
            Tier::Blob,
        );
        assert_eq!(read.aim(true).unwrap(), Tier::TypedBlob);
        assert!(matches!(read.req(), Request::Get(_)));
    }

    #[test]
    fn unwrap_keeps_what_is_not_exactly_one_bin() {
        assert_eq!(unwrap(b"\xc4\x00"), b"");
        let long = [&[0xc5, 0x01, 0x00][..], &[7u8; 256]].concat();
        assert_eq!(unwrap(&long), &[7u8; 256]);
        for other in [&b"\x01"[..], b"\xa1x", b"\xc4\x02a", b"\xc4\x01ab", b""] {
            assert_eq!(unwrap(other), other, "{other:?}");
        }
    }
}
