//! `kill -9` of a real daemon (`asebytesd`) while several client *processes* append
//! batches to one store, and of a client in the middle of sending its batch; one test body
//! for every persistent backend ([`run`], parameterised by the store's file extension).
//!
//! Each round starts a daemon, kills one client process with SIGKILL half-way through
//! sending a batch, lets [`WRITERS`] client processes append until a few more batches are
//! acknowledged, kills the daemon with SIGKILL, starts a fresh one and checks the store:
//! it opens, every acknowledged batch is there exactly once, whole and contiguous, every
//! row reads back as written, and nothing of the half-sent batches is there.
//!
//! [`run_with`] passes open options (e.g. LMDB's `durability="os"`) to every open.
//!
//! The client processes are the test binary itself, re-run with `ABT_KILL9_CHILD` set:
//! the test binary must have a test named [`CHILD_TEST`] that calls [`child_main`].
//! `ABT_KILL9_ROUNDS` sets the number of daemon kills (default [`DEFAULT_ROUNDS`]).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use asebytes_daemon::launcher;
use asebytes_protocol::codec::{self, NdArray, Value};
use asebytes_protocol::frame;
use asebytes_protocol::request::{Extend, GetMany, Open};
use asebytes_protocol::{OptionMap, OptionValue, Request, Response, Row};
use serde_bytes::ByteBuf;

use super::{Client, wait_for};

/// The daemon binary; `CARGO_BIN_EXE_*` exists for the daemon crate's own tests.
const BIN: &str = env!("CARGO_BIN_EXE_asebytesd");
/// Client processes appending at once.
pub const WRITERS: u64 = 3;
/// Rows per batch.
pub const BATCH: u64 = 4;
/// Daemon kills per backend unless `ABT_KILL9_ROUNDS` says otherwise.
pub const DEFAULT_ROUNDS: u64 = 8;
/// The name of the test that runs [`child_main`].
pub const CHILD_TEST: &str = "kill9_client_process";
/// The writer id of the clients killed mid-batch.
const PARTIAL_WRITER: u64 = 99;
const CHILD_ENV: &str = "ABT_KILL9_CHILD";
/// `name=value,...` open options for the client processes (see [`run_with`]).
const OPTIONS_ENV: &str = "ABT_KILL9_OPTIONS";

/// What a backend promises about a kill of the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promise {
    /// The store always reopens with every acknowledged batch (LMDB, Zarr).
    Always,
    /// HDF5 cannot make its metadata writes atomic: a few kills in a hundred leave a
    /// chunk unreadable (`docs/backends/hdf5.md`). Such rounds are counted (and the test
    /// moves on to a new file); more than `2 + rounds / 10` of them fail the test.
    Measured,
}

/// Options of the `Open` request: `extra` (`name=value,...`), and
/// `ABT_HDF5_KILL_COMPRESSION` for HDF5 stores.
fn open_request(location: &str, extra: &str) -> Request {
    let mut options = OptionMap::new();
    for (name, value) in extra.split(',').filter_map(|o| o.split_once('=')) {
        options.insert(name.into(), OptionValue::Str(value.into()));
    }
    let hdf5 = [".h5", ".h5p", ".h5md"]
        .iter()
        .any(|e| location.ends_with(e));
    if let (true, Ok(c)) = (hdf5, std::env::var("ABT_HDF5_KILL_COMPRESSION")) {
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

/// Row `j` of batch `seq` of writer `w`: its atom count varies so ragged offsets move.
pub fn batch_row(w: u64, seq: u64, j: u64) -> Row {
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

/// Sends one request and reads its answer; `None` once the daemon is gone.
fn try_call(c: &mut Client, id: u64, req: &Request) -> Option<Response> {
    c.stream.send(&frame::encode(id, req).ok()?).ok()?;
    let body = c.stream.recv(frame::DEFAULT_MAX_FRAME_LEN).ok()?;
    Some(frame::decode::<Response>(body).ok()?.body)
}

/// The client process's side: with `ABT_KILL9_CHILD` unset it does nothing (the test
/// passes trivially). `writer` appends batches `seq, seq+1, ...` as writer `w`, printing
/// `ack <w> <seq>` after each acknowledged one, until the daemon is gone; `partial` sends
/// half of one batch, prints `partial` and waits to be killed.
pub fn child_main() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let socket = PathBuf::from(var("ABT_KILL9_SOCKET"));
    let location = var("ABT_KILL9_LOCATION");
    let w: u64 = var("ABT_KILL9_W").parse().unwrap();
    let first_seq: u64 = var("ABT_KILL9_SEQ").parse().unwrap();
    let Ok((stream, welcome)) = launcher::connect(&socket) else {
        return;
    };
    let mut c = Client::from_stream(stream, welcome);
    let extra = std::env::var(OPTIONS_ENV).unwrap_or_default();
    let Some(Response::Opened(opened)) = try_call(&mut c, 1, &open_request(&location, &extra))
    else {
        return;
    };
    let extend = |seq| {
        let rows = (0..BATCH).map(|j| Some(batch_row(w, seq, j))).collect();
        Request::Extend(Extend {
            store: opened.store,
            rows,
        })
    };
    if role == "partial" {
        let frame = frame::encode(2, &extend(first_seq)).unwrap();
        let mut sock = c.stream.socket();
        sock.write_all(&frame[..frame.len() / 2]).unwrap();
        println!("partial");
        std::thread::park(); // until SIGKILL
        return;
    }
    for (id, seq) in (2..).zip(first_seq..) {
        match try_call(&mut c, id, &extend(seq)) {
            Some(Response::Len(_)) => println!("ack {w} {seq}"),
            _ => return,
        }
    }
}

/// How one kill loop opens its store.
struct Setup<'a> {
    socket: &'a Path,
    /// `name=value,...` open options.
    options: &'a str,
}

/// Starts a client process of `role` (see [`child_main`]); its stdout is piped.
fn spawn_child(role: &str, setup: &Setup<'_>, location: &str, w: u64, seq: u64) -> Child {
    let socket = setup.socket;
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD_TEST,
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_ENV, role)
        .env("ABT_KILL9_SOCKET", socket)
        .env("ABT_KILL9_LOCATION", location)
        .env("ABT_KILL9_W", w.to_string())
        .env("ABT_KILL9_SEQ", seq.to_string())
        .env(OPTIONS_ENV, setup.options)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

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
    super::connect_when_listening(socket)
}

/// Kills a client process in the middle of sending its batch.
fn kill_mid_batch(setup: &Setup<'_>, location: &str, seq: u64) {
    let mut child = spawn_child("partial", setup, location, PARTIAL_WRITER, seq);
    let out = BufReader::new(child.stdout.take().unwrap());
    let sent_half = out
        .lines()
        .map_while(Result::ok)
        .any(|l| l.ends_with("partial"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(sent_half, "the mid-batch client never sent its half batch");
}

/// Opens the store with a fresh daemon and checks it; `Ok` is its row count, `Err` says
/// what is wrong (`unreadable`, `garbage` or `lost`).
fn check(
    c: &mut Client,
    location: &str,
    options: &str,
    acked: &[(u64, u64)],
) -> Result<usize, (&'static str, String)> {
    let opened = match c.call(open_request(location, options)) {
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
        if w as u64 == PARTIAL_WRITER {
            return Err(("garbage", format!("row {i} is from a half-sent batch")));
        }
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

/// The kill loop on a store `crash-<n>.<ext>` in a temporary directory (see the module
/// docs); panics when the backend breaks its [`Promise`].
pub fn run(ext: &str, promise: Promise) {
    run_with(ext, "", promise);
}

/// [`run`] with open options `name=value,...` on every open.
pub fn run_with(ext: &str, options: &str, promise: Promise) {
    let rounds: u64 = std::env::var("ABT_KILL9_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("run").join("asebytesd.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let loc = |n: u64| {
        let p = tmp.path().join(format!("crash-{n}.{ext}"));
        p.to_string_lossy().into_owned()
    };
    let (mut file_no, mut damaged, mut frames) = (0, 0u64, 0usize);
    let mut location = loc(file_no);
    let mut acked: Vec<(u64, u64)> = Vec::new();
    let mut daemon = spawn_daemon(&socket);
    let setup = Setup {
        socket: &socket,
        options,
    };
    for round in 0..rounds {
        connect(&socket);
        kill_mid_batch(&setup, &location, 9_000_000 + round);
        let round_acks: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let seq = w * 1_000_000 + round * 10_000;
                let mut child = spawn_child("writer", &setup, &location, w, seq);
                let out = BufReader::new(child.stdout.take().unwrap());
                let acks = round_acks.clone();
                let reader = std::thread::spawn(move || {
                    for line in out.lines().map_while(Result::ok) {
                        // libtest may print its own words before ours on a line.
                        let Some((_, ack)) = line.split_once("ack ") else {
                            continue;
                        };
                        let mut words = ack.split(' ').map(str::parse::<u64>);
                        if let (Some(Ok(w)), Some(Ok(s))) = (words.next(), words.next()) {
                            acks.lock().unwrap().push((w, s));
                        }
                    }
                });
                (child, reader)
            })
            .collect();
        // Kill at a different point of the write stream each round.
        let target = 2 + (round * 7) % 11;
        wait_for("some acknowledged batches", || {
            round_acks.lock().unwrap().len() as u64 >= target
        });
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        for (mut child, reader) in writers {
            child.wait().unwrap();
            reader.join().unwrap();
        }
        acked.extend(round_acks.lock().unwrap().iter().copied());
        daemon = spawn_daemon(&socket);
        let mut c = connect(&socket);
        match check(&mut c, &location, options, &acked) {
            Ok(n) => frames = n,
            Err((what, why)) => {
                assert!(
                    promise == Promise::Measured,
                    "{ext}: round {round}: {what}: {why}"
                );
                eprintln!("{ext}: round {round}: {what}: {why}");
                damaged += 1;
                file_no += 1;
                location = loc(file_no);
                acked.clear();
            }
        }
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    eprintln!(
        "{ext} {options}: {rounds} daemon kills during appends by {WRITERS} processes (and {rounds} \
         clients killed mid-batch): {damaged} damaged the store, {frames} frames in the last file"
    );
    // HDF5: measured at about 2.5 % of kills (docs/backends/hdf5.md); fail well above.
    assert!(
        damaged <= 2 + rounds / 10,
        "{ext}: {damaged} of {rounds} kills damaged the store"
    );
}
