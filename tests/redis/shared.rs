//! Several daemons on one Redis group, in one process: each `StoreHandle` here is a store
//! actor with its own backend and connections, as another daemon on another machine would
//! be. The daemon's actor orders only its own clients, so these prove that the ordering
//! the contract promises comes from the server (one Lua script per batch, planned again
//! when another writer got in first).
//!
//! Each test starts its own `redis-server` ([`asebytes_tests::redis_server`]).

use std::collections::HashSet;
use std::thread;

use asebytes_daemon::backend::OpenOptions;
use asebytes_daemon::backend::redis::RedisBackend;
use asebytes_daemon::backend::redis::writer::NATIVE_APPEND_MIN_ROWS;
use asebytes_daemon::store::StoreHandle;
use asebytes_protocol::{Response, Row};
use asebytes_tests::redis_server::RedisServer;
use asebytes_tests::{as_len, delete, extend, get, get_many, insert, r};

const BATCHES: usize = 40;
const ROWS: usize = 8;

fn open(url: &str) -> StoreHandle {
    let opts = OpenOptions {
        path: url.into(),
        group: "shared".into(),
        readonly: false,
        options: Default::default(),
    };
    StoreHandle::spawn(Box::new(RedisBackend::open(&opts).expect("open redis"))).expect("spawn")
}

fn row(writer: &str, batch: usize, j: usize) -> Option<Row> {
    Some(r(&[
        ("w", writer),
        ("b", &batch.to_string()),
        ("j", &j.to_string()),
    ]))
}

fn field(row: &Row, key: &str) -> String {
    let (_, v) = row
        .iter()
        .find(|(k, _)| &k[..] == key.as_bytes())
        .expect("tagged row");
    String::from_utf8(v.to_vec()).expect("utf-8")
}

/// Appends `BATCHES` batches of `ROWS` tagged rows; the lengths each extend answered.
fn append(store: &StoreHandle, writer: &str) -> Vec<u64> {
    append_batches(store, writer, ROWS)
}

/// Appends `BATCHES` batches of `rows` tagged rows; the lengths each extend answered.
fn append_batches(store: &StoreHandle, writer: &str, rows: usize) -> Vec<u64> {
    (0..BATCHES)
        .map(|b| {
            let rows = (0..rows).map(|j| row(writer, b, j)).collect();
            as_len(store.execute(extend(rows), false)).expect("extend")
        })
        .collect()
}

fn all_rows(store: &StoreHandle) -> Vec<Row> {
    let n = store.len().expect("len") as i64;
    match store.execute(get_many((0..n).collect(), None), false) {
        Response::Rows(rows) => rows
            .into_iter()
            .map(|r| r.expect("no placeholders"))
            .collect(),
        other => panic!("get_many: {other:?}"),
    }
}

#[test]
fn two_stores_append_at_once_and_every_batch_stays_whole() {
    appends_at_once_stay_whole(ROWS);
}

#[test]
fn two_stores_append_large_batches_at_once_and_every_batch_stays_whole() {
    // Batches this large are sent as native commands (WATCH, then MULTI/EXEC).
    appends_at_once_stay_whole(NATIVE_APPEND_MIN_ROWS + 3);
}

fn appends_at_once_stay_whole(rows_per_batch: usize) {
    let server = RedisServer::start().expect("redis-server");
    let (a, b) = (open(&server.url()), open(&server.url()));
    let mut lens = thread::scope(|s| {
        let from_a = s.spawn(|| append_batches(&a, "a", rows_per_batch));
        let from_b = s.spawn(|| append_batches(&b, "b", rows_per_batch));
        let mut lens = from_a.join().expect("a");
        lens.extend(from_b.join().expect("b"));
        lens
    });
    // Every extend answered the length right after its own batch: all different.
    lens.sort_unstable();
    let want: Vec<u64> = (1..=2 * BATCHES)
        .map(|i| (i * rows_per_batch) as u64)
        .collect();
    assert_eq!(lens, want, "an extend answered a stale length");
    let rows = all_rows(&a);
    assert_eq!(rows.len(), 2 * BATCHES * rows_per_batch);
    assert_eq!(
        b.len().expect("len"),
        rows.len() as u64,
        "len is current everywhere"
    );
    let tags: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (field(r, "w"), field(r, "b"), field(r, "j")))
        .collect();
    assert_eq!(
        tags.iter().collect::<HashSet<_>>().len(),
        tags.len(),
        "duplicates"
    );
    for batch in tags.chunks(rows_per_batch) {
        let (w, b, _) = &batch[0];
        let want: Vec<_> = (0..rows_per_batch)
            .map(|j| (w.clone(), b.clone(), j.to_string()))
            .collect();
        assert_eq!(batch, &want[..], "a batch was split or reordered");
    }
}

#[test]
fn positional_writes_of_one_store_land_on_the_rows_it_meant_while_another_appends() {
    let server = RedisServer::start().expect("redis-server");
    let (a, b) = (open(&server.url()), open(&server.url()));
    as_len(a.execute(extend(vec![row("seed", 0, 0)]), false)).expect("seed");
    thread::scope(|s| {
        s.spawn(|| {
            append(&b, "b");
        });
        s.spawn(|| {
            // Insert at the front and delete the last row, many times, while b appends:
            // each must see the length of the moment, never a stale one.
            for i in 0..BATCHES {
                let resp = a.execute(insert(0, row("front", i, 0)), false);
                assert!(matches!(resp, Response::Len(_)), "{resp:?}");
                let resp = a.execute(delete(-1), false);
                assert!(matches!(resp, Response::Len(_)), "{resp:?}");
            }
        });
    });
    let rows = all_rows(&b);
    // BATCHES inserts and BATCHES deletes: the count is what b appended plus the seed.
    assert_eq!(rows.len(), BATCHES * ROWS + 1);
    let fronts: Vec<usize> = rows
        .iter()
        .take_while(|r| field(r, "w") == "front")
        .map(|r| field(r, "b").parse().expect("batch number"))
        .collect();
    // Deletes at the end may take front rows while the store is short; those left keep
    // the order of their inserts (newest first).
    assert!(!fronts.is_empty());
    assert!(
        fronts.windows(2).all(|w| w[0] > w[1]),
        "inserts at 0 keep their order at the front: {fronts:?}"
    );
}

#[test]
fn reads_of_many_rows_come_from_one_instant_while_another_store_moves_rows() {
    // Store b keeps `LIVE` rows whose numbers count down from the front: it inserts the
    // next number at 0, then deletes the last row. Every read of a whole state sees a run
    // of consecutive numbers, counting down, `LIVE` or `LIVE + 1` long; a read that took
    // the positions from one instant and the rows from another would see a hole, a
    // repeat or a deleted row.
    const LIVE: usize = 300;
    const MOVES: usize = 150;
    let server = RedisServer::start().expect("redis-server");
    let (a, b) = (open(&server.url()), open(&server.url()));
    let numbered = |n: usize| Some(r(&[("n", &n.to_string())]));
    let rows: Vec<_> = (0..LIVE).rev().map(numbered).collect();
    as_len(b.execute(extend(rows), false)).expect("seed");
    let numbers = |rows: Vec<Option<Row>>| -> Vec<i64> {
        rows.into_iter()
            .map(|r| field(&r.expect("a read row is never a deleted one"), "n"))
            .map(|n| n.parse().expect("number"))
            .collect()
    };
    let reads = thread::scope(|s| {
        let mover = s.spawn(|| {
            for n in LIVE..LIVE + MOVES {
                assert!(matches!(
                    b.execute(insert(0, numbered(n)), false),
                    Response::Len(_)
                ));
                assert!(matches!(b.execute(delete(-1), false), Response::Len(_)));
            }
        });
        let mut reads = 0;
        while !mover.is_finished() || reads == 0 {
            // Whole rows, then one field of each row (the column and field modes).
            let all: Vec<i64> = (0..LIVE as i64).collect();
            let got = match a.execute(get_many(all.clone(), None), false) {
                Response::Rows(rows) => numbers(rows),
                other => panic!("get_many: {other:?}"),
            };
            let fields = match a.execute(get_many(all, Some(&["n"])), false) {
                Response::Rows(rows) => numbers(rows),
                other => panic!("get_many with keys: {other:?}"),
            };
            for run in [got, fields] {
                assert_eq!(run.len(), LIVE);
                assert!(
                    run.windows(2).all(|w| w[0] == w[1] + 1),
                    "not one instant: {run:?}"
                );
            }
            reads += 1;
        }
        mover.join().expect("mover");
        reads
    });
    assert!(reads > 0);
    let last = all_rows(&a);
    assert_eq!(field(&last[0], "n"), (LIVE + MOVES - 1).to_string());
}

#[test]
fn rows_read_by_guessed_sort_keys_are_never_rows_that_moved() {
    // Store a reads single rows (one call each, by the sort keys it has seen); store b,
    // another daemon, shifts every row by inserting at the front and deleting at the end.
    // Each read after a shift must serve the row now at that position, never the one a
    // stale guess names, and a position past the new end is out of range.
    let server = RedisServer::start().expect("redis-server");
    let (a, b) = (open(&server.url()), open(&server.url()));
    let numbered = |n: usize| Some(r(&[("n", &n.to_string())]));
    let mut expected: Vec<usize> = (0..50).collect();
    as_len(b.execute(
        extend(expected.iter().map(|&n| numbered(n)).collect()),
        false,
    ))
    .expect("seed");
    let read = |p: usize| -> String {
        match a.execute(get(p as i64), false) {
            Response::Row(Some(row)) => field(&row, "n"),
            other => panic!("get({p}): {other:?}"),
        }
    };
    for (p, n) in expected.iter().enumerate() {
        assert_eq!(read(p), n.to_string());
    }
    for k in 0..20 {
        let n = 1000 + k;
        assert!(matches!(
            b.execute(insert(0, numbered(n)), false),
            Response::Len(_)
        ));
        expected.insert(0, n);
        for p in [0, 1, 25, expected.len() - 1] {
            assert_eq!(
                read(p),
                expected[p].to_string(),
                "position {p} after {k} shifts"
            );
        }
        if k % 5 == 4 {
            assert!(matches!(b.execute(delete(-1), false), Response::Len(_)));
            expected.pop();
            let past = expected.len() as i64;
            assert!(
                matches!(a.execute(get(past), false), Response::Error(e) if e.index == Some(past)),
                "reading past the end after b deleted"
            );
        }
    }
}
