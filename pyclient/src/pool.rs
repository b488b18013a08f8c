//! The per-process pool of daemon connections.
//!
//! A call takes one connection, uses it, and gives it back; when every pooled connection
//! is busy (threads), a new one is opened, so the pool grows to the process's real
//! concurrency and no request ever waits behind another thread's round trip.
//!
//! Fork safety: a child must never talk on its parent's connections (replies would go to
//! whichever process reads first). A `pthread_atfork` child hook bumps a generation
//! counter; the next take in the child sees it, closes the child's copies of the pooled
//! descriptors (the parent's connections stay open: the sockets live on in the parent),
//! and connects afresh. The process id is recorded too and checked alongside, for
//! children created without `fork()` handlers running.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use asebytes_daemon::launcher;
use asebytes_protocol::Welcome;
use asebytes_protocol::stream::FrameStream;
use pyo3::prelude::*;

use crate::detach::blocking;
use crate::errors::ClientError;

/// Identifies one daemon process: store ids from another daemon are meaningless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch {
    pid: u32,
    started_at: u64,
}

impl Epoch {
    fn of(w: &Welcome) -> Self {
        Self {
            pid: w.pid,
            started_at: w.started_at,
        }
    }
}

/// One handshaken connection to the daemon.
#[derive(Debug)]
pub struct Conn {
    /// The frames.
    pub stream: FrameStream,
    /// Which daemon answered the handshake.
    pub epoch: Epoch,
    /// Reused buffer for outgoing frames.
    pub wbuf: Vec<u8>,
    /// Cap on a frame in either direction (`ASEBYTES_MAX_FRAME`).
    pub max_frame: usize,
    /// The protocol negotiated in the handshake: requests newer than it are not sent.
    pub protocol: u32,
    next_id: u64,
    generation: u64,
}

impl Conn {
    /// The next request id on this connection.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

struct State {
    pid: u32,
    generation: u64,
    socket: PathBuf,
    max_frame: usize,
    idle: Vec<Conn>,
}

static POOL: Mutex<Option<State>> = Mutex::new(None);
static DAEMON_COMMAND: Mutex<Option<Vec<OsString>>> = Mutex::new(None);
static DEFAULT_INTERPRETER: Mutex<Option<OsString>> = Mutex::new(None);
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Only an atomic increment: anything else (locks, allocation) is unsafe right after
    // fork in a process that had other threads.
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pid() -> u32 {
    std::process::id()
}

/// What a connection attempt needs, copied out of the pool so the lock is not held while
/// connecting.
struct Target {
    socket: PathBuf,
    argv: Vec<OsString>,
    timeout: Duration,
    generation: u64,
    max_frame: usize,
}

/// Takes an idle connection, or opens a new one (spawning the daemon if nobody answers).
pub fn take(py: Python<'_>) -> Result<Conn, ClientError> {
    let target = {
        let mut guard = lock(&POOL);
        let state = current(&mut guard);
        if let Some(conn) = state.idle.pop() {
            return Ok(conn);
        }
        state_target(state)
    };
    connect(py, target)
}

/// An idle connection if there is one; never connects (nor starts a daemon).
pub fn take_idle() -> Option<Conn> {
    let mut guard = lock(&POOL);
    current(&mut guard).idle.pop()
}

/// Opens a new connection without looking at the idle list (after a failure).
pub fn take_fresh(py: Python<'_>) -> Result<Conn, ClientError> {
    let target = {
        let mut guard = lock(&POOL);
        let state = current(&mut guard);
        state.idle.clear();
        state_target(state)
    };
    connect(py, target)
}

/// Returns a healthy connection for reuse.
pub fn give(conn: Conn) {
    let mut guard = lock(&POOL);
    if let Some(state) = guard.as_mut()
        && state.generation == conn.generation
        && state.pid == pid()
    {
        state.idle.push(conn);
    }
}

/// The socket this process uses (resolved at first use, then fixed).
pub fn socket() -> PathBuf {
    let mut guard = lock(&POOL);
    current(&mut guard).socket.clone()
}

/// The cap on a frame body in either direction (`ASEBYTES_MAX_FRAME`, read at first use).
pub fn max_frame() -> usize {
    let mut guard = lock(&POOL);
    current(&mut guard).max_frame
}

/// Sets the command that starts a daemon (`argv[0]` is the program). `--socket <path>`
/// is appended unless present, because the socket is resolved lazily at first use.
pub fn set_daemon_command(argv: Vec<OsString>) {
    *lock(&DAEMON_COMMAND) = Some(argv);
}

/// The pool state for this process, reset after a fork.
fn current(guard: &mut Option<State>) -> &mut State {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic; no preconditions.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    let generation = FORK_GENERATION.load(Ordering::SeqCst);
    let me = pid();
    match guard {
        Some(s) if s.generation == generation && s.pid == me => {}
        Some(s) => {
            // Dropping closes only this process's copies of the descriptors.
            s.idle.clear();
            s.generation = generation;
            s.pid = me;
        }
        None => {
            *guard = Some(State {
                pid: me,
                generation,
                socket: launcher::socket_path(),
                max_frame: asebytes_protocol::frame::max_frame_len(),
                idle: Vec::new(),
            });
        }
    }
    guard.as_mut().expect("initialised above")
}

fn state_target(state: &State) -> Target {
    Target {
        socket: state.socket.clone(),
        argv: daemon_argv(&state.socket),
        timeout: launcher::startup_timeout(),
        generation: state.generation,
        max_frame: state.max_frame,
    }
}

/// The daemon command with `--socket` pointing at our socket.
fn daemon_argv(socket: &Path) -> Vec<OsString> {
    let mut argv = lock(&DAEMON_COMMAND)
        .clone()
        .unwrap_or_else(default_command);
    if !argv
        .iter()
        .any(|a| a == "--socket" || a.to_string_lossy().starts_with("--socket="))
    {
        argv.push("--socket".into());
        argv.push(socket.as_os_str().to_owned());
    }
    argv
}

/// Records the interpreter that runs `python -m asebytes.daemon run` when no command was
/// set: the daemon linked into this very extension, so client and daemon always come from
/// one build. Called at module import, because asking Python later would mean running
/// Python code while the pool lock is held.
pub fn set_default_interpreter(exe: OsString) {
    *lock(&DEFAULT_INTERPRETER) = Some(exe);
}

fn default_command() -> Vec<OsString> {
    let mut argv = interpreter_daemon_command();
    argv.push("run".into());
    argv
}

/// `<sys.executable> -m asebytes.daemon`: how this interpreter runs the daemon CLI. The
/// interpreter path is kept as Python reports it, so a virtualenv's `bin/python` (a
/// symlink to the base interpreter, which lacks this package) stays the venv's.
pub fn interpreter_daemon_command() -> Vec<OsString> {
    let exe = lock(&DEFAULT_INTERPRETER)
        .clone()
        .unwrap_or_else(|| "python3".into());
    let mut argv = vec![exe];
    argv.extend(["-m", "asebytes.daemon"].map(OsString::from));
    argv
}

fn connect(py: Python<'_>, t: Target) -> Result<Conn, ClientError> {
    let Target {
        socket,
        argv,
        timeout,
        generation,
        max_frame,
    } = t;
    let result = blocking(py, || launcher::connect_or_spawn(&socket, &argv, timeout));
    let (stream, welcome) = result.map_err(launch_error)?;
    Ok(Conn {
        stream,
        protocol: welcome.protocol,
        epoch: Epoch::of(&welcome),
        wbuf: Vec::with_capacity(256),
        max_frame,
        next_id: 0,
        generation,
    })
}

/// A failure to connect or handshake, as every caller reports it.
pub fn launch_error(e: launcher::LaunchError) -> ClientError {
    match e {
        launcher::LaunchError::Refused(w) => ClientError::Wire(w),
        // The launcher's messages already name the socket, the log and what to do.
        other => ClientError::Launch(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_flag_is_appended_once() {
        set_daemon_command(vec![
            "py".into(),
            "-m".into(),
            "asebytes.daemon".into(),
            "run".into(),
        ]);
        let argv = daemon_argv(Path::new("/tmp/x/s.sock"));
        assert_eq!(
            argv[argv.len() - 2..],
            [OsString::from("--socket"), OsString::from("/tmp/x/s.sock")]
        );
        set_daemon_command(vec![
            "py".into(),
            "run".into(),
            "--socket".into(),
            "/a".into(),
        ]);
        assert_eq!(
            daemon_argv(Path::new("/b")).len(),
            4,
            "an explicit --socket wins"
        );
        set_daemon_command(vec!["py".into(), "run".into(), "--socket=/a".into()]);
        assert_eq!(daemon_argv(Path::new("/b")).len(), 3);
    }

    #[test]
    fn fork_generation_bump_resets_the_pool_state() {
        let mut state = None;
        let first_gen = current(&mut state).generation;
        after_fork_in_child();
        let s = current(&mut state);
        assert_eq!(s.generation, first_gen + 1);
        assert!(s.idle.is_empty());
    }
}
