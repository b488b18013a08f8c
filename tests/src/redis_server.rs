//! A private `redis-server` for tests: started on a free loopback port with its working
//! directory in a temporary directory, without persistence unless asked, and stopped when
//! dropped (or, if the test process dies first, by the kernel: the server gets SIGTERM
//! when the thread that started it exits). Never touches a server it did not start.
//!
//! Layer: test-only kit, beside the contract suite's fixtures in the crate root.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to answer PING after it was started.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running `redis-server` child.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server without persistence.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (`--requirepass x`).
    pub fn start_with(extra: &[&str]) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("redis-test").tempdir()?;
        let port = free_port()?;
        let mut server = Self {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> std::io::Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start redis-server (apt install redis-server): {e}"),
            )
        })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(std::io::Error::other(format!(
                    "redis-server on port {} exited at start: {status}",
                    self.port
                )));
            }
            if self.answers_ping() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "redis-server on port {} did not answer within {READY_WITHIN:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers (any reply to PING, `-NOAUTH` included).
    fn answers_ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 64];
        s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (SIGKILL: nothing to flush without persistence) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts it again on the same port (data is gone unless persistence was
    /// configured).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        self.launch()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Logical databases of the shared server: one per trial directory.
const SHARED_DATABASES: u32 = 100_000;

static SHARED: OnceLock<Mutex<Option<RedisServer>>> = OnceLock::new();
static DATABASES: LazyLock<Mutex<HashMap<PathBuf, u32>>> = LazyLock::new(Default::default);

/// A location on the suite's shared server, started on first use, with a logical
/// database of its own for each `dir` (the same one every time for the same `dir`). Start
/// it from the main thread (the suite does, when it probes the fixtures): the server is
/// bound to the starting thread's life.
pub fn shared_url(dir: &Path) -> String {
    let slot = SHARED.get_or_init(|| {
        let databases = SHARED_DATABASES.to_string();
        Mutex::new(Some(
            RedisServer::start_with(&["--databases", &databases])
                .expect("start the contract suite's redis-server"),
        ))
    });
    let port = slot
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(RedisServer::port)
        .expect("the shared redis-server was stopped");
    let mut dbs = DATABASES.lock().unwrap_or_else(PoisonError::into_inner);
    let next = dbs.len() as u32 + 1;
    assert!(
        next < SHARED_DATABASES,
        "the shared redis-server ran out of databases"
    );
    let db = *dbs.entry(dir.to_path_buf()).or_insert(next);
    format!("redis://127.0.0.1:{port}/{db}")
}

/// Stops the shared server if one was started (the suite calls this before it exits,
/// because statics are not dropped at exit).
pub fn stop_shared() {
    if let Some(slot) = SHARED.get() {
        slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}
