//! Every message survives encode → frame → decode unchanged, at every protocol version,
//! and arbitrary bytes never make the decoder panic.

use asebytes_protocol::capability::Capabilities;
use asebytes_protocol::error::{ErrorCode, WireError};
use asebytes_protocol::frame::{self, Envelope, HEADER_LEN, RowsFrame};
use asebytes_protocol::handshake::{Hello, HelloReply, Welcome};
use asebytes_protocol::published::SlotRef;
use asebytes_protocol::request::*;
use asebytes_protocol::response::{ClientStatus, Committed, Opened, Response, Status, StoreStatus};
use asebytes_protocol::value::{FieldRef, key, row};
use asebytes_protocol::version;
use asebytes_protocol::{OptionValue, PackedColumn};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(id: u64, msg: T) {
    let bytes = frame::encode(id, &msg).expect("encode");
    let len = u32::from_be_bytes(bytes[..HEADER_LEN].try_into().unwrap()) as usize;
    assert_eq!(
        len,
        bytes.len() - HEADER_LEN,
        "length prefix matches the body"
    );
    let back: Envelope<T> = frame::decode(&bytes[HEADER_LEN..]).expect("decode");
    assert_eq!(back.id, id);
    assert_eq!(back.body, msg);
}

fn sample_row() -> asebytes_protocol::Row {
    row([
        ("calc.energy", vec![0xcb, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("info.tag", b"\xa4done".to_vec()),
    ])
}

fn all_requests() -> Vec<Request> {
    let store = 7;
    vec![
        Request::Ping,
        Request::Status,
        Request::Shutdown,
        Request::Open(Open {
            location: "/tmp/x.lmdb".into(),
            group: Some("train".into()),
            readonly: true,
            map_size: Some(1 << 20),
            options: Default::default(),
        }),
        Request::Open(Open {
            location: "/tmp/x.zarr".into(),
            options: [
                ("compressor".to_string(), OptionValue::Str("zstd".into())),
                ("clevel".to_string(), OptionValue::Int(9)),
                ("shuffle".to_string(), OptionValue::Bool(false)),
                ("ratio".to_string(), OptionValue::Float(0.5)),
            ]
            .into_iter()
            .collect(),
            ..Open::default()
        }),
        Request::Close(StoreRef { store }),
        Request::Len(StoreRef { store }),
        Request::Get(Get {
            store,
            index: -1,
            keys: Some(vec![key("calc.energy")]),
        }),
        Request::GetMany(GetMany {
            store,
            indices: vec![0, 5, -2],
            keys: None,
            missing_ok: true,
        }),
        Request::GetColumn(GetColumn {
            store,
            key: key("calc.energy"),
            indices: Some(vec![1, 2]),
            packed: false,
        }),
        Request::GetColumn(GetColumn {
            store,
            key: key("arrays.positions"),
            indices: None,
            packed: true,
        }),
        Request::Keys(Keys { store, index: 3 }),
        Request::Schema(StoreRef { store }),
        Request::Extend(Extend {
            store,
            rows: vec![Some(sample_row()), None, Some(vec![])],
        }),
        Request::Insert(Insert {
            store,
            index: 1,
            row: None,
        }),
        Request::Set(Set {
            store,
            index: 0,
            row: Some(sample_row()),
        }),
        Request::SetMany(SetMany {
            store,
            indices: vec![0, 1],
            rows: vec![None, Some(sample_row())],
        }),
        Request::Update(Update {
            store,
            index: 2,
            data: sample_row(),
        }),
        Request::UpdateMany(UpdateMany {
            store,
            indices: vec![0, 1],
            data: vec![sample_row(), vec![]],
        }),
        Request::Delete(Delete { store, index: -1 }),
        Request::DeleteRange(DeleteRange {
            store,
            start: 1,
            stop: 4,
        }),
        Request::DropKeys(DropKeys {
            store,
            keys: vec![key("info.tag")],
            indices: None,
        }),
        Request::Reserve(Reserve { store, n: 10 }),
        Request::Clear(StoreRef { store }),
        Request::Remove(StoreRef { store }),
        Request::ListGroups(ListGroups {
            location: "/tmp/x.lmdb".into(),
        }),
        Request::Follow(Follow {
            store,
            from: 12,
            timeout_ms: 500,
        }),
    ]
}

fn all_responses() -> Vec<Response> {
    vec![
        Response::Ok,
        Response::Pong,
        Response::Len(42),
        Response::Opened(Opened {
            store: 3,
            canonical: "lmdb:///tmp/x.lmdb#default".into(),
            backend: "lmdb".into(),
            caps: Capabilities::all(),
            len: 9,
            published: Some(SlotRef {
                index: 2,
                tag: 77,
                epoch: 5,
            }),
        }),
        Response::Row(Some(sample_row())),
        Response::Row(None),
        Response::Rows(vec![Some(sample_row()), None]),
        Response::Column(vec![Some(serde_bytes::ByteBuf::from(vec![1, 2])), None]),
        Response::Packed(PackedColumn {
            dtype: "<f8".into(),
            shape: vec![5, 3],
            data: serde_bytes::ByteBuf::from(vec![0; 120]),
            present: Some(serde_bytes::ByteBuf::from(vec![1, 0])),
            offsets: Some(vec![0, 5, 5]),
        }),
        Response::Keys(vec![key("a"), key("b")]),
        Response::Groups(vec!["default".into(), "train".into()]),
        Response::Status(Status {
            version: "0.1.0".into(),
            protocol: 1,
            pid: 99,
            uptime_secs: 5,
            clients: 2,
            socket: "/tmp/s.sock".into(),
            idle_timeout_secs: 600,
            stores: vec![StoreStatus {
                canonical: "memory://x#default".into(),
                backend: "memory".into(),
                len: 1,
                clients: 1,
                commits: 4,
                released: true,
                idle_secs: 7,
                in_flight: 2,
                queued: 3,
                followers: 1,
                space_used: 4096,
                space_reserved: 1 << 20,
                cache_fills: 9,
            }],
            store_idle_secs: 5,
            connections: vec![ClientStatus {
                conn: 3,
                pid: 1234,
                program: "python3 train.py".into(),
                since: 1_700_000_000,
                stores: 1,
            }],
        }),
        Response::Committed(Committed {
            generation: 4,
            len: 13,
        }),
        Response::Error(WireError::index_out_of_range(5, 3)),
        Response::Error(WireError::not_found(
            "Invalid keys at index 0: ['x']",
            vec!["x".into()],
        )),
    ]
}

#[test]
fn every_request_roundtrips() {
    for (i, req) in all_requests().into_iter().enumerate() {
        roundtrip(i as u64, req);
    }
}

#[test]
fn every_response_roundtrips() {
    for (i, resp) in all_responses().into_iter().enumerate() {
        roundtrip(u64::MAX - i as u64, resp);
    }
}

#[test]
fn handshake_roundtrips_at_every_version() {
    for v in version::MIN_SUPPORTED..=version::CURRENT {
        roundtrip(
            0,
            Hello {
                protocol: v,
                min_protocol: version::MIN_SUPPORTED,
                client_version: "x".into(),
                build_id: "b".into(),
            },
        );
        roundtrip(
            0,
            HelloReply::Welcome(Welcome {
                protocol: v,
                daemon_version: "x".into(),
                build_id: "b".into(),
                pid: 1,
                started_at: 2,
            }),
        );
    }
    roundtrip(
        0,
        HelloReply::Refused(WireError::new(ErrorCode::VersionMismatch, "too old")),
    );
}

/// Protocol 1 peers: an `Open` or `GetColumn` as a version-1 client encodes it (no
/// `options`, no `packed`) decodes with the defaults, and what a version-2 client sends
/// without options or packing is byte-identical to version 1's encoding, so either side
/// of a version-1 session understands the other.
#[test]
fn version_1_open_and_get_column_decode_and_encode_unchanged() {
    #[derive(Serialize)]
    enum V1Request {
        Open(V1Open),
        GetColumn(V1GetColumn),
    }
    #[derive(Serialize)]
    struct V1Open {
        location: String,
        group: Option<String>,
        readonly: bool,
        map_size: Option<u64>,
    }
    #[derive(Serialize)]
    struct V1GetColumn {
        store: u64,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        indices: Option<Vec<i64>>,
    }
    let v1 = [
        V1Request::Open(V1Open {
            location: "/x.lmdb".into(),
            group: None,
            readonly: false,
            map_size: Some(4096),
        }),
        V1Request::GetColumn(V1GetColumn {
            store: 1,
            key: b"calc.energy".to_vec(),
            indices: None,
        }),
    ];
    let v2 = [
        Request::Open(Open {
            location: "/x.lmdb".into(),
            map_size: Some(4096),
            ..Open::default()
        }),
        Request::GetColumn(GetColumn {
            store: 1,
            key: key("calc.energy"),
            indices: None,
            packed: false,
        }),
    ];
    for (old, new) in v1.iter().zip(v2) {
        let old_bytes = frame::encode(5, old).unwrap();
        let decoded: Envelope<Request> = frame::decode(&old_bytes[HEADER_LEN..]).unwrap();
        assert_eq!(decoded.body, new);
        assert_eq!(frame::encode(5, &new).unwrap(), old_bytes);
    }
}

/// A `Hello` from a future client with fields we do not know still decodes, so the daemon
/// can answer it with a clear `VersionMismatch` instead of a decode failure.
#[test]
fn hello_from_future_version_with_extra_fields_decodes() {
    #[derive(Serialize)]
    struct FutureHello {
        protocol: u32,
        min_protocol: u32,
        client_version: String,
        build_id: String,
        compression: String,
    }
    let bytes = frame::encode(
        1,
        &FutureHello {
            protocol: 9,
            min_protocol: 8,
            client_version: "9.0".into(),
            build_id: "z".into(),
            compression: "zstd".into(),
        },
    )
    .unwrap();
    let hello: Envelope<Hello> = frame::decode(&bytes[HEADER_LEN..]).unwrap();
    assert_eq!(hello.body.protocol, 9);
    assert_eq!(
        version::negotiate(hello.body.min_protocol, hello.body.protocol),
        None
    );
}

/// An error code added by a newer daemon decodes as `Unknown`, never as a failure.
#[test]
fn unknown_error_code_decodes_as_unknown() {
    #[derive(Serialize)]
    enum FutureCode {
        QuotaExceeded,
    }
    #[derive(Serialize)]
    struct FutureError {
        code: FutureCode,
        message: String,
    }
    #[derive(Serialize)]
    enum FutureResponse {
        Error(FutureError),
    }
    let bytes = frame::encode(
        4,
        &FutureResponse::Error(FutureError {
            code: FutureCode::QuotaExceeded,
            message: "full".into(),
        }),
    )
    .unwrap();
    let back: Envelope<Response> = frame::decode(&bytes[HEADER_LEN..]).unwrap();
    match back.body {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::Unknown);
            assert_eq!(e.message, "full");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn oversized_length_prefix_is_refused() {
    let header = (frame::HANDSHAKE_MAX_FRAME_LEN as u32 + 1).to_be_bytes();
    assert!(matches!(
        frame::body_len(header, frame::HANDSHAKE_MAX_FRAME_LEN),
        Err(asebytes_protocol::Error::FrameTooLarge { .. })
    ));
}

/// `RowsFrame` output for `rows`, written after some unrelated bytes already in the buffer.
fn rows_frame(id: u64, rows: &[Option<asebytes_protocol::Row>], single: bool) -> Vec<u8> {
    let mut out = b"previous frame".to_vec();
    let mut f = if single {
        RowsFrame::row(&mut out, id)
    } else {
        RowsFrame::rows(&mut out, id, rows.len())
    };
    for r in rows {
        let fields: Option<Vec<FieldRef<'_>>> = r
            .as_ref()
            .map(|r| r.iter().map(|(k, v)| (&k[..], &v[..])).collect());
        f.push(fields.as_deref());
    }
    f.finish().unwrap();
    assert_eq!(&out[..14], b"previous frame");
    out.split_off(14)
}

#[test]
fn rows_frame_writes_exactly_what_serde_writes() {
    let wide: asebytes_protocol::Row = (0..20)
        .map(|i| {
            (
                key(format!("k{i}")),
                serde_bytes::ByteBuf::from(vec![i as u8; i * 40]),
            )
        })
        .collect();
    let sizes = [0usize, 1, 255, 256, 65_535, 65_536, 70_000];
    let big: asebytes_protocol::Row = sizes
        .iter()
        .map(|&n| {
            (
                key("x".repeat(n.min(300))),
                serde_bytes::ByteBuf::from(vec![7; n]),
            )
        })
        .collect();
    let cases: Vec<Vec<Option<asebytes_protocol::Row>>> = vec![
        vec![],
        vec![None],
        vec![Some(vec![])],
        vec![Some(sample_row()), None, Some(vec![]), Some(wide.clone())],
        vec![Some(big)],
        (0..17).map(|i| (i % 3 != 0).then(sample_row)).collect(),
        vec![None; 70_000],
    ];
    let ids = [
        0,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        u32::MAX as u64,
        u64::MAX,
    ];
    for rows in &cases {
        for &id in &ids {
            let want = frame::encode(id, &Response::Rows(rows.clone())).unwrap();
            assert_eq!(
                rows_frame(id, rows, false),
                want,
                "Rows of {} rows, id {id}",
                rows.len()
            );
        }
    }
    for row in [None, Some(vec![]), Some(sample_row()), Some(wide)] {
        let want = frame::encode(9, &Response::Row(row.clone())).unwrap();
        assert_eq!(rows_frame(9, &[row], true), want);
    }
}

#[test]
fn rows_frame_refuses_a_wrong_row_count() {
    let mut out = b"kept".to_vec();
    let mut f = RowsFrame::rows(&mut out, 1, 2);
    f.placeholder();
    assert!(f.finish().is_err());
    assert_eq!(out, b"kept", "the unfinished frame is dropped");
    let mut f = RowsFrame::row(&mut out, 1);
    f.placeholder();
    f.placeholder();
    assert!(f.finish().is_err());
    let f = RowsFrame::rows(&mut out, 1, 1);
    f.abandon();
    assert_eq!(out, b"kept");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = frame::decode::<Request>(&bytes);
        let _ = frame::decode::<Response>(&bytes);
        let _ = frame::decode::<Hello>(&bytes);
    }

    #[test]
    fn truncated_frames_fail_cleanly(cut in 0usize..200) {
        for req in all_requests() {
            let bytes = frame::encode(1, &req).unwrap();
            let body = &bytes[HEADER_LEN..];
            let cut = cut.min(body.len().saturating_sub(1));
            prop_assert!(frame::decode::<Request>(&body[..cut]).is_err());
        }
    }
}

/// `Status` grows additively: the answer of a daemon that predates a field decodes with
/// that field at its default.
#[test]
fn status_from_an_older_daemon_decodes_with_defaults() {
    #[derive(serde::Serialize)]
    struct OldStore {
        canonical: String,
        len: u64,
    }
    #[derive(serde::Serialize)]
    struct OldStatus {
        version: String,
        pid: u32,
        stores: Vec<OldStore>,
    }
    #[derive(serde::Serialize)]
    enum OldResponse {
        Status(OldStatus),
    }
    let old = OldResponse::Status(OldStatus {
        version: "0.1.0".into(),
        pid: 7,
        stores: vec![OldStore {
            canonical: "lmdb:///x.lmdb#default".into(),
            len: 3,
        }],
    });
    let bytes = asebytes_protocol::frame::encode(1, &old).unwrap();
    let body = &bytes[asebytes_protocol::frame::HEADER_LEN..];
    let env = asebytes_protocol::frame::decode::<Response>(body).unwrap();
    let Response::Status(s) = env.body else {
        panic!("not a status: {:?}", env.body)
    };
    assert_eq!((s.pid, s.store_idle_secs), (7, 0));
    assert!(s.connections.is_empty());
    assert_eq!(s.stores[0].len, 3);
    assert!(!s.stores[0].released);
}

/// Protocol 3's `Follow` and `Committed` travel as maps keyed by field name, like every
/// other message (pinned so a later client can speak to this daemon byte for byte).
#[test]
fn follow_and_committed_encode_as_named_maps() {
    let follow = Request::Follow(Follow {
        store: 1,
        from: 2,
        timeout_ms: 3,
    });
    let bytes = frame::encode(5, &follow).unwrap();
    let body = &bytes[HEADER_LEN..];
    let want: &[u8] =
        b"\x82\xa2id\x05\xa4body\x81\xa6Follow\x83\xa5store\x01\xa4from\x02\xaatimeout_ms\x03";
    assert_eq!(body, want);
    let committed = Response::Committed(Committed {
        generation: 1,
        len: 2,
    });
    let bytes = frame::encode(5, &committed).unwrap();
    let want: &[u8] = b"\x82\xa2id\x05\xa4body\x81\xa9Committed\x82\xaageneration\x01\xa3len\x02";
    assert_eq!(&bytes[HEADER_LEN..], want);
}
