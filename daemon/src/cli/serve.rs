//! `asebytesd run`: takes the daemon lock, binds the socket (or takes systemd's), raises
//! the descriptor limit, reports readiness to a launcher waiting for it and serves.
//!
//! Layer: the top, with the rest of [`crate::cli`]; hands over to [`server::run`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use super::logger::init_logging;
use crate::config::Config;
use crate::paths;
use crate::server;
use crate::shutdown::Shutdown;
use crate::startup::{self, Startup};

/// `asebytesd run`.
pub(super) fn run(mut config: Config, foreground_log: bool) -> i32 {
    let fail = |reason: String| {
        eprintln!("asebytesd: {reason}");
        log::error!("{reason}");
        startup::notify(&Startup::Failed { reason });
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
            startup::notify(&Startup::InUse);
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
    startup::notify(&Startup::Ready);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
