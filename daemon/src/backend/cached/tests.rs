//! The read-through cache on real sources in a temporary directory: rows in any order equal
//! the source's, each row is fetched once however many threads read it, the record
//! survives a reopen, a rewritten source file is refilled, writes through the store
//! invalidate exactly what they change, and a store actor on top serves the same.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use asebytes_protocol::request::{GetColumn, GetMany, StoreRef};
use asebytes_protocol::value::{key, row};
use asebytes_protocol::{OptionValue, Request, Response, Row};

use super::*;
use crate::backend::{extxyz, lmdb, memory};
use crate::store::StoreHandle;

fn frame(energy: f64, natoms: usize) -> String {
    let mut s =
        format!("{natoms}\nProperties=species:S:1:pos:R:3 energy={energy:.1} pbc=\"F F F\"\n");
    for i in 0..natoms {
        s.push_str(&format!("H {i}.0 0.5 0.0\n"));
    }
    s
}

fn write_frames(path: &Path, energies: impl Iterator<Item = u64>) {
    let mut f = std::fs::File::create(path).unwrap();
    for e in energies {
        f.write_all(frame(e as f64, 1 + (e % 4) as usize).as_bytes())
            .unwrap();
    }
    f.flush().unwrap();
}

fn file_opts(path: &Path, cache: Option<&Path>) -> OpenOptions {
    let mut options = Options::default();
    if let Some(c) = cache {
        let target = format!("lmdb://{}#default", c.display());
        options = options.with(CACHE_TO, OptionValue::Str(target));
    }
    OpenOptions {
        path: path.to_string_lossy().into_owned(),
        group: "default".into(),
        readonly: true,
        options,
    }
}

/// A temporary directory whose frame indexes stay inside it.
fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: every test of this module sets it to a directory that exists for the
    // test's life; the frame index only needs some writable directory.
    unsafe { std::env::set_var("ASEBYTES_CACHE_DIR", std::env::temp_dir()) };
    dir
}

fn cached(entry: &'static BackendEntry, opts: &OpenOptions) -> (Box<dyn Backend>, Fetched) {
    let source_opts = OpenOptions {
        options: opts.options.without(CACHE_TO),
        ..opts.clone()
    };
    let Some(OptionValue::Str(target)) = opts.options.get(CACHE_TO) else {
        panic!("no cache_to")
    };
    let b = CachedBackend::open(
        (entry.open)(&source_opts).unwrap(),
        entry,
        &source_opts,
        target,
    )
    .unwrap();
    let fetched = b.fetched();
    (Box::new(b), fetched)
}

type Fetched = Arc<AtomicU64>;

/// Rows `at` with their fields sorted: the cache (LMDB) keeps fields in key order, the
/// source in its own; the contract fixes only the fields, not their order.
fn rows(b: &dyn Backend, at: &[u64]) -> Vec<Option<Row>> {
    let reader = b.reader();
    let snap = reader.snapshot().unwrap();
    let mut out = Vec::new();
    snap.visit_rows(at, None, &mut |r| {
        out.push(r.map(reader_owned));
        ControlFlow::Continue(())
    })
    .unwrap();
    sorted(out)
}

fn sorted(mut rows: Vec<Option<Row>>) -> Vec<Option<Row>> {
    for row in rows.iter_mut().flatten() {
        row.sort();
    }
    rows
}

/// A response with the fields of its rows sorted (see [`rows`]).
fn sorted_response(r: Response) -> Response {
    match r {
        Response::Rows(rows) => Response::Rows(sorted(rows)),
        other => other,
    }
}

fn reader_owned(fields: &[asebytes_protocol::value::FieldRef<'_>]) -> Row {
    fields
        .iter()
        .map(|(k, v)| {
            (
                key(std::str::from_utf8(k).unwrap()),
                serde_bytes::ByteBuf::from(*v),
            )
        })
        .collect()
}

/// A seeded permutation of `0..n`.
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (s >> 33) as usize % (i + 1));
    }
    v
}

#[test]
fn test_rows_in_any_order_equal_the_source_and_are_fetched_once() {
    let dir = tempdir();
    let src = dir.path().join("a.extxyz");
    write_frames(&src, 0..40);
    let plain = (extxyz::ENTRY.open)(&file_opts(&src, None)).unwrap();
    let (b, fetched) = cached(
        &extxyz::ENTRY,
        &file_opts(&src, Some(&dir.path().join("c.lmdb"))),
    );
    let all: Vec<u64> = (0..40).collect();
    let want = rows(&*plain, &all);
    // One out of order first: the reference returns None for the row before it later.
    assert_eq!(rows(&*b, &[1]), rows(&*plain, &[1]));
    assert_eq!(rows(&*b, &[0]), rows(&*plain, &[0]));
    let reverse: Vec<u64> = (0..40).rev().collect();
    let mut got = rows(&*b, &reverse);
    got.reverse();
    assert_eq!(got, want);
    for seed in 0..3 {
        let order = shuffled(40, seed);
        let got = rows(&*b, &order);
        let want: Vec<_> = order.iter().map(|&i| want[i as usize].clone()).collect();
        assert_eq!(got, want);
    }
    assert_eq!(fetched.load(Ordering::Relaxed), 40);
    // Keys-filtered reads and columns come from the cache too.
    let snap_reader = b.reader();
    let snap = snap_reader.snapshot().unwrap();
    let energy = key("calc.energy");
    let col = snap.get_column(&energy, &[5, 3]).unwrap();
    let plain_col = plain
        .reader()
        .snapshot()
        .unwrap()
        .get_column(&energy, &[5, 3])
        .unwrap();
    assert_eq!(col, plain_col);
    assert_eq!(fetched.load(Ordering::Relaxed), 40);
}

#[test]
fn test_concurrent_readers_fetch_each_row_once() {
    let dir = tempdir();
    let src = dir.path().join("a.extxyz");
    write_frames(&src, 0..200);
    let (b, fetched) = cached(
        &extxyz::ENTRY,
        &file_opts(&src, Some(&dir.path().join("c.lmdb"))),
    );
    let reader = b.reader();
    std::thread::scope(|s| {
        for t in 0..8 {
            let reader = reader.clone();
            s.spawn(move || {
                let snap = reader.snapshot().unwrap();
                for i in shuffled(200, t) {
                    assert!(snap.get(i, None).unwrap().is_some());
                }
            });
        }
    });
    assert_eq!(fetched.load(Ordering::Relaxed), 200);
}

#[test]
fn test_the_record_survives_a_reopen_and_a_rewrite_refills() {
    let dir = tempdir();
    let src = dir.path().join("a.extxyz");
    let cache = dir.path().join("c.lmdb");
    write_frames(&src, 0..10);
    let opts = file_opts(&src, Some(&cache));
    let first = {
        let (mut b, fetched) = cached(&extxyz::ENTRY, &opts);
        let got = rows(&*b, &(0..10).collect::<Vec<_>>());
        assert_eq!(fetched.load(Ordering::Relaxed), 10);
        b.close().unwrap();
        got
    };
    let (b, fetched) = cached(&extxyz::ENTRY, &opts);
    assert_eq!(rows(&*b, &(0..10).rev().collect::<Vec<_>>()).len(), 10);
    assert_eq!(rows(&*b, &(0..10).collect::<Vec<_>>()), first);
    assert_eq!(fetched.load(Ordering::Relaxed), 0, "served from the cache");

    // Rewritten while open: the old rows are not served.
    write_frames(&src, 100..105);
    let plain = (extxyz::ENTRY.open)(&file_opts(&src, None)).unwrap();
    let all: Vec<u64> = (0..5).collect();
    assert_eq!(rows(&*b, &all), rows(&*plain, &all));
    assert_eq!(fetched.load(Ordering::Relaxed), 5);
}

#[test]
fn test_a_torn_fill_leaves_unmarked_rows_that_are_refilled() {
    // What a kill -9 between the cache commit and the record leaves: rows in the cache
    // the record does not mark, here with wrong content. They are never served.
    let dir = tempdir();
    let src = dir.path().join("a.extxyz");
    let cache = dir.path().join("c.lmdb");
    write_frames(&src, 0..6);
    {
        let mut lm = (lmdb::ENTRY.open)(&OpenOptions {
            path: cache.display().to_string(),
            group: "default".into(),
            ..Default::default()
        })
        .unwrap();
        lm.write(&mut |w| {
            w.extend(vec![Some(row([("calc.energy", "junk")])); 6])?;
            Ok(())
        })
        .unwrap();
        lm.close().unwrap();
    }
    let (b, fetched) = cached(&extxyz::ENTRY, &file_opts(&src, Some(&cache)));
    let plain = (extxyz::ENTRY.open)(&file_opts(&src, None)).unwrap();
    let all: Vec<u64> = (0..6).collect();
    assert_eq!(rows(&*b, &all), rows(&*plain, &all));
    assert_eq!(fetched.load(Ordering::Relaxed), 6);
}

#[test]
fn test_writes_through_the_store_invalidate_what_they_change() {
    let dir = tempdir();
    let name = format!("cached-unit-{}", std::process::id());
    let opts = OpenOptions {
        path: name.clone(),
        group: "default".into(),
        readonly: false,
        options: Options::default().with(
            CACHE_TO,
            OptionValue::Str(format!(
                "lmdb://{}#default",
                dir.path().join("c.lmdb").display()
            )),
        ),
    };
    let (mut b, fetched) = cached(&memory::ENTRY, &opts);
    let r = |i: u64| Some(row([("v", i.to_string().as_str())]));
    b.write(&mut |w| w.extend((0..8).map(r).collect()).map(|_| ()))
        .unwrap();
    let all: Vec<u64> = (0..8).collect();
    assert_eq!(rows(&*b, &all), (0..8).map(r).collect::<Vec<_>>());
    assert_eq!(fetched.load(Ordering::Relaxed), 8);

    b.write(&mut |w| w.set(3, r(33))).unwrap();
    b.write(&mut |w| w.update(5, row([("w", "x")]))).unwrap();
    let mut want: Vec<_> = (0..8).map(r).collect();
    want[3] = r(33);
    want[5] = Some(row([("v", "5"), ("w", "x")]));
    assert_eq!(rows(&*b, &all), want);
    assert_eq!(
        fetched.load(Ordering::Relaxed),
        10,
        "only rows 3 and 5 again"
    );

    b.write(&mut |w| w.insert(0, r(99))).unwrap();
    b.write(&mut |w| w.delete_range(7, 8)).unwrap();
    want.insert(0, r(99));
    want.remove(7);
    let all: Vec<u64> = (0..8).collect();
    assert_eq!(rows(&*b, &all), want);

    // A failed write changes nothing and serves nothing stale.
    let err = b.write(&mut |w| {
        w.set(1, r(1000))?;
        Err(Error::new(ErrorKind::InvalidArgument, "abort"))
    });
    assert!(err.is_err());
    assert_eq!(rows(&*b, &all), want);
}

#[test]
fn test_a_store_actor_serves_the_cached_source() {
    let dir = tempdir();
    let src = dir.path().join("a.extxyz");
    write_frames(&src, 0..30);
    let (b, fetched) = cached(
        &extxyz::ENTRY,
        &file_opts(&src, Some(&dir.path().join("c.lmdb"))),
    );
    let plain = StoreHandle::spawn((extxyz::ENTRY.open)(&file_opts(&src, None)).unwrap()).unwrap();
    let h = StoreHandle::spawn(b).unwrap();
    let many = |indices: Vec<i64>, keys: Option<Vec<&str>>| {
        Request::GetMany(GetMany {
            store: 0,
            indices,
            keys: keys.map(|k| k.into_iter().map(key).collect()),
            missing_ok: false,
        })
    };
    let idx: Vec<i64> = vec![-1, 7, 0, 29, 7, -30];
    let both = |req: Request| {
        (
            sorted_response(h.execute(req.clone(), true)),
            sorted_response(plain.execute(req, true)),
        )
    };
    let (got, want) = both(many(idx.clone(), None));
    assert!(matches!(got, Response::Rows(_)));
    assert_eq!(got, want);
    let (got, want) = both(many(idx, Some(vec!["calc.energy", "cell"])));
    assert_eq!(got, want);
    let col = Request::GetColumn(GetColumn {
        store: 0,
        key: key("calc.energy"),
        indices: None,
        packed: false,
    });
    assert_eq!(h.execute(col.clone(), true), plain.execute(col, true));
    assert_eq!(
        h.execute(Request::Len(StoreRef { store: 0 }), true),
        Response::Len(30)
    );
    assert!(matches!(
        h.execute(many(vec![30], None), true),
        Response::Error(e) if e.code == asebytes_protocol::ErrorCode::IndexOutOfRange
    ));
    assert_eq!(fetched.load(Ordering::Relaxed), 30);
    assert_eq!(h.cache_fills(), Some(30));
}
