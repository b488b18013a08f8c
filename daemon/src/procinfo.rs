//! Who is on the other end: the credentials of a socket peer (`SO_PEERCRED`), what a
//! process is called (`/proc/<pid>/cmdline`, `/proc/<pid>/comm`), and which processes
//! hold a POSIX or flock lock on a file (`/proc/locks`).
//!
//! Layer: a leaf, like [`crate::paths`]; the server reads peer credentials, `status`
//! names clients, and backends name the program that holds a file they cannot open.
//! Everything here is best effort: on a system without `/proc` the answers are empty.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Longest program description returned by [`program`].
const MAX_PROGRAM_LEN: usize = 120;

/// `(pid, uid)` of the process on the other end of `sock` (`SO_PEERCRED`).
pub fn peer_cred(sock: &UnixStream) -> io::Result<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and `len` is the size of `cred`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((u32::try_from(cred.pid).unwrap_or(0), cred.uid))
}

/// What process `pid` runs, for people: its command line with the interpreter's
/// directory dropped (`python3 -m ipykernel_launcher -f ...`), shortened to
/// [`MAX_PROGRAM_LEN`] characters; its `comm` name when the command line is unreadable
/// or empty (kernel threads, zombies); empty when the process is gone.
pub fn program(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy);
    let text = match args.next() {
        Some(first) => {
            let exe = first.rsplit('/').next().unwrap_or(&first).to_string();
            std::iter::once(exe)
                .chain(args.map(|a| a.into_owned()))
                .collect::<Vec<_>>()
                .join(" ")
        }
        None => std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end().to_string())
            .unwrap_or_default(),
    };
    shorten(text)
}

fn shorten(text: String) -> String {
    if text.chars().count() <= MAX_PROGRAM_LEN {
        return text;
    }
    let mut short: String = text.chars().take(MAX_PROGRAM_LEN - 1).collect();
    short.push('…');
    short
}

/// A process holding a lock on a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its pid (in the daemon's pid namespace).
    pub pid: u32,
    /// [`program`] of that pid.
    pub program: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.program.is_empty() {
            write!(f, "pid {}", self.pid)
        } else {
            write!(f, "pid {} ({})", self.pid, self.program)
        }
    }
}

/// The processes other than this one that hold a lock on `path` (LMDB's `lock.mdb`,
/// HDF5 files), from `/proc/locks`; each pid once, in the order listed.
pub fn lock_holders(path: &Path) -> Vec<Holder> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(table) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let ours = std::process::id();
    let mut pids: Vec<u32> = Vec::new();
    for pid in holders_in(&table, meta.dev(), meta.ino()) {
        if pid != ours && !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    pids.into_iter()
        .map(|pid| Holder {
            pid,
            program: program(pid),
        })
        .collect()
}

/// Pids of the `/proc/locks` lines about device `dev`, inode `ino`. A line reads
/// `1: POSIX  ADVISORY  READ 1234 08:01:5678 0 0` (`-> ` marks a waiter, skipped); the
/// device is `major:minor` in hex.
fn holders_in(table: &str, dev: u64, ino: u64) -> Vec<u32> {
    let want = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    table
        .lines()
        .filter(|l| !l.contains("->"))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // `N:` TYPE MODE ACCESS PID DEV:INO START END
            let (pid, file) = (fields.get(4)?, fields.get(5)?);
            same_file(file, &want).then(|| pid.parse().ok()).flatten()
        })
        .collect()
}

/// Compares `major:minor:inode` ignoring the zero-padding of the hex numbers.
fn same_file(listed: &str, want: &str) -> bool {
    let norm = |s: &str| -> Option<(u64, u64, u64)> {
        let mut it = s.split(':');
        let major = u64::from_str_radix(it.next()?, 16).ok()?;
        let minor = u64::from_str_radix(it.next()?, 16).ok()?;
        let ino = it.next()?.parse().ok()?;
        Some((major, minor, ino))
    };
    norm(listed).is_some_and(|l| Some(l) == norm(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_cred_names_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let (pid, _uid) = peer_cred(&a).unwrap();
        assert_eq!(pid, std::process::id());
    }

    #[test]
    fn program_reads_the_command_line_and_is_empty_for_a_gone_pid() {
        let me = program(std::process::id());
        assert!(!me.is_empty());
        assert!(!me.starts_with('/'), "{me}");
        assert!(me.chars().count() <= MAX_PROGRAM_LEN);
        assert_eq!(program(u32::MAX - 1), "");
    }

    #[test]
    fn holders_in_matches_device_and_inode_and_skips_waiters() {
        let table = "1: POSIX  ADVISORY  READ 4242 08:01:777 0 0\n\
                     1: -> POSIX  ADVISORY  WRITE 99 08:01:777 0 0\n\
                     2: FLOCK  ADVISORY  WRITE 17 103:02:777 0 EOF\n\
                     3: POSIX  ADVISORY  WRITE 5 08:01:778 0 EOF\n";
        let dev = libc::makedev(8, 1);
        assert_eq!(holders_in(table, dev, 777), vec![4242]);
        assert_eq!(holders_in(table, libc::makedev(0x103, 2), 777), vec![17]);
        assert!(holders_in(table, dev, 1).is_empty());
    }

    #[test]
    fn lock_holders_finds_a_child_holding_a_posix_lock() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("held");
        std::fs::write(&file, b"x").unwrap();
        // flock(1) from util-linux holds an flock lock while `cat` waits on its stdin.
        let Ok(mut child) = std::process::Command::new("flock")
            .arg(&file)
            .arg("cat")
            .stdin(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("skipped: flock(1) is not installed");
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let holders = loop {
            let h = lock_holders(&file);
            if !h.is_empty() || std::time::Instant::now() > deadline {
                break h;
            }
            std::thread::park_timeout(std::time::Duration::from_millis(5));
        };
        drop(child.stdin.take());
        child.wait().unwrap();
        assert_eq!(holders.len(), 1, "{holders:?}");
        assert!(holders[0].program.contains("flock"), "{holders:?}");
        assert!(holders[0].to_string().starts_with("pid "));
    }
}
