//! A private MongoDB-wire server for tests: SecantusDB (`secantusd-py`, installed into the
//! checkout's `.venv` from requirements-dev.txt) on a free loopback port, storing in its own
//! temporary directory, stopped when the test binary is done with it.
//!
//! Layer: test-only. One server per test binary, started on first use from the main thread
//! (the contract suite probes every fixture there; the server dies with that thread); each
//! trial uses its own database.
//! `ASEBYTES_SECANTUSD` names the server program when it is elsewhere. The URI is plain
//! `mongodb://127.0.0.1:<port>/…`, so a real `mongod` serves the same tests.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server; killed and its directory removed when dropped.
#[derive(Debug)]
pub struct MongoServer {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl MongoServer {
    /// Starts a server on a free loopback port.
    pub fn start() -> Result<Self, String> {
        let program = server_program().ok_or_else(|| {
            "secantusd-py not found: install requirements-dev.txt into .venv (./dev) or set ASEBYTES_SECANTUSD"
                .to_string()
        })?;
        let dir = TempDir::new().map_err(|e| format!("temporary directory: {e}"))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("server.log"))
            .map_err(|e| format!("server log: {e}"))?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| format!("server directory: {e}"))?;
        let mut command = Command::new(&program);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the server
        // when the thread that started it (the test binary's main thread) dies, so a test
        // binary that is killed leaves no server behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        while TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                return Err(format!("{} exited with {status}: {log}", program.display()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not listen on {port} in time",
                    program.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mongodb://127.0.0.1:<port>/<database>`.
    pub fn uri(&self, database: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server program: `$ASEBYTES_SECANTUSD`, else the checkout's `.venv`.
pub fn server_program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ASEBYTES_SECANTUSD") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/secantusd-py");
    venv.exists().then_some(venv)
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

static SHARED: OnceLock<Mutex<Option<MongoServer>>> = OnceLock::new();

/// The test binary's shared server (started on first call), or why there is none.
pub fn shared_uri(database: &str) -> Result<String, String> {
    let slot = SHARED.get_or_init(|| Mutex::new(None));
    let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.is_none() {
        *guard = Some(MongoServer::start()?);
    }
    Ok(guard.as_ref().map(|s| s.uri(database)).unwrap_or_default())
}

/// Stops the shared server (a test binary calls this before it exits, since statics are
/// never dropped).
pub fn stop_shared() {
    if let Some(slot) = SHARED.get() {
        slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}
