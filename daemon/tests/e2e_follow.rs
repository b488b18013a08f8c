//! End-to-end tests of live follow (`Request::Follow`, protocol 3) against `server::run`:
//! a waiting follower is answered by the commit that makes the store grow, at its timeout
//! otherwise, and at once when the daemon stops.

mod e2e_common;

use std::time::{Duration, Instant};

use asebytes_protocol::request::{Extend, Follow, Open};
use asebytes_protocol::response::Committed;
use asebytes_protocol::value::row;
use asebytes_protocol::{Request, Response};
use e2e_common::{Client, TestServer, unique_memory};

fn extend(c: &mut Client, store: u64, n: usize) -> u64 {
    let rows = (0..n).map(|i| Some(row([("i", i.to_string())]))).collect();
    match c.call(Request::Extend(Extend { store, rows })) {
        Response::Len(n) => n,
        other => panic!("extend answered {other:?}"),
    }
}

fn follow(c: &mut Client, store: u64, from: u64, timeout_ms: u64) -> Committed {
    match c.call(Request::Follow(Follow {
        store,
        from,
        timeout_ms,
    })) {
        Response::Committed(c) => c,
        other => panic!("follow answered {other:?}"),
    }
}

/// Waits until `n` connections wait in `Follow` (the daemon's status counts them), so a
/// test acts only once its follower is really waiting.
fn until_following(c: &mut Client, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let Response::Status(s) = c.call(Request::Status) else {
            panic!("status failed");
        };
        if s.stores.iter().map(|st| st.followers).sum::<u64>() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "no follower started waiting");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn follow_answers_at_once_when_the_store_is_already_longer() {
    let server = TestServer::start();
    let mut c = server.client();
    let store = c.open(&unique_memory("ahead")).store;
    extend(&mut c, store, 3);
    let t = Instant::now();
    let got = follow(&mut c, store, 1, 30_000);
    assert_eq!(got.len, 3);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn follow_times_out_with_the_current_length() {
    let server = TestServer::start();
    let mut c = server.client();
    let store = c.open(&unique_memory("idle")).store;
    extend(&mut c, store, 2);
    let t = Instant::now();
    let got = follow(&mut c, store, 2, 100);
    assert_eq!(got.len, 2);
    assert!(t.elapsed() >= Duration::from_millis(100));
}

/// The commit of another client wakes a waiting follower (on a read-only open, on a
/// file-backed store), with a generation that moved on.
#[test]
fn a_commit_wakes_a_waiting_follower_at_once() {
    let server = TestServer::start();
    let location = format!("lmdb://{}", server.dir.path().join("f.lmdb").display());
    let mut writer = server.client();
    let store = writer.open(&location).store;
    extend(&mut writer, store, 1);
    let mut reader = server.client();
    let ro = reader
        .open_with(Open {
            location: location.clone(),
            readonly: true,
            ..Open::default()
        })
        .store;
    let before = follow(&mut reader, ro, 0, 0);
    let waiter = std::thread::spawn(move || {
        let got = follow(&mut reader, ro, 1, 30_000);
        (got, Instant::now())
    });
    until_following(&mut writer, 1);
    extend(&mut writer, store, 2);
    let acked = Instant::now();
    let (got, woke) = waiter.join().unwrap();
    assert_eq!(got.len, 3);
    assert!(got.generation > before.generation);
    let late = woke.saturating_duration_since(acked);
    assert!(
        late < Duration::from_secs(2),
        "woke {late:?} after the commit"
    );
}

#[test]
fn stopping_the_daemon_answers_a_waiting_follower_at_once() {
    let server = TestServer::start();
    let mut c = server.client();
    let store = c.open(&unique_memory("stop")).store;
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let got = follow(&mut c, store, 0, 50_000);
        (got, t.elapsed())
    });
    let mut other = server.client();
    until_following(&mut other, 1);
    assert_eq!(other.call(Request::Shutdown), Response::Ok);
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got.len, 0);
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    server.join().unwrap();
}
