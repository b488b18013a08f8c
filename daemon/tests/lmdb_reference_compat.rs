//! Byte compatibility of the LMDB backend with the reference Python `asebytes` 0.3.3:
//! files it writes read identically here, files we write read identically there, the same
//! operations leave key-for-key identical environments, both programs can work on one
//! store at the same time, and reader slots of killed processes are reclaimed.
//!
//! Needs the reference in a virtualenv: `ASEBYTES_REF_PYTHON`, else
//! `<workspace>/.venv-ref/bin/python`. Without it each test prints `skipped: ...` and
//! passes, except under `CI`, where a missing reference fails the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use asebytes_daemon::backend::lmdb::LmdbBackend;
use asebytes_daemon::backend::{Backend, ErrorKind, OpenOptions, Result, Writer};
use asebytes_protocol::value::row;
use asebytes_protocol::{Key, Row};

/// The reference side: runs operations through `asebytes.LMDBBlobBackend` / `ObjectIO`,
/// prints rows and raw key/value dumps as hex, holds read transactions on request.
const SCRIPT: &str = r#"
import sys

def need_asebytes():
    import asebytes
    assert asebytes.__version__ == "0.3.3", asebytes.__version__
    return asebytes

def parse_row(t):
    if t == "N":
        return None
    if t == "E":
        return {}
    out = {}
    for p in t.split("&"):
        k, v = p.split("=")
        out[bytes.fromhex(k)] = bytes.fromhex(v)
    return out

def fmt_row(r):
    if r is None:
        return "N"
    if not r:
        return "E"
    return "&".join(k.hex() + "=" + r[k].hex() for k in sorted(r))

def print_rows(b):
    n = len(b)
    print("len", n)
    for i in range(n):
        print("row", i, fmt_row(b.get(i)))

def dump(envdir):
    import lmdb
    env = lmdb.open(envdir, subdir=True, readonly=True)
    with env.begin() as t:
        for k, v in t.cursor():
            print("kv", k.hex() or "-", v.hex() or "-")
    env.close()

def run_ops(b, path):
    for line in open(path):
        parts = line.split()
        if not parts:
            continue
        cmd = parts[0]
        if cmd == "extend":
            b.extend([parse_row(t) for t in parts[1:]])
        elif cmd == "insert":
            b.insert(int(parts[1]), parse_row(parts[2]))
        elif cmd == "set":
            b.set(int(parts[1]), parse_row(parts[2]))
        elif cmd == "update":
            b.update(int(parts[1]), parse_row(parts[2]) or {})
        elif cmd == "delete":
            b.delete_many(int(parts[1]), int(parts[2]))
        elif cmd == "drop":
            keys = [bytes.fromhex(k) for k in parts[1].split(",")]
            idx = None if parts[2] == "*" else [int(i) for i in parts[2].split(",")]
            b.drop_keys(keys, idx)
        elif cmd == "clear":
            b.clear()
        else:
            raise ValueError(cmd)

def same(a, b):
    import numpy as np
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a == b
    return a == b

def object_rows(n):
    import numpy as np
    rows = []
    for i in range(n):
        if i % 97 == 5:
            rows.append(None)
            continue
        rows.append({
            "arrays.positions": np.arange(3 * (i % 5 + 1), dtype=np.float64).reshape(-1, 3) * 0.5,
            "arrays.numbers": np.full(i % 5 + 1, i % 90 + 1),
            "cell": np.eye(3) * (i + 1),
            "pbc": np.array([True, False, i % 2 == 0]),
            "calc.energy": -1.25 * i,
            "info.name": f"frame-{i}",
            "info.flag": i % 3 == 0,
            "info.n": i,
            "info.nested": {"a": [1, 2.5, "x"], "b": None},
            "info.i32": np.int32(i),
            "info.f32": np.float32(i / 4),
            "info.c": complex(i, -1),
            "info.raw": bytes([i % 256, 0]),
        })
    return rows

mode = sys.argv[1]
if mode == "blob-run":
    asebytes = need_asebytes()
    b = asebytes.LMDBBlobBackend(sys.argv[2], sync=False, metasync=False)
    run_ops(b, sys.argv[3])
    print_rows(b)
    b.env.sync(True)
    b.env.close()
    dump(sys.argv[2] + "/default")
elif mode == "blob-read":
    asebytes = need_asebytes()
    b = asebytes.LMDBBlobBackend(sys.argv[2], readonly=True)
    print_rows(b)
    b.env.close()
    dump(sys.argv[2] + "/default")
elif mode == "object-write":
    asebytes = need_asebytes()
    import numpy as np
    io = asebytes.ObjectIO(sys.argv[2], sync=False, metasync=False)
    io.extend(object_rows(1100))
    io.insert(3, {"info.inserted": np.arange(4, dtype=np.int16)})
    io[7] = {"calc.stress": np.ones(6, dtype=np.float32), "info.s": "replaced"}
    del io[20]
    io.update(5, {"info.new": [True, None]})
    io.drop(keys=["info.c"])
    io.reserve(2)
elif mode == "object-verify":
    asebytes = need_asebytes()
    a = asebytes.ObjectIO(sys.argv[2], readonly=True)
    b = asebytes.ObjectIO(sys.argv[3], readonly=True)
    assert len(a) == len(b), (len(a), len(b))
    for i in range(len(a)):
        assert same(a[i], b[i]), (i, a[i], b[i])
    print("same", len(a))
elif mode == "hold":
    import lmdb, os
    env = lmdb.open(sys.argv[2], subdir=True, readonly=True)
    txn = env.begin()
    print("ready", os.getpid(), flush=True)
    sys.stdin.read()
else:
    raise SystemExit("unknown mode " + mode)
"#;

/// The reference interpreter, or `None` (test skipped) outside CI.
fn ref_python() -> Option<PathBuf> {
    let configured = std::env::var_os("ASEBYTES_REF_PYTHON").map(PathBuf::from);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let path = configured.unwrap_or_else(|| root.join(".venv-ref/bin/python"));
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "reference python {} not found (set ASEBYTES_REF_PYTHON)",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// A temporary directory with the script in it.
struct Ref {
    python: PathBuf,
    dir: tempfile::TempDir,
}

impl Ref {
    fn new() -> Option<Self> {
        let python = ref_python()?;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ref.py"), SCRIPT).expect("write script");
        Some(Self { python, dir })
    }

    fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("utf-8 temp path")
            .to_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg(self.dir.path().join("ref.py")).args(args);
        cmd
    }

    /// Runs the script to completion; its stdout lines.
    fn run(&self, args: &[&str]) -> Vec<String> {
        let out = self.command(args).output().expect("run reference python");
        assert!(
            out.status.success(),
            "reference {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Starts the script with pipes; waits for its `ready` line and returns it.
    fn spawn(&self, args: &[&str]) -> (Child, ChildStdin, BufReader<ChildStdout>, String) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn reference python");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read ready line");
        assert!(line.starts_with("ready"), "expected ready, got {line:?}");
        (child, stdin, stdout, line.trim().to_owned())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn fmt_row(r: &Option<Row>) -> String {
    match r {
        None => "N".into(),
        Some(r) if r.is_empty() => "E".into(),
        Some(r) => r
            .iter()
            .map(|(k, v)| format!("{}={}", hex(k), hex(v)))
            .collect::<Vec<_>>()
            .join("&"),
    }
}

fn parse_row(t: &str) -> Option<Row> {
    match t {
        "N" => None,
        "E" => Some(Row::new()),
        _ => Some(
            t.split('&')
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("k=v");
                    (Key::from(unhex(k)), Key::from(unhex(v)))
                })
                .collect(),
        ),
    }
}

/// What the reference printed: its view of the rows, and every key/value of the env.
#[derive(Debug, Default)]
struct RefView {
    rows: Vec<Option<Row>>,
    dump: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_view(lines: &[String]) -> RefView {
    let mut view = RefView::default();
    let mut len = None;
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[0] {
            "len" => len = Some(parts[1].parse::<usize>().expect("len")),
            "row" => view.rows.push(parse_row(parts[2])),
            "kv" => view.dump.push((unhex(parts[1]), unhex(parts[2]))),
            other => panic!("unexpected reference output {other:?}"),
        }
    }
    assert_eq!(len, Some(view.rows.len()), "row count line");
    view
}

/// One write operation, executable by both implementations.
#[derive(Clone, Debug)]
enum Op {
    Extend(Vec<Option<Row>>),
    Insert(u64, Option<Row>),
    Set(u64, Option<Row>),
    Update(u64, Row),
    Delete(u64, u64),
    Drop(Vec<Key>, Option<Vec<u64>>),
    Clear,
}

impl Op {
    fn script_line(&self) -> String {
        match self {
            Op::Extend(rows) => {
                let rows: Vec<String> = rows.iter().map(fmt_row).collect();
                format!("extend {}", rows.join(" "))
            }
            Op::Insert(i, r) => format!("insert {i} {}", fmt_row(r)),
            Op::Set(i, r) => format!("set {i} {}", fmt_row(r)),
            Op::Update(i, r) => format!("update {i} {}", fmt_row(&Some(r.clone()))),
            Op::Delete(a, b) => format!("delete {a} {b}"),
            Op::Drop(keys, ix) => {
                let keys: Vec<String> = keys.iter().map(|k| hex(k)).collect();
                let ix = ix.as_ref().map_or("*".into(), |ix| {
                    ix.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
                });
                format!("drop {} {ix}", keys.join(","))
            }
            Op::Clear => "clear".into(),
        }
    }

    fn apply(&self, w: &mut dyn Writer) -> Result<()> {
        match self.clone() {
            Op::Extend(rows) => w.extend(rows).map(drop),
            Op::Insert(i, r) => w.insert(i, r),
            Op::Set(i, r) => w.set(i, r),
            Op::Update(i, r) => w.update(i, r),
            Op::Delete(a, b) => w.delete_range(a, b),
            Op::Drop(keys, ix) => w.drop_keys(&keys, ix.as_deref()),
            Op::Clear => w.clear(),
        }
    }
}

fn write_ops(path: &str, ops: &[Op]) {
    let text: Vec<String> = ops.iter().map(Op::script_line).collect();
    std::fs::write(path, text.join("\n") + "\n").expect("write ops");
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const KEYS: [&[u8]; 7] = [
    b"arrays.numbers",
    b"arrays.positions",
    b"calc.energy",
    b"cell",
    b"info.tag",
    b"pbc",
    b"\xffraw\x00key",
];

/// Row `i` of the scenario: every 7th a placeholder, every 11th an empty row.
fn scenario_row(rng: &mut Rng, i: usize) -> Option<Row> {
    if i % 7 == 3 {
        return None;
    }
    if i % 11 == 4 {
        return Some(Row::new());
    }
    let mut r = Row::new();
    for k in KEYS {
        if !rng.next().is_multiple_of(3) {
            let len = (rng.next() % 30) as usize;
            let value: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            r.push((Key::from(k.to_vec()), Key::from(value)));
        }
    }
    if r.is_empty() {
        r.push((Key::from(b"cell".to_vec()), Key::from(vec![i as u8])));
    }
    Some(r)
}

/// Inserts, block splits, a block emptied in the middle and at the end, sets, updates,
/// drops, and a clear followed by new rows (sort keys must not restart).
fn scenario() -> Vec<Op> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut rows =
        |n: usize| -> Vec<Option<Row>> { (0..n).map(|i| scenario_row(&mut rng, i)).collect() };
    let some = |pairs: &[(&str, &str)]| Some(row(pairs.iter().copied()));
    let first = rows(1100); // blocks [1024, 76]
    let more = rows(1000);
    let tail = rows(3);
    vec![
        Op::Extend(first),
        Op::Insert(5, some(&[("info.tag", "inserted")])), // block 0 overflows: [512, 513, 76]
        Op::Insert(600, None),                            // [512, 514, 76]
        Op::Insert(1102, some(&[("cell", "at-the-end")])), // the last block: [512, 514, 77]
        Op::Set(3, some(&[("calc.energy", "-1.0"), ("info.new", "x")])),
        Op::Set(4, None),
        Op::Update(11, row([("pbc", "TTT")])), // row 11 is a placeholder
        Op::Update(8, row([("cell", "new"), ("info.other", "y")])),
        Op::Delete(10, 20),    // [502, 514, 77]
        Op::Delete(502, 1016), // block 1 emptied, block 2 renumbered: [502, 77]
        Op::Extend(more),      // [502, 1024, 53]
        Op::Drop(vec![Key::from(b"cell".to_vec())], Some(vec![0, 1, 2, 50])),
        Op::Drop(
            vec![
                Key::from(b"pbc".to_vec()),
                Key::from(b"info.absent".to_vec()),
            ],
            None,
        ),
        Op::Delete(1526, 1579), // the last block emptied: [502, 1024]
        Op::Insert(0, some(&[("info.tag", "first")])),
        Op::Insert(1, Some(Row::new())),
        Op::Extend(Vec::new()),
        Op::Update(1527, row([("zz.new", "last")])),
        Op::Set(1526, Some(Row::new())),
        Op::Update(0, Row::new()),
        Op::Clear,
        Op::Extend(tail),
    ]
}

fn opts(path: &str) -> OpenOptions {
    OpenOptions {
        path: path.to_owned(),
        group: "default".to_owned(),
        readonly: false,
        options: Default::default(),
    }
}

fn write(b: &mut dyn Backend, mut f: impl FnMut(&mut dyn Writer) -> Result<()>) {
    b.write(&mut f).expect("write");
}

/// Every row as the reference prints them (fields sorted by key).
fn our_rows(b: &dyn Backend) -> Vec<Option<Row>> {
    let reader = b.reader();
    let snap = reader.snapshot().expect("snapshot");
    let indices: Vec<u64> = (0..snap.len().expect("len")).collect();
    indices
        .iter()
        .map(|&i| snap.get(i, None))
        .collect::<Result<Vec<_>, _>>()
        .expect("get")
}

/// The reference's raw view after `ops`, run one operation per transaction.
fn reference_run(r: &Ref, store: &str, ops: &[Op]) -> RefView {
    let ops_file = r.path(&format!(
        "{}.ops",
        Path::new(store).file_name().unwrap().to_str().unwrap()
    ));
    write_ops(&ops_file, ops);
    parse_view(&r.run(&["blob-run", store, &ops_file]))
}

/// Readable difference between two dumps.
fn dump_diff(ours: &[(Vec<u8>, Vec<u8>)], theirs: &[(Vec<u8>, Vec<u8>)]) -> String {
    let show =
        |kv: &(Vec<u8>, Vec<u8>)| format!("{:?} = {}", String::from_utf8_lossy(&kv.0), hex(&kv.1));
    let only_ours: Vec<String> = ours
        .iter()
        .filter(|kv| !theirs.contains(kv))
        .take(10)
        .map(show)
        .collect();
    let only_theirs: Vec<String> = theirs
        .iter()
        .filter(|kv| !ours.contains(kv))
        .take(10)
        .map(show)
        .collect();
    format!("only ours: {only_ours:#?}\nonly reference: {only_theirs:#?}")
}

#[test]
fn test_reference_written_store_reads_identically() {
    let Some(r) = Ref::new() else { return };
    let store = r.path("ref.lmdb");
    // Everything but the final clear, so the store ends with several blocks.
    let ops = &scenario()[..scenario().len() - 2];
    let theirs = reference_run(&r, &store, ops);
    assert!(
        theirs.rows.len() > 1500,
        "scenario too small: {}",
        theirs.rows.len()
    );
    assert!(
        theirs.rows.iter().any(Option::is_none),
        "scenario has no placeholders"
    );
    let ours = LmdbBackend::open(&OpenOptions {
        readonly: true,
        ..opts(&store)
    })
    .expect("open reference store");
    let rows = our_rows(&ours);
    assert_eq!(rows.len(), theirs.rows.len());
    for (i, (a, b)) in rows.iter().zip(&theirs.rows).enumerate() {
        assert_eq!(a, b, "row {i}");
    }
    let schema_raw = theirs
        .dump
        .iter()
        .find(|(k, _)| k == b"__schema__")
        .map(|(_, v)| v.clone())
        .unwrap();
    let reader = ours.reader();
    let schema = reader.snapshot().unwrap().schema().unwrap();
    assert_eq!(
        schema
            .iter()
            .map(|k| k.to_vec())
            .collect::<Vec<_>>()
            .join(&b'\n'),
        schema_raw
    );
}

#[test]
fn test_our_store_reads_identically_in_the_reference() {
    let Some(r) = Ref::new() else { return };
    let store = r.path("ours.lmdb");
    let all = scenario();
    let ops = &all[..all.len() - 2];
    let mut b = LmdbBackend::open(&opts(&store)).expect("open");
    for op in ops {
        write(&mut b, |w| op.apply(w));
    }
    let ours = our_rows(&b);
    // Closed first: the two LMDB builds cannot share an open environment (see
    // `test_the_reference_and_we_cannot_open_one_store_at_the_same_time`).
    drop(b);
    let theirs = parse_view(&r.run(&["blob-read", &store]));
    assert_eq!(theirs.rows.len(), ours.len());
    for (i, (a, b)) in ours.iter().zip(&theirs.rows).enumerate() {
        assert_eq!(a, b, "row {i}");
    }
}

#[test]
fn test_same_operations_leave_identical_environments() {
    let Some(r) = Ref::new() else { return };
    let ops = scenario();
    let mut views = Vec::new();
    for (cut, name) in [(ops.len() - 2, "mid"), (ops.len(), "end")] {
        let ops = &ops[..cut];
        let theirs = reference_run(&r, &r.path(&format!("ref-{name}.lmdb")), ops);
        // One transaction per operation, as the reference does...
        let one_by_one = r.path(&format!("ours-{name}.lmdb"));
        let mut b = LmdbBackend::open(&opts(&one_by_one)).expect("open");
        for op in ops {
            write(&mut b, |w| op.apply(w));
        }
        // ...and the whole scenario in one group-committed transaction.
        let batched = r.path(&format!("batched-{name}.lmdb"));
        let mut c = LmdbBackend::open(&opts(&batched)).expect("open");
        write(&mut c, |w| ops.iter().try_for_each(|op| op.apply(w)));
        drop((b, c));
        for store in [one_by_one, batched] {
            let ours = parse_view(&r.run(&["blob-read", &store]));
            assert!(
                ours.dump == theirs.dump,
                "{store} differs from the reference:\n{}",
                dump_diff(&ours.dump, &theirs.dump)
            );
            assert_eq!(ours.rows, theirs.rows);
        }
        views.push(theirs);
    }
    // The scenario really exercised several blocks and then a clear.
    let blk_count = |v: &RefView| {
        v.dump
            .iter()
            .find(|(k, _)| k == b"__blk_count__")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(blk_count(&views[0]), Some(vec![2, 0, 0, 0]));
    assert_eq!(blk_count(&views[1]), Some(vec![1, 0, 0, 0]));
    let next = views[1]
        .dump
        .iter()
        .find(|(k, _)| k == b"__meta__next_sort_key")
        .map(|(_, v)| v.clone());
    assert_eq!(
        next,
        Some(b"2108".to_vec()),
        "sort keys continue after clear"
    );
}

#[test]
fn test_object_tier_values_pass_through_byte_identical() {
    let Some(r) = Ref::new() else { return };
    let theirs_store = r.path("objects.lmdb");
    r.run(&["object-write", &theirs_store]);
    let theirs = parse_view(&r.run(&["blob-read", &theirs_store]));
    let ours = LmdbBackend::open(&OpenOptions {
        readonly: true,
        ..opts(&theirs_store)
    })
    .expect("open");
    let rows = our_rows(&ours);
    assert_eq!(rows.len(), theirs.rows.len());
    assert!(rows.len() > 1024);
    for (i, (a, b)) in rows.iter().zip(&theirs.rows).enumerate() {
        assert_eq!(a, b, "row {i}");
    }
    drop(ours);
    // Copy the stored bytes into a store of ours; the reference's ObjectIO must decode
    // both to equal Python objects (dtypes, shapes, scalar types included).
    let copy = r.path("copy.lmdb");
    let mut b = LmdbBackend::open(&opts(&copy)).expect("open");
    write(&mut b, |w| w.extend(rows.clone()).map(drop));
    drop(b);
    let verdict = r.run(&["object-verify", &theirs_store, &copy]);
    assert_eq!(verdict, vec![format!("same {}", rows.len())]);
}

#[test]
fn test_the_store_alternates_between_both_programs() {
    let Some(r) = Ref::new() else { return };
    let store = r.path("shared.lmdb");
    let mut rng = Rng(7);
    let initial: Vec<Option<Row>> = (0..1500).map(|i| scenario_row(&mut rng, i)).collect();
    let mut ours = LmdbBackend::open(&opts(&store)).expect("open");
    write(&mut ours, |w| w.extend(initial.clone()).map(drop));
    drop(ours);

    // The reference changes the blocks of our store...
    let theirs = reference_run(
        &r,
        &store,
        &[
            Op::Insert(3, Some(row([("info.tag", "py")]))),
            Op::Delete(10, 20),
            Op::Extend(vec![None, Some(row([("cell", "py-extend")]))]),
            Op::Update(4, row([("cell", "py-update")])),
        ],
    );
    // ...we read its result and write on from there...
    let mut ours = LmdbBackend::open(&opts(&store)).expect("reopen");
    assert_eq!(
        our_rows(&ours),
        theirs.rows,
        "we misread the reference's writes"
    );
    write(&mut ours, |w| {
        w.insert(0, Some(row([("info.tag", "rs")])))?;
        w.delete_range(100, 1124)?;
        w.extend(vec![Some(row([("pbc", "rs-extend")]))]).map(drop)
    });
    let mine = our_rows(&ours);
    drop(ours);
    // ...and the reference reads ours.
    let theirs = parse_view(&r.run(&["blob-read", &store]));
    assert_eq!(mine, theirs.rows);
    assert_eq!(mine.len(), 1500 + 1 - 10 + 2 + 1 - 1024 + 1);
    let next = theirs
        .dump
        .iter()
        .find(|(k, _)| k == b"__meta__next_sort_key");
    assert_eq!(next.map(|(_, v)| v.as_slice()), Some(&b"1505"[..]));
}

/// heed builds LMDB's mdb.master branch (lock file format 2), py-lmdb the 0.9 releases
/// (format 1): the data files are the same, the lock files are not, so the two refuse to
/// open one environment at the same time. This pins that, and that both sides say so
/// instead of corrupting anything; if it ever starts to pass the other way, the
/// documentation of the LMDB backend needs updating.
#[test]
fn test_the_reference_and_we_cannot_open_one_store_at_the_same_time() {
    let Some(r) = Ref::new() else { return };
    let store = r.path("busy.lmdb");
    let mut ours = LmdbBackend::open(&opts(&store)).expect("open");
    write(&mut ours, |w| {
        w.extend(vec![Some(row([("a", "1")]))]).map(drop)
    });
    let out = r
        .command(&["blob-read", &store])
        .output()
        .expect("run reference");
    assert!(
        !out.status.success(),
        "the reference opened a store we hold open"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MDB_VERSION_MISMATCH"), "{stderr}");
    assert_eq!(our_rows(&ours), vec![Some(row([("a", "1")]))]);
    drop(ours);

    let (mut holder, stdin, _stdout, _) = r.spawn(&["hold", &format!("{store}/default")]);
    let err = LmdbBackend::open(&opts(&store)).expect_err("opened a store the reference holds");
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("incompatible"), "{err}");
    drop(stdin);
    assert!(holder.wait().expect("holder exit").success());
    let ours = LmdbBackend::open(&opts(&store)).expect("open once the reference is gone");
    assert_eq!(our_rows(&ours), vec![Some(row([("a", "1")]))]);
}
