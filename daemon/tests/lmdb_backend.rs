//! Behaviour of the LMDB backend on its own: the same operations as the memory oracle,
//! map growth from a tiny map, persistence, read-only opens, groups, removal, and readers
//! on many threads while the writer grows the map.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use asebytes_daemon::backend::lmdb::config::LmdbConfig;
use asebytes_daemon::backend::lmdb::{self, LmdbBackend};
use asebytes_daemon::backend::memory::MemoryBackend;
use asebytes_daemon::backend::{Backend, ErrorKind, OpenOptions, Result, Writer};
use asebytes_protocol::Row;
use asebytes_protocol::value::{key, row};

fn opts(dir: &Path, group: &str) -> OpenOptions {
    OpenOptions {
        path: dir
            .join("x.lmdb")
            .to_str()
            .expect("utf-8 temp path")
            .to_owned(),
        group: group.to_owned(),
        readonly: false,
        options: Default::default(),
    }
}

fn open(dir: &Path) -> LmdbBackend {
    LmdbBackend::open(&opts(dir, "default")).expect("open")
}

fn open_tiny(dir: &Path, resize_wait: Duration) -> LmdbBackend {
    let cfg = LmdbConfig {
        map_size: 64 << 10,
        resize_wait,
        ..LmdbConfig::default()
    };
    LmdbBackend::open_with(&opts(dir, "default"), cfg).expect("open")
}

fn write(b: &mut dyn Backend, mut f: impl FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
    b.write(&mut f)
}

/// Every row, fields sorted (LMDB returns them in key order, memory in written order).
fn all_rows(b: &dyn Backend) -> Vec<Option<Row>> {
    let reader = b.reader();
    let snap = reader.snapshot().expect("snapshot");
    let n = snap.len().expect("len");
    let indices: Vec<u64> = (0..n).collect();
    let mut rows = indices
        .iter()
        .map(|&i| snap.get(i, None))
        .collect::<Result<Vec<_>, _>>()
        .expect("get");
    for r in rows.iter_mut().flatten() {
        r.sort();
    }
    rows
}

/// A seeded xorshift generator: reproducible test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const FIELDS: [&str; 6] = [
    "arrays.numbers",
    "arrays.positions",
    "calc.energy",
    "cell",
    "info.tag",
    "pbc",
];

fn random_row(rng: &mut Rng) -> Option<Row> {
    match rng.below(10) {
        0 => None,
        1 => Some(Row::new()),
        _ => {
            let n = 1 + rng.below(FIELDS.len() as u64);
            let mut fields = Vec::new();
            for _ in 0..n {
                let k = FIELDS[rng.below(FIELDS.len() as u64) as usize];
                let v: Vec<u8> = (0..rng.below(24)).map(|_| rng.next() as u8).collect();
                fields.push((k, v));
            }
            // A dict cannot repeat a key; keep the last value like the memory backend does.
            let mut seen = BTreeSet::new();
            let mut out: Vec<_> = fields
                .into_iter()
                .rev()
                .filter(|(k, _)| seen.insert(*k))
                .collect();
            out.reverse();
            Some(row(out))
        }
    }
}

/// One random write operation, valid for a store of `len` rows.
fn random_op(rng: &mut Rng, w: &mut dyn Writer) -> Result<()> {
    let len = w.len()?;
    match rng.below(if len == 0 { 1 } else { 40 }) {
        0..=4 | 21..=30 => {
            let max = if rng.below(8) == 0 { 1500 } else { 12 };
            let n = rng.below(max);
            w.extend((0..n).map(|_| random_row(rng)).collect())
                .map(drop)
        }
        5..=8 | 31..=38 => w.insert(rng.below(len + 1), random_row(rng)),
        9..=10 => w.set(rng.below(len), random_row(rng)),
        11..=13 => {
            let r = random_row(rng).unwrap_or_default();
            w.update(rng.below(len), r)
        }
        14..=16 => {
            let start = rng.below(len);
            let max = if rng.below(4) == 0 { 1100 } else { 5 };
            let stop = (start + rng.below(max)).min(len);
            w.delete_range(start, stop)
        }
        17..=20 => {
            let k = key(FIELDS[rng.below(FIELDS.len() as u64) as usize]);
            if rng.below(2) == 0 {
                w.drop_keys(&[k], None)
            } else {
                let ix: Vec<u64> = (0..3).map(|_| rng.below(len)).collect();
                w.drop_keys(&[k], Some(&ix))
            }
        }
        _ => w.clear(),
    }
}

#[test]
fn test_random_operations_match_the_memory_oracle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lm = open(dir.path());
    let mem_opts = OpenOptions {
        path: format!("lmdb-oracle-{}", std::process::id()),
        ..opts(dir.path(), "default")
    };
    let mut mem = MemoryBackend::open(&mem_opts).expect("memory");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut longest = 0;
    for batch in 0..60 {
        let seed = rng.next();
        let ops = 1 + rng.below(6);
        // The same random stream drives both backends.
        for b in [&mut lm as &mut dyn Backend, &mut mem] {
            let mut r = Rng(seed);
            write(b, |w| (0..ops).try_for_each(|_| random_op(&mut r, w))).expect("batch");
        }
        let rows = all_rows(&lm);
        assert_eq!(rows, all_rows(&mem), "after batch {batch}");
        longest = longest.max(rows.len());
    }
    assert!(
        longest > 2048,
        "the run should span several blocks, at most {longest} rows"
    );
    let rows = all_rows(&lm);
    let schema = lm.reader().snapshot().unwrap().schema().unwrap();
    assert_eq!(schema, mem.reader().snapshot().unwrap().schema().unwrap());
    drop(lm);
    assert_eq!(all_rows(&open(dir.path())), rows, "reopened store differs");
}

#[test]
fn test_reads_with_keys_placeholders_columns_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| {
        w.extend(vec![
            Some(row([("z", "1"), ("a", "2")])),
            None,
            Some(Row::new()),
            Some(row([("a", "3")])),
        ])
        .map(drop)
    })
    .unwrap();
    let reader = b.reader();
    let s = reader.snapshot().unwrap();
    assert_eq!(s.len().unwrap(), 4);
    assert_eq!(s.get(0, None).unwrap(), Some(row([("a", "2"), ("z", "1")])));
    assert_eq!(s.get(1, None).unwrap(), None);
    assert_eq!(
        s.get(2, None).unwrap(),
        None,
        "an empty row is stored as a placeholder"
    );
    assert_eq!(
        s.get(0, Some(&[key("z"), key("missing")])).unwrap(),
        Some(row([("z", "1")]))
    );
    assert_eq!(
        s.get(3, Some(&[key("z")])).unwrap(),
        Some(Row::new()),
        "row exists but lacks the key"
    );
    assert_eq!(
        s.get(1, Some(&[key("z")])).unwrap(),
        None,
        "placeholder with keys"
    );
    assert_eq!(
        s.get(0, Some(&[key(vec![b'k'; 600])])).unwrap(),
        Some(Row::new()),
        "overlong key just absent"
    );
    assert_eq!(
        s.get_column(&key("a"), &[3, 1, 0]).unwrap(),
        vec![Some(b"3".to_vec()), None, Some(b"2".to_vec())]
    );
    assert_eq!(s.keys(0).unwrap(), vec![key("a"), key("z")]);
    assert!(s.keys(1).unwrap().is_empty());
    assert_eq!(s.schema().unwrap(), vec![key("a"), key("z")]);
    assert_eq!(s.get(4, None).unwrap_err().kind, ErrorKind::IndexOutOfRange);
}

#[test]
fn test_snapshot_is_unaffected_by_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| {
        w.extend(vec![Some(row([("a", "1")]))]).map(drop)
    })
    .unwrap();
    let reader = b.reader();
    let before = reader.snapshot().unwrap();
    write(&mut b, |w| {
        w.set(0, Some(row([("a", "2")])))?;
        w.insert(0, None)?;
        w.extend(vec![None]).map(drop)
    })
    .unwrap();
    assert_eq!(before.len().unwrap(), 1);
    assert_eq!(before.get(0, None).unwrap(), Some(row([("a", "1")])));
    let after = reader.snapshot().unwrap();
    assert_eq!(after.len().unwrap(), 3);
    assert_eq!(after.get(1, None).unwrap(), Some(row([("a", "2")])));
}

#[test]
fn test_writer_reads_its_own_uncommitted_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| {
        w.extend(vec![Some(row([("b", "1")])), None])?;
        w.update(1, row([("c", "2")]))?;
        assert_eq!(w.len()?, 2);
        assert_eq!(w.get(1, None)?, Some(row([("c", "2")])));
        assert_eq!(w.schema()?, vec![key("b"), key("c")]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn test_invalid_field_names_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    let mut errors = Vec::new();
    write(&mut b, |w| {
        errors.clear();
        w.extend(vec![Some(row([("ok", "1")]))])?;
        // The store layer keeps going after a failed command; nothing of it may stick.
        errors.push(
            w.extend(vec![
                Some(row([("fine", "x")])),
                Some(row([("bad\nname", "2")])),
            ])
            .unwrap_err()
            .kind,
        );
        errors.push(
            w.update(0, row([(vec![b'k'; 600], b"v".to_vec())]))
                .unwrap_err()
                .kind,
        );
        errors.push(w.insert(0, Some(row([("x\n", "3")]))).unwrap_err().kind);
        Ok(())
    })
    .unwrap();
    assert_eq!(errors, vec![ErrorKind::InvalidArgument; 3]);
    assert_eq!(all_rows(&b), vec![Some(row([("ok", "1")]))]);
    assert_eq!(
        b.reader().snapshot().unwrap().schema().unwrap(),
        vec![key("ok")]
    );
}

#[test]
fn test_failed_batch_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| {
        w.extend(vec![Some(row([("a", "1")]))]).map(drop)
    })
    .unwrap();
    let err = write(&mut b, |w| {
        w.extend(vec![Some(row([("new", "x")]))])?;
        w.set(7, None)
    })
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::IndexOutOfRange);
    assert_eq!(all_rows(&b), vec![Some(row([("a", "1")]))]);
    assert_eq!(
        b.reader().snapshot().unwrap().schema().unwrap(),
        vec![key("a")]
    );
}

/// Rows `start..start + n` with a value large enough to fill pages fast.
fn big_rows(start: usize, n: usize, size: usize) -> Vec<Option<Row>> {
    (start..start + n)
        .map(|i| {
            Some(row([
                ("i", i.to_string().into_bytes()),
                ("blob", vec![(i % 251) as u8; size]),
            ]))
        })
        .collect()
}

/// `big_rows(i, 1, size)` as read back (fields in key order).
fn expected_row(i: usize, size: usize) -> Option<Row> {
    let mut r = big_rows(i, 1, size).pop().flatten().expect("a row");
    r.sort();
    Some(r)
}

#[test]
fn test_map_grows_from_64_kib_through_many_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open_tiny(dir.path(), Duration::from_secs(10));
    // 200 writes of 16 KiB rows (3.2 MiB) plus one 4 MiB batch, starting from 64 KiB.
    for i in 0..200 {
        write(&mut b, |w| w.extend(big_rows(i, 1, 16 << 10)).map(drop)).expect("small write");
    }
    write(&mut b, |w| w.extend(big_rows(200, 64, 64 << 10)).map(drop)).expect("big write");
    let data = std::fs::metadata(dir.path().join("x.lmdb/default/data.mdb"))
        .unwrap()
        .len();
    assert!(data > 7 << 20, "data.mdb is only {data} bytes");
    let rows = all_rows(&b);
    assert_eq!(rows.len(), 264);
    for (i, r) in rows.iter().enumerate() {
        let size = if i < 200 { 16 << 10 } else { 64 << 10 };
        let blob = r
            .as_ref()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_slice() == b"blob")
            .unwrap();
        assert_eq!(
            blob.1.as_slice(),
            vec![(i % 251) as u8; size].as_slice(),
            "row {i}"
        );
    }
    drop(b);
    assert_eq!(all_rows(&open(dir.path())), rows);
}

#[test]
fn test_map_full_reruns_the_batch_and_never_commits_half_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open_tiny(dir.path(), Duration::from_secs(10));
    let mut calls = 0;
    write(&mut b, |w| {
        calls += 1;
        w.extend(big_rows(0, 1, 10))?;
        // Swallowing the map-full error must not commit a half-written transaction.
        let _ = w.extend(big_rows(1, 40, 32 << 10));
        Ok(())
    })
    .unwrap();
    assert!(
        calls >= 2,
        "the batch should have been rerun after growing, ran {calls} time(s)"
    );
    let rows = all_rows(&b);
    assert_eq!(rows.len(), 41);
    assert_eq!(rows[0], expected_row(0, 10));
    for (i, r) in rows.iter().enumerate().skip(1) {
        assert_eq!(*r, expected_row(i, 32 << 10), "row {i}");
    }
}

#[test]
fn test_growth_gives_up_while_a_snapshot_stays_open_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open_tiny(dir.path(), Duration::ZERO);
    write(&mut b, |w| w.extend(big_rows(0, 2, 100)).map(drop)).unwrap();
    let reader = b.reader();
    let snap = reader.snapshot().unwrap();
    let err = write(&mut b, |w| w.extend(big_rows(2, 20, 32 << 10)).map(drop)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.contains("snapshots stayed open"), "{err}");
    assert_eq!(snap.len().unwrap(), 2);
    drop(snap);
    assert_eq!(all_rows(&b).len(), 2, "the failed write left rows behind");
    write(&mut b, |w| w.extend(big_rows(2, 20, 32 << 10)).map(drop))
        .expect("write after the snapshot closed");
    assert_eq!(all_rows(&b).len(), 22);
}

#[test]
fn test_readers_on_many_threads_while_the_writer_grows_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open_tiny(dir.path(), Duration::from_secs(30));
    let reader = b.reader();
    let done = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let (reader, done, checked) = (reader.clone(), done.clone(), checked.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(t + 1);
                while !done.load(Ordering::SeqCst) {
                    let snap = reader.snapshot().expect("snapshot");
                    let n = snap.len().unwrap();
                    if n == 0 {
                        continue;
                    }
                    let i = rng.below(n);
                    let r = snap.get(i, Some(&[key("i")])).unwrap().expect("row");
                    assert_eq!(r, row([("i", i.to_string())]), "row {i} of {n}");
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..120 {
        write(&mut b, |w| w.extend(big_rows(i * 4, 4, 8 << 10)).map(drop)).expect("write");
    }
    done.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("reader thread");
    }
    assert!(checked.load(Ordering::Relaxed) > 0);
    assert_eq!(all_rows(&b).len(), 480);
}

#[test]
fn test_reopen_and_read_only_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| w.extend(big_rows(0, 1500, 8)).map(drop)).unwrap();
    let canonical = b.info().canonical.clone();
    let expected = all_rows(&b);
    drop(b);
    let ro = LmdbBackend::open(&OpenOptions {
        readonly: true,
        ..opts(dir.path(), "default")
    })
    .expect("read-only");
    assert_eq!(all_rows(&ro), expected);
    assert_eq!(ro.info().canonical, canonical);
    assert!(!ro.info().caps.write && ro.info().caps.read && ro.info().caps.concurrent_readers);
    assert!(ro.info().caps.persistent && ro.info().caps.snapshots);
    let mut ro = ro;
    let err = write(&mut ro, |w| w.extend(vec![None]).map(drop)).unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (ErrorKind::ReadOnly, "Backend is read-only")
    );
    assert_eq!(ro.remove().unwrap_err().kind, ErrorKind::ReadOnly);
}

#[test]
fn test_read_only_open_of_a_missing_store_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = LmdbBackend::open(&OpenOptions {
        readonly: true,
        ..opts(dir.path(), "default")
    })
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        !dir.path().join("x.lmdb").exists(),
        "a read-only open created files"
    );
}

#[test]
fn test_canonical_location_and_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    let b = LmdbBackend::open(&opts(dir.path(), "train")).unwrap();
    let real = dir.path().canonicalize().unwrap();
    assert_eq!(
        b.info().canonical,
        format!("lmdb://{}/x.lmdb#train", real.display())
    );
    assert_eq!(b.info().scheme, lmdb::SCHEME);
    let want = asebytes_protocol::Capabilities {
        packed_columns: false,
        typed_values: false,
        ..asebytes_protocol::Capabilities::all()
    };
    assert_eq!(b.info().caps, want);
    assert!(real.join("x.lmdb/train/data.mdb").is_file());
    let bad = LmdbBackend::open(&opts(dir.path(), "../escape")).unwrap_err();
    assert_eq!(bad.kind, ErrorKind::InvalidArgument);
}

#[test]
fn test_list_groups_finds_environments_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("x.lmdb");
    let path = store.to_str().unwrap();
    assert!(
        lmdb::list_groups(path).unwrap().is_empty(),
        "missing path has no groups"
    );
    for g in ["b", "a"] {
        drop(LmdbBackend::open(&opts(dir.path(), g)).unwrap());
    }
    std::fs::create_dir_all(store.join("not-a-group")).unwrap();
    std::fs::write(store.join("stray-file"), b"x").unwrap();
    assert_eq!(
        lmdb::list_groups(path).unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
    assert!(
        lmdb::list_groups(store.join("stray-file").to_str().unwrap())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn test_remove_deletes_the_group_and_a_reopen_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut keep = LmdbBackend::open(&opts(dir.path(), "keep")).unwrap();
    write(&mut keep, |w| w.extend(vec![None]).map(drop)).unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| w.extend(big_rows(0, 3, 8)).map(drop)).unwrap();
    let reader = b.reader();
    let open_snapshot = reader.snapshot().unwrap();
    b.remove().expect("remove");
    assert!(!dir.path().join("x.lmdb/default").exists());
    assert_eq!(
        open_snapshot.len().unwrap(),
        3,
        "an open snapshot keeps reading"
    );
    drop(open_snapshot);
    assert_eq!(
        reader.snapshot().err().expect("snapshot after remove").kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        write(&mut b, |w| w.clear()).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        lmdb::list_groups(dir.path().join("x.lmdb").to_str().unwrap()).unwrap(),
        vec!["keep".to_string()]
    );
    drop((b, reader));
    assert!(all_rows(&open(dir.path())).is_empty());
    assert_eq!(all_rows(&keep).len(), 1, "other groups are untouched");
}

#[test]
fn test_clear_keeps_schema_and_never_reuses_sort_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| w.extend(big_rows(0, 1100, 4)).map(drop)).unwrap();
    write(&mut b, |w| w.clear()).unwrap();
    assert!(all_rows(&b).is_empty());
    assert_eq!(
        b.reader().snapshot().unwrap().schema().unwrap(),
        vec![key("blob"), key("i")]
    );
    write(&mut b, |w| {
        w.extend(vec![Some(row([("n", "1")]))]).map(drop)
    })
    .unwrap();
    assert_eq!(all_rows(&b), vec![Some(row([("n", "1")]))]);
    drop(b);
    // The new row got sort key 1100, not 0: its data key says so.
    let env = dir.path().join("x.lmdb/default/data.mdb");
    let raw = std::fs::read(env).unwrap();
    assert!(
        raw.windows(6).any(|w| w == b"1100-n"),
        "expected data key 1100-n in the file"
    );
}

#[test]
fn test_empty_operations_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(dir.path());
    write(&mut b, |w| {
        assert_eq!(w.extend(Vec::new())?, 0);
        w.clear()?;
        w.drop_keys(&[key("a")], None)
    })
    .unwrap();
    let reader = b.reader();
    let s = reader.snapshot().unwrap();
    assert_eq!(s.len().unwrap(), 0);
    assert!(s.schema().unwrap().is_empty());
}

/// Not a test of its own: the other process of the stale-reader tests, which start this
/// binary again with `--ignored --exact child_process_helper`. `hold:<path>` opens a
/// snapshot and waits to be killed; `keep:<path>` keeps the environment open and answers
/// each line on stdin with `cleared <n>` after clearing stale readers.
#[test]
#[ignore = "helper process of the stale-reader tests"]
fn child_process_helper() {
    use std::io::BufRead;

    let spec =
        std::env::var("ASEBYTES_LMDB_TEST_CHILD").expect("run only by the stale-reader tests");
    let (mode, path) = spec.split_once(':').expect("mode:path");
    let opts = OpenOptions {
        path: path.to_owned(),
        group: "default".to_owned(),
        readonly: true,
        options: Default::default(),
    };
    let b = LmdbBackend::open(&opts).expect("child open");
    let reader = b.reader();
    match mode {
        "hold" => {
            let _snapshot = reader.snapshot().expect("child snapshot");
            println!("ready");
            let _ = std::io::read_to_string(std::io::stdin());
        }
        "keep" => {
            println!("ready");
            for line in std::io::stdin().lock().lines() {
                line.expect("stdin");
                println!("cleared {}", b.clear_stale_readers().expect("clear"));
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// A child process of this test binary running [`child_process_helper`].
struct ChildProc {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl ChildProc {
    fn spawn(mode: &str, store: &Path) -> Self {
        use std::process::{Command, Stdio};

        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "child_process_helper",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "ASEBYTES_LMDB_TEST_CHILD",
                format!("{mode}:{}", store.display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdin = child.stdin.take();
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut me = Self {
            child,
            stdin,
            stdout,
        };
        me.line_with("ready");
        me
    }

    /// The next output line containing `word` (libtest adds its own lines around ours).
    fn line_with(&mut self, word: &str) -> String {
        use std::io::BufRead;

        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("child output");
            assert!(n > 0, "child exited before saying {word:?}");
            if let Some(at) = line.find(word) {
                return line[at..].trim_end().to_owned();
            }
        }
    }

    /// Asks a `keep` child to clear stale readers; how many it cleared.
    fn clear(&mut self) -> usize {
        use std::io::Write;

        writeln!(self.stdin.as_mut().expect("stdin"), "clear").expect("ask child");
        let line = self.line_with("cleared ");
        line["cleared ".len()..].parse().expect("count")
    }

    fn kill(mut self) {
        self.child.kill().expect("kill child");
        self.child.wait().expect("reap child");
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        assert!(self.child.wait().expect("child exit").success());
    }
}

#[test]
fn test_reader_slot_of_a_killed_process_is_cleared_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("x.lmdb");
    let mut b = open(dir.path());
    write(&mut b, |w| w.extend(vec![None]).map(drop)).unwrap();
    drop(b);
    // The keeper holds the lock file open: the first process to open an unused lock file
    // resets the reader table, which would hide what this test looks for.
    let mut keeper = ChildProc::spawn("keep", &store);
    ChildProc::spawn("hold", &store).kill();
    assert_eq!(
        keeper.clear(),
        1,
        "a killed reader should leave a stale slot"
    );
    ChildProc::spawn("hold", &store).kill();
    let b = open(dir.path());
    assert_eq!(
        b.clear_stale_readers().unwrap(),
        0,
        "open left the stale slot"
    );
    assert_eq!(keeper.clear(), 0);
    assert_eq!(all_rows(&b), vec![None]);
    keeper.finish();
}

#[test]
fn test_full_reader_table_is_recovered_by_clearing_stale_readers() {
    let dir = tempfile::tempdir().unwrap();
    // This process creates the lock file, so its table has two slots.
    let cfg = LmdbConfig {
        max_readers: 2,
        ..LmdbConfig::default()
    };
    let mut b = LmdbBackend::open_with(&opts(dir.path(), "default"), cfg).unwrap();
    write(&mut b, |w| {
        w.extend(vec![Some(row([("a", "1")]))]).map(drop)
    })
    .unwrap();
    ChildProc::spawn("hold", &dir.path().join("x.lmdb")).kill();
    // The dead child still occupies one slot; two snapshots need both.
    let reader = b.reader();
    let first = reader.snapshot().expect("first snapshot");
    let second = reader
        .snapshot()
        .expect("second snapshot, after clearing the stale slot");
    assert_eq!(first.get(0, None).unwrap(), second.get(0, None).unwrap());
    let third = reader
        .snapshot()
        .err()
        .expect("a third snapshot exceeds two slots");
    assert_eq!(third.kind, ErrorKind::Unavailable);
    assert!(
        third.to_string().contains("ASEBYTES_LMDB_MAX_READERS"),
        "{third}"
    );
}
