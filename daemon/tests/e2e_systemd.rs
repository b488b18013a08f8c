//! The systemd user units of `asebytesd install-service`, proven with systemd's own tools
//! (Debian's `systemd` package, which `.ci/run` installs; outside CI the tests skip without
//! it): `systemd-analyze verify` accepts the units, and the daemon runs under real socket
//! activation (`systemd-socket-activate` listens on the unit's socket path and starts the
//! unit's `ExecStart=` command on the first connection, passing the socket as systemd
//! does). Clients that know nothing of systemd connect through it, the daemon exits when
//! idle without removing systemd's socket, and the next connection activates it again
//! with every row still there.
#![cfg(feature = "lmdb")]

mod e2e_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use asebytes_daemon::launcher;
use asebytes_protocol::request::{Extend, Get, StoreRef};
use asebytes_protocol::value::row;
use asebytes_protocol::{Request, Response};
use e2e_common::{Client, PATIENCE, find_program, skip_unless_ci, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_asebytesd");

/// The programs of Debian's `systemd` package these tests run, or `None` (skipped).
fn systemd_tool(name: &str) -> Option<PathBuf> {
    let found = find_program(name);
    if found.is_none() {
        skip_unless_ci(&format!("{name} is not installed (Debian package systemd)"));
    }
    found
}

/// A user's directories: `$XDG_CONFIG_HOME` (where the units go) and `$XDG_RUNTIME_DIR`
/// (systemd's `%t`), both private.
struct UserDirs {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    runtime: PathBuf,
    data: PathBuf,
}

impl UserDirs {
    fn new() -> Self {
        use std::os::unix::fs::DirBuilderExt;
        let tmp = tempfile::tempdir().unwrap();
        let [config, runtime, data] = ["config", "run", "data"].map(|d| tmp.path().join(d));
        for d in [&config, &runtime, &data] {
            std::fs::DirBuilder::new().mode(0o700).create(d).unwrap();
        }
        Self {
            _tmp: tmp,
            config,
            runtime,
            data,
        }
    }

    /// `asebytesd` with this user's environment (and no socket override).
    fn asebytesd(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env_remove("ASEBYTES_SOCKET")
            .env("XDG_CONFIG_HOME", &self.config)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .output()
            .unwrap()
    }

    /// Writes the units with `install-service`; returns their directory.
    fn install_units(&self) -> PathBuf {
        let out = self.asebytesd(&["install-service"]);
        assert!(out.status.success(), "install-service: {out:?}");
        let dir = self.config.join("systemd/user");
        for unit in ["asebytesd.socket", "asebytesd.service"] {
            assert!(dir.join(unit).is_file(), "{unit} written");
        }
        dir
    }

    /// A unit setting with systemd's specifiers resolved (`%t`, `%%`; the units use no
    /// others), split into words (the test's paths need no quoting).
    fn setting(&self, unit: &Path, key: &str) -> Vec<String> {
        let text = std::fs::read_to_string(unit).unwrap();
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{} has no {key}=", unit.display()));
        assert!(!value.contains('"'), "unexpected quoting in {value}");
        let runtime = self.runtime.to_str().unwrap();
        value
            .split_whitespace()
            .map(|w| w.replace("%t", runtime).replace("%%", "%"))
            .collect()
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_generated_units() {
    let Some(analyze) = systemd_tool("systemd-analyze") else {
        return;
    };
    let user = UserDirs::new();
    let dir = user.install_units();
    let verify = |dir: &Path| {
        Command::new(&analyze)
            .args(["verify", "--user", "asebytesd.socket", "asebytesd.service"])
            .current_dir(dir)
            .env("XDG_RUNTIME_DIR", &user.runtime)
            .output()
            .unwrap()
    };
    let out = verify(&dir);
    let said = String::from_utf8_lossy(&out.stderr);
    // Warnings about our units (an unknown key, a bad value) only print; anything else on
    // stderr is about the machine (no user bus in a container) and not ours to judge.
    assert!(
        out.status.success() && !said.contains("asebytesd."),
        "systemd-analyze verify: {said}"
    );
    // The check has teeth: a service whose command does not exist is refused.
    let bad = user.data.join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::copy(dir.join("asebytesd.socket"), bad.join("asebytesd.socket")).unwrap();
    let service = std::fs::read_to_string(dir.join("asebytesd.service")).unwrap();
    std::fs::write(
        bad.join("asebytesd.service"),
        service.replace(BIN, "/nonexistent/asebytesd"),
    )
    .unwrap();
    assert!(
        !verify(&bad).status.success(),
        "a broken unit passes verify"
    );
}

/// `systemd-socket-activate` on the socket unit's `ListenStream=`, running the service
/// unit's `ExecStart=` on the first connection, in the clean environment systemd gives a
/// user service (plus a short idle timeout, as `systemctl --user edit` would set it).
fn activate(tool: &Path, socket: &Path, exec_start: &[String], user: &UserDirs) -> Child {
    let runtime = format!("XDG_RUNTIME_DIR={}", user.runtime.display());
    Command::new(tool)
        .arg("--listen")
        .arg(socket)
        .args(["-E", &runtime, "-E", "ASEBYTES_IDLE_TIMEOUT=1"])
        .args(exec_start)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until systemd's stand-in listens (the socket file appears).
fn wait_listening(socket: &Path) {
    wait_for("systemd-socket-activate to listen", || socket.exists());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not exit when idle"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn row_i(c: &mut Client, store: u64, index: i64) -> Vec<u8> {
    let Response::Row(Some(r)) = c.call(Request::Get(Get {
        store,
        index,
        keys: None,
    })) else {
        panic!("row {index} missing")
    };
    r.into_iter()
        .find(|(k, _)| k.as_slice() == b"i")
        .unwrap()
        .1
        .into_vec()
}

#[test]
fn socket_activation_serves_clients_exits_when_idle_and_activates_again() {
    let Some(tool) = systemd_tool("systemd-socket-activate") else {
        return;
    };
    let user = UserDirs::new();
    let units = user.install_units();
    let listen = user.setting(&units.join("asebytesd.socket"), "ListenStream");
    let exec_start = user.setting(&units.join("asebytesd.service"), "ExecStart");
    let socket = PathBuf::from(&listen[0]);
    // The unit's socket is where clients look by default: no ASEBYTES_SOCKET needed.
    assert_eq!(
        socket,
        asebytes_daemon::paths::socket_path_from(None, Some(user.runtime.clone().into()), 0)
    );
    assert_eq!(
        exec_start[exec_start.len() - 2..],
        ["--socket".to_string(), listen[0].clone()]
    );
    // systemd creates the socket's directory (DirectoryMode=0700).
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(socket.parent().unwrap())
        .unwrap();
    let location = user.data.join("activated.lmdb").display().to_string();

    // First activation: a connection starts the daemon; two clients use it.
    let mut activator = activate(&tool, &socket, &exec_start, &user);
    wait_listening(&socket);
    let (stream, welcome) = launcher::connect(&socket).expect("connects through systemd");
    assert_eq!(
        welcome.pid,
        activator.id(),
        "the activated daemon answers (not one it spawned)"
    );
    let mut c = Client::from_stream(stream, welcome);
    let store = c.open(&location).store;
    let rows = (0..5).map(|i| Some(row([("i", i.to_string())]))).collect();
    assert_eq!(
        c.call(Request::Extend(Extend { store, rows })),
        Response::Len(5)
    );
    let status = user.asebytesd(&["status", "--json"]);
    assert!(status.status.success(), "status: {status:?}");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains(&activator.id().to_string()), "{text}");
    drop(c);

    // Idle: the daemon exits cleanly and leaves systemd's socket in place.
    assert!(wait_exit(&mut activator).success());
    assert!(socket.exists(), "the daemon removed systemd's socket");

    // Second activation: the next connection starts a new daemon; the rows are there.
    // (systemd keeps listening on its socket; its stand-in binds it anew.)
    std::fs::remove_file(&socket).unwrap();
    let mut activator = activate(&tool, &socket, &exec_start, &user);
    wait_listening(&socket);
    let (stream, welcome) = launcher::connect(&socket).expect("connects again");
    assert_eq!(welcome.pid, activator.id());
    let mut c = Client::from_stream(stream, welcome);
    let store = c.open(&location).store;
    assert_eq!(c.call(Request::Len(StoreRef { store })), Response::Len(5));
    assert_eq!(row_i(&mut c, store, 4), b"4");
    drop(c);
    assert!(wait_exit(&mut activator).success());
}
