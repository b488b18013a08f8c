//! Where the daemon's files live: the socket, its private directory, the log and the lock.
//!
//! Shared by the daemon (`asebytesd run`) and the launcher (client side), so both always
//! agree on one socket per user. Sits below the CLI and the launcher; knows nothing of
//! connections or stores.

use std::ffi::OsString;
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable that overrides the socket path.
pub const SOCKET_ENV: &str = "ASEBYTES_SOCKET";

/// File name of the socket inside its directory.
pub const SOCKET_NAME: &str = "asebytesd.sock";

/// File name of the log inside the socket's directory.
pub const LOG_NAME: &str = "asebytesd.log";

/// The socket path: `$ASEBYTES_SOCKET`, else `$XDG_RUNTIME_DIR/asebytes/asebytesd.sock`,
/// else `/tmp/asebytes-$UID/asebytesd.sock`.
pub fn socket_path() -> PathBuf {
    socket_path_from(
        std::env::var_os(SOCKET_ENV),
        std::env::var_os("XDG_RUNTIME_DIR"),
        effective_uid(),
    )
}

/// [`socket_path`] from explicit inputs; empty variables count as unset.
pub fn socket_path_from(
    socket: Option<OsString>,
    runtime_dir: Option<OsString>,
    uid: u32,
) -> PathBuf {
    if let Some(s) = socket.filter(|s| !s.is_empty()) {
        return absolute(Path::new(&s));
    }
    match runtime_dir.filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("asebytes").join(SOCKET_NAME),
        None => PathBuf::from(format!("/tmp/asebytes-{uid}")).join(SOCKET_NAME),
    }
}

/// `path` made absolute against the current directory (lexically: symlinks are kept), so
/// a daemon that starts in `/` and the client that started it mean the same file.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The log file: `asebytesd.log` beside the socket.
pub fn log_path(socket: &Path) -> PathBuf {
    socket_dir(socket).join(LOG_NAME)
}

/// The lock file a running daemon holds (`<socket>.lock`).
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// The shared count of spinning waiters (`<socket>.spin`, [`asebytes_protocol::spin`]).
pub fn spin_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".spin");
    PathBuf::from(p)
}

/// The published commit generations of open stores (`<socket>.gen`,
/// [`asebytes_protocol::published`]).
pub fn gen_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".gen");
    PathBuf::from(p)
}

/// The directory that holds the socket (`.` for a bare file name).
pub fn socket_dir(socket: &Path) -> &Path {
    match socket.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (mode 0700, parents as needed) or checks an existing one: it must be a
/// directory owned by us that neither group nor others can write, because whoever can
/// write it can put their own socket where our clients will look.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::io(
                format!("cannot create socket directory {}", dir.display()),
                e,
            ));
        }
    }
    let meta = std::fs::metadata(dir).map_err(|e| {
        Error::io(
            format!("cannot inspect socket directory {}", dir.display()),
            e,
        )
    })?;
    check_private(
        dir,
        meta.is_dir(),
        meta.uid(),
        meta.permissions().mode(),
        effective_uid(),
    )
}

fn check_private(dir: &Path, is_dir: bool, owner: u32, mode: u32, uid: u32) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::InsecureDir {
            dir: dir.to_path_buf(),
            reason,
        })
    };
    if !is_dir {
        return refuse("it is not a directory".into());
    }
    if owner != uid {
        return refuse(format!(
            "it is owned by uid {owner}, not by you (uid {uid})"
        ));
    }
    if mode & 0o022 != 0 {
        return refuse(format!(
            "it is writable by group or others (mode {:o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_prefers_env_then_runtime_dir_then_tmp() {
        let p = socket_path_from(Some("/x/s.sock".into()), Some("/run/user/7".into()), 7);
        assert_eq!(p, Path::new("/x/s.sock"));
        let p = socket_path_from(None, Some("/run/user/7".into()), 7);
        assert_eq!(p, Path::new("/run/user/7/asebytes/asebytesd.sock"));
        let p = socket_path_from(Some("".into()), Some("".into()), 7);
        assert_eq!(p, Path::new("/tmp/asebytes-7/asebytesd.sock"));
        let p = socket_path_from(Some("rel/d.sock".into()), None, 7);
        assert_eq!(p, std::env::current_dir().unwrap().join("rel/d.sock"));
    }

    #[test]
    fn log_and_lock_sit_beside_the_socket() {
        let s = Path::new("/run/user/7/asebytes/asebytesd.sock");
        assert_eq!(log_path(s), Path::new("/run/user/7/asebytes/asebytesd.log"));
        assert_eq!(
            lock_path(s),
            Path::new("/run/user/7/asebytes/asebytesd.sock.lock")
        );
        assert_eq!(log_path(Path::new("d.sock")), Path::new("./asebytesd.log"));
    }

    #[test]
    fn ensure_private_dir_creates_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure_private_dir(&dir).unwrap();
    }

    #[test]
    fn ensure_private_dir_refuses_group_writable() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
        let err = ensure_private_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::InsecureDir { .. }), "{err}");
    }

    #[test]
    fn check_private_refuses_foreign_owner_and_files() {
        let d = Path::new("/d");
        assert!(check_private(d, true, 1, 0o700, 2).is_err());
        assert!(check_private(d, false, 2, 0o700, 2).is_err());
        assert!(check_private(d, true, 2, 0o1777, 2).is_err());
        assert!(check_private(d, true, 2, 0o755, 2).is_ok());
    }
}
