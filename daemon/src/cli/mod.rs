//! The `asebytesd` command line: `run` (serve in the foreground), `start` (spawn detached
//! and wait for readiness), `stop`, `status` and `install-service`.
//!
//! The top layer of the daemon: turns flags and environment into a [`Config`], takes the
//! lock, binds the socket, installs signal handlers and hands over to
//! [`crate::server::run`]; the client-side commands go through [`crate::launcher`]. The standalone binary's `main.rs` calls
//! [`main`]; the Python extension calls [`main_with_args`] (or [`main_with_args_as`]) for
//! `python -m asebytes.daemon ...`, so both run this same code.
//!
//! One file per job: this one parses and dispatches; [`serve`] is `run`, [`control`] the
//! client commands (`start`, `stop`, `status`), [`service`] the systemd units and [`logger`]
//! the log sink.

mod control;
mod logger;
mod serve;
mod service;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Config;

pub use control::format_status;

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
            serve::run(config, foreground_log)
        }
        Cmd::Start { idle_timeout } => control::start(&config, idle_timeout, daemon_command),
        Cmd::Stop { timeout } => control::stop(&config.socket, Duration::from_secs(timeout)),
        Cmd::Status => control::status(&config.socket),
        Cmd::InstallService { print } => service::install_service(print, daemon_command),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
}
