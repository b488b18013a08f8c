//! Crash safety of the Zarr backend with a real daemon: clients append batches to one
//! `*.zarr` store while the daemon is killed with SIGKILL, again and again. After the last
//! restart every acknowledged batch is there exactly once, no batch is there in part, and
//! the store reopens.
#![cfg(feature = "zarr")]

mod e2e_common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use asebytes_daemon::launcher;
use asebytes_protocol::codec::{self, NdArray, Value};
use asebytes_protocol::frame;
use asebytes_protocol::request::{Extend, GetMany, Open};
use asebytes_protocol::{Request, Response, Row};
use e2e_common::{Client, wait_for};
use serde_bytes::ByteBuf;

const BIN: &str = env!("CARGO_BIN_EXE_asebytesd");
const WRITERS: u64 = 3;
const ROUNDS: u64 = 10;
const BATCH: u64 = 4;

fn spawn_daemon(socket: &Path) -> Child {
    Command::new(BIN)
        .args(["run", "--idle-timeout", "0", "--socket"])
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn connect(socket: &Path) -> Client {
    let mut found = None;
    wait_for("the daemon to listen", || {
        found = launcher::connect(socket).ok();
        found.is_some()
    });
    let (stream, welcome) = found.unwrap();
    Client::from_stream(stream, welcome)
}

fn enc(v: Value) -> ByteBuf {
    ByteBuf::from(codec::encode(&v).unwrap())
}

/// Row `j` of batch `seq` of writer `w`: its atom count varies so the ragged offsets move.
fn batch_row(w: u64, seq: u64, j: u64) -> Row {
    let n = 1 + (w + seq + j) % 5;
    let pos: Vec<f64> = (0..n * 3).map(|x| (seq * 100 + x) as f64).collect();
    vec![
        (ByteBuf::from(b"info.w".to_vec()), enc(Value::Int(w as i64))),
        (
            ByteBuf::from(b"info.seq".to_vec()),
            enc(Value::Int(seq as i64)),
        ),
        (ByteBuf::from(b"info.j".to_vec()), enc(Value::Int(j as i64))),
        (
            ByteBuf::from(b"calc.energy".to_vec()),
            enc(Value::Float(seq as f64 + 0.5)),
        ),
        (
            ByteBuf::from(b"arrays.positions".to_vec()),
            enc(Value::Array(NdArray::from_f64s(vec![n, 3], &pos).unwrap())),
        ),
    ]
}

fn int(row: &Row, key: &str) -> i64 {
    let v = &row
        .iter()
        .find(|(k, _)| &k[..] == key.as_bytes())
        .unwrap()
        .1;
    match codec::decode(v).unwrap() {
        Value::Int(i) => i,
        other => panic!("{key} = {other:?}"),
    }
}

/// Sends one request and reads its answer; `None` once the daemon is gone (no panic, so a
/// killed daemon is an expected end, not a test failure).
fn try_call(c: &mut Client, id: u64, req: &Request) -> Option<Response> {
    c.stream.send(&frame::encode(id, req).ok()?).ok()?;
    let body = c.stream.recv(frame::DEFAULT_MAX_FRAME_LEN).ok()?;
    Some(frame::decode::<Response>(body).ok()?.body)
}

/// Appends batches until the connection breaks; records what was acknowledged.
fn writer(
    socket: &Path,
    location: &str,
    w: u64,
    next_seq: Arc<AtomicU64>,
    acked: Arc<Mutex<Vec<(u64, u64)>>>,
    total: Arc<AtomicU64>,
) {
    let Ok((stream, welcome)) = launcher::connect(socket) else {
        return;
    };
    let mut c = Client::from_stream(stream, welcome);
    let open = Request::Open(Open {
        location: location.into(),
        ..Open::default()
    });
    let Some(Response::Opened(opened)) = try_call(&mut c, 1, &open) else {
        return;
    };
    for id in 2.. {
        let seq = next_seq.fetch_add(1, Ordering::Relaxed);
        let rows = (0..BATCH).map(|j| Some(batch_row(w, seq, j))).collect();
        let req = Request::Extend(Extend {
            store: opened.store,
            rows,
        });
        match try_call(&mut c, id, &req) {
            Some(Response::Len(_)) => {
                acked.lock().unwrap().push((w, seq));
                total.fetch_add(1, Ordering::Relaxed);
            }
            _ => return,
        }
    }
}

#[test]
fn test_kill9_during_concurrent_appends_loses_no_acknowledged_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("run").join("asebytesd.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let location = tmp.path().join("crash.zarr").to_string_lossy().into_owned();
    let acked: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let seqs: Vec<Arc<AtomicU64>> = (0..WRITERS)
        .map(|w| Arc::new(AtomicU64::new(w * 1_000_000)))
        .collect();
    for round in 0..ROUNDS {
        let mut child = spawn_daemon(&socket);
        connect(&socket);
        let total = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (socket, location) = (socket.clone(), location.clone());
                let (seq, acked, total) = (seqs[w as usize].clone(), acked.clone(), total.clone());
                std::thread::spawn(move || writer(&socket, &location, w, seq, acked, total))
            })
            .collect();
        // Kill at a different point of the write stream each round.
        let target = 3 + round * 2;
        wait_for("some acknowledged batches", || {
            total.load(Ordering::Relaxed) >= target
        });
        child.kill().unwrap();
        child.wait().unwrap();
        for t in threads {
            t.join().unwrap();
        }
        let _ = std::fs::remove_file(&socket);
    }
    let mut child = spawn_daemon(&socket);
    let mut c = connect(&socket);
    let opened = c.open(&location);
    let n = opened.len;
    let rows = match c.call(Request::GetMany(GetMany {
        store: opened.store,
        indices: (0..n as i64).collect(),
        keys: None,
        missing_ok: false,
    })) {
        Response::Rows(r) => r,
        other => panic!("{other:?}"),
    };
    let mut batches: BTreeMap<(u64, u64), Vec<(usize, i64)>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_ref().expect("no placeholder rows were written");
        let key = (int(row, "info.w") as u64, int(row, "info.seq") as u64);
        batches
            .entry(key)
            .or_default()
            .push((i, int(row, "info.j")));
        let want = batch_row(key.0, key.1, int(row, "info.j") as u64);
        let mut got = row.clone();
        got.sort();
        let mut want_sorted = want;
        want_sorted.sort();
        assert_eq!(got, want_sorted, "row {i} reads back as written");
    }
    for (key, members) in &batches {
        let js: Vec<i64> = members.iter().map(|(_, j)| *j).collect();
        assert_eq!(
            js,
            (0..BATCH as i64).collect::<Vec<_>>(),
            "batch {key:?} whole, once, in order"
        );
        assert!(
            members.windows(2).all(|p| p[1].0 == p[0].0 + 1),
            "batch {key:?} contiguous"
        );
    }
    let present: HashSet<(u64, u64)> = batches.keys().copied().collect();
    let acked = acked.lock().unwrap();
    assert!(!acked.is_empty());
    for a in acked.iter() {
        assert!(present.contains(a), "acknowledged batch {a:?} survived");
    }
    eprintln!(
        "{ROUNDS} kills: {} batches acknowledged, {} present ({} committed but unacknowledged), {n} rows",
        acked.len(),
        present.len(),
        present.len() - acked.len()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
