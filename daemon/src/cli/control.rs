//! The client-side commands `asebytesd start` (spawn detached, wait for readiness) and
//! `stop`; `status` is in [`super::status`].
//!
//! Layer: the top, with the rest of [`crate::cli`]; talks to a running daemon through
//! [`launcher`] and the wire protocol only.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use asebytes_protocol::frame;
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::{Request, Response};

use crate::config::Config;
use crate::launcher;
use crate::paths;

/// `asebytesd start`.
pub(super) fn start(
    config: &Config,
    idle_timeout: Option<u64>,
    daemon_command: &[OsString],
) -> i32 {
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
pub(super) fn stop(socket: &Path, timeout: Duration) -> i32 {
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

/// Sends one request and reads its answer.
pub(super) fn request(
    stream: &mut FrameStream,
    req: &Request,
) -> Result<Response, asebytes_protocol::Error> {
    stream.send(&frame::encode(1, req)?)?;
    let body = stream.recv(frame::max_frame_len())?;
    Ok(frame::decode::<Response>(body)?.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_alive_sees_ourselves_and_not_a_reaped_child() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
