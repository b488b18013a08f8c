//! End-to-end tests of the descriptor limit with the real `asebytesd` binary: it raises its
//! soft limit to the hard one at start, and when it still runs out, a new client is told
//! so (instead of timing out in a handshake nobody answers) and the daemon recovers once
//! clients leave.

mod e2e_common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use asebytes_daemon::launcher::{self, LaunchError};
use asebytes_protocol::{Request, Response};
use e2e_common::{Client, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_asebytesd");

/// `asebytesd run` with descriptor limits `soft`/`hard`, killed on drop.
struct Daemon(Child);

impl Daemon {
    fn start(socket: &Path, soft: u64, hard: u64) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "run",
            "--foreground-log",
            "--idle-timeout",
            "60",
            "--socket",
        ])
        .arg(socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        wait_for("the daemon to listen", || launcher::connect(socket).is_ok());
        Self(child)
    }

    /// `Max open files` from `/proc/<pid>/limits`: (soft, hard).
    fn fd_limits(&self) -> (String, String) {
        let text = std::fs::read_to_string(format!("/proc/{}/limits", self.0.id())).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let mut words = line.split_whitespace().skip(3);
        (words.next().unwrap().into(), words.next().unwrap().into())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_daemon_raises_its_soft_descriptor_limit_to_the_hard_one() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("d.sock");
    let daemon = Daemon::start(&socket, 64, 2048);
    assert_eq!(daemon.fd_limits(), ("2048".into(), "2048".into()));
}

#[test]
fn a_client_of_a_daemon_out_of_descriptors_is_told_so_and_it_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("d.sock");
    let _daemon = Daemon::start(&socket, 40, 40);
    let mut held = Vec::new();
    let refusal = loop {
        assert!(held.len() < 200, "40 descriptors never ran out");
        match launcher::connect(&socket) {
            Ok((stream, welcome)) => held.push(Client::from_stream(stream, welcome)),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&refusal, LaunchError::Refused(_)),
        "expected a refusal, got {refusal}"
    );
    let msg = refusal.to_string();
    assert!(msg.contains("out of file descriptors"), "{msg}");
    assert!(!msg.contains("broke the protocol"), "{msg}");

    // Clients leave; the daemon serves again.
    held.truncate(held.len() / 2);
    let mut c = Client::connect(&socket);
    assert_eq!(c.call(Request::Ping), Response::Pong);
    for c in &mut held {
        assert_eq!(c.call(Request::Ping), Response::Pong);
    }
}
