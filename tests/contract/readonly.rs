//! The read-only part of the contract, run on every read-only source (extxyz, traj,
//! aselmdb) through `StoreHandle`: length, `Get` of any sign and its bounds, `GetMany` in
//! order with duplicates, strict keys, `Keys`, `GetColumn`, and every write refused with
//! `ReadOnly` and nothing changed. Each source is written here, in its own format, with the
//! same frames: frame `i` has `1 + i % 3` atoms and energy `-0.5 - i`.
//!
//! Trials are named `contract::<source>::<test>` (`colabfit` for the hub source, see
//! `readonly_hub.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};

use asebytes_daemon::backend::{self, Backend, OpenOptions};
use asebytes_daemon::store::StoreHandle;
use asebytes_protocol::codec::{self, Value};
use asebytes_protocol::{ErrorCode, Response};
use asebytes_tests::*;
use tempfile::TempDir;

pub(crate) const N: usize = 7;

pub(crate) fn energy(i: usize) -> f64 {
    -0.5 - i as f64
}

pub(crate) fn natoms(i: usize) -> usize {
    1 + i % 3
}

/// A read-only source: its scheme, how to write the frames in its format, and how to open
/// what was written (the options, and whatever must live as long as the store: a server).
#[derive(Clone, Copy)]
struct Source {
    scheme: &'static str,
    write: fn(&Path) -> PathBuf,
    locate: fn(&Path) -> Result<Located, Failed>,
}

type Located = (OpenOptions, Box<dyn Send + Sync>);

/// A file source opens its path.
fn locate_file(path: &Path) -> Result<Located, Failed> {
    let opts = OpenOptions {
        path: path.to_string_lossy().into_owned(),
        group: "default".into(),
        ..Default::default()
    };
    Ok((opts, Box::new(())))
}

fn write_extxyz(dir: &Path) -> PathBuf {
    let path = dir.join("src.extxyz");
    let mut text = String::new();
    for i in 0..N {
        text += &format!(
            "{}\nProperties=species:S:1:pos:R:3 energy={:.1} step={i}\n",
            natoms(i),
            energy(i)
        );
        for a in 0..natoms(i) {
            text += &format!("H {a}.0 0.0 0.0\n");
        }
    }
    std::fs::write(&path, text).expect("write extxyz");
    path
}

/// A trajectory as ASE's ULM writer lays it out: arrays first, then each item's JSON,
/// then the item-offset table.
fn write_traj(dir: &Path) -> PathBuf {
    let path = dir.join("src.traj");
    let mut out: Vec<u8> = Vec::new();
    out.extend_from_slice(b"- of Ulm");
    out.extend_from_slice(b"ASE-Trajectory  ");
    out.extend_from_slice(&[0u8; 24]); // version, nitems, pos0: filled below
    let mut offsets = Vec::new();
    for i in 0..N {
        let n = natoms(i);
        let numbers_at = out.len();
        for _ in 0..n {
            out.extend_from_slice(&1i64.to_le_bytes());
        }
        let positions_at = out.len();
        for a in 0..n {
            for x in [a as f64, 0.0, 0.0] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        let item = format!(
            r#"{{"pbc": [false, false, false], "numbers.": {{"ndarray": [[{n}], "int64", {numbers_at}]}}, "positions.": {{"ndarray": [[{n}, 3], "float64", {positions_at}]}}, "cell": [[0, 0, 0], [0, 0, 0], [0, 0, 0]], "calculator.": {{"name": "unknown", "energy": {:.1}}}, "info": {{"step": {i}}}}}"#,
            energy(i)
        );
        offsets.push(out.len() as i64);
        out.extend_from_slice(&(item.len() as i64).to_le_bytes());
        out.extend_from_slice(item.as_bytes());
    }
    let pos0 = out.len();
    for o in &offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out[24..32].copy_from_slice(&3i64.to_le_bytes());
    out[32..40].copy_from_slice(&(N as i64).to_le_bytes());
    out[40..48].copy_from_slice(&(pos0 as i64).to_le_bytes());
    std::fs::write(&path, out).expect("write traj");
    path
}

fn zlib(text: &str) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).expect("compress");
    e.finish().expect("compress")
}

/// An ase-db-backends shard: LMDB in one file, zlib JSON rows under "1".."N".
fn write_aselmdb(dir: &Path) -> PathBuf {
    use heed::types::Bytes;
    use heed::{CommitOrAbort, EnvFlags, EnvOpenOptions};
    let path = dir.join("src.aselmdb");
    let mut options = EnvOpenOptions::new();
    options.map_size(1 << 24);
    // SAFETY: a fresh file in a private temporary directory, opened once.
    unsafe { options.flags(EnvFlags::NO_SUB_DIR) };
    // SAFETY: as above.
    let env = unsafe { options.open(&path) }.expect("open lmdb");
    let wtxn = env.write_txn().expect("txn");
    let db = env
        .create_databases_and_commit(wtxn, |opener, wtxn| {
            opener
                .create_database::<Bytes, Bytes>(wtxn, None)
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .expect("db")
        .unwrap_commit();
    let mut wtxn = env.write_txn().expect("txn");
    for i in 0..N {
        let n = natoms(i);
        let positions: Vec<String> = (0..n).map(|a| format!("{a}.0, 0.0, 0.0")).collect();
        let row = format!(
            r#"{{"numbers": {{"__ndarray__": [[{n}], "int64", [{}]]}}, "positions": {{"__ndarray__": [[{n}, 3], "float64", [{}]]}}, "energy": {:.1}, "key_value_pairs": {{"step": {i}}}, "data": {{}}}}"#,
            vec!["1"; n].join(", "),
            positions.join(", "),
            energy(i)
        );
        db.put(&mut wtxn, (i + 1).to_string().as_bytes(), &zlib(&row))
            .expect("put");
    }
    db.put(&mut wtxn, b"nextid", &zlib(&(N + 1).to_string()))
        .expect("put");
    wtxn.commit().expect("commit");
    drop(env);
    path
}

const SOURCES: &[Source] = &[
    Source {
        scheme: "extxyz",
        write: write_extxyz,
        locate: locate_file,
    },
    Source {
        scheme: "traj",
        write: write_traj,
        locate: locate_file,
    },
    Source {
        scheme: "aselmdb",
        write: write_aselmdb,
        locate: locate_file,
    },
    #[cfg(feature = "hub")]
    Source {
        scheme: "colabfit",
        write: super::readonly_hub::write_hub,
        locate: super::readonly_hub::locate_hub,
    },
];

/// A source written in a temporary directory and opened behind a store actor.
struct Fixture {
    _dir: TempDir,
    _keep: Box<dyn Send + Sync>,
    path: PathBuf,
    store: StoreHandle,
}

impl Fixture {
    fn new(src: Source) -> Result<Self, Failed> {
        let dir = TempDir::new().map_err(|e| format!("temporary directory: {e}"))?;
        let path = (src.write)(dir.path());
        let (opts, keep) = (src.locate)(&path)?;
        let b: Box<dyn Backend> =
            backend::open(src.scheme, &opts).map_err(|e| format!("open: {e}"))?;
        let store = StoreHandle::spawn(b).map_err(|e| format!("spawn: {e}"))?;
        Ok(Self {
            _dir: dir,
            _keep: keep,
            path,
            store,
        })
    }

    fn ok(&self, req: asebytes_protocol::Request) -> Result<Response, Failed> {
        match self.store.execute(req, false) {
            Response::Error(e) => Err(format!("request failed: {e}").into()),
            other => Ok(other),
        }
    }

    fn err(&self, req: asebytes_protocol::Request, code: ErrorCode) -> Result<(), Failed> {
        expect_err("request", self.store.execute(req, false), code).map(|_| ())
    }
}

fn field(row: &Option<asebytes_protocol::Row>, key: &str) -> Result<Value, Failed> {
    let row = row.as_ref().ok_or("placeholder row")?;
    let (_, v) = row
        .iter()
        .find(|(k, _)| &k[..] == key.as_bytes())
        .ok_or(format!("no {key}"))?;
    codec::decode(v).map_err(|e| format!("decode {key}: {e}").into())
}

fn energy_of(row: &Option<asebytes_protocol::Row>) -> Result<f64, Failed> {
    field(row, "calc.energy")?
        .as_f64()
        .ok_or_else(|| "energy is not a number".into())
}

fn test_len_is_the_number_of_frames(f: &Fixture) -> Result<(), Failed> {
    check_eq("len", f.ok(len())?, Response::Len(N as u64))
}

fn test_get_reads_every_frame_at_any_sign(f: &Fixture) -> Result<(), Failed> {
    for i in 0..N {
        check_eq(
            &format!("energy {i}"),
            energy_of(&as_row(f.ok(get(i as i64))?)?)?,
            energy(i),
        )?;
        let back = i as i64 - N as i64;
        check_eq(
            &format!("energy {back}"),
            energy_of(&as_row(f.ok(get(back))?)?)?,
            energy(i),
        )?;
        let Value::Array(numbers) = field(&as_row(f.ok(get(i as i64))?)?, "arrays.numbers")? else {
            return Err("numbers are not an array".into());
        };
        check_eq("atoms", numbers.shape.clone(), vec![natoms(i) as u64])?;
    }
    Ok(())
}

fn test_get_out_of_range_is_index_error(f: &Fixture) -> Result<(), Failed> {
    f.err(get(N as i64), ErrorCode::IndexOutOfRange)?;
    f.err(get(-(N as i64) - 1), ErrorCode::IndexOutOfRange)
}

fn test_get_many_in_requested_order_with_duplicates(f: &Fixture) -> Result<(), Failed> {
    let rows = as_rows(f.ok(get_many(vec![2, 0, 2, -1], None))?)?;
    let got: Vec<f64> = rows.iter().map(energy_of).collect::<Result<_, _>>()?;
    check_eq(
        "energies",
        got,
        vec![energy(2), energy(0), energy(2), energy(N - 1)],
    )
}

fn test_get_with_keys_is_strict(f: &Fixture) -> Result<(), Failed> {
    let row =
        as_row(f.ok(get_keys(1, &["calc.energy", "arrays.numbers"]))?)?.ok_or("placeholder")?;
    let names: Vec<&[u8]> = row.iter().map(|(k, _)| &k[..]).collect();
    check_eq("keys", names, vec![&b"calc.energy"[..], b"arrays.numbers"])?;
    f.err(
        get_keys(1, &["calc.energy", "info.nope"]),
        ErrorCode::NotFound,
    )
}

fn test_keys_list_the_frame(f: &Fixture) -> Result<(), Failed> {
    let got = as_keys(f.ok(keys(-1))?)?;
    check_eq(
        "first keys",
        &got[..4],
        &["cell", "pbc", "arrays.numbers", "arrays.positions"].map(String::from)[..],
    )?;
    ensure!(
        got.iter().any(|k| k == "calc.energy"),
        "no calc.energy in {got:?}"
    );
    ensure!(
        got.iter().any(|k| k == "info.step"),
        "no info.step in {got:?}"
    );
    Ok(())
}

fn test_get_column_reads_one_key_of_every_frame(f: &Fixture) -> Result<(), Failed> {
    let col = as_column(f.ok(get_column("calc.energy", None))?)?;
    let got: Vec<f64> = col
        .iter()
        .map(|v| {
            codec::decode(v.as_deref().unwrap_or_default())
                .ok()
                .and_then(|v| v.as_f64())
        })
        .collect::<Option<_>>()
        .ok_or("a missing or non-numeric energy")?;
    check_eq("energies", got, (0..N).map(energy).collect())
}

fn test_every_write_is_refused_and_changes_nothing(f: &Fixture) -> Result<(), Failed> {
    let before = std::fs::read(&f.path).map_err(|e| format!("read: {e}"))?;
    for req in every_write() {
        let name = req.name();
        match f.store.execute(req, false) {
            Response::Error(e)
                if e.code == ErrorCode::ReadOnly && e.message == "Backend is read-only" => {}
            other => return Err(format!("{name}: wanted ReadOnly, got {other:?}").into()),
        }
    }
    check_eq("len", f.ok(len())?, Response::Len(N as u64))?;
    let after = std::fs::read(&f.path).map_err(|e| format!("read: {e}"))?;
    ensure!(before == after, "the source file changed");
    Ok(())
}

type Body = fn(&Fixture) -> Result<(), Failed>;

const TESTS: &[(&str, Body)] = &[
    (
        "test_len_is_the_number_of_frames",
        test_len_is_the_number_of_frames,
    ),
    (
        "test_get_reads_every_frame_at_any_sign",
        test_get_reads_every_frame_at_any_sign,
    ),
    (
        "test_get_out_of_range_is_index_error",
        test_get_out_of_range_is_index_error,
    ),
    (
        "test_get_many_in_requested_order_with_duplicates",
        test_get_many_in_requested_order_with_duplicates,
    ),
    ("test_get_with_keys_is_strict", test_get_with_keys_is_strict),
    ("test_keys_list_the_frame", test_keys_list_the_frame),
    (
        "test_get_column_reads_one_key_of_every_frame",
        test_get_column_reads_one_key_of_every_frame,
    ),
    (
        "test_every_write_is_refused_and_changes_nothing",
        test_every_write_is_refused_and_changes_nothing,
    ),
];

/// Every read-only trial of every source.
pub fn trials(out: &mut Vec<Trial>) {
    // Frame indexes go under target/, not into the user's cache.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readonly-frame-index");
    // SAFETY: called from main before any trial thread starts.
    unsafe { std::env::set_var("ASEBYTES_CACHE_DIR", cache) };
    for &src in SOURCES {
        for &(name, body) in TESTS {
            out.push(Trial::test(
                format!("contract::{}::{name}", src.scheme),
                move || {
                    let f = Fixture::new(src)?;
                    body(&f)
                },
            ));
        }
    }
}
