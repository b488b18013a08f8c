//! End-to-end tests on a small filesystem (an 8 MiB tmpfs, or a loop-mounted ext4 image)
//! mounted inside a temporary directory: a full disk is a `DiskFull` error naming the
//! store, logged, with earlier rows intact, and never a SIGBUS that takes the daemon (and
//! this test process, which runs it) down. Needs root to mount; skipped, saying why,
//! without it.
#![cfg(feature = "lmdb")]

mod e2e_common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use asebytes_protocol::request::{Extend, Get, Open, StoreRef};
use asebytes_protocol::value::row;
use asebytes_protocol::{ErrorCode, Request, Response, WireError};
use e2e_common::{Client, TestServer, unique_memory};

/// A filesystem of a few MiB mounted on a temporary directory; unmounted on drop.
struct SmallFs {
    mountpoint: tempfile::TempDir,
    _image: Option<tempfile::TempDir>,
}

impl SmallFs {
    fn mount(mib: u32) -> Result<Self, String> {
        let mountpoint = tempfile::tempdir().map_err(|e| e.to_string())?;
        let tmpfs = run(Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(mountpoint.path()));
        let tmpfs_err = match tmpfs {
            Ok(()) => {
                return Ok(Self {
                    mountpoint,
                    _image: None,
                });
            }
            Err(e) => e,
        };
        let image_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = image_dir.path().join("fs.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(u64::from(mib) << 20))
            .map_err(|e| e.to_string())?;
        let ext4 = run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image)).and_then(|()| {
            run(Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(mountpoint.path()))
        });
        match ext4 {
            Ok(()) => Ok(Self {
                mountpoint,
                _image: Some(image_dir),
            }),
            Err(e) => Err(format!(
                "cannot mount a small filesystem (tmpfs: {tmpfs_err}; loop ext4: {e})"
            )),
        }
    }

    fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// Writes a filler file until the filesystem refuses more.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![0xa5u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                    break;
                }
            }
        }
        let _ = f.sync_all();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if run(Command::new("umount").arg(self.path())).is_err() {
            let _ = run(Command::new("umount").arg("-l").arg(self.path()));
        }
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

macro_rules! small_fs_or_skip {
    ($mib:expr) => {
        match SmallFs::mount($mib) {
            Ok(fs) => fs,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// Log lines of this process (the daemon runs in it), to check what it logged.
fn captured_log() -> &'static Mutex<Vec<String>> {
    struct Capture;
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.level() <= log::Level::Warn
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                let line = format!("{} {}", r.level(), r.args());
                LINES.get().unwrap().lock().unwrap().push(line);
            }
        }
        fn flush(&self) {}
    }
    LINES.get_or_init(|| {
        let _ = log::set_boxed_logger(Box::new(Capture));
        log::set_max_level(log::LevelFilter::Warn);
        Mutex::new(Vec::new())
    })
}

fn logged(needle: &str) -> bool {
    captured_log()
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("ERROR") && l.contains(needle))
}

fn expect_disk_full(resp: Response) -> WireError {
    match resp {
        Response::Error(e) if e.code == ErrorCode::DiskFull => e,
        other => panic!("expected DiskFull, got {other:?}"),
    }
}

fn extend(c: &mut Client, store: u64, first: usize, n: usize, size: usize) -> Response {
    let rows = (first..first + n)
        .map(|i| Some(row([("i", i.to_string()), ("blob", "x".repeat(size))])))
        .collect();
    c.call(Request::Extend(Extend { store, rows }))
}

#[test]
fn opening_a_store_on_a_full_disk_is_an_error_and_the_daemon_lives_on() {
    captured_log();
    let fs = small_fs_or_skip!(8);
    let server = TestServer::start();
    let mut c = server.client();
    let mem = c.open(&unique_memory("survivor")).store;
    assert!(matches!(extend(&mut c, mem, 0, 3, 10), Response::Len(3)));
    fs.fill();

    let location: PathBuf = fs.path().join("new.lmdb");
    let resp = c.call(Request::Open(Open {
        location: location.display().to_string(),
        ..Open::default()
    }));
    let err = expect_disk_full(resp);
    assert!(err.message.contains("new.lmdb"), "{}", err.message);
    assert!(err.message.contains("full"), "{}", err.message);
    assert!(
        logged("new.lmdb"),
        "not logged: {:?}",
        captured_log().lock().unwrap()
    );
    assert!(
        !location.exists(),
        "a failed open left {}",
        location.display()
    );

    // The daemon (this process) is alive, and so is every other store.
    assert_eq!(c.call(Request::Ping), Response::Pong);
    assert_eq!(
        c.call(Request::Len(StoreRef { store: mem })),
        Response::Len(3)
    );

    // With space freed, the same open succeeds.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    let opened = c.open(&location.display().to_string());
    assert!(matches!(
        extend(&mut c, opened.store, 0, 1, 10),
        Response::Len(1)
    ));
}

#[test]
fn writing_until_the_disk_is_full_is_a_disk_full_error_and_keeps_earlier_rows() {
    captured_log();
    let fs = small_fs_or_skip!(8);
    let server = TestServer::start();
    let mut c = server.client();
    let location = fs.path().join("data.lmdb");
    let store = c.open(&location.display().to_string()).store;
    let mut acked = 0;
    let err = loop {
        match extend(&mut c, store, acked, 4, 16 << 10) {
            Response::Len(n) => {
                acked += 4;
                assert_eq!(n as usize, acked);
                assert!(acked < 10_000, "an 8 MiB filesystem never filled up");
            }
            other => break expect_disk_full(other),
        }
    };
    assert!(acked > 0, "not even the first batch fit");
    assert!(err.message.contains("data.lmdb"), "{}", err.message);
    assert!(err.message.contains("ENOSPC"), "{}", err.message);
    assert!(
        logged("data.lmdb"),
        "not logged: {:?}",
        captured_log().lock().unwrap()
    );

    // Every acknowledged row is there, nothing of the failed batch.
    assert_eq!(
        c.call(Request::Len(StoreRef { store })),
        Response::Len(acked as u64)
    );
    for i in [0, acked / 2, acked - 1] {
        let got = c.call(Request::Get(Get {
            store,
            index: i as i64,
            keys: None,
        }));
        let Response::Row(Some(r)) = got else {
            panic!("row {i} is missing")
        };
        let field = r
            .iter()
            .find(|(k, _)| k.as_slice() == b"i")
            .expect("field i");
        assert!(
            field.1.as_slice() == i.to_string().as_bytes(),
            "row {i} changed"
        );
    }
    assert_eq!(c.call(Request::Ping), Response::Pong);
}
