//! Unit tests of the LMDB backend: the map gate, heed errors, other processes' commits,
//! sort-key counters, borrowed rows.

use std::sync::mpsc;
use std::time::Duration;

use super::*;

#[test]
fn test_exclusive_gives_up_at_once_while_a_transaction_is_open() {
    let gate = MapGate::default();
    let guard = gate.enter();
    assert_eq!(gate.exclusive(Duration::ZERO, || 1), None);
    drop(guard);
    assert_eq!(gate.exclusive(Duration::ZERO, || 2), Some(2));
    // The gate admits again after both attempts.
    drop(gate.enter());
    assert_eq!(gate.active.load(Ordering::SeqCst), 0);
}

#[test]
fn test_exclusive_waits_for_open_transactions_to_end() {
    let gate = Arc::new(MapGate::default());
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            let _guard = gate.enter();
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    };
    entered_rx.recv().unwrap();
    let resizer = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            gate.exclusive(Duration::from_secs(60), || {
                gate.active.load(Ordering::SeqCst)
            })
        })
    };
    // Wait until the resizer has closed the gate, then let the holder finish.
    while !gate.resizing.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        resizer.join().unwrap(),
        Some(0),
        "ran while a transaction was open"
    );
    assert!(!gate.resizing.load(Ordering::SeqCst));
}

#[test]
fn test_heed_errors_map_to_actionable_kinds() {
    let kind = |e| map_heed_err(e).kind;
    assert_eq!(
        kind(heed::Error::Mdb(MdbError::MapFull)),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind(heed::Error::Mdb(MdbError::ReadersFull)),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind(heed::Error::Mdb(MdbError::Corrupted)),
        ErrorKind::Corrupt
    );
    assert_eq!(
        kind(heed::Error::Mdb(MdbError::VersionMismatch)),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind(heed::Error::Mdb(MdbError::BadValSize)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(heed::Error::Io(std::io::ErrorKind::NotFound.into())),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(heed::Error::Io(std::io::ErrorKind::StorageFull.into())),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind(heed::Error::EnvAlreadyOpened),
        ErrorKind::AlreadyExists
    );
    let err = map_heed_err(heed::Error::Mdb(MdbError::MapFull));
    assert!(
        err.to_string().contains("ASEBYTES_LMDB_MAX_MAP_SIZE"),
        "{err}"
    );
}

/// Commits `puts` bypassing our writer and its cache, as another process would.
fn foreign_write(b: &LmdbBackend, puts: &[(&[u8], &[u8])]) {
    let shared = &b.shared;
    let mut txn = shared.env.write_txn().unwrap();
    for (k, v) in puts {
        shared.store.db.put(&mut txn, k, v).unwrap();
    }
    txn.commit().unwrap();
}

fn rows(b: &LmdbBackend) -> Vec<Option<asebytes_protocol::Row>> {
    let reader = b.reader();
    let snap = reader.snapshot().unwrap();
    let n = snap.len().unwrap();
    (0..n).map(|i| snap.get(i, None).unwrap()).collect()
}

#[test]
fn test_snapshots_and_writes_follow_commits_of_other_processes() {
    use asebytes_protocol::value::row;

    use self::layout::*;

    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        path: dir.path().join("x.lmdb").to_str().unwrap().into(),
        group: "default".into(),
        ..OpenOptions::default()
    };
    let mut b = LmdbBackend::open(&opts).unwrap();
    b.write(&mut |w| {
        w.extend(vec![Some(row([("a", "1")])), Some(row([("a", "2")]))])
            .map(drop)
    })
    .unwrap();
    assert_eq!(rows(&b).len(), 2);
    let warm = b.shared.cache.get().expect("a cached index");

    // Row data only: the blocks are unchanged, so the cached index is kept.
    foreign_write(&b, &[(b"1-a", b"changed")]);
    assert_eq!(
        rows(&b),
        vec![Some(row([("a", "1")])), Some(row([("a", "changed")]))]
    );
    let kept = b.shared.cache.get().unwrap();
    assert!(Arc::ptr_eq(&warm.index, &kept.index), "index was reloaded");
    assert!(kept.txnid > warm.txnid);

    // The reference inserting a row at 0: sort key 2 in front of block 0.
    foreign_write(
        &b,
        &[
            (b"2-a", b"new"),
            (&block_key(0), &encode_block(&[2, 0, 1])),
            (BLOCK_SIZES_KEY, &encode_sizes([3])),
            (NEXT_SORT_KEY_KEY, b"3"),
            (COUNT_KEY, b"3"),
        ],
    );
    assert_eq!(
        rows(&b),
        vec![
            Some(row([("a", "new")])),
            Some(row([("a", "1")])),
            Some(row([("a", "changed")]))
        ]
    );

    // Our writer starts from that state too: the next sort key is 3, not 2.
    b.write(&mut |w| w.extend(vec![Some(row([("b", "3")]))]).map(drop))
        .unwrap();
    assert_eq!(rows(&b)[3], Some(row([("b", "3")])));
    let txn = b.shared.env.read_txn().unwrap();
    assert_eq!(
        b.shared.store.db.get(&txn, b"3-b").unwrap(),
        Some(&b"3"[..])
    );
    assert_eq!(
        b.shared.store.db.get(&txn, b"2-a").unwrap(),
        Some(&b"new"[..])
    );
}

#[test]
fn test_a_sort_key_at_or_above_the_counter_refuses_writes() {
    use asebytes_protocol::value::row;

    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        path: dir.path().join("x.lmdb").to_str().unwrap().into(),
        group: "default".into(),
        ..OpenOptions::default()
    };
    let mut b = LmdbBackend::open(&opts).unwrap();
    b.write(&mut |w| w.extend(vec![None]).map(drop)).unwrap();
    // A damaged counter would hand out sort key 0 a second time.
    foreign_write(&b, &[(layout::NEXT_SORT_KEY_KEY, b"0")]);
    let err = b
        .write(&mut |w| w.extend(vec![Some(row([("a", "1")]))]).map(drop))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Corrupt, "{err}");
    assert_eq!(rows(&b), vec![None], "reads still work");
}

#[test]
fn test_visit_rows_lends_what_get_returns_across_cursor_walks() {
    use std::ops::ControlFlow;

    use asebytes_protocol::value::{key, row};

    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        path: dir.path().join("x.lmdb").to_str().unwrap().into(),
        group: "default".into(),
        ..OpenOptions::default()
    };
    let mut b = LmdbBackend::open(&opts).unwrap();
    // Sort keys of one to four digits, placeholders, rows of one to four fields, and a
    // deleted row (sort keys then no longer follow positions one to one).
    let data: Vec<_> = (0..1200usize)
        .map(|i| {
            (i % 7 != 3).then(|| {
                let fields = ["pos", "e", "cell", "z"];
                row(fields[..1 + i % 4].iter().map(|f| (*f, format!("{f}{i}"))))
            })
        })
        .collect();
    b.write(&mut |w| {
        w.extend(data.clone())?;
        w.delete_range(40, 41)
    })
    .unwrap();
    let reader = b.reader();
    let snap = reader.snapshot().unwrap();
    let n = snap.len().unwrap();
    let patterns: Vec<Vec<u64>> = vec![
        (0..n).collect(),
        (0..n).rev().collect(),
        vec![
            5, 50, 500, 1000, 51, 52, 52, 1198, 0, 0, 9, 10, 99, 100, 999, 1000,
        ],
        (0..n).step_by(3).collect(),
    ];
    for keys in [None, Some(vec![key("e"), key("pos")])] {
        for positions in &patterns {
            let mut lent = Vec::new();
            snap.visit_rows(positions, keys.as_deref(), &mut |r| {
                lent.push(r.map(|fields| row(fields.iter().copied())));
                ControlFlow::Continue(())
            })
            .unwrap();
            let got: Vec<_> = positions
                .iter()
                .map(|&i| snap.get(i, keys.as_deref()).unwrap())
                .collect();
            assert_eq!(lent, got);
        }
    }
    // LMDB returns a row's fields in key order.
    let mut want = data[41].clone().unwrap();
    want.sort();
    assert_eq!(snap.get(40, None).unwrap(), Some(want));
}
