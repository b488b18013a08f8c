//! The LMDB `durability` open option: `"os"` runs the environment without a flush per
//! commit (and flushes at close), `"disk"` (the default) flushes every commit; either way
//! the rows are the same after a reopen. That acknowledged `os` writes survive `kill -9`
//! of the daemon is `e2e_kill9::kill9_lmdb_durability_os`.

use std::path::Path;

use asebytes_daemon::backend::lmdb::LmdbBackend;
use asebytes_daemon::backend::lmdb::durability::Durability;
use asebytes_daemon::backend::options::Options;
use asebytes_daemon::backend::{Backend, ErrorKind, OpenOptions};
use asebytes_protocol::OptionValue;
use asebytes_protocol::value::row;

fn opts(dir: &Path, durability: Option<&str>) -> OpenOptions {
    let mut options = Options::default();
    if let Some(d) = durability {
        options = options.with("durability", OptionValue::Str(d.into()));
    }
    OpenOptions {
        path: dir.join("d.lmdb").to_str().expect("utf-8").to_owned(),
        group: "default".into(),
        readonly: false,
        options,
    }
}

fn append(b: &mut LmdbBackend, n: usize) {
    for i in 0..n {
        let r = row([("info.i", i.to_string().as_str())]);
        b.write(&mut |w| w.extend(vec![Some(r.clone())]).map(|_| ()))
            .expect("write");
    }
}

#[test]
fn test_durability_os_skips_the_flush_per_commit_and_keeps_every_row() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut b = LmdbBackend::open(&opts(tmp.path(), Some("os"))).expect("open");
    assert_eq!(b.durability().expect("flags"), Durability::Os);
    append(&mut b, 50);
    b.close().expect("close flushes");
    drop(b);
    let b = LmdbBackend::open(&opts(tmp.path(), None)).expect("reopen");
    assert_eq!(b.durability().expect("flags"), Durability::Disk);
    let snap = b.reader();
    assert_eq!(snap.snapshot().expect("snapshot").len().expect("len"), 50);
}

#[test]
fn test_durability_defaults_to_disk_and_refuses_unknown_modes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = LmdbBackend::open(&opts(tmp.path(), Some("disk"))).expect("open");
    assert_eq!(b.durability().expect("flags"), Durability::Disk);
    drop(b);
    let err = LmdbBackend::open(&opts(tmp.path(), Some("never"))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert!(err.message.contains("durability"), "{err}");
}
