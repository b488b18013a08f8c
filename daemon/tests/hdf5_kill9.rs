//! Crash behaviour of the HDF5 backend with a real daemon: clients append batches to one
//! `*.h5` store while the daemon is killed with SIGKILL, again and again; after every kill
//! a fresh daemon opens the store and the test checks that it opens, that every
//! acknowledged batch is there, whole and once, and that no row reads garbage.
//!
//! HDF5 cannot make its own metadata writes atomic, so this test *measures*: it counts
//! rounds that end with an unreadable store or a lost batch (then starts a new file) and
//! fails only above the rate `docs/backends/hdf5.md` states. `ABT_HDF5_KILL_ROUNDS` sets
//! the number of kills (default 12), `ABT_HDF5_KILL_COMPRESSION=none` measures
//! uncompressed columns.
#![cfg(feature = "hdf5")]

mod e2e_common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use asebytes_daemon::launcher;
use asebytes_protocol::codec::{self, NdArray, Value};
use asebytes_protocol::request::{Extend, GetMany, Open};
use asebytes_protocol::{OptionMap, OptionValue, Request, Response, Row};
use e2e_common::{Client, wait_for};
use serde_bytes::ByteBuf;

const BIN: &str = env!("CARGO_BIN_EXE_asebytesd");
const WRITERS: u64 = 3;
const BATCH: u64 = 4;
/// Writers lose their connection when the daemon dies: expected, so not reported.
const WRITER_THREAD: &str = "hdf5-writer";

fn spawn_daemon(socket: &Path) -> Child {
    let _ = std::fs::remove_file(socket);
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

fn open_req(location: &str) -> Request {
    let mut options = OptionMap::new();
    if let Ok(c) = std::env::var("ABT_HDF5_KILL_COMPRESSION") {
        options.insert("compression".into(), OptionValue::Str(c));
    }
    Request::Open(Open {
        location: location.into(),
        options,
        ..Open::default()
    })
}

fn enc(v: Value) -> ByteBuf {
    ByteBuf::from(codec::encode(&v).unwrap())
}

/// Row `j` of batch `seq` of writer `w`: its atom count varies so the ragged offsets move.
fn batch_row(w: u64, seq: u64, j: u64) -> Row {
    let n = 1 + (w + seq + j) % 5;
    let pos: Vec<f64> = (0..n * 3).map(|x| (seq * 100 + x) as f64).collect();
    let key = |k: &str| ByteBuf::from(k.as_bytes().to_vec());
    vec![
        (key("info.w"), enc(Value::Int(w as i64))),
        (key("info.seq"), enc(Value::Int(seq as i64))),
        (key("info.j"), enc(Value::Int(j as i64))),
        (key("calc.energy"), enc(Value::Float(seq as f64 + 0.5))),
        (
            key("arrays.positions"),
            enc(Value::Array(NdArray::from_f64s(vec![n, 3], &pos).unwrap())),
        ),
    ]
}

fn int(row: &Row, key: &str) -> Option<i64> {
    let v = &row.iter().find(|(k, _)| &k[..] == key.as_bytes())?.1;
    match codec::decode(v).ok()? {
        Value::Int(i) => Some(i),
        _ => None,
    }
}

/// Appends batches until the connection breaks; records what was acknowledged.
fn writer(
    socket: &Path,
    location: &str,
    w: u64,
    seq: Arc<AtomicU64>,
    acked: Arc<Mutex<Vec<(u64, u64)>>>,
) {
    let Ok((stream, welcome)) = launcher::connect(socket) else {
        return;
    };
    let mut c = Client::from_stream(stream, welcome);
    let call = |c: &mut Client, req| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.call(req)))
    };
    let store = match call(&mut c, open_req(location)) {
        Ok(Response::Opened(o)) => o.store,
        _ => return,
    };
    loop {
        let s = seq.fetch_add(1, Ordering::Relaxed);
        let rows = (0..BATCH).map(|j| Some(batch_row(w, s, j))).collect();
        match call(&mut c, Request::Extend(Extend { store, rows })) {
            Ok(Response::Len(_)) => acked.lock().unwrap().push((w, s)),
            _ => return,
        }
    }
}

/// Opens the store with a fresh daemon and checks every acknowledged batch.
fn check(
    c: &mut Client,
    location: &str,
    acked: &[(u64, u64)],
) -> Result<usize, (&'static str, String)> {
    let opened = match c.call(open_req(location)) {
        Response::Opened(o) => o,
        other => return Err(("unreadable", format!("open: {other:?}"))),
    };
    let rows = match c.call(Request::GetMany(GetMany {
        store: opened.store,
        indices: (0..opened.len as i64).collect(),
        keys: None,
        missing_ok: false,
    })) {
        Response::Rows(r) => r,
        other => return Err(("unreadable", format!("read: {other:?}"))),
    };
    let mut batches: BTreeMap<(u64, u64), Vec<(usize, i64)>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let row = row
            .as_ref()
            .ok_or(("garbage", format!("row {i} is a placeholder")))?;
        let (Some(w), Some(s), Some(j)) =
            (int(row, "info.w"), int(row, "info.seq"), int(row, "info.j"))
        else {
            return Err(("garbage", format!("row {i} lacks its ids")));
        };
        let mut want = batch_row(w as u64, s as u64, j as u64);
        let mut got = row.clone();
        got.sort();
        want.sort();
        if got != want {
            return Err(("garbage", format!("row {i} reads back wrong")));
        }
        batches
            .entry((w as u64, s as u64))
            .or_default()
            .push((i, j));
    }
    for (key, members) in &batches {
        let js: Vec<i64> = members.iter().map(|(_, j)| *j).collect();
        let contiguous = members.windows(2).all(|p| p[1].0 == p[0].0 + 1);
        if js != (0..BATCH as i64).collect::<Vec<_>>() || !contiguous {
            return Err((
                "garbage",
                format!("batch {key:?} is not whole, once, in order"),
            ));
        }
    }
    let present: HashSet<(u64, u64)> = batches.keys().copied().collect();
    if let Some(a) = acked.iter().find(|a| !present.contains(a)) {
        return Err(("lost", format!("acknowledged batch {a:?} is missing")));
    }
    Ok(rows.len())
}

#[test]
fn kill_9_of_the_daemon_during_concurrent_appends_is_measured() {
    let rounds: u64 = std::env::var("ABT_HDF5_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(WRITER_THREAD) {
            report(info);
        }
    }));
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("run").join("asebytesd.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let mut file_no = 0;
    let loc = |n: u32| {
        tmp.path()
            .join(format!("crash-{n}.h5"))
            .to_string_lossy()
            .into_owned()
    };
    let mut location = loc(file_no);
    let mut acked: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let seqs: Vec<Arc<AtomicU64>> = (0..WRITERS)
        .map(|w| Arc::new(AtomicU64::new(w * 1_000_000)))
        .collect();
    let (mut failed, mut frames) = (0u64, 0usize);
    let mut child = spawn_daemon(&socket);
    for round in 0..rounds {
        connect(&socket);
        let before = acked.lock().unwrap().len() as u64;
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (socket, location) = (socket.clone(), location.clone());
                let (seq, acked) = (seqs[w as usize].clone(), acked.clone());
                std::thread::Builder::new()
                    .name(WRITER_THREAD.into())
                    .spawn(move || writer(&socket, &location, w, seq, acked))
                    .unwrap()
            })
            .collect();
        // Kill at a different point of the write stream each round.
        let target = before + 2 + (round * 7) % 11;
        wait_for("some acknowledged batches", || {
            acked.lock().unwrap().len() as u64 >= target
        });
        child.kill().unwrap();
        child.wait().unwrap();
        for t in threads {
            t.join().unwrap();
        }
        child = spawn_daemon(&socket);
        let mut c = connect(&socket);
        let done = acked.lock().unwrap().clone();
        match check(&mut c, &location, &done) {
            Ok(n) => frames = n,
            Err((what, why)) => {
                eprintln!("round {round}: {what}: {why}");
                failed += 1;
                file_no += 1;
                location = loc(file_no);
                acked = Arc::default();
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "HDF5 daemon kill -9 during appends: {failed} of {rounds} rounds damaged the store ({frames} frames in the last file)"
    );
    // Measured: about 2.5% of kills (docs/backends/hdf5.md); fail well above that.
    assert!(
        failed <= 2 + rounds / 10,
        "{failed} of {rounds} kills damaged the store"
    );
}
