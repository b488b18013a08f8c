//! The client-side commands: `asebytesd start` (spawn detached, wait for readiness),
//! `stop` and `status`, and the text `status` prints.
//!
//! Layer: the top, with the rest of [`crate::cli`]; talks to a running daemon through
//! [`launcher`] and the wire protocol only.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use asebytes_protocol::frame;
use asebytes_protocol::response::Status;
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

/// `asebytesd status`.
pub(super) fn status(socket: &Path) -> i32 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use asebytes_protocol::response::StoreStatus;

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
    fn process_alive_sees_ourselves_and_not_a_reaped_child() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
