//! The readiness report of a daemon started on demand: one typed message from the new
//! daemon to the launcher that spawned it, over a socket the launcher binds first.
//!
//! Layer: beside [`crate::launcher`] (which binds [`NotifySocket`] and waits) and used by
//! `asebytesd run` ([`crate::cli`], which sends the [`Startup`] report). The report travels
//! as one MessagePack value, so a new kind of report is a new variant, never a new string
//! convention.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Environment variable through which a spawned daemon finds the readiness socket.
pub const STARTUP_NOTIFY_ENV: &str = "ASEBYTES_STARTUP_NOTIFY";

/// Longest report read; a failure reason is a line or two.
const MAX_REPORT: u64 = 16 * 1024;

/// What a started daemon reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Startup {
    /// It is serving the socket.
    Ready,
    /// Another daemon holds the lock: someone else won the race, so connect again.
    InUse,
    /// It cannot serve; the reason says why.
    Failed {
        /// What went wrong, for the user.
        reason: String,
    },
}

impl Startup {
    /// The report as sent.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a startup report always encodes")
    }

    /// A report as received.
    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

/// Sends `report` to the launcher that started this daemon, if any
/// (`ASEBYTES_STARTUP_NOTIFY`). Failures are ignored: nobody may be listening any more.
pub fn notify(report: &Startup) {
    let Some(path) = std::env::var_os(STARTUP_NOTIFY_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    if let Ok(mut sock) = UnixStream::connect(&path) {
        let _ = sock.write_all(&report.encode());
    }
}

/// The temporary socket a spawned daemon reports readiness on; removed on drop.
#[derive(Debug)]
pub struct NotifySocket {
    listener: UnixListener,
    /// Where it is bound (passed to the daemon in [`STARTUP_NOTIFY_ENV`]).
    pub path: PathBuf,
}

impl NotifySocket {
    /// Binds a fresh socket in `dir`.
    pub fn bind(dir: &Path) -> io::Result<Self> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".notify-{}-{seq}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener, path })
    }

    /// The daemon's one report, or `None` at the deadline. An unreadable report is an
    /// `InvalidData` error.
    pub fn wait(&self, deadline: Instant) -> io::Result<Option<Startup>> {
        loop {
            match self.listener.accept() {
                Ok((mut sock, _)) => {
                    sock.set_nonblocking(false)?;
                    let left = deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(100));
                    sock.set_read_timeout(Some(left))?;
                    let mut bytes = Vec::new();
                    (&mut sock).take(MAX_REPORT).read_to_end(&mut bytes)?;
                    return Startup::decode(&bytes).map(Some).map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("unreadable startup report: {e}"),
                        )
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            crate::shutdown::wait_readable(&[self.listener.as_raw_fd()], ms)?;
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_garbage_is_an_error() {
        for r in [
            Startup::Ready,
            Startup::InUse,
            Startup::Failed {
                reason: "cannot listen".into(),
            },
        ] {
            assert_eq!(Startup::decode(&r.encode()).unwrap(), r);
        }
        assert!(Startup::decode(b"ok").is_err());
    }

    #[test]
    fn notify_socket_receives_one_report_and_times_out_without_one() {
        let tmp = tempfile::tempdir().unwrap();
        let n = NotifySocket::bind(tmp.path()).unwrap();
        assert_eq!(
            n.wait(Instant::now() + Duration::from_millis(20)).unwrap(),
            None
        );
        let path = n.path.clone();
        let sender = std::thread::spawn(move || {
            let mut s = UnixStream::connect(path).unwrap();
            s.write_all(&Startup::InUse.encode()).unwrap();
        });
        assert_eq!(
            n.wait(Instant::now() + Duration::from_secs(10)).unwrap(),
            Some(Startup::InUse)
        );
        sender.join().unwrap();
        let path = n.path.clone();
        drop(n);
        assert!(!path.exists());
    }
}
