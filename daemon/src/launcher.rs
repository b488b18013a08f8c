//! The client side of "one daemon per user, started on demand": connect and handshake, and
//! if nobody answers, start the daemon detached and wait until it is ready.
//!
//! Used by `asebytesd start` / `stop` / `status` ([`crate::cli`]) and by the Python client,
//! which links this crate. Sits beside the server, not above it: it only speaks the wire
//! protocol and knows the file layout ([`crate::paths`]).
//!
//! Spawning follows sccache: spawn only when the socket is missing or refuses; bind the
//! readiness socket *before* the child exists so its message cannot be lost; the daemon
//! reports a typed [`Startup`]: ready, in use (another daemon holds the lock: someone else
//! won the race, so connect again) or failed with a reason. Two clients racing end with exactly one daemon because
//! the daemon holds an exclusive lock on `<socket>.lock` for its lifetime.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asebytes_protocol::frame::{self, HANDSHAKE_MAX_FRAME_LEN};
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::{Hello, HelloReply, Welcome, WireError};

use crate::paths;
use crate::startup::{NotifySocket, Startup};

pub use crate::paths::{log_path, socket_path};

pub use crate::startup::STARTUP_NOTIFY_ENV;

/// Environment variable that overrides [`DEFAULT_STARTUP_TIMEOUT`] (seconds).
pub const STARTUP_TIMEOUT_ENV: &str = "ASEBYTES_STARTUP_TIMEOUT";

/// How long to wait for a spawned daemon, as sccache's `SERVER_STARTUP_TIMEOUT`.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a started daemon may take to answer the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Minimum time between two spawns while a daemon that is still exiting holds the lock.
const RESPAWN_INTERVAL: Duration = Duration::from_millis(200);

/// Why no connection to a daemon could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Connecting failed (and starting a daemon was not asked for, or did not help).
    #[error(
        "cannot connect to the asebytes daemon at {}: {source}. Start it in a terminal with \
         `asebytesd run` to see why, or see {}", socket.display(), log.display()
    )]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The daemon's log file.
        log: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The daemon process could not be started.
    #[error(
        "cannot start the asebytes daemon `{program}` for {}: {source}. Run `asebytesd run` in \
         a terminal to see why, or see {}", socket.display(), log.display()
    )]
    Spawn {
        /// The program that was to be started.
        program: String,
        /// The socket.
        socket: PathBuf,
        /// The daemon's log file.
        log: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The daemon started but reported a failure instead of readiness.
    #[error(
        "the asebytes daemon for {} failed to start: {reason}. Run `asebytesd run` in a \
         terminal to see why, or see {}", socket.display(), log.display()
    )]
    Startup {
        /// The socket.
        socket: PathBuf,
        /// The daemon's log file.
        log: PathBuf,
        /// What the daemon said.
        reason: String,
    },
    /// The daemon did not become ready in time.
    #[error(
        "the asebytes daemon did not become ready at {} within {}s. Run `asebytesd run` in a \
         terminal to see why, or see {}", socket.display(), timeout.as_secs_f64(), log.display()
    )]
    StartupTimeout {
        /// The socket.
        socket: PathBuf,
        /// The daemon's log file.
        log: PathBuf,
        /// How long was waited.
        timeout: Duration,
    },
    /// The daemon refused the handshake (version mismatch); the message says how to fix it.
    #[error("the asebytes daemon refused the connection: {}", .0.message)]
    Refused(WireError),
    /// The daemon answered something that is not a handshake reply.
    #[error(
        "the asebytes daemon at {} broke the protocol during the handshake: {source}. See {}",
        socket.display(), log.display()
    )]
    Protocol {
        /// The socket.
        socket: PathBuf,
        /// The daemon's log file.
        log: PathBuf,
        /// The framing or decoding failure.
        #[source]
        source: asebytes_protocol::Error,
    },
}

impl LaunchError {
    /// Whether this failure means "nobody is serving this socket" (so starting a daemon
    /// may help): the socket is missing, refuses, or was closed during the handshake by a
    /// daemon that is shutting down.
    pub fn is_no_daemon(&self) -> bool {
        match self {
            LaunchError::Connect { source, .. } => is_absent(source),
            LaunchError::Protocol {
                source: asebytes_protocol::Error::Closed,
                ..
            } => true,
            LaunchError::Protocol {
                source: asebytes_protocol::Error::Io(e),
                ..
            } => {
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
                )
            }
            _ => false,
        }
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// The startup timeout: `ASEBYTES_STARTUP_TIMEOUT` seconds, else 10 s.
pub fn startup_timeout() -> Duration {
    std::env::var(STARTUP_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_STARTUP_TIMEOUT)
}

/// Connects to the daemon at `socket` and completes the handshake. Never starts a daemon.
pub fn connect(socket: &Path) -> Result<(FrameStream, Welcome), LaunchError> {
    let log = log_path(socket);
    let conn_err = |source| LaunchError::Connect {
        socket: socket.to_path_buf(),
        log: log.clone(),
        source,
    };
    let sock = UnixStream::connect(socket).map_err(conn_err)?;
    let uid = paths::effective_uid();
    match crate::server::peer_uid(&sock) {
        Ok(peer) if crate::server::peer_allowed(peer, uid) => {}
        Ok(peer) => {
            let msg = format!("the socket is served by uid {peer}, not by you (uid {uid})");
            return Err(conn_err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                msg,
            )));
        }
        Err(e) => return Err(conn_err(e)),
    }
    sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(conn_err)?;
    // Spin only while fewer waiters than cores do, counted with the daemon and its other
    // clients; without the file each process counts its own.
    if let Err(e) = asebytes_protocol::spin::attach(&paths::spin_path(socket), false) {
        log::debug!("no shared spin count ({e}); counting this process's waiters only");
    }
    let mut stream = FrameStream::new(sock);
    let proto_err = |source| LaunchError::Protocol {
        socket: socket.to_path_buf(),
        log: log.clone(),
        source,
    };
    let hello = frame::encode(0, &Hello::current(crate::BUILD_ID)).map_err(proto_err)?;
    stream.send(&hello).map_err(proto_err)?;
    let body = stream.recv(HANDSHAKE_MAX_FRAME_LEN).map_err(proto_err)?;
    let reply = frame::decode::<HelloReply>(body).map_err(proto_err)?;
    match reply.body {
        HelloReply::Welcome(welcome) => {
            stream.socket().set_read_timeout(None).map_err(conn_err)?;
            Ok((stream, welcome))
        }
        HelloReply::Refused(e) => Err(LaunchError::Refused(e)),
    }
}

/// Connects and completes the handshake; if nobody answers, starts `daemon_argv` (program
/// and arguments, e.g. `[python, -m, asebytes.daemon, run, --socket, P]`) detached and
/// connects once it is ready, all within `timeout`.
///
/// The child runs in its own session, in `/` (so it pins no directory), with stdin from
/// `/dev/null`, stdout/stderr appended to the log file beside the socket and no other
/// descriptor of this process (so a pipe the caller's parent waits on, such as a
/// `multiprocessing` child's sentinel, closes when the caller exits), with
/// `ASEBYTES_STARTUP_NOTIFY` and `ASEBYTES_SOCKET` set; paths in `daemon_argv` must
/// therefore be absolute. A report of `Ready` or `InUse` both mean: connect again.
pub fn connect_or_spawn(
    socket: &Path,
    daemon_argv: &[OsString],
    timeout: Duration,
) -> Result<(FrameStream, Welcome), LaunchError> {
    let socket = &paths::absolute(socket);
    let deadline = Instant::now() + timeout;
    let timed_out = || LaunchError::StartupTimeout {
        socket: socket.to_path_buf(),
        log: log_path(socket),
        timeout,
    };
    let mut next_spawn = Instant::now();
    let mut backoff = Duration::from_millis(2);
    loop {
        match connect(socket) {
            Ok(found) => return Ok(found),
            Err(e) if e.is_no_daemon() => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out());
        }
        if now >= next_spawn {
            match spawn_and_wait(socket, daemon_argv, deadline)? {
                Some(ready) => log::debug!("daemon for {} reported {ready:?}", socket.display()),
                None => return Err(timed_out()),
            }
            next_spawn = Instant::now() + RESPAWN_INTERVAL;
            backoff = Duration::from_millis(2);
            continue;
        }
        // Another daemon holds the lock: it is starting (the socket appears soon) or
        // exiting (spawn again once it is gone).
        std::thread::sleep(backoff.min(deadline - now));
        backoff = (backoff * 2).min(Duration::from_millis(50));
    }
}

/// Starts the daemon and waits (until `deadline`) for its readiness message; `None` if
/// none came in time.
fn spawn_and_wait(
    socket: &Path,
    argv: &[OsString],
    deadline: Instant,
) -> Result<Option<Startup>, LaunchError> {
    let log = log_path(socket);
    let program = argv
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spawn_err = |source| LaunchError::Spawn {
        program: program.clone(),
        socket: socket.to_path_buf(),
        log: log.clone(),
        source,
    };
    let Some((prog, args)) = argv.split_first() else {
        return Err(spawn_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty daemon command",
        )));
    };
    let dir = paths::socket_dir(socket);
    paths::ensure_private_dir(dir).map_err(|e| spawn_err(io::Error::other(e.to_string())))?;
    // Bound before the child exists, so its message cannot arrive before anyone listens.
    let notify = NotifySocket::bind(dir).map_err(spawn_err)?;
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .map_err(spawn_err)?;
    let err_file = log_file.try_clone().map_err(spawn_err)?;

    let mut cmd = Command::new(absolute_program(prog));
    cmd.args(args)
        .env(STARTUP_NOTIFY_ENV, &notify.path)
        .env(paths::SOCKET_ENV, socket)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    // SAFETY: between fork and exec the closure only calls async-signal-safe functions
    // (close_range/fcntl, getrlimit, fork, setsid, _exit) and touches no memory shared
    // with other threads.
    unsafe {
        cmd.pre_exec(|| {
            // Everything beyond stdio closes at exec: descriptors this process inherited
            // without close-on-exec (multiprocessing pipes, a Jupyter kernel's sockets)
            // must not stay open for the daemon's lifetime.
            cloexec_from(3);
            // Double fork: the daemon is re-parented away from the client (no zombie when
            // it exits, no tie to the client's lifetime) and, after setsid, has no
            // controlling terminal.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            match libc::fork() {
                -1 => Err(io::Error::last_os_error()),
                0 => Ok(()),
                _ => libc::_exit(0),
            }
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // Reaps the intermediate process, which exits at once.
    let _ = child.wait();

    match notify.wait(deadline) {
        Ok(Some(Startup::Failed { reason })) => Err(LaunchError::Startup {
            socket: socket.to_path_buf(),
            log,
            reason,
        }),
        Ok(report) => Ok(report),
        Err(e) => Err(spawn_err(e)),
    }
}

/// Marks every descriptor from `low` up close-on-exec. Async-signal-safe: runs between
/// fork and exec. `close_range(CLOSE_RANGE_CLOEXEC)` (Linux 5.11) in one call, else one
/// `fcntl` per possible descriptor up to the soft limit.
fn cloexec_from(low: libc::c_int) {
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            low as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`, which is valid.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        4096
    };
    for fd in low..max {
        // SAFETY: fcntl on any descriptor number; a closed one fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// A relative program path with a directory part is made absolute, because the child
/// starts in `/`; a bare name is looked up in `PATH` as usual.
fn absolute_program(prog: &OsString) -> PathBuf {
    let p = Path::new(prog);
    if p.is_relative() && p.components().count() > 1 {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    } else {
        p.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_a_missing_socket_is_no_daemon_and_names_socket_and_log() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("d.sock");
        let err = connect(&socket).unwrap_err();
        assert!(err.is_no_daemon(), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&socket.display().to_string()), "{msg}");
        assert!(
            msg.contains("asebytesd.log") && msg.contains("asebytesd run"),
            "{msg}"
        );
    }

    #[test]
    fn spawn_of_a_missing_program_is_a_spawn_error() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("run/d.sock");
        let argv = [OsString::from("/nonexistent/asebytesd-missing")];
        let err = connect_or_spawn(&socket, &argv, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, LaunchError::Spawn { .. }), "{err}");
    }

    #[test]
    fn the_spawned_daemon_inherits_no_descriptor_beyond_stdio() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("d.sock");
        let listing = tmp.path().join("fds");
        // An inheritable descriptor, as multiprocessing passes to its children.
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // Moved far above what the listing itself may open (`ls` takes the lowest free).
        for (i, fd) in fds.iter_mut().enumerate() {
            // SAFETY: duplicating and closing descriptors this test owns.
            unsafe {
                let high = libc::fcntl(*fd, libc::F_DUPFD, 700 + i as libc::c_int);
                assert!(high >= 700);
                libc::close(*fd);
                *fd = high;
            }
        }
        // SAFETY: both were just created and are owned here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let script = format!("ls /proc/self/fd > {}", listing.display());
        let argv = ["/bin/sh", "-c", &script].map(OsString::from);
        // The stand-in daemon never reports readiness; we only look at what it held.
        let _ = connect_or_spawn(&socket, &argv, Duration::from_millis(1500));
        let held: Vec<i32> = std::fs::read_to_string(&listing)
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            !held.contains(&w.as_raw_fd()) && !held.contains(&r.as_raw_fd()),
            "the daemon inherited the pipe: {held:?}"
        );
        // stdio, plus the one `ls` opens for the listing itself.
        assert!(held.iter().filter(|&&fd| fd > 2).count() <= 1, "{held:?}");
    }

    #[test]
    fn a_child_that_never_reports_is_a_startup_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("d.sock");
        let argv = [OsString::from("/bin/true")];
        let err = connect_or_spawn(&socket, &argv, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, LaunchError::StartupTimeout { .. }), "{err}");
        assert!(err.to_string().contains("asebytesd.log"), "{err}");
    }
}
