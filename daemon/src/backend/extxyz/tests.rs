//! The extxyz backend end to end on files in a temporary directory: frames indexed at
//! open, the index persisted and re-validated, growth followed, a rewrite detected, a bad
//! line reported with file, frame and line while the other frames stay readable.

use std::io::Write;

use asebytes_protocol::codec::{self, Value};

use super::*;
use crate::backend::{Backend, OpenOptions};

fn frame(energy: f64, natoms: usize) -> String {
    let mut s =
        format!("{natoms}\nProperties=species:S:1:pos:R:3 energy={energy:.1} pbc=\"F F F\"\n");
    for i in 0..natoms {
        s.push_str(&format!("H {i}.0 0.0 0.0\n"));
    }
    s
}

fn energy_of(b: &dyn Backend, i: u64) -> f64 {
    let reader = b.reader();
    let snap = reader.snapshot().unwrap();
    let row = snap.get(i, None).unwrap().unwrap();
    let (_, v) = row.iter().find(|(k, _)| &k[..] == b"calc.energy").unwrap();
    match codec::decode(v).unwrap() {
        Value::Float(x) => x,
        other => panic!("{other:?}"),
    }
}

fn len_of(b: &dyn Backend) -> u64 {
    b.reader().snapshot().unwrap().len().unwrap()
}

fn opts(path: &Path) -> OpenOptions {
    OpenOptions {
        path: path.to_string_lossy().into_owned(),
        group: "default".into(),
        ..Default::default()
    }
}

#[test]
fn frames_are_random_access_growth_is_followed_and_rewrites_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: tests of this module are the only readers of the variable in this process.
    unsafe { std::env::set_var("ASEBYTES_CACHE_DIR", dir.path().join("cache")) };
    let path = dir.path().join("md.extxyz");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..5 {
        f.write_all(frame(i as f64, 1 + i % 3).as_bytes()).unwrap();
    }
    f.flush().unwrap();
    let b = open(&opts(&path)).unwrap();
    assert_eq!(len_of(&b), 5);
    assert_eq!(energy_of(&b, 4), 4.0);
    assert!(b.info().caps.read && !b.info().caps.write);

    // A half-written frame is not counted until it is complete.
    let next = frame(5.0, 2);
    f.write_all(&next.as_bytes()[..next.len() - 5]).unwrap();
    f.flush().unwrap();
    assert_eq!(len_of(&b), 5);
    f.write_all(&next.as_bytes()[next.len() - 5..]).unwrap();
    f.flush().unwrap();
    assert_eq!(len_of(&b), 6);
    assert_eq!(energy_of(&b, 5), 5.0);

    // The persisted index is taken by the next open.
    let again = open(&opts(&path)).unwrap();
    assert_eq!(len_of(&again), 6);
    let cached = std::fs::read_dir(dir.path().join("cache/frame-index"))
        .unwrap()
        .count();
    assert_eq!(cached, 1);

    // Rewritten in place with other content: re-indexed.
    std::fs::write(&path, frame(9.0, 2) + &frame(8.0, 1)).unwrap();
    assert_eq!(len_of(&b), 2);
    assert_eq!(energy_of(&b, 0), 9.0);
    let reopened = open(&opts(&path)).unwrap();
    assert_eq!(energy_of(&reopened, 1), 8.0);
}

#[test]
fn a_bad_line_names_file_frame_and_line_and_other_frames_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xyz");
    let text = frame(0.0, 2) + "2\nenergy=1.0\nH 0 0 0\nH 0 oops 0\n" + &frame(2.0, 1);
    std::fs::write(&path, text).unwrap();
    let b = open(&opts(&path)).unwrap();
    assert_eq!(len_of(&b), 3);
    assert_eq!(energy_of(&b, 2), 2.0);
    let e = b.reader().snapshot().unwrap().get(1, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(
        e.message.contains("bad.xyz: frame 1, line 4"),
        "{}",
        e.message
    );
    let mut w = open(&opts(&path)).unwrap();
    assert_eq!(
        w.write(&mut |_| Ok(())).unwrap_err().kind,
        ErrorKind::ReadOnly
    );
}

#[test]
fn compressed_files_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.xyz.gz");
    std::fs::write(&path, [0x1f, 0x8b, 0, 0]).unwrap();
    let e = open(&opts(&path)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("gunzip"), "{}", e.message);
}

#[test]
fn a_last_line_without_newline_counts_once_the_file_has_settled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hand.xyz");
    let text = frame(1.0, 1) + frame(2.0, 1).trim_end();
    std::fs::write(&path, &text).unwrap();
    let b = open(&opts(&path)).unwrap();
    // Just written: the writer may be mid-line.
    assert_eq!(len_of(&b), 1);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(len_of(&b), 2);
    assert_eq!(energy_of(&b, 1), 2.0);
}
