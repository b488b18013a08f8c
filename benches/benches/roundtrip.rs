//! Reading one ethanol-sized row at three depths, side by side, so each layer's overhead
//! reads straight off the report:
//! - `direct_<backend>`: a snapshot read on the backend itself;
//! - `store_handle`: through the in-process store actor (`StoreHandle::execute`);
//! - `daemon_roundtrip`: over the Unix socket to a server thread (busy-poll on both ends).
//!
//! Plus the bare `ping` round trip, the latency floor of every request, and appending 100
//! rows (one committed write transaction) directly vs through the daemon.

use std::hint::black_box;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use asebytes_benches::ethanol_rows;
use asebytes_daemon::backend::{self, Backend, OpenOptions};
use asebytes_daemon::config::Config;
use asebytes_daemon::launcher;
use asebytes_daemon::shutdown::{Reason, Shutdown};
use asebytes_daemon::store::StoreHandle;
use asebytes_protocol::request::{Extend, Get, GetMany, Open, StoreRef};
use asebytes_protocol::stream::FrameStream;
use asebytes_protocol::{Request, Response, frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: usize = 1000;
const WRITE_ROWS: usize = 100;

fn fill(backend: &mut dyn Backend) {
    let rows = ethanol_rows(ROWS);
    backend
        .write(&mut |w| w.extend(rows.clone()).map(drop))
        .unwrap();
}

struct Client {
    stream: FrameStream,
    buf: Vec<u8>,
    id: u64,
}

impl Client {
    /// Opens the daemon store of the bench (group `daemon`) and returns its id.
    fn open(&mut self, scheme: &str, path: &str) -> u64 {
        self.open_group(scheme, path, "daemon")
    }

    fn open_group(&mut self, scheme: &str, path: &str, group: &str) -> u64 {
        let location = if scheme == "memory" {
            format!("memory://{path}")
        } else {
            path.to_string()
        };
        match self.call(&Request::Open(Open {
            location,
            group: Some(group.into()),
            ..Default::default()
        })) {
            Response::Opened(opened) => opened.store,
            other => panic!("open failed: {other:?}"),
        }
    }

    fn call(&mut self, req: &Request) -> Response {
        self.id += 1;
        self.buf.clear();
        frame::encode_into(&mut self.buf, self.id, req).unwrap();
        self.stream.send(&self.buf).unwrap();
        frame::decode::<Response>(self.stream.recv(frame::DEFAULT_MAX_FRAME_LEN).unwrap())
            .unwrap()
            .body
    }
}

fn bench_read_depths(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let schemes: Vec<(&str, String)> = vec![
        ("memory", "bench-roundtrip".to_string()),
        #[cfg(feature = "lmdb")]
        (
            "lmdb",
            dir.path().join("bench.lmdb").to_string_lossy().into_owned(),
        ),
    ];

    // A server thread on a private socket, as the daemon runs it.
    let socket = dir.path().join("bench.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut config = Config::for_socket(&socket);
    config.idle_timeout = Duration::ZERO;
    let shutdown = Shutdown::new().unwrap();
    let server = {
        let s = shutdown.clone();
        std::thread::spawn(move || asebytes_daemon::server::run(listener, config, s))
    };
    let (stream, _) = launcher::connect(&socket).unwrap();
    let mut client = Client {
        stream,
        buf: Vec::new(),
        id: 0,
    };

    let mut g = c.benchmark_group("read_row");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ping_roundtrip", |b| {
        b.iter(|| black_box(client.call(&Request::Ping)))
    });
    for (scheme, path) in &schemes {
        let opts = OpenOptions {
            path: path.clone(),
            group: "direct".into(),
            ..Default::default()
        };
        let mut direct = backend::open(scheme, &opts).unwrap();
        fill(direct.as_mut());
        let reader = direct.reader();
        g.bench_function(format!("direct_{scheme}"), |b| {
            b.iter(|| {
                let snap = reader.snapshot().unwrap();
                black_box(snap.get(black_box(417), None).unwrap())
            })
        });

        let handle_opts = OpenOptions {
            group: "handle".into(),
            ..opts.clone()
        };
        let mut be = backend::open(scheme, &handle_opts).unwrap();
        fill(be.as_mut());
        let handle = StoreHandle::spawn(be).unwrap();
        let get = Request::Get(Get {
            store: 0,
            index: 417,
            keys: None,
        });
        g.bench_function(format!("store_handle_{scheme}"), |b| {
            b.iter(|| black_box(handle.execute(get.clone(), false)))
        });

        let store = client.open(scheme, path);
        let rows = ethanol_rows(ROWS);
        client.call(&Request::Extend(Extend { store, rows }));
        let get = Request::Get(Get {
            store,
            index: 417,
            keys: None,
        });
        g.bench_function(format!("daemon_roundtrip_{scheme}"), |b| {
            b.iter(|| black_box(client.call(&get)))
        });
        handle.shutdown().unwrap();
    }
    g.finish();

    // 1000 rows in one request: the per-row cost once the round trip is amortised.
    let mut g = c.benchmark_group("read_1000_rows");
    g.throughput(Throughput::Elements(ROWS as u64));
    for (scheme, path) in &schemes {
        let store = client.open(scheme, path);
        let req = Request::GetMany(GetMany {
            store,
            indices: (0..ROWS as i64).collect(),
            keys: None,
            missing_ok: false,
        });
        g.bench_function(format!("daemon_get_many_{scheme}"), |b| {
            b.iter(|| black_box(client.call(&req)))
        });
    }
    g.finish();

    // Appending 100 rows in one committed transaction; the store is cleared (untimed)
    // after every iteration so each append starts from the same state.
    let mut g = c.benchmark_group("write_100_rows");
    g.throughput(Throughput::Elements(WRITE_ROWS as u64));
    let rows = ethanol_rows(WRITE_ROWS);
    for (scheme, path) in &schemes {
        let opts = OpenOptions {
            path: path.clone(),
            group: "write_direct".into(),
            ..Default::default()
        };
        let mut direct = backend::open(scheme, &opts).unwrap();
        g.bench_function(format!("direct_{scheme}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut batch = Some(rows.clone());
                    let t0 = Instant::now();
                    direct
                        .write(&mut |w| {
                            let batch = batch.take().unwrap_or_else(|| rows.clone());
                            w.extend(batch).map(drop)
                        })
                        .unwrap();
                    total += t0.elapsed();
                    direct.write(&mut |w| w.clear()).unwrap();
                }
                total
            })
        });
        direct.close().unwrap();

        let store = client.open_group(scheme, path, "write_daemon");
        let extend = Request::Extend(Extend {
            store,
            rows: rows.clone(),
        });
        let clear = Request::Clear(StoreRef { store });
        match client.call(&extend) {
            Response::Len(n) => assert_eq!(n, WRITE_ROWS as u64),
            other => panic!("extend failed: {other:?}"),
        }
        client.call(&clear);
        g.bench_function(format!("daemon_{scheme}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    black_box(client.call(&extend));
                    total += t0.elapsed();
                    client.call(&clear);
                }
                total
            })
        });
    }
    g.finish();

    drop(client);
    shutdown.trigger(Reason::Requested);
    server.join().unwrap().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_read_depths
}
criterion_main!(benches);
