//! Compatibility of the Zarr backend with the reference Python `asebytes` 0.3.3 and
//! zarr-python 3, both ragged (`*.zarr`) and padded (`*.zarrp`): files the reference writes
//! read here as the reference itself reads them, and files we write read there as written.
//! Frames: variable atom counts, strings, nested info, a numpy int32, a key that appears in
//! a later batch (`tests/python/_zarr_frames.py`, shared with the Python tests).
//!
//! Needs the reference in a virtualenv: `ASEBYTES_REF_PYTHON`, else
//! `<workspace>/.venv-ref/bin/python`. Without it each test prints `skipped: ...` and
//! passes, except under `CI`, where a missing reference fails the test.
#![cfg(feature = "zarr")]

use std::path::{Path, PathBuf};
use std::process::Command;

use asebytes_daemon::backend::columnar::Layout;
use asebytes_daemon::backend::zarr::ZarrBackend;
use asebytes_daemon::backend::{Backend, OpenOptions};
use asebytes_protocol::codec::{self, Value};
use asebytes_protocol::{Key, Row};

/// The reference side. `frames`: prints `atoms_to_dict` of each frame; `write PATH`:
/// writes the frames with ASEIO (two batches where 0.3.3 can); `read PATH`: prints each row as ObjectIO
/// reads it, then what zarr-python reads of `calc.energy`. Values travel as msgpack hex.
const SCRIPT: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
import asebytes, msgpack, msgpack_numpy, numpy as np
from _zarr_frames import frames
assert asebytes.__version__ == "0.3.3", asebytes.__version__

def enc(v):
    return msgpack.packb(v, default=msgpack_numpy.encode).hex()

def fmt(row):
    if row is None:
        return "N"
    return "&".join(k.encode().hex() + "=" + enc(row[k]) for k in sorted(row))

mode = sys.argv[2]
if mode == "frames":
    for a in frames():
        print(fmt(asebytes.atoms_to_dict(a)))
elif mode == "write":
    db = asebytes.ASEIO(sys.argv[3])
    f = frames()
    if sys.argv[3].endswith(".zarrp"):
        db.extend(f)  # 0.3.3 fails a padded batch that widens after a first batch
    else:
        db.extend(f[:2])
        db.extend(f[2:])
elif mode == "read":
    import zarr
    db = asebytes.ObjectIO(sys.argv[3])
    print(len(db))
    for i in range(len(db)):
        print(fmt(db.get(i)))
    g = zarr.open_group(sys.argv[3] + "/default", mode="r")
    print(enc(np.asarray(g["calc.energy"][:])))
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn reference_python() -> Option<PathBuf> {
    let p = std::env::var_os("ASEBYTES_REF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv-ref/bin/python"));
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the reference asebytes is needed under CI: ./dev ref-venv"
    );
    eprintln!("skipped: no reference python at {}", p.display());
    None
}

fn run(py: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(workspace().join("tests/python"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The reference hands numpy scalars out as Python scalars (we keep their dtype, as the
/// contract says); compare them as Python scalars.
fn python_scalars(row: Vec<(String, Value)>) -> Vec<(String, Value)> {
    row.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Scalar(s) => match (s.dtype.kind(), s.as_f64()) {
                    (b'b', Some(x)) => Value::Bool(x != 0.0),
                    (b'i' | b'u', Some(x)) => Value::Int(x as i64),
                    (b'f', Some(x)) => Value::Float(x),
                    _ => Value::Scalar(s),
                },
                other => other,
            };
            (k, v)
        })
        .collect()
}

/// A printed row as `(key, decoded value)`, sorted by key.
fn parse(line: &str) -> Option<Vec<(String, Value)>> {
    if line == "N" {
        return None;
    }
    Some(
        line.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                let key = String::from_utf8(unhex(k)).unwrap();
                (key, codec::decode(&unhex(v)).unwrap())
            })
            .collect(),
    )
}

fn decoded(row: Row) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = row
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k.into_vec()).unwrap(),
                codec::decode(&v).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn open(path: &Path, layout: Layout) -> Box<dyn Backend> {
    let opts = OpenOptions {
        path: path.to_string_lossy().into_owned(),
        group: "default".into(),
        ..Default::default()
    };
    Box::new(ZarrBackend::open(&opts, layout).unwrap())
}

fn ours_read_reference(ext: &str, layout: Layout) {
    let Some(py) = reference_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("ref.{ext}"));
    let p = path.to_str().unwrap();
    run(&py, &["write", p]);
    let theirs = run(&py, &["read", p]);
    let b = open(&path, layout);
    let snap = b.reader();
    let snap = snap.snapshot().unwrap();
    let n: usize = theirs[0].parse().unwrap();
    assert_eq!(snap.len().unwrap(), n as u64);
    for (i, line) in theirs[1..=n].iter().enumerate() {
        let ours = snap.get(i as u64, None).unwrap().map(decoded);
        assert_eq!(
            ours.map(python_scalars),
            parse(line),
            "frame {i} of the reference's {ext}"
        );
    }
}

fn reference_reads_ours(ext: &str, layout: Layout) {
    let Some(py) = reference_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("ours.{ext}"));
    let frames: Vec<Row> = run(&py, &["frames"])
        .iter()
        .map(|l| {
            parse(l)
                .unwrap()
                .into_iter()
                .map(|(k, v)| (Key::from(k.into_bytes()), codec::encode(&v).unwrap().into()))
                .collect()
        })
        .collect();
    let mut b = open(&path, layout);
    b.write(&mut |w| {
        w.extend(frames[..2].iter().cloned().map(Some).collect())
            .map(|_| ())
    })
    .unwrap();
    b.write(&mut |w| {
        w.extend(frames[2..].iter().cloned().map(Some).collect())
            .map(|_| ())
    })
    .unwrap();
    let theirs = run(&py, &["read", path.to_str().unwrap()]);
    assert_eq!(theirs[0], frames.len().to_string());
    for (i, line) in theirs[1..=frames.len()].iter().enumerate() {
        assert_eq!(
            parse(line),
            Some(python_scalars(decoded(frames[i].clone()))),
            "frame {i} of our {ext} as the reference reads it"
        );
    }
    let energy = codec::decode(&unhex(&theirs[frames.len() + 1])).unwrap();
    let Value::Array(a) = energy else {
        panic!("zarr-python read {energy:?}")
    };
    assert_eq!(a.to_f64s().unwrap(), vec![-0.0, -1.5, -3.0, -4.5]);
}

#[test]
fn test_reference_ragged_files_read_as_the_reference_reads_them() {
    ours_read_reference("zarr", Layout::Ragged);
}

#[test]
fn test_reference_padded_files_read_as_the_reference_reads_them() {
    ours_read_reference("zarrp", Layout::Padded);
}

#[test]
fn test_reference_and_zarr_python_read_our_ragged_files() {
    reference_reads_ours("zarr", Layout::Ragged);
}

#[test]
fn test_reference_and_zarr_python_read_our_padded_files() {
    reference_reads_ours("zarrp", Layout::Padded);
}
