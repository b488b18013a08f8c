//! End-to-end tests with the real `asebytesd` binary: auto-start races, idle exit, signals,
//! `stop` / `start` / `status`, and data surviving a restart. Every daemon here serves a
//! socket in a temporary directory and gets an idle timeout, so a failed test leaves none
//! behind for long.

mod e2e_common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier};

use asebytes_daemon::launcher;
use asebytes_protocol::request::Extend;
use asebytes_protocol::value::row;
use asebytes_protocol::{Request, Response};
use e2e_common::{Client, PATIENCE, connect_when_listening, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_asebytesd");

fn socket_in(dir: &Path) -> PathBuf {
    dir.join("run").join("asebytesd.sock")
}

/// The command line a client uses to start the daemon.
fn daemon_argv(socket: &Path) -> Vec<OsString> {
    [BIN, "run", "--idle-timeout", "60", "--socket"]
        .map(OsString::from)
        .into_iter()
        .chain([socket.into()])
        .collect()
}

fn spawn_or_connect(socket: &Path) -> Client {
    let (stream, welcome) =
        launcher::connect_or_spawn(socket, &daemon_argv(socket), PATIENCE).unwrap();
    Client::from_stream(stream, welcome)
}

/// Runs `asebytesd --socket <socket> <args>` to completion.
fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

/// `asebytesd run` as a child of this test.
fn run_child(socket: &Path, idle: &str) -> Child {
    Command::new(BIN)
        .args([
            "run",
            "--foreground-log",
            "--idle-timeout",
            idle,
            "--socket",
        ])
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_for("the daemon to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

fn stop(socket: &Path) {
    let out = cli(socket, &["stop"]);
    assert!(
        out.status.success(),
        "stop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn racing_clients_start_exactly_one_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());
    let racers = 4;
    let barrier = Arc::new(Barrier::new(racers));
    let threads: Vec<_> = (0..racers)
        .map(|_| {
            let (socket, barrier) = (socket.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut c = spawn_or_connect(&socket);
                assert_eq!(c.call(Request::Ping), Response::Pong);
                (c.welcome.pid, c)
            })
        })
        .collect();
    let clients: Vec<(u32, Client)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let pid = clients[0].0;
    assert!(
        clients.iter().all(|(p, _)| *p == pid),
        "pids: {:?}",
        clients.iter().map(|c| c.0).collect::<Vec<_>>()
    );
    assert_ne!(pid, std::process::id());
    let mut status = spawn_or_connect(&socket);
    let Response::Status(st) = status.call(Request::Status) else {
        panic!("no status")
    };
    assert_eq!(
        st.clients,
        racers as u64 + 1,
        "every racer talks to the one daemon"
    );
    drop(clients);
    drop(status);
    stop(&socket);
    assert!(!socket.exists());
}

#[test]
fn an_idle_daemon_exits_and_removes_its_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());
    let mut child = run_child(&socket, "1");
    let mut c = connect_when_listening(&socket);
    assert_eq!(c.call(Request::Ping), Response::Pong);
    drop(c);
    assert!(wait_exit(&mut child).success());
    assert!(!socket.exists());
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());
    let mut child = run_child(&socket, "0");
    let mut c = connect_when_listening(&socket);
    c.open("memory://sigterm");
    // SAFETY: sending a signal to our own child, which is alive (not yet waited for).
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    assert!(wait_exit(&mut child).success());
    assert!(c.is_closed());
    assert!(!socket.exists());
}

#[test]
fn a_second_run_on_the_same_socket_reports_already_running() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());
    let first = spawn_or_connect(&socket);
    let out = cli(&socket, &["run", "--idle-timeout", "5"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already running"),
        "{out:?}"
    );
    let mut again = Client::connect(&socket);
    assert_eq!(again.welcome.pid, first.welcome.pid);
    assert_eq!(again.call(Request::Ping), Response::Pong);
    drop((first, again));
    stop(&socket);
}

#[test]
fn start_status_and_stop_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());

    let out = cli(&socket, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no asebytesd is running"),
        "{out:?}"
    );

    let out = cli(&socket, &["start", "--idle-timeout", "60"]);
    assert!(out.status.success(), "{out:?}");
    let started = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = cli(&socket, &["start"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        started,
        "a second start finds the same daemon"
    );

    let mut c = Client::connect(&socket);
    assert!(
        started.contains(&format!("(pid {})", c.welcome.pid)),
        "{started}"
    );
    let stores = [c.open("memory://cli-a"), c.open("memory://cli-b")];
    for (n, o) in stores.iter().enumerate() {
        let rows = (0..=n).map(|_| Some(row([("k", "v")]))).collect();
        c.call(Request::Extend(Extend {
            store: o.store,
            rows,
        }));
    }

    let out = cli(&socket, &["status"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("pid:          {}", c.welcome.pid)),
        "{text}"
    );
    assert!(
        text.contains(&format!("socket:       {}", socket.display())),
        "{text}"
    );
    assert!(text.contains("idle timeout: 60s"), "{text}");
    for (canonical, len) in [
        ("memory://cli-a#default", "1"),
        ("memory://cli-b#default", "2"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(canonical))
            .unwrap_or_else(|| panic!("{canonical}: {text}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[2], len, "{line}");
        assert_eq!(cols[3], "1", "{line}");
    }

    drop(c);
    let out = cli(&socket, &["stop"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped"),
        "{out:?}"
    );
    assert!(!socket.exists());
    let out = cli(&socket, &["stop"]);
    assert!(out.status.success(), "stopping nothing is fine");
}

#[cfg(feature = "lmdb")]
#[test]
fn stop_with_open_stores_loses_nothing() {
    use asebytes_protocol::ErrorCode;
    use asebytes_protocol::request::{Get, StoreRef};

    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());
    let data = tempfile::tempdir().unwrap();
    let lmdb = format!(
        "{}/keep.lmdb",
        data.path().canonicalize().unwrap().display()
    );

    let mut c = spawn_or_connect(&socket);
    let first_pid = c.welcome.pid;
    let store = c.open(&lmdb).store;
    for i in 0..3 {
        let rows = vec![Some(row([("i", i.to_string())]))];
        assert_eq!(
            c.call(Request::Extend(Extend { store, rows })),
            Response::Len(i + 1)
        );
    }
    // The store is still open on `c` while the daemon stops.
    stop(&socket);
    assert!(c.is_closed());

    let mut c = spawn_or_connect(&socket);
    assert_ne!(c.welcome.pid, first_pid, "a fresh daemon");
    let reopened = c.open(&lmdb);
    assert_eq!(reopened.len, 3);
    let got = c.call(Request::Get(Get {
        store: reopened.store,
        index: 2,
        keys: None,
    }));
    assert_eq!(got, Response::Row(Some(row([("i", "2")]))));
    let stale = c.call(Request::Len(StoreRef { store }));
    assert!(
        matches!(stale, Response::Error(ref e) if e.code == ErrorCode::UnknownStore),
        "{stale:?}"
    );
    drop(c);
    stop(&socket);
}

#[test]
fn the_daemon_log_sits_beside_the_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());
    let c = spawn_or_connect(&socket);
    drop(c);
    stop(&socket);
    let log = std::fs::read_to_string(launcher::log_path(&socket)).unwrap();
    assert!(
        log.contains("listening on") && log.contains("stopped"),
        "{log}"
    );
}

#[test]
fn the_socket_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let socket = socket_in(tmp.path());
    let c = spawn_or_connect(&socket);
    let dir_mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let sock_mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!((dir_mode, sock_mode), (0o700, 0o600));
    drop(c);
    stop(&socket);
}
