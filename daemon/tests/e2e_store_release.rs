//! Stores released when idle (DESIGN.md "Files that other programs also open"), end to
//! end: a store nobody uses lets go of its files, so the reference `asebytes` 0.3.3 (which
//! can never share an LMDB environment with the daemon) reads and writes it; the client
//! that wrote it keeps its store id and writes on; a file another program holds gives an
//! error that names the file and the holder.
//!
//! Needs the reference in a virtualenv (`./dev ref-venv`): `ASEBYTES_REF_PYTHON`, else
//! `<workspace>/.venv-ref/bin/python`. Without it the tests print `skipped: ...` and pass,
//! except under `CI`.

mod e2e_common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asebytes_protocol::request::{Extend, Get, StoreRef};
use asebytes_protocol::response::{Status, StoreStatus};
use asebytes_protocol::value::row;
use asebytes_protocol::{ErrorCode, Request, Response};
use e2e_common::{Client, TestServer, wait_for};

/// Store idle time of these tests' daemons.
const STORE_IDLE: Duration = Duration::from_millis(300);

/// The reference side: reads (and appends to) a store, or holds it open.
const SCRIPT: &str = r#"
import os, sys
import asebytes
assert asebytes.__version__ == "0.3.3", asebytes.__version__
mode, path = sys.argv[1], sys.argv[2]
if mode == "read-append":
    b = asebytes.LMDBBlobBackend(path)
    print("len", len(b))
    for i in range(len(b)):
        print("row", i, b.get(i)[b"n"].decode())
    b.extend([{b"n": b"from-reference"}])
    b.env.close()
elif mode == "hold":
    import lmdb
    env = lmdb.open(path + "/default", subdir=True, readonly=True)
    txn = env.begin()
    print("ready", os.getpid(), flush=True)
    sys.stdin.read()
"#;

fn ref_python() -> Option<PathBuf> {
    let configured = std::env::var_os("ASEBYTES_REF_PYTHON").map(PathBuf::from);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let path = configured.unwrap_or_else(|| root.join(".venv-ref/bin/python"));
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "reference python {} not found (set ASEBYTES_REF_PYTHON)",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

fn reference(python: &Path, dir: &Path, args: &[&str]) -> Command {
    let script = dir.join("ref.py");
    std::fs::write(&script, SCRIPT).expect("write script");
    let mut cmd = Command::new(python);
    cmd.arg(script).args(args);
    cmd
}

fn status(c: &mut Client) -> Status {
    match c.call(Request::Status) {
        Response::Status(s) => s,
        other => panic!("status answered {other:?}"),
    }
}

/// The status line of a store; `None` in the moment it is being released or re-opened
/// (status lists ready and released stores only).
fn try_store_line(c: &mut Client, canonical: &str) -> Option<StoreStatus> {
    status(c)
        .stores
        .into_iter()
        .find(|s| s.canonical == canonical)
}

fn store_line(c: &mut Client, canonical: &str) -> StoreStatus {
    try_store_line(c, canonical).expect("store listed")
}

fn released(c: &mut Client, canonical: &str) -> bool {
    try_store_line(c, canonical).is_some_and(|s| s.released)
}

fn extend(c: &mut Client, store: u64, values: &[&str]) -> Response {
    let rows = values.iter().map(|v| Some(row([("n", *v)]))).collect();
    c.call(Request::Extend(Extend { store, rows }))
}

fn value(c: &mut Client, store: u64, index: i64) -> String {
    let resp = c.call(Request::Get(Get {
        store,
        index,
        keys: None,
    }));
    let Response::Row(Some(row)) = resp else {
        panic!("get answered {resp:?}")
    };
    let v = &row
        .iter()
        .find(|(k, _)| k.as_ref() == b"n")
        .expect("key n")
        .1;
    String::from_utf8(v.to_vec()).expect("utf-8")
}

fn server() -> TestServer {
    TestServer::start_with(|c| c.store_idle = STORE_IDLE)
}

#[test]
fn test_an_idle_store_is_released_to_the_reference_and_its_client_writes_on() {
    let Some(python) = ref_python() else { return };
    let server = server();
    let path = server.dir.path().join("shared.lmdb");
    let path = path.to_str().expect("utf-8 path");
    let mut c = server.client();
    let opened = c.open(path);
    assert_eq!(extend(&mut c, opened.store, &["a", "b"]), Response::Len(2));

    wait_for("the store to be released", || {
        released(&mut c, &opened.canonical)
    });
    let line = store_line(&mut c, &opened.canonical);
    assert_eq!((line.len, line.clients, line.in_flight), (2, 1, 0));
    assert_eq!(line.space_reserved, 0, "a released store has no map");

    // The reference opens the file the daemon still lists, reads our rows, appends one.
    let out = reference(&python, server.dir.path(), &["read-append", path])
        .output()
        .expect("run the reference");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the reference could not open the released store: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["len 2", "row 0 a", "row 1 b"]
    );

    // The same store id writes on; the re-opened store sees the reference's row.
    assert_eq!(extend(&mut c, opened.store, &["c"]), Response::Len(4));
    assert_eq!(value(&mut c, opened.store, 2), "from-reference");
    assert_eq!(value(&mut c, opened.store, 3), "c");
}

#[test]
fn test_a_store_held_by_another_program_names_the_file_and_the_holder() {
    let Some(python) = ref_python() else { return };
    let server = server();
    let path = server.dir.path().join("held.lmdb");
    let path = path.to_str().expect("utf-8 path");
    let mut c = server.client();
    let opened = c.open(path);
    assert_eq!(extend(&mut c, opened.store, &["a"]), Response::Len(1));
    wait_for("the store to be released", || {
        released(&mut c, &opened.canonical)
    });

    let mut holder = reference(&python, server.dir.path(), &["hold", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the reference");
    let mut ready = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    let pid = ready
        .trim()
        .strip_prefix("ready ")
        .expect(&ready)
        .to_owned();

    let resp = c.call(Request::Len(StoreRef {
        store: opened.store,
    }));
    let Response::Error(err) = resp else {
        panic!("a held store opened: {resp:?}")
    };
    assert_eq!(err.code, ErrorCode::Unavailable, "{err:?}");
    assert!(
        err.message.contains(&format!("{path}/default")),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&format!("pid {pid} (python")),
        "{}",
        err.message
    );
    assert!(released(&mut c, &opened.canonical), "stays released");

    // Once the other program lets go, the same id works again.
    drop(holder.stdin.take());
    assert!(holder.wait().expect("holder exit").success());
    assert_eq!(extend(&mut c, opened.store, &["b"]), Response::Len(2));
}

#[test]
fn test_a_store_in_use_is_not_released() {
    let idle = Duration::from_secs(1);
    let server = TestServer::start_with(|c| c.store_idle = idle);
    let path = server.dir.path().join("busy.lmdb");
    let mut c = server.client();
    let opened = c.open(path.to_str().expect("utf-8 path"));
    assert_eq!(extend(&mut c, opened.store, &["x"]), Response::Len(1));
    // Back-to-back requests for several idle times keep it open.
    let until = Instant::now() + idle * 3;
    while Instant::now() < until {
        let resp = c.call(Request::Len(StoreRef {
            store: opened.store,
        }));
        assert_eq!(resp, Response::Len(1));
        assert!(!released(&mut c, &opened.canonical));
    }
    wait_for("the store to be released once unused", || {
        released(&mut c, &opened.canonical)
    });
}
