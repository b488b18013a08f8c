//! The published commit generation (`<socket>.gen`, `asebytes_protocol::published`), end
//! to end through a real server: every write is published before it is acknowledged, a
//! released store is withdrawn and re-published with a new generation, a closed store's
//! slot is given back and its old reference never trusted again, a stopped daemon leaves
//! nothing trusted, and stores others can change behind the daemon get no slot.

mod e2e_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use asebytes_daemon::paths;
use asebytes_protocol::published::{Published, SlotRef, View};
use asebytes_protocol::request::{Delete, Extend, Insert, StoreRef};
use asebytes_protocol::value::row;
use asebytes_protocol::{Request, Response};
use e2e_common::{Client, TestServer, unique_memory, wait_for};

/// The test's read-only mapping of the server's `<socket>.gen` (made as the server starts).
fn view(server: &TestServer) -> View {
    let path = paths::gen_path(&server.socket);
    wait_for("the daemon to make <socket>.gen", || {
        View::open(&path).is_ok()
    });
    View::open(&path).expect("mapped once made")
}

/// One write request sent by a client.
type Write<'a> = dyn Fn(&mut Client) -> Response + 'a;

fn extend(c: &mut Client, store: u64, n: usize) -> Response {
    let rows = (0..n).map(|i| Some(row([("n", i.to_string())]))).collect();
    c.call(Request::Extend(Extend { store, rows }))
}

fn slot_of(c: &mut Client, location: &str) -> (u64, SlotRef) {
    let opened = c.open(location);
    assert!(opened.caps.exclusive, "{location}");
    let slot = opened.published.expect("an exclusive store is published");
    (opened.store, slot)
}

#[test]
fn test_every_write_is_published_before_it_is_acknowledged() {
    let server = TestServer::start();
    let view = view(&server);
    let mut c = server.client();
    let path = server.dir.path().join("w.lmdb");
    let (store, slot) = slot_of(&mut c, path.to_str().unwrap());
    let mut last = view.read(&slot).expect("trusted once open");
    assert_eq!(last.len, 0);
    let r = StoreRef { store };
    let insert = Request::Insert(Insert {
        store,
        index: 0,
        row: None,
    });
    let delete = Request::Delete(Delete { store, index: -1 });
    let writes: [(&Write<'_>, u64); 5] = [
        (&|c| extend(c, store, 3), 3),
        (&|c| c.call(insert.clone()), 4),
        (&|c| c.call(delete.clone()), 3),
        (&|c| c.call(Request::Clear(r)), 0),
        (&|c| extend(c, store, 2), 2),
    ];
    for (write, len) in writes {
        let answer = write(&mut c);
        assert!(!matches!(answer, Response::Error(_)), "{answer:?}");
        let now = view.read(&slot).expect("still trusted");
        assert!(now.generation > last.generation, "{now:?} after {last:?}");
        assert_eq!(now.len, len);
        last = now;
    }
    // A read changes nothing.
    c.call(Request::Len(r));
    assert_eq!(view.read(&slot), Some(last));
}

#[test]
fn test_a_reader_in_a_tight_loop_never_sees_a_length_older_than_an_acknowledged_write() {
    let server = TestServer::start();
    let view = Arc::new(view(&server));
    let location = unique_memory("tight");
    let mut writer = server.client();
    let (store, slot) = slot_of(&mut writer, &location);
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (view, acked, done) = (view.clone(), acked.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            // `None` also means "a write was in progress for all of the reader's tries"
            // (the daemon's thread preempted mid-publish on a loaded machine): the client then
            // asks the daemon. The slot of an open store must not stay untrusted, though.
            let mut untrusted_since: Option<Instant> = None;
            while !done.load(Ordering::Acquire) {
                let floor = acked.load(Ordering::Acquire);
                let Some(Published { len, .. }) = view.read(&slot) else {
                    let since = *untrusted_since.get_or_insert_with(Instant::now);
                    assert!(
                        since.elapsed() < Duration::from_secs(5),
                        "the slot of an open store stayed untrusted"
                    );
                    std::thread::yield_now();
                    continue;
                };
                untrusted_since = None;
                assert!(len >= floor, "len {len} after an acknowledged {floor}");
                reads += 1;
            }
            reads
        })
    };
    for n in 1..=300u64 {
        assert_eq!(extend(&mut writer, store, 1), Response::Len(n));
        acked.store(n, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
}

#[test]
fn test_a_released_store_is_withdrawn_and_reopening_it_is_a_new_generation() {
    let server = TestServer::start_with(|c| c.store_idle = Duration::from_millis(200));
    let view = view(&server);
    let mut c = server.client();
    let path = server.dir.path().join("r.lmdb");
    let (store, slot) = slot_of(&mut c, path.to_str().unwrap());
    extend(&mut c, store, 2);
    let before = view.read(&slot).expect("trusted while open");
    // Once released, another program may write the files: nobody trusts the slot.
    wait_for("the store to be released", || view.read(&slot).is_none());
    // The next request re-opens it: trusted again, under a generation nobody cached.
    assert_eq!(c.call(Request::Len(StoreRef { store })), Response::Len(2));
    let after = view.read(&slot).expect("trusted once re-opened");
    assert_eq!(after.len, 2);
    assert!(
        after.generation > before.generation + 1,
        "{after:?} {before:?}"
    );
}

#[test]
fn test_a_closed_store_gives_its_slot_back_and_the_old_reference_is_never_trusted() {
    let server = TestServer::start();
    let view = view(&server);
    let mut c = server.client();
    let a = server.dir.path().join("a.lmdb");
    let (a_store, a_slot) = slot_of(&mut c, a.to_str().unwrap());
    extend(&mut c, a_store, 1);
    c.call(Request::Close(StoreRef { store: a_store }));
    assert_eq!(view.read(&a_slot), None, "closed: withdrawn");
    let b = server.dir.path().join("b.lmdb");
    let (b_store, b_slot) = slot_of(&mut c, b.to_str().unwrap());
    assert_eq!(b_slot.index, a_slot.index, "the slot is reused");
    extend(&mut c, b_store, 5);
    assert_eq!(
        view.read(&a_slot),
        None,
        "another store's state under the old tag"
    );
    assert_eq!(view.read(&b_slot).map(|p| p.len), Some(5));
}

#[test]
fn test_a_removed_store_is_withdrawn() {
    let server = TestServer::start();
    let view = view(&server);
    let mut c = server.client();
    let path = server.dir.path().join("gone.lmdb");
    let (store, slot) = slot_of(&mut c, path.to_str().unwrap());
    extend(&mut c, store, 1);
    assert_eq!(c.call(Request::Remove(StoreRef { store })), Response::Ok);
    assert_eq!(view.read(&slot), None);
}

#[test]
fn test_a_stopped_daemon_leaves_nothing_trusted() {
    let server = TestServer::start();
    let view = view(&server);
    let mut c = server.client();
    let (_, slot) = slot_of(&mut c, &unique_memory("stop"));
    assert!(view.read(&slot).is_some());
    drop(c);
    drop(server);
    assert_eq!(view.read(&slot), None);
}

#[test]
fn test_stores_others_change_behind_the_daemon_get_no_slot() {
    let server = TestServer::start();
    let mut c = server.client();
    // An extxyz file may grow behind the daemon (an MD run appending to it).
    let path = server.dir.path().join("md.xyz");
    let frame = "1\nProperties=species:S:1:pos:R:3 energy=1.0 pbc=\"F F F\"\nH 0.0 0.0 0.0\n";
    std::fs::write(&path, frame).unwrap();
    let opened = c.open(path.to_str().unwrap());
    assert_eq!(opened.len, 1);
    assert!(!opened.caps.exclusive);
    assert_eq!(opened.published, None);
    // Redis (and MongoDB) are written by other daemons and plain clients too.
    assert!(!asebytes_daemon::backend::redis::capabilities(false).exclusive);
}
