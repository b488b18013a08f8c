//! The contract suite's kit: which backends run, how a trial opens a fresh store, seeded
//! row generators, request builders and comparison helpers.
//!
//! Layer: test-only, above the whole daemon. The suite drives [`StoreHandle`] (the writer
//! actor plus a backend), never a bare backend trait, so actor semantics are contracted for
//! every backend alike. `ASEBYTES_TEST_BACKENDS=memory,lmdb` narrows the backend list;
//! `ASEBYTES_TEST_CAPABILITY_OVERRIDES=write_can_insert=false,...` narrows the memory
//! backend's capabilities to exercise the refusal paths.

pub mod as_values;
mod fixtures;
#[cfg(feature = "hub")]
pub mod hub_server;
#[cfg(feature = "mongodb")]
pub mod mongo_server;
#[cfg(feature = "redis")]
pub mod redis_server;
mod requests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use asebytes_daemon::backend::{self, Backend, BackendInfo, Reader, Writer};
use asebytes_daemon::store::StoreHandle;
use asebytes_protocol::request::StoreRef;
use asebytes_protocol::{Capabilities, ErrorCode, Request, Response, Row, WireError};
pub use libtest_mimic::{Failed, Trial};
use serde_bytes::ByteBuf;
use tempfile::TempDir;

pub use fixtures::stop_servers;
use fixtures::*;
pub use requests::*;

/// One backend the suite runs against.
#[derive(Clone, Copy, Debug)]
pub struct BackendFixture {
    /// Backend name, used in trial names (`contract::<name>::<test>`).
    pub name: &'static str,
    /// The backend's scheme (`zarr` for both the `zarr` and the padded `zarrp` fixture).
    pub scheme: &'static str,
    /// Opens (creating if needed) the store kept in the directory `dir`, writable.
    pub make: fn(&Path) -> Box<dyn Backend>,
    /// Opens the existing store in `dir` read-only.
    pub make_readonly: fn(&Path) -> Box<dyn Backend>,
    /// Capabilities of a writable open, probed once, to gate trials.
    pub caps: Capabilities,
    /// Its test server is slow (SecantusDB, a Python process standing in for MongoDB): the
    /// randomised oracle runs fewer sequences on it, so the suite stays within CI's time.
    pub slow: bool,
}

/// The backends to run: memory always, lmdb with the `lmdb` feature, narrowed by
/// `ASEBYTES_TEST_BACKENDS` (comma-separated names).
pub fn backends() -> Vec<BackendFixture> {
    let mut all = vec![fixture("memory", open_memory, open_memory_readonly)];
    #[cfg(feature = "lmdb")]
    all.push(fixture("lmdb", open_lmdb, open_lmdb_readonly));
    #[cfg(feature = "zarr")]
    {
        all.push(fixture("zarr", open_zarr, open_zarr_readonly));
        all.push(fixture("zarrp", open_zarrp, open_zarrp_readonly));
    }
    #[cfg(feature = "hdf5")]
    {
        all.push(fixture("h5", open_h5, open_h5_readonly));
        all.push(fixture("h5p", open_h5p, open_h5p_readonly));
        all.push(fixture("h5md", open_h5md, open_h5md_readonly));
    }
    // Only when wanted: probing starts a redis-server.
    #[cfg(feature = "redis")]
    if selected("redis") {
        all.push(fixture("redis", open_redis, open_redis_readonly));
    }
    #[cfg(feature = "mongodb")]
    if selected("mongodb") {
        match mongo_server::shared_uri(MONGO_DATABASE) {
            Ok(_) => all.push(fixture("mongodb", open_mongodb, open_mongodb_readonly)),
            Err(e) if std::env::var_os("CI").is_some() => panic!("mongodb: {e}"),
            Err(e) => eprintln!("contract: mongodb left out: {e}"),
        }
    }
    match std::env::var("ASEBYTES_TEST_BACKENDS") {
        Ok(wanted) if !wanted.trim().is_empty() => {
            let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
            for w in &wanted {
                assert!(
                    all.iter().any(|f| f.name == *w),
                    "ASEBYTES_TEST_BACKENDS names '{w}', which this build does not have"
                );
            }
            all.retain(|f| wanted.contains(&f.name));
            all
        }
        _ => all,
    }
}

/// Whether `ASEBYTES_TEST_BACKENDS` (unset: every backend) selects `name`: a backend
/// that needs a server starts one only when it runs.
#[cfg(any(feature = "redis", feature = "mongodb"))]
fn selected(name: &str) -> bool {
    match std::env::var("ASEBYTES_TEST_BACKENDS") {
        Ok(wanted) if !wanted.trim().is_empty() => wanted.split(',').any(|w| w.trim() == name),
        _ => true,
    }
}

fn fixture(
    name: &'static str,
    make: fn(&Path) -> Box<dyn Backend>,
    make_readonly: fn(&Path) -> Box<dyn Backend>,
) -> BackendFixture {
    let probe = TempDir::new().expect("temporary directory");
    let info = make(probe.path()).info().clone();
    let caps = info.caps;
    BackendFixture {
        name,
        scheme: info.scheme,
        make,
        make_readonly,
        caps,
        slow: name == "mongodb",
    }
}

/// Sets named flags: `write_can_insert=false,concurrent_readers=false`.
pub fn apply_overrides(mut caps: Capabilities, spec: &str) -> Result<Capabilities, String> {
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' is not name=true|false"))?;
        let value: bool = value
            .trim()
            .parse()
            .map_err(|_| format!("'{item}': value must be true or false"))?;
        let flag = match name.trim() {
            "read" => &mut caps.read,
            "read_with_keys" => &mut caps.read_with_keys,
            "write" => &mut caps.write,
            "write_can_set" => &mut caps.write_can_set,
            "write_can_insert" => &mut caps.write_can_insert,
            "write_can_delete" => &mut caps.write_can_delete,
            "write_can_update" => &mut caps.write_can_update,
            "write_can_drop_keys" => &mut caps.write_can_drop_keys,
            "write_can_remove" => &mut caps.write_can_remove,
            "concurrent_readers" => &mut caps.concurrent_readers,
            "snapshots" => &mut caps.snapshots,
            "persistent" => &mut caps.persistent,
            "atomic_batches" => &mut caps.atomic_batches,
            "packed_columns" => &mut caps.packed_columns,
            "typed_values" => &mut caps.typed_values,
            other => return Err(format!("unknown capability '{other}'")),
        };
        *flag = value;
    }
    Ok(caps)
}

/// A backend reporting other capabilities than it has: lets the suite check that the store
/// layer refuses what a backend does not claim, and serves as a narrowed oracle.
pub struct WithCaps {
    inner: Box<dyn Backend>,
    info: BackendInfo,
}

impl WithCaps {
    /// Wraps `inner`, reporting `caps`.
    pub fn new(inner: Box<dyn Backend>, caps: Capabilities) -> Self {
        let mut info = inner.info().clone();
        info.caps = caps;
        Self { inner, info }
    }
}

impl std::fmt::Debug for WithCaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithCaps")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Backend for WithCaps {
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
        self.inner.write(f)
    }
    fn remove(&mut self) -> backend::Result<()> {
        self.inner.remove()
    }
    fn close(&mut self) -> backend::Result<()> {
        self.inner.close()
    }
}

/// A trial body.
pub type Body = fn(&BackendFixture) -> Result<(), Failed>;

/// A trial named `contract::<backend>::<test>`, ignored when the backend cannot run it.
pub fn trial(fx: &BackendFixture, test: &str, runnable: bool, body: Body) -> Trial {
    let fx = *fx;
    Trial::test(format!("contract::{}::{test}", fx.name), move || body(&fx))
        .with_ignored_flag(!runnable)
}

/// Pushes trials: `register!(fx, out; test_a; test_b needs write_can_insert, write_can_delete;)`.
#[macro_export]
macro_rules! register {
    ($fx:expr, $out:expr; $( $test:ident $( needs $($cap:ident),+ )? ; )*) => {
        $( $out.push($crate::trial($fx, stringify!($test), true $($( && $fx.caps.$cap )+)?, $test)); )*
    };
}

/// Fails the trial with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::Failed::from(format!($($msg)+)));
        }
    };
}

/// Fails unless `got == want`, showing both.
pub fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), Failed> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}:\n   got: {got:?}\n  want: {want:?}").into())
    }
}

/// A fresh store of one backend in its own temporary directory.
#[derive(Debug)]
pub struct Harness {
    /// Keeps the store's files (and the memory store's unique name) alive.
    pub dir: TempDir,
    /// The backend under test.
    pub fx: BackendFixture,
    /// The store under test.
    pub store: StoreHandle,
}

impl Harness {
    /// Opens a new, empty store.
    pub fn new(fx: &BackendFixture) -> Result<Self, Failed> {
        let dir = TempDir::new().map_err(|e| format!("temporary directory: {e}"))?;
        let store = StoreHandle::spawn((fx.make)(dir.path())).map_err(|e| format!("spawn: {e}"))?;
        Ok(Self {
            dir,
            fx: *fx,
            store,
        })
    }

    /// Shuts the store down and opens it again from the same place.
    pub fn reopen(&mut self) -> Result<(), Failed> {
        self.store
            .shutdown()
            .map_err(|e| format!("shutdown: {e}"))?;
        self.store = StoreHandle::spawn((self.fx.make)(self.dir.path()))
            .map_err(|e| format!("spawn: {e}"))?;
        Ok(())
    }

    /// Shuts the store down and opens it read-only.
    pub fn reopen_readonly(&mut self) -> Result<(), Failed> {
        self.store
            .shutdown()
            .map_err(|e| format!("shutdown: {e}"))?;
        let backend = (self.fx.make_readonly)(self.dir.path());
        self.store = StoreHandle::spawn(backend).map_err(|e| format!("spawn: {e}"))?;
        Ok(())
    }

    /// The raw response.
    pub fn exec(&self, req: Request) -> Response {
        self.store.execute(req, false)
    }

    /// A response that must not be an error.
    pub fn ok(&self, req: Request) -> Result<Response, Failed> {
        let name = req.name();
        match self.exec(req) {
            Response::Error(e) => Err(format!("{name} failed: {e}").into()),
            other => Ok(other),
        }
    }

    /// An error that must come back, with the code wanted.
    pub fn err(&self, req: Request, code: ErrorCode) -> Result<WireError, Failed> {
        expect_err(req.name(), self.exec(req), code)
    }

    /// Appends rows; the new length.
    pub fn extend(&self, rows: Vec<Option<Row>>) -> Result<u64, Failed> {
        as_len(self.ok(extend(rows))?)
    }

    /// Current length.
    pub fn len(&self) -> Result<u64, Failed> {
        self.store.len().map_err(|e| format!("len: {e}").into())
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> Result<bool, Failed> {
        Ok(self.len()? == 0)
    }

    /// One row as stored.
    pub fn row(&self, index: i64) -> Result<Option<Row>, Failed> {
        as_row(self.ok(get(index))?)
    }

    /// Every row, order-insensitive per row, plus the schema.
    pub fn contents(&self) -> Result<Contents, Failed> {
        contents(&self.store)
    }
}

/// Fails unless `resp` is an error with `code`.
pub fn expect_err(what: &str, resp: Response, code: ErrorCode) -> Result<WireError, Failed> {
    match resp {
        Response::Error(e) if e.code == code => Ok(e),
        other => Err(format!("{what}: wanted error {code:?}, got {other:?}").into()),
    }
}

/// The full observable state of a store: every row (fields sorted, since a backend may
/// store them sorted) and the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    /// Rows; `None` is a placeholder.
    pub rows: Vec<Option<BTreeMap<Vec<u8>, Vec<u8>>>>,
    /// Sorted schema.
    pub schema: Vec<Vec<u8>>,
}

/// Reads every row of `store` in one request.
pub fn contents(store: &StoreHandle) -> Result<Contents, Failed> {
    let n = store.len().map_err(|e| format!("len: {e}"))?;
    let all: Vec<i64> = (0..n as i64).collect();
    let rows = match store.execute(get_many(all, None), false) {
        Response::Rows(rows) => rows.into_iter().map(canon).collect(),
        other => return Err(format!("get_many of all rows: {other:?}").into()),
    };
    let schema = match store.execute(Request::Schema(StoreRef { store: 0 }), false) {
        Response::Keys(keys) => keys.into_iter().map(ByteBuf::into_vec).collect(),
        other => return Err(format!("schema: {other:?}").into()),
    };
    Ok(Contents { rows, schema })
}

/// A row as a sorted map, for order-insensitive comparison.
pub fn canon(row: Option<Row>) -> Option<BTreeMap<Vec<u8>, Vec<u8>>> {
    row.map(|r| {
        r.into_iter()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect()
    })
}

/// A response's length.
pub fn as_len(resp: Response) -> Result<u64, Failed> {
    match resp {
        Response::Len(n) => Ok(n),
        other => Err(format!("wanted Len, got {other:?}").into()),
    }
}

/// A response's row.
pub fn as_row(resp: Response) -> Result<Option<Row>, Failed> {
    match resp {
        Response::Row(r) => Ok(r),
        other => Err(format!("wanted Row, got {other:?}").into()),
    }
}

/// A response's rows.
pub fn as_rows(resp: Response) -> Result<Vec<Option<Row>>, Failed> {
    match resp {
        Response::Rows(r) => Ok(r),
        other => Err(format!("wanted Rows, got {other:?}").into()),
    }
}

/// A response's column values.
pub fn as_column(resp: Response) -> Result<Vec<Option<Vec<u8>>>, Failed> {
    match resp {
        Response::Column(c) => Ok(c.into_iter().map(|v| v.map(ByteBuf::into_vec)).collect()),
        other => Err(format!("wanted Column, got {other:?}").into()),
    }
}

/// A response's keys, as strings.
pub fn as_keys(resp: Response) -> Result<Vec<String>, Failed> {
    match resp {
        Response::Keys(k) => Ok(k
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()),
        other => Err(format!("wanted Keys, got {other:?}").into()),
    }
}

// ---- seeded data ----

/// A small seeded generator (splitmix64): the same seed gives the same data everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// An ethanol-like frame in the flat key convention, with random values of realistic sizes
/// (9 atoms: positions and forces 9×3 float64).
pub fn ethanol_row(rng: &mut Rng) -> Row {
    let mut row = vec![
        (k("arrays.numbers"), ByteBuf::from(rng.bytes(9 * 8))),
        (k("arrays.positions"), ByteBuf::from(rng.bytes(9 * 3 * 8))),
        (k("cell"), ByteBuf::from(rng.bytes(9 * 8))),
        (k("pbc"), ByteBuf::from(rng.bytes(3))),
        (k("calc.energy"), ByteBuf::from(rng.bytes(8))),
        (k("calc.forces"), ByteBuf::from(rng.bytes(9 * 3 * 8))),
    ];
    if rng.below(2) == 0 {
        row.push((k("info.smiles"), ByteBuf::from(b"CCO".to_vec())));
    }
    row
}

/// `n` ethanol-like rows from `seed`.
pub fn ethanol_rows(seed: u64, n: usize) -> Vec<Option<Row>> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| Some(ethanol_row(&mut rng))).collect()
}

/// A tiny readable row `{"id": "<tag>", "calc.energy": "e<tag>"}`.
pub fn tagged(tag: &str) -> Row {
    r(&[("id", tag), ("calc.energy", &format!("e{tag}"))])
}

/// Runs `check` until it passes or `timeout` elapses (no fixed sleeps in tests).
pub fn poll_until(
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Result<bool, Failed>,
) -> Result<(), Failed> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err("condition not reached before the deadline".into());
        }
        std::thread::yield_now();
    }
}

/// The error code of a response, or `None` for success: what the oracle compares.
pub fn code_of(resp: &Response) -> Option<ErrorCode> {
    match resp {
        Response::Error(e) => Some(e.code),
        _ => None,
    }
}
