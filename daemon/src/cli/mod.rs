//! The `asebytesd` command line: `run` (serve in the foreground), `start` (spawn detached
//! and wait for readiness), `stop`, `status` and `install-service`.
//!
//! The top layer of the daemon: turns flags and environment into a [`Config`], takes the
//! lock, binds the socket, installs signal handlers and hands over to [`server::run`]; the
//! client-side commands go through [`launcher`]. The standalone binary's `main.rs` calls
//! [`main`]; the Python extension calls [`main_with_args`] (or [`main_with_args_as`]) for
//! `python -m asebytes.daemon ...`, so both run this same code.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use asebytes_protocol::frame;
use asebytes_protocol::response::Status;
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::{Request, Response};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::launcher::{self, notify_startup};
use crate::paths;
use crate::server;
use crate::shutdown::Shutdown;

/// The asebytes storage daemon: one per user, shared by every Python process.
#[derive(Debug, Parser)]
#[command(name = "asebytesd", version, about, long_about = None)]
struct Cli {
    /// Socket path [default: $ASEBYTES_SOCKET, else $XDG_RUNTIME_DIR/asebytes/asebytesd.sock,
    /// else /tmp/asebytes-$UID/asebytesd.sock].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve in the foreground until stopped, idle or interrupted.
    Run {
        /// Exit after this many seconds without connections; 0 = never
        /// [default: $ASEBYTES_IDLE_TIMEOUT, else 600].
        #[arg(long, value_name = "SECONDS")]
        idle_timeout: Option<u64>,
        /// Log to the terminal (stderr) instead of the log file beside the socket.
        #[arg(long)]
        foreground_log: bool,
    },
    /// Start a daemon in the background (if none is running) and wait until it is ready.
    Start {
        /// Idle timeout for the started daemon, in seconds; 0 = never.
        #[arg(long, value_name = "SECONDS")]
        idle_timeout: Option<u64>,
    },
    /// Stop the running daemon: it commits and closes every store, then exits.
    Stop {
        /// How long to wait for the daemon to exit, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        timeout: u64,
    },
    /// Show version, uptime, clients and open stores of the running daemon.
    Status,
    /// Install a systemd user service with socket activation.
    InstallService {
        /// Print the unit files instead of writing them.
        #[arg(long)]
        print: bool,
    },
}

/// Runs the command line of this process; returns the exit code.
pub fn main() -> i32 {
    main_with_args(std::env::args_os())
}

/// Runs a command line (`args[0]` is the program name); returns the exit code. `start`
/// spawns [`default_daemon_command`] `run ...`.
pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    main_with_args_as(args, &default_daemon_command())
}

/// Like [`main_with_args`], but `start` and `install-service` run the daemon as
/// `daemon_command run ...` (e.g. `[python, -m, asebytes.daemon]`).
pub fn main_with_args_as<I: IntoIterator<Item = OsString>>(
    args: I,
    daemon_command: &[OsString],
) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("asebytesd: {e}");
            return 1;
        }
    };
    if let Some(socket) = cli.socket {
        config.set_socket(socket);
    }
    match cli.command {
        Cmd::Run {
            idle_timeout,
            foreground_log,
        } => {
            if let Some(s) = idle_timeout {
                config.idle_timeout = Duration::from_secs(s);
            }
            run(config, foreground_log)
        }
        Cmd::Start { idle_timeout } => start(&config, idle_timeout, daemon_command),
        Cmd::Stop { timeout } => stop(&config.socket, Duration::from_secs(timeout)),
        Cmd::Status => status(&config.socket),
        Cmd::InstallService { print } => install_service(print, daemon_command),
    }
}

/// How this program runs itself as a daemon: the current executable, or
/// `<python> -m asebytes.daemon` when this code runs inside a Python interpreter.
pub fn default_daemon_command() -> Vec<OsString> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("asebytesd"));
    let in_python = exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("python"));
    let mut cmd = vec![exe.into_os_string()];
    if in_python {
        cmd.extend(["-m".into(), "asebytes.daemon".into()]);
    }
    cmd
}

/// `asebytesd run`.
fn run(mut config: Config, foreground_log: bool) -> i32 {
    let fail = |reason: String| {
        eprintln!("asebytesd: {reason}");
        log::error!("{reason}");
        notify_startup(&format!("err:{reason}"));
        1
    };
    let dir = paths::socket_dir(&config.socket).to_path_buf();
    if let Err(e) = paths::ensure_private_dir(&dir) {
        return fail(e.to_string());
    }
    init_logging(&config, foreground_log);
    match crate::limits::raise_fd_limit() {
        Ok(n) => log::debug!("descriptor limit: {n}"),
        Err(e) => log::warn!("cannot raise the descriptor limit: {e}"),
    }
    let lock_path = paths::lock_path(&config.socket);
    let _lock = match acquire_lock(&lock_path) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            println!(
                "asebytesd is already running on {}",
                config.socket.display()
            );
            notify_startup("in_use");
            return 0;
        }
        Err(e) => return fail(format!("cannot lock {}: {e}", lock_path.display())),
    };
    let listener = match systemd_listener() {
        Some(listener) => {
            config.unlink_socket = false;
            if let Some(p) = listener
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
            {
                config.socket = p;
            }
            listener
        }
        None => match bind(&config.socket) {
            Ok(listener) => listener,
            Err(e) => return fail(format!("cannot listen on {}: {e}", config.socket.display())),
        },
    };
    let shutdown = match Shutdown::new().and_then(|s| s.install_signal_handlers().map(|()| s)) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot set up signal handling: {e}")),
    };
    notify_startup("ok");
    match server::run(listener, config, shutdown) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            eprintln!("asebytesd: {e}");
            1
        }
    }
}

/// Takes the daemon lock without waiting; `None` if another daemon holds it. The lock
/// lives as long as the returned file and names the holder's pid for humans.
fn acquire_lock(path: &Path) -> io::Result<Option<File>> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    // SAFETY: flock on an fd we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(e)
        };
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Some(file))
}

/// Binds the socket (mode 0600). We hold the lock, so anything left at the path is a
/// dead daemon's socket; anything that is not a socket is left alone.
fn bind(socket: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The listening socket systemd passed us (socket activation: `LISTEN_PID`/`LISTEN_FDS`).
fn systemd_listener() -> Option<UnixListener> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let fds: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || fds < 1 {
        return None;
    }
    const SD_LISTEN_FDS_START: i32 = 3;
    // SAFETY: systemd hands us fd 3 as an open listening socket that nobody else in this
    // process owns; we mark it close-on-exec like every fd std opens.
    unsafe {
        libc::fcntl(SD_LISTEN_FDS_START, libc::F_SETFD, libc::FD_CLOEXEC);
        Some(UnixListener::from_raw_fd(SD_LISTEN_FDS_START))
    }
}

/// `asebytesd start`.
fn start(config: &Config, idle_timeout: Option<u64>, daemon_command: &[OsString]) -> i32 {
    let mut argv = daemon_command.to_vec();
    argv.extend([
        "run".into(),
        "--socket".into(),
        config.socket.clone().into_os_string(),
    ]);
    if let Some(s) = idle_timeout {
        argv.extend(["--idle-timeout".into(), s.to_string().into()]);
    }
    match launcher::connect_or_spawn(&config.socket, &argv, launcher::startup_timeout()) {
        Ok((_, welcome)) => {
            println!(
                "asebytesd {} running on {} (pid {})",
                welcome.daemon_version,
                config.socket.display(),
                welcome.pid
            );
            0
        }
        Err(e) => {
            eprintln!("asebytesd: {e}");
            1
        }
    }
}

/// `asebytesd stop`.
fn stop(socket: &Path, timeout: Duration) -> i32 {
    let (mut stream, welcome) = match launcher::connect(socket) {
        Ok(found) => found,
        Err(e) if e.is_no_daemon() => {
            println!("no asebytesd is running on {}", socket.display());
            return 0;
        }
        Err(e) => {
            eprintln!("asebytesd: {e}");
            return 1;
        }
    };
    match request(&mut stream, &Request::Shutdown) {
        Ok(Response::Ok) => {}
        Ok(other) => {
            eprintln!("asebytesd: the daemon answered {other:?} to shutdown");
            return 1;
        }
        Err(e) => {
            eprintln!("asebytesd: cannot send shutdown: {e}");
            return 1;
        }
    }
    drop(stream);
    let deadline = Instant::now() + timeout;
    while socket.exists() && process_alive(welcome.pid) {
        if Instant::now() >= deadline {
            eprintln!(
                "asebytesd: pid {} is still shutting down after {}s; see {}",
                welcome.pid,
                timeout.as_secs(),
                paths::log_path(socket).display()
            );
            return 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("asebytesd (pid {}) stopped", welcome.pid);
    0
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        // SAFETY: kill with signal 0 only checks for existence.
        Err(_) => unsafe { libc::kill(pid as libc::pid_t, 0) == 0 },
    }
}

/// `asebytesd status`.
fn status(socket: &Path) -> i32 {
    let mut stream = match launcher::connect(socket) {
        Ok((stream, _)) => stream,
        Err(e) if e.is_no_daemon() => {
            eprintln!(
                "no asebytesd is running on {} (start one with `asebytesd start`)",
                socket.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!("asebytesd: {e}");
            return 1;
        }
    };
    match request(&mut stream, &Request::Status) {
        Ok(Response::Status(s)) => {
            print!("{}", format_status(&s));
            0
        }
        Ok(other) => {
            eprintln!("asebytesd: the daemon answered {other:?} to status");
            1
        }
        Err(e) => {
            eprintln!("asebytesd: {e}");
            1
        }
    }
}

/// Sends one request and reads its answer.
fn request(stream: &mut FrameStream, req: &Request) -> Result<Response, asebytes_protocol::Error> {
    stream.send(&frame::encode(1, req)?)?;
    let body = stream.recv(frame::max_frame_len())?;
    Ok(frame::decode::<Response>(body)?.body)
}

/// The text `asebytesd status` prints.
pub fn format_status(s: &Status) -> String {
    let idle = match s.idle_timeout_secs {
        0 => "never".to_string(),
        n => format!("{n}s"),
    };
    let mut out = format!(
        "asebytesd {} (protocol {})\n\
         pid:          {}\n\
         uptime:       {}\n\
         clients:      {}\n\
         idle timeout: {idle}\n\
         socket:       {}\n",
        s.version,
        s.protocol,
        s.pid,
        format_duration(s.uptime_secs),
        s.clients,
        s.socket
    );
    if s.stores.is_empty() {
        out.push_str("stores:       none open\n");
        return out;
    }
    let headers = ["STORE", "BACKEND", "LEN", "CLIENTS", "COMMITS"];
    let rows: Vec<[String; 5]> = s
        .stores
        .iter()
        .map(|st| {
            [
                st.canonical.clone(),
                st.backend.clone(),
                st.len.to_string(),
                st.clients.to_string(),
                st.commits.to_string(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    out.push('\n');
    let line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 0 || i == 1 {
                l.push_str(&format!("{cell:<w$}  "));
            } else {
                l.push_str(&format!("{cell:>w$}  "));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(headers));
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m {s:02}s")
    } else {
        format!("{h:02}h {m:02}m {s:02}s")
    }
}

/// `asebytesd install-service`.
fn install_service(print: bool, daemon_command: &[OsString]) -> i32 {
    let units = [
        ("asebytesd.socket", socket_unit()),
        ("asebytesd.service", service_unit(daemon_command)),
    ];
    if print {
        for (name, text) in &units {
            println!("# {name}\n{text}");
        }
        return 0;
    }
    let dir = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".config"),
            None => {
                eprintln!("asebytesd: neither XDG_CONFIG_HOME nor HOME is set; use --print");
                return 1;
            }
        },
    }
    .join("systemd/user");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("asebytesd: cannot create {}: {e}", dir.display());
        return 1;
    }
    for (name, text) in &units {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("asebytesd: cannot write {}: {e}", path.display());
            return 1;
        }
        println!("wrote {}", path.display());
    }
    println!(
        "enable it with: systemctl --user daemon-reload && systemctl --user enable --now asebytesd.socket"
    );
    0
}

/// Where systemd puts the socket: the default path for a user session (`%t` is
/// `$XDG_RUNTIME_DIR`).
const UNIT_SOCKET: &str = "%t/asebytes/asebytesd.sock";

fn socket_unit() -> String {
    format!(
        "[Unit]\n\
         Description=asebytes storage daemon socket\n\
         \n\
         [Socket]\n\
         ListenStream={UNIT_SOCKET}\n\
         SocketMode=0600\n\
         DirectoryMode=0700\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n"
    )
}

fn service_unit(daemon_command: &[OsString]) -> String {
    let mut exec: Vec<String> = daemon_command
        .iter()
        .map(|a| systemd_quote(&a.to_string_lossy()))
        .collect();
    exec.extend(["run".into(), "--socket".into(), UNIT_SOCKET.into()]);
    format!(
        "[Unit]\n\
         Description=asebytes storage daemon\n\
         Requires=asebytesd.socket\n\
         After=asebytesd.socket\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         Restart=on-failure\n",
        exec.join(" ")
    )
}

/// Quotes one `ExecStart=` word: specifiers and variables are escaped, and words with
/// spaces or quotes are double-quoted.
fn systemd_quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if !escaped.is_empty()
        && !escaped.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        return escaped;
    }
    format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Log lines go to the log file (or stderr with `--foreground-log`), one per event, with
/// a UTC timestamp.
struct Logger {
    level: log::LevelFilter,
    sink: Mutex<Box<dyn Write + Send>>,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}\n",
            utc_timestamp(SystemTime::now()),
            record.level(),
            record.args()
        );
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = sink.write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .flush();
    }
}

fn init_logging(config: &Config, foreground: bool) {
    let sink: Box<dyn Write + Send> = if foreground {
        Box::new(io::stderr())
    } else {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&config.log_file)
        {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!(
                    "asebytesd: cannot open log file {}: {e}; logging to stderr",
                    config.log_file.display()
                );
                Box::new(io::stderr())
            }
        }
    };
    let logger = Logger {
        level: config.log_level,
        sink: Mutex::new(sink),
    };
    // A host process (Python) may already have a logger; then ours is not needed.
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(config.log_level);
    }
}

/// `2026-11-25T02:20:00.123Z`.
fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for every date after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use asebytes_protocol::response::StoreStatus;

    #[test]
    fn parses_every_subcommand() {
        let cli = Cli::try_parse_from([
            "asebytesd",
            "run",
            "--socket",
            "/s",
            "--idle-timeout",
            "1",
            "--foreground-log",
        ])
        .unwrap();
        assert_eq!(cli.socket.as_deref(), Some(Path::new("/s")));
        assert!(matches!(
            cli.command,
            Cmd::Run {
                idle_timeout: Some(1),
                foreground_log: true
            }
        ));
        let cli = Cli::try_parse_from(["asebytesd", "--socket", "/s", "stop"]).unwrap();
        assert!(matches!(cli.command, Cmd::Stop { timeout: 30 }));
        for cmd in ["start", "status", "install-service"] {
            Cli::try_parse_from(["asebytesd", cmd]).unwrap();
        }
        assert!(Cli::try_parse_from(["asebytesd", "fly"]).is_err());
    }

    #[test]
    fn usage_errors_exit_2_without_panicking() {
        assert_eq!(
            main_with_args(["asebytesd", "--no-such-flag"].map(OsString::from)),
            2
        );
    }

    #[test]
    fn lock_is_exclusive_while_held() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.sock.lock");
        let held = acquire_lock(&path).unwrap().expect("first lock");
        assert!(acquire_lock(&path).unwrap().is_none());
        drop(held);
        assert!(acquire_lock(&path).unwrap().is_some());
    }

    #[test]
    fn bind_replaces_a_stale_socket_but_not_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("d.sock");
        drop(UnixListener::bind(&socket).unwrap());
        let listener = bind(&socket).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(listener);
        let file = tmp.path().join("f.sock");
        std::fs::write(&file, "keep").unwrap();
        assert!(bind(&file).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    }

    #[test]
    fn status_text_lists_stores() {
        let s = Status {
            version: "0.1.0".into(),
            protocol: 1,
            pid: 42,
            uptime_secs: 3725,
            clients: 2,
            socket: "/s".into(),
            idle_timeout_secs: 0,
            stores: vec![StoreStatus {
                canonical: "lmdb:///d/x.lmdb#default".into(),
                backend: "lmdb".into(),
                len: 10,
                clients: 1,
                commits: 3,
            }],
        };
        let text = format_status(&s);
        assert!(text.contains("pid:          42"), "{text}");
        assert!(text.contains("uptime:       01h 02m 05s"), "{text}");
        assert!(text.contains("idle timeout: never"), "{text}");
        let row = text
            .lines()
            .find(|l| l.starts_with("lmdb://"))
            .expect(&text);
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["lmdb:///d/x.lmdb#default", "lmdb", "10", "1", "3"]
        );
    }

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_487_400_123);
        assert_eq!(utc_timestamp(t), "2026-11-24T02:30:00.123Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn service_unit_quotes_the_command_and_uses_socket_activation() {
        let unit = service_unit(&[
            "/opt/my env/python3".into(),
            "-m".into(),
            "asebytes.daemon".into(),
        ]);
        assert!(unit.contains("ExecStart=\"/opt/my env/python3\" -m asebytes.daemon run --socket %t/asebytes/asebytesd.sock"));
        assert!(socket_unit().contains("ListenStream=%t/asebytes/asebytesd.sock"));
        assert_eq!(systemd_quote("50%"), "50%%");
    }

    #[test]
    fn process_alive_sees_ourselves_and_not_a_reaped_child() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
