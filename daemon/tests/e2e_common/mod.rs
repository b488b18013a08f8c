//! Helpers shared by the daemon's end-to-end tests: a server on a socket in a temporary
//! directory (never the user's), a small protocol client, and polling with a deadline.
#![allow(dead_code)] // each test binary uses a different subset

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use asebytes_daemon::config::Config;
use asebytes_daemon::launcher;
use asebytes_daemon::shutdown::{Reason, Shutdown};
use asebytes_protocol::frame;
use asebytes_protocol::request::Open;
use asebytes_protocol::response::Opened;
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::{Request, Response, Welcome};

/// Generous bound for anything the tests wait for on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The first connection to a daemon process that is still starting on `socket`.
pub fn connect_when_listening(socket: &Path) -> Client {
    let mut found = None;
    wait_for("the daemon to listen", || {
        found = launcher::connect(socket).ok();
        found.is_some()
    });
    let (stream, welcome) = found.unwrap();
    Client::from_stream(stream, welcome)
}

/// Polls `cond` until it holds; panics naming `what` after [`PATIENCE`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

/// A memory-store location no other test in this process uses (memory stores are
/// process-global).
pub fn unique_memory(name: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("memory://e2e-{name}-{}-{n}", std::process::id())
}

/// `server::run` on a socket in a temporary directory, on a thread of this process.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub shutdown: Shutdown,
    thread: Option<JoinHandle<asebytes_daemon::Result<()>>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("asebytesd.sock");
        let mut config = Config::for_socket(&socket);
        config.idle_timeout = Duration::ZERO;
        tweak(&mut config);
        let listener = UnixListener::bind(&socket).unwrap();
        let shutdown = Shutdown::new().unwrap();
        let s = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || asebytes_daemon::server::run(listener, config, s))
            .unwrap();
        Self {
            dir,
            socket,
            shutdown,
            thread: Some(thread),
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket)
    }

    pub fn raw(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s
    }

    /// Waits for `server::run` to return (after something triggered the shutdown).
    pub fn join(mut self) -> asebytes_daemon::Result<()> {
        let t = self.thread.take().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while !t.is_finished() {
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::park_timeout(Duration::from_millis(5));
        }
        t.join().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shutdown.trigger(Reason::Requested);
            let _ = t.join();
        }
    }
}

pub mod kill9;

/// A protocol client over one connection.
pub struct Client {
    pub stream: FrameStream,
    pub welcome: Welcome,
    next_id: u64,
}

impl Client {
    pub fn connect(socket: &Path) -> Self {
        let (stream, welcome) = launcher::connect(socket).unwrap();
        stream.socket().set_read_timeout(Some(PATIENCE)).unwrap();
        Self {
            stream,
            welcome,
            next_id: 1,
        }
    }

    pub fn from_stream(stream: FrameStream, welcome: Welcome) -> Self {
        stream.socket().set_read_timeout(Some(PATIENCE)).unwrap();
        Self {
            stream,
            welcome,
            next_id: 1,
        }
    }

    /// Sends `req` and returns the answer (checking it carries the same id).
    pub fn call(&mut self, req: Request) -> Response {
        let id = self.next_id;
        self.next_id += 1;
        self.stream.send(&frame::encode(id, &req).unwrap()).unwrap();
        self.read(id)
    }

    /// Reads the answer to request `id`.
    pub fn read(&mut self, id: u64) -> Response {
        let body = self.stream.recv(frame::DEFAULT_MAX_FRAME_LEN).unwrap();
        let env = frame::decode::<Response>(body).unwrap();
        assert_eq!(env.id, id, "answer carries the request id");
        env.body
    }

    pub fn open(&mut self, location: &str) -> Opened {
        self.open_with(Open {
            location: location.into(),
            ..Open::default()
        })
    }

    pub fn open_with(&mut self, open: Open) -> Opened {
        match self.call(Request::Open(open)) {
            Response::Opened(o) => o,
            other => panic!("open answered {other:?}"),
        }
    }

    /// Whether the daemon has closed this connection (reads until end of stream).
    pub fn is_closed(&mut self) -> bool {
        matches!(
            self.stream.recv(frame::DEFAULT_MAX_FRAME_LEN),
            Err(asebytes_protocol::Error::Closed)
        )
    }
}

/// Whether the daemon closed `sock` (end of stream or reset), reading and discarding
/// whatever it sent first; `false` if the socket stayed open for [`PATIENCE`].
pub fn closed_by_peer(sock: &mut UnixStream) -> bool {
    use std::io::{ErrorKind, Read};
    let mut sink = Vec::new();
    match sock.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// Whether this runs in CI (`CI` set, as `.ci/run` does): there a missing tool or
/// privilege is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Skips the calling test with `why` outside CI (returns so it can `return`), and fails it
/// with `why` in CI, where `.ci/run` provides everything the tests need.
pub fn skip_unless_ci(why: &str) {
    assert!(!in_ci(), "{why} (CI must provide it: see .ci/run)");
    eprintln!("skipped: {why}");
}

/// The path of program `name` on `PATH`, if any.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
