//! Unit tests of the store actor that need its insides: group commit on a queue filled
//! before the actor starts, the per-command fallback when a whole transaction fails, reads
//! routed through the actor, and capability refusals. The behaviour every backend shares is
//! contracted by the `asebytes-tests` contract suite.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use asebytes_protocol::request::{Extend, Get, GetColumn, Insert, Set, StoreRef, Update};
use asebytes_protocol::value::{key, row};
use asebytes_protocol::{Capabilities, ErrorCode, Key, Request, Response, Row};

use super::command::Command;
use super::ops::WriteOp;
use super::window::GroupWindow;
use super::writer::{Shared, WriterActor};
use super::*;
use crate::backend::memory::MemoryBackend;
use crate::backend::{self, Error, ErrorKind, OpenOptions, Snapshot, Writer};

fn memory(name: &str) -> MemoryBackend {
    let opts = OpenOptions {
        path: format!("store-unit-{name}"),
        group: "default".into(),
        ..Default::default()
    };
    MemoryBackend::open(&opts).expect("open memory")
}

/// The memory backend with other capabilities, and a write that fails as a whole whenever
/// a row carries the key `poison` (standing in for an I/O error).
struct Faulty {
    inner: MemoryBackend,
    info: BackendInfo,
}

impl Faulty {
    fn new(name: &str, caps: Capabilities) -> Self {
        let inner = memory(name);
        let mut info = inner.info().clone();
        info.caps = caps;
        Self { inner, info }
    }
}

impl Backend for Faulty {
    fn info(&self) -> &BackendInfo {
        &self.info
    }
    fn reader(&self) -> Arc<dyn Reader> {
        self.inner.reader()
    }
    fn write(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Writer) -> backend::Result<()>,
    ) -> backend::Result<()> {
        self.inner.write(&mut |w| f(&mut Poisoned(w)))
    }
    fn remove(&mut self) -> backend::Result<()> {
        self.inner.remove()
    }
}

struct Poisoned<'a>(&'a mut dyn Writer);

fn poisoned(rows: &[Option<Row>]) -> bool {
    rows.iter()
        .flatten()
        .flatten()
        .any(|(k, _)| k.as_slice() == b"poison")
}

impl Snapshot for Poisoned<'_> {
    fn len(&self) -> backend::Result<u64> {
        self.0.len()
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> backend::Result<Option<Row>> {
        self.0.get(index, keys)
    }
    fn schema(&self) -> backend::Result<Vec<Key>> {
        self.0.schema()
    }
}

impl Writer for Poisoned<'_> {
    fn extend(&mut self, rows: Vec<Option<Row>>) -> backend::Result<u64> {
        // Mutate first, then fail: the transaction must be thrown away as a whole.
        let bad = poisoned(&rows);
        let n = self.0.extend(rows)?;
        if bad {
            Err(Error::new(ErrorKind::Unavailable, "disk on fire"))
        } else {
            Ok(n)
        }
    }
    fn insert(&mut self, index: u64, row: Option<Row>) -> backend::Result<()> {
        self.0.insert(index, row)
    }
    fn set(&mut self, index: u64, row: Option<Row>) -> backend::Result<()> {
        self.0.set(index, row)
    }
    fn update(&mut self, index: u64, data: Row) -> backend::Result<()> {
        self.0.update(index, data)
    }
    fn delete_range(&mut self, start: u64, stop: u64) -> backend::Result<()> {
        self.0.delete_range(start, stop)
    }
    fn drop_keys(&mut self, keys: &[Key], indices: Option<&[u64]>) -> backend::Result<()> {
        self.0.drop_keys(keys, indices)
    }
    fn clear(&mut self) -> backend::Result<()> {
        self.0.clear()
    }
}

fn extend(rows: Vec<Option<Row>>) -> WriteOp {
    WriteOp::from_request(Request::Extend(Extend { store: 0, rows }))
        .expect("write")
        .expect("valid")
}

/// Queues `ops` before the actor starts, so they are all drained into one batch, then runs
/// the actor to completion and returns the replies and the commit count.
fn run_prequeued(backend: Box<dyn Backend>, ops: Vec<WriteOp>) -> (Vec<Response>, u64, ArcReader) {
    let (tx, rx) = mpsc::sync_channel(64);
    let mut answers = Vec::new();
    for op in ops {
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(Command::Write { op, reply }).expect("queue");
        answers.push(answer);
    }
    let (reply, closed) = mpsc::sync_channel(1);
    tx.send(Command::Shutdown { reply }).expect("queue");
    let shared = Arc::new(Shared::default());
    let reader = backend.reader();
    WriterActor {
        backend,
        reader: reader.clone(),
        rx,
        shared: shared.clone(),
        window: GroupWindow::new(Duration::ZERO),
    }
    .run();
    closed.recv().expect("shutdown answered").expect("closed");
    let replies = answers
        .into_iter()
        .map(|a| a.recv().expect("answered"))
        .collect();
    (
        replies,
        shared.commits.load(Ordering::Relaxed),
        ArcReader(reader),
    )
}

struct ArcReader(Arc<dyn Reader>);

impl ArcReader {
    fn rows(&self) -> Vec<Option<Row>> {
        let snap = self.0.snapshot().expect("snapshot");
        (0..snap.len().expect("len"))
            .map(|i| snap.get(i, None).expect("get"))
            .collect()
    }
}

#[test]
fn test_queued_writes_share_one_commit_and_a_bad_one_fails_alone() {
    let bad_set = WriteOp::from_request(Request::Set(Set {
        store: 0,
        index: 99,
        row: None,
    }))
    .unwrap()
    .unwrap();
    let ops = vec![
        extend(vec![Some(row([("a", "1")]))]),
        bad_set,
        extend(vec![None, Some(row([("b", "2")]))]),
    ];
    let (replies, commits, reader) = run_prequeued(Box::new(memory("batch")), ops);
    assert_eq!(commits, 1, "three queued writes, one transaction");
    assert_eq!(replies[0], Response::Len(1));
    assert!(matches!(&replies[1], Response::Error(e) if e.code == ErrorCode::IndexOutOfRange));
    assert_eq!(replies[2], Response::Len(3));
    assert_eq!(
        reader.rows(),
        vec![Some(row([("a", "1")])), None, Some(row([("b", "2")]))]
    );
}

#[test]
fn test_failed_transaction_falls_back_to_one_transaction_per_command() {
    let ops = vec![
        extend(vec![Some(row([("a", "1")]))]),
        extend(vec![Some(row([("poison", "x")]))]),
        extend(vec![Some(row([("b", "2")]))]),
    ];
    let (replies, commits, reader) =
        run_prequeued(Box::new(Faulty::new("fallback", Capabilities::all())), ops);
    assert_eq!(replies[0], Response::Len(1));
    assert!(
        matches!(&replies[1], Response::Error(e) if e.code == ErrorCode::Unavailable && e.message == "disk on fire")
    );
    assert_eq!(replies[2], Response::Len(2));
    assert_eq!(
        commits, 2,
        "the failed batch and the poisoned command commit nothing"
    );
    assert_eq!(
        reader.rows(),
        vec![Some(row([("a", "1")])), Some(row([("b", "2")]))]
    );
}

#[test]
fn test_reads_go_through_the_actor_without_concurrent_readers() {
    let mut caps = Capabilities::all();
    caps.concurrent_readers = false;
    let store = StoreHandle::spawn(Box::new(Faulty::new("actor-reads", caps))).unwrap();
    let r = store.execute(
        Request::Extend(Extend {
            store: 0,
            rows: vec![Some(row([("a", "1")]))],
        }),
        false,
    );
    assert_eq!(r, Response::Len(1));
    let got = store.execute(
        Request::Get(Get {
            store: 0,
            index: -1,
            keys: None,
        }),
        false,
    );
    assert_eq!(got, Response::Row(Some(row([("a", "1")]))));
    let col = store.execute(
        Request::GetColumn(GetColumn {
            store: 0,
            key: key("zzz"),
            indices: None,
            packed: false,
        }),
        false,
    );
    assert!(
        matches!(col, Response::Error(e) if e.code == ErrorCode::NotFound && e.message == "zzz")
    );
    store.shutdown().unwrap();
    let after = store.execute(Request::Len(StoreRef { store: 0 }), false);
    assert!(matches!(after, Response::Error(e) if e.code == ErrorCode::ShuttingDown));
}

#[test]
fn test_missing_capabilities_are_refused_before_queueing() {
    let mut caps = Capabilities::all();
    caps.write_can_insert = false;
    caps.write_can_update = false;
    let store = StoreHandle::spawn(Box::new(Faulty::new("narrow", caps))).unwrap();
    let ins = store.execute(
        Request::Insert(Insert {
            store: 0,
            index: 0,
            row: None,
        }),
        false,
    );
    let Response::Error(e) = ins else {
        panic!("insert must fail, got {ins:?}")
    };
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            ErrorCode::Unsupported,
            "the memory backend does not support insert"
        )
    );
    let upd = store.execute(
        Request::Update(Update {
            store: 0,
            index: 0,
            data: row([("a", "1")]),
        }),
        false,
    );
    assert!(matches!(upd, Response::Error(e) if e.code == ErrorCode::Unsupported));
    // The read-only refusal comes first, whatever the capability.
    let ro = store.execute(
        Request::Insert(Insert {
            store: 0,
            index: 0,
            row: None,
        }),
        true,
    );
    assert!(
        matches!(ro, Response::Error(e) if e.code == ErrorCode::ReadOnly && e.message == "Backend is read-only")
    );
    assert_eq!(store.commits(), 0);
}

#[test]
fn test_dropping_the_last_handle_stops_the_actor() {
    let store = StoreHandle::spawn(Box::new(memory("drop"))).unwrap();
    let shared = store.inner.shared.clone();
    let clone = store.clone();
    drop(store);
    assert_eq!(
        shared.state.load(Ordering::Acquire),
        super::writer::OPEN,
        "a clone still holds it"
    );
    drop(clone);
    assert_eq!(shared.state.load(Ordering::Acquire), super::writer::CLOSING);
}

/// A snapshot that only has the required methods, so reads go through the trait's default
/// `visit_rows`.
struct DefaultsOnly<'a>(&'a dyn Snapshot);

impl Snapshot for DefaultsOnly<'_> {
    fn len(&self) -> backend::Result<u64> {
        self.0.len()
    }
    fn get(&self, index: u64, keys: Option<&[Key]>) -> backend::Result<Option<Row>> {
        self.0.get(index, keys)
    }
    fn schema(&self) -> backend::Result<Vec<Key>> {
        self.0.schema()
    }
}

/// `Get`/`GetMany` shapes: all fields, none, some (repeated, missing, strict or not),
/// placeholders, negative and out-of-range indices.
fn read_requests() -> Vec<Request> {
    use asebytes_protocol::request::GetMany;
    let keys = |ks: &[&str]| Some(ks.iter().map(key).collect::<Vec<_>>());
    let mut reqs = Vec::new();
    for index in [0, 1, 2, -1, -4, 4, 9] {
        for k in [
            None,
            keys(&[]),
            keys(&["a"]),
            keys(&["b", "a", "b"]),
            keys(&["zz"]),
        ] {
            reqs.push(Request::Get(Get {
                store: 0,
                index,
                keys: k,
            }));
        }
    }
    for indices in [vec![], vec![0, 1, 2, 3], vec![3, -1, 0, 0, 1], vec![0, 7]] {
        for k in [None, keys(&[]), keys(&["a"]), keys(&["a", "zz", "b"])] {
            for missing_ok in [false, true] {
                reqs.push(Request::GetMany(GetMany {
                    store: 0,
                    indices: indices.clone(),
                    keys: k.clone(),
                    missing_ok,
                }));
            }
        }
    }
    reqs
}

#[test]
fn test_framed_reads_are_byte_identical_to_encoded_responses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lmdb_opts = OpenOptions {
        path: dir.path().join("x.lmdb").to_string_lossy().into_owned(),
        group: "default".into(),
        ..Default::default()
    };
    let backends: Vec<Box<dyn Backend>> = vec![
        Box::new(memory("framed")),
        backend::open("lmdb", &lmdb_opts).expect("lmdb"),
    ];
    let rows = vec![
        Some(row([("a", b"1".as_slice()), ("b", b"22")])),
        None,
        Some(row([("b", vec![3u8; 300].as_slice())])),
        Some(row([("c", b"".as_slice()), ("a", b"4")])),
    ];
    for mut be in backends {
        be.write(&mut |w| w.extend(rows.clone()).map(drop))
            .expect("fill");
        let reader = be.reader();
        let handle = StoreHandle::spawn(be).expect("spawn");
        for (id, req) in read_requests().into_iter().enumerate() {
            let id = id as u64 * 1000;
            let want = handle.execute(req.clone(), false);
            let mut framed = b"left alone".to_vec();
            handle.execute_into(req.clone(), false, id, &mut framed);
            assert_eq!(&framed[..10], b"left alone");
            assert_eq!(
                framed[10..],
                asebytes_protocol::frame::encode(id, &want).expect("encode")[..],
                "{req:?} answered {want:?}"
            );
            // The trait's default `visit_rows` (built on `get`) answers the same.
            let snap = reader.snapshot().expect("snapshot");
            let by_default = read::read(&DefaultsOnly(&*snap), &req);
            assert_eq!(by_default.unwrap_or_else(Response::Error), want, "{req:?}");
        }
        handle.shutdown().expect("shutdown");
    }
}

/// Two writers, each waiting for its acknowledgement before writing again: while the
/// previous batch held two commands and its commit was costly, the window keeps a batch
/// open for the second writer's write (one commit for both); without a window each write
/// commits alone.
#[test]
fn test_the_window_holds_a_batch_open_for_the_other_writers() {
    for window in [Duration::from_secs(5), Duration::ZERO] {
        let (tx, rx) = mpsc::sync_channel(64);
        let shared = Arc::new(Shared::default());
        let backend = Box::new(memory(&format!("window-{}", window.as_millis())));
        let mut learned = GroupWindow::new(window);
        learned.committed(2, Duration::from_secs(10)); // two writers, commits that flush
        let actor = WriterActor {
            reader: backend.reader(),
            backend,
            rx,
            shared: shared.clone(),
            window: learned,
        };
        let thread = std::thread::spawn(move || actor.run());
        let write = |v: &str| {
            let (reply, answer) = mpsc::sync_channel(1);
            let op = extend(vec![Some(row([("a", v)]))]);
            tx.send(Command::Write { op, reply }).expect("queue");
            answer
        };
        let first = write("1");
        if window.is_zero() {
            first.recv().expect("answered at once");
        } else {
            std::thread::sleep(Duration::from_millis(50));
            assert!(first.try_recv().is_err(), "held open for the second writer");
        }
        let second = write("2");
        for answer in [first, second] {
            if let Ok(reply) = answer.recv() {
                assert!(matches!(reply, Response::Len(_)), "{reply:?}");
            }
        }
        let (reply, closed) = mpsc::sync_channel(1);
        tx.send(Command::Shutdown { reply }).expect("queue");
        closed.recv().expect("shutdown answered").expect("closed");
        thread.join().expect("actor");
        let want = if window.is_zero() { 2 } else { 1 };
        assert_eq!(shared.commits.load(Ordering::Relaxed), want, "{window:?}");
    }
}
