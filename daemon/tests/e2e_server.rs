//! End-to-end tests of `server::run` on a socket in a temporary directory, in this process:
//! handshake, hostile and broken input, store sharing, status, shutdown.

mod e2e_common;

use std::io::Write;

use asebytes_daemon::shutdown::Reason;
use asebytes_protocol::frame::{self, HANDSHAKE_MAX_FRAME_LEN};
use asebytes_protocol::request::{Extend, ListGroups, Open, StoreRef};
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::value::row;
use asebytes_protocol::version::CURRENT;
use asebytes_protocol::{ErrorCode, Hello, HelloReply, Request, Response};
use e2e_common::{Client, TestServer, closed_by_peer, unique_memory, wait_for};

fn extend(c: &mut Client, store: u64, n: usize) -> Response {
    let rows = (0..n).map(|i| Some(row([("i", i.to_string())]))).collect();
    c.call(Request::Extend(Extend { store, rows }))
}

fn error_code(resp: &Response) -> Option<ErrorCode> {
    match resp {
        Response::Error(e) => Some(e.code),
        _ => None,
    }
}

fn clients(c: &mut Client) -> u64 {
    match c.call(Request::Status) {
        Response::Status(s) => s.clients,
        other => panic!("status answered {other:?}"),
    }
}

#[test]
fn handshake_welcomes_a_current_client() {
    let server = TestServer::start();
    let mut c = server.client();
    assert_eq!(c.welcome.protocol, CURRENT);
    assert_eq!(c.welcome.pid, std::process::id());
    assert_eq!(c.welcome.build_id, asebytes_daemon::BUILD_ID);
    assert!(c.welcome.started_at > 0);
    assert_eq!(c.call(Request::Ping), Response::Pong);
}

/// A client that speaks only protocol `v` is welcomed at `v` and served, for every
/// version this daemon still supports.
#[test]
fn handshake_serves_a_client_at_every_supported_version() {
    use asebytes_protocol::request::GetColumn;
    use asebytes_protocol::version::MIN_SUPPORTED;

    let server = TestServer::start();
    for v in MIN_SUPPORTED..=CURRENT {
        let mut stream = FrameStream::new(server.raw());
        let hello = Hello {
            protocol: v,
            min_protocol: v,
            client_version: format!("v{v}"),
            build_id: String::new(),
        };
        stream.send(&frame::encode(1, &hello).unwrap()).unwrap();
        let reply =
            frame::decode::<HelloReply>(stream.recv(HANDSHAKE_MAX_FRAME_LEN).unwrap()).unwrap();
        let HelloReply::Welcome(welcome) = reply.body else {
            panic!("protocol {v} refused: {reply:?}")
        };
        assert_eq!(welcome.protocol, v);
        let mut c = Client::from_stream(stream, welcome);
        let store = c.open(&unique_memory(&format!("v{v}"))).store;
        let row = row([("k", [0xc3])]);
        let extended = c.call(Request::Extend(Extend {
            store,
            rows: vec![Some(row)],
        }));
        assert_eq!(extended, Response::Len(1), "protocol {v}");
        let column = c.call(Request::GetColumn(GetColumn {
            store,
            key: asebytes_protocol::value::key("k"),
            indices: None,
            packed: false,
        }));
        assert!(
            matches!(column, Response::Column(ref vals) if vals.len() == 1),
            "{column:?}"
        );
    }
}

#[test]
fn handshake_refuses_a_future_client_with_version_mismatch() {
    let server = TestServer::start();
    let mut stream = FrameStream::new(server.raw());
    let hello = Hello {
        protocol: CURRENT + 7,
        min_protocol: CURRENT + 5,
        client_version: "9.0.0".into(),
        build_id: "future".into(),
    };
    stream.send(&frame::encode(3, &hello).unwrap()).unwrap();
    let reply = frame::decode::<HelloReply>(stream.recv(HANDSHAKE_MAX_FRAME_LEN).unwrap()).unwrap();
    assert_eq!(reply.id, 3);
    let HelloReply::Refused(err) = reply.body else {
        panic!("welcomed a future client: {reply:?}")
    };
    assert_eq!(err.code, ErrorCode::VersionMismatch);
    let (theirs, ours) = (
        format!("{}..={}", CURRENT + 5, CURRENT + 7),
        format!("1..={CURRENT}"),
    );
    assert!(
        err.message.contains(&theirs) && err.message.contains(&ours),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("run `asebytesd stop` and retry"),
        "{}",
        err.message
    );
    assert!(matches!(
        stream.recv(HANDSHAKE_MAX_FRAME_LEN),
        Err(asebytes_protocol::Error::Closed)
    ));
    assert_eq!(server.client().call(Request::Ping), Response::Pong);
}

#[test]
fn a_request_before_hello_is_refused_as_bad_request() {
    let server = TestServer::start();
    let mut stream = FrameStream::new(server.raw());
    stream
        .send(&frame::encode(9, &Request::Ping).unwrap())
        .unwrap();
    let reply = frame::decode::<HelloReply>(stream.recv(HANDSHAKE_MAX_FRAME_LEN).unwrap()).unwrap();
    assert_eq!(reply.id, 9);
    assert!(
        matches!(reply.body, HelloReply::Refused(ref e) if e.code == ErrorCode::BadRequest),
        "{reply:?}"
    );
    assert!(matches!(
        stream.recv(HANDSHAKE_MAX_FRAME_LEN),
        Err(asebytes_protocol::Error::Closed)
    ));
}

#[test]
fn garbage_before_the_handshake_closes_only_that_connection() {
    let server = TestServer::start();
    // An HTTP request: its first four bytes read as a length far over the handshake cap.
    let mut http = server.raw();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(closed_by_peer(&mut http));
    // A small frame whose body is not MessagePack at all.
    let mut junk = server.raw();
    junk.write_all(&[0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1])
        .unwrap();
    assert!(closed_by_peer(&mut junk));
    // A peer that connects and leaves without a word.
    drop(server.raw());
    let mut c = server.client();
    assert_eq!(c.call(Request::Ping), Response::Pong);
}

#[test]
fn an_undecodable_request_with_an_id_gets_bad_request_and_the_connection_lives() {
    #[derive(serde::Serialize)]
    enum FutureRequest {
        Teleport { to: u32 },
    }
    let server = TestServer::start();
    let mut c = server.client();
    c.stream
        .send(&frame::encode(41, &FutureRequest::Teleport { to: 1 }).unwrap())
        .unwrap();
    let resp = c.read(41);
    assert_eq!(error_code(&resp), Some(ErrorCode::BadRequest), "{resp:?}");
    assert_eq!(c.call(Request::Ping), Response::Pong);
}

#[test]
fn garbage_after_the_handshake_closes_that_connection_only() {
    let server = TestServer::start();
    let mut c = server.client();
    c.stream
        .send(&[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .unwrap();
    assert!(c.is_closed());
    let mut other = server.client();
    assert_eq!(other.call(Request::Ping), Response::Pong);
}

#[test]
fn an_oversized_frame_closes_the_connection() {
    let server = TestServer::start_with(|c| c.max_frame = 1024);
    let mut c = server.client();
    let store = c.open(&unique_memory("oversized")).store;
    let big = frame::encode(
        5,
        &Request::Extend(Extend {
            store,
            rows: vec![Some(row([("k", vec![7u8; 4096])]))],
        }),
    )
    .unwrap();
    // The daemon may close before reading the whole body; the send can fail then.
    let _ = c.stream.send(&big);
    assert!(c.is_closed());
    let mut other = server.client();
    let again = other.open(&unique_memory("oversized-after"));
    assert_eq!(again.len, 0);
    assert_eq!(
        other.call(Request::Len(StoreRef { store })),
        Response::Len(0),
        "nothing of the big frame applied"
    );
}

#[test]
fn a_client_killed_mid_frame_leaves_the_store_and_daemon_intact() {
    let server = TestServer::start();
    let loc = unique_memory("killed");
    let mut observer = server.client();
    let store = observer.open(&loc).store;
    assert_eq!(extend(&mut observer, store, 2), Response::Len(2));

    let mut victim = server.client();
    assert_eq!(victim.open(&loc).store, store);
    let frame = frame::encode(
        1,
        &Request::Extend(Extend {
            store,
            rows: vec![Some(row([("k", "v")]))],
        }),
    )
    .unwrap();
    victim.stream.send(&frame[..frame.len() / 2]).unwrap();
    assert_eq!(clients(&mut observer), 2);
    drop(victim);

    wait_for("the victim's connection to be gone", || {
        clients(&mut observer) == 1
    });
    assert_eq!(
        observer.call(Request::Len(StoreRef { store })),
        Response::Len(2)
    );
    assert_eq!(extend(&mut observer, store, 1), Response::Len(3));
}

#[test]
fn unknown_locations_and_store_ids_are_typed_errors() {
    let server = TestServer::start();
    let mut c = server.client();
    let resp = c.call(Request::Open(Open {
        location: "/data/x.unknown".into(),
        ..Open::default()
    }));
    let Response::Error(err) = resp else {
        panic!("opened an unknown location: {resp:?}")
    };
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(
        err.message
            .contains("No backend registered for '/data/x.unknown'; known:"),
        "{}",
        err.message
    );
    let resp = c.call(Request::Len(StoreRef { store: 987_654 }));
    assert_eq!(error_code(&resp), Some(ErrorCode::UnknownStore), "{resp:?}");
}

#[test]
fn remove_drops_the_store_for_every_client() {
    let server = TestServer::start();
    let loc = unique_memory("remove");
    let mut a = server.client();
    let mut b = server.client();
    let store = a.open(&loc).store;
    assert_eq!(b.open(&loc).store, store);
    extend(&mut a, store, 3);
    assert_eq!(a.call(Request::Remove(StoreRef { store })), Response::Ok);
    let resp = b.call(Request::Len(StoreRef { store }));
    assert_eq!(error_code(&resp), Some(ErrorCode::UnknownStore), "{resp:?}");
    let reopened = b.open(&loc);
    assert_ne!(reopened.store, store);
    assert_eq!(reopened.len, 0);
}

#[test]
fn status_reports_clients_and_open_stores() {
    let server = TestServer::start();
    let (l1, l2) = (unique_memory("status-a"), unique_memory("status-b"));
    let mut a = server.client();
    let mut b = server.client();
    let s1 = a.open(&l1).store;
    b.open(&l1);
    b.open(&l2);
    extend(&mut a, s1, 4);
    let Response::Status(st) = a.call(Request::Status) else {
        panic!("no status")
    };
    assert_eq!(st.pid, std::process::id());
    assert_eq!(st.clients, 2);
    assert_eq!(st.socket, server.socket.display().to_string());
    let one = st
        .stores
        .iter()
        .find(|s| s.canonical == format!("{l1}#default"))
        .expect("first store listed");
    assert_eq!(
        (one.backend.as_str(), one.len, one.clients, one.commits),
        ("memory", 4, 2, 1)
    );
    assert!(
        st.stores
            .iter()
            .any(|s| s.canonical == format!("{l2}#default") && s.clients == 1)
    );
}

#[test]
fn list_groups_goes_to_the_backend() {
    let server = TestServer::start();
    let loc = unique_memory("groups");
    let mut c = server.client();
    c.open_with(Open {
        location: loc.clone(),
        group: Some("train".into()),
        ..Open::default()
    });
    match c.call(Request::ListGroups(ListGroups { location: loc })) {
        Response::Groups(g) => assert!(g.contains(&"train".to_string()), "{g:?}"),
        other => panic!("list_groups answered {other:?}"),
    }
}

#[test]
fn a_shutdown_request_is_answered_then_stops_the_server_and_removes_the_socket() {
    let server = TestServer::start();
    let mut idle = server.client();
    let mut c = server.client();
    assert_eq!(c.call(Request::Shutdown), Response::Ok);
    assert!(idle.is_closed(), "an idle connection is woken and closed");
    let socket = server.socket.clone();
    let reason = server.shutdown.clone();
    server.join().unwrap();
    assert_eq!(reason.reason(), Some(Reason::Requested));
    assert!(!socket.exists());
}

#[cfg(feature = "lmdb")]
#[test]
fn two_connections_on_one_lmdb_path_share_one_store_and_see_each_others_writes() {
    let server = TestServer::start();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().canonicalize().unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let mut a = server.client();
    let mut b = server.client();
    let oa = a.open(&format!("lmdb://{}/x.lmdb", dir.display()));
    let ob = b.open(&format!("{}/sub/../x.lmdb", dir.display()));
    assert_eq!(oa.store, ob.store);
    assert_eq!(
        oa.canonical,
        format!("lmdb://{}/x.lmdb#default", dir.display())
    );
    assert_eq!(ob.canonical, oa.canonical);

    let rows = vec![
        Some(row([("energy", "1.5")])),
        Some(row([("energy", "2.5")])),
    ];
    assert_eq!(
        a.call(Request::Extend(Extend {
            store: oa.store,
            rows
        })),
        Response::Len(2)
    );
    assert_eq!(
        b.call(Request::Len(StoreRef { store: ob.store })),
        Response::Len(2)
    );
    let got = b.call(Request::Get(asebytes_protocol::request::Get {
        store: ob.store,
        index: -1,
        keys: None,
    }));
    assert_eq!(got, Response::Row(Some(row([("energy", "2.5")]))));
}
