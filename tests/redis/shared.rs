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
use asebytes_daemon::store::StoreHandle;
use asebytes_protocol::{Response, Row};
use asebytes_tests::redis_server::RedisServer;
use asebytes_tests::{as_len, delete, extend, get_many, insert, r};

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
    (0..BATCHES)
        .map(|b| {
            let rows = (0..ROWS).map(|j| row(writer, b, j)).collect();
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
    let server = RedisServer::start().expect("redis-server");
    let (a, b) = (open(&server.url()), open(&server.url()));
    let mut lens = thread::scope(|s| {
        let from_a = s.spawn(|| append(&a, "a"));
        let from_b = s.spawn(|| append(&b, "b"));
        let mut lens = from_a.join().expect("a");
        lens.extend(from_b.join().expect("b"));
        lens
    });
    // Every extend answered the length right after its own batch: all different.
    lens.sort_unstable();
    let want: Vec<u64> = (1..=2 * BATCHES).map(|i| (i * ROWS) as u64).collect();
    assert_eq!(lens, want, "an extend answered a stale length");
    let rows = all_rows(&a);
    assert_eq!(rows.len(), 2 * BATCHES * ROWS);
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
    for batch in tags.chunks(ROWS) {
        let (w, b, _) = &batch[0];
        let want: Vec<_> = (0..ROWS)
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
