//! Unit tests of the registry: sharing, ids, closing, upgrading, releasing idle stores.
use super::*;
#[cfg(feature = "lmdb")]
use crate::backend::table;
use asebytes_protocol::ErrorCode;
use asebytes_protocol::request::{Extend, StoreRef};
use asebytes_protocol::value::row;
use asebytes_protocol::{Request, Response};

/// Runs the request `make(id)` on the store behind `id`, as that id's client would.
fn execute(reg: &Registry, id: StoreId, make: fn(StoreId) -> Request) -> Response {
    let (h, ro) = reg.lookup(id).unwrap();
    h.execute(make(id), ro)
}

fn extend_one(store: StoreId) -> Request {
    Request::Extend(Extend {
        store,
        rows: vec![Some(row([("k", "v")]))],
    })
}

fn len(store: StoreId) -> Request {
    Request::Len(StoreRef { store })
}

fn open_req(location: &str, readonly: bool) -> Open {
    Open {
        location: location.into(),
        group: None,
        readonly,
        map_size: None,
        options: Default::default(),
    }
}

/// A memory name no other test (in this process-global backend) uses.
fn unique(name: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("memory://registry-test-{name}-{}-{n}", std::process::id())
}

#[test]
fn parses_memory_locations() {
    let loc = Location::parse("memory://").unwrap();
    assert_eq!(loc.key("default"), "memory://default#default");
    assert_eq!(
        Location::parse("memory://scratch").unwrap().key("g"),
        "memory://scratch#g"
    );
}

#[test]
fn unknown_schemes_and_extensions_name_what_is_known() {
    for loc in ["nosuch:///d/x.foo", "/d/x.unknown", "x"] {
        let err = Location::parse(loc).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "{loc}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("No backend registered for '{loc}'; known: ")),
            "{msg}"
        );
        assert!(msg.contains("memory://"), "{msg}");
    }
}

#[test]
fn unknown_locations_never_echo_a_password() {
    let err = Location::parse("nosuch://user:hunter2@h:1/db?token=t0k").unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("hunter2") && !msg.contains("t0k"), "{msg}");
    assert!(msg.contains("nosuch://user:***@h:1/db?token=***"), "{msg}");
}

#[test]
fn url_locations_keep_their_secret_for_the_backend_and_hide_it_in_the_key() {
    static URL_ENTRY: table::BackendEntry = table::BackendEntry {
        location: table::LocationKind::Url,
        ..crate::backend::memory::ENTRY
    };
    let loc = Location {
        entry: &URL_ENTRY,
        path: location::canonical_url("MEMORY://u:pw@h:7/0/").unwrap(),
    };
    assert_eq!(loc.path, "memory://u:pw@h:7/0");
    let key = loc.key("g");
    assert!(key.starts_with("memory://u:***@h:7/0#g~"), "{key}");
    assert!(!key.contains("pw@"), "{key}");
    let other = Location {
        entry: &URL_ENTRY,
        path: location::canonical_url("memory://u:wrong@h:7/0").unwrap(),
    };
    assert_ne!(
        other.key("g"),
        key,
        "a wrong password must not join the store"
    );
    let plain = Location {
        entry: &URL_ENTRY,
        path: location::canonical_url("memory://h:7/0").unwrap(),
    };
    assert_eq!(plain.key("g"), "memory://h:7/0#g");
    for bad in ["memory://", "memory:///path", "memory://?x=1"] {
        let err = location::canonical_url(bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad}");
    }
}

#[test]
fn url_options_name_the_store_and_a_token_only_as_a_fingerprint() {
    use asebytes_protocol::OptionValue;
    static URL_ENTRY: table::BackendEntry = table::BackendEntry {
        location: table::LocationKind::Url,
        ..crate::backend::memory::ENTRY
    };
    let loc = Location {
        entry: &URL_ENTRY,
        path: location::canonical_url("memory://me/ds").unwrap(),
    };
    let opts = |split: &str, token: &str| {
        crate::backend::Options::default()
            .with("split", OptionValue::Str(split.into()))
            .with("token", OptionValue::Str(token.into()))
    };
    let train = loc.key_with("g", &opts("train", "hf_secret"));
    assert!(
        train.starts_with("memory://me/ds#g?split=\"train\"~"),
        "{train}"
    );
    assert!(!train.contains("hf_secret"), "{train}");
    assert_ne!(train, loc.key_with("g", &opts("test", "hf_secret")));
    assert_ne!(train, loc.key_with("g", &opts("train", "hf_other")));
    assert_eq!(train, loc.key_with("g", &opts("train", "hf_secret")));
    assert_eq!(
        loc.key_with("g", &crate::backend::Options::default()),
        loc.key("g")
    );
}

#[cfg(feature = "lmdb")]
#[test]
fn lmdb_locations_are_canonical_absolute_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().canonicalize().unwrap();
    std::os::unix::fs::symlink(&real, real.join("link")).unwrap();
    let want = format!("lmdb://{}/x.lmdb", real.display());
    let spellings = [
        format!("lmdb://{}/x.lmdb", real.display()),
        format!("{}/x.lmdb", real.display()),
        format!("{}/link/./x.lmdb", real.display()),
        format!("{}/sub/../x.lmdb", real.display()),
    ];
    for s in &spellings {
        let loc = Location::parse(s).unwrap();
        assert_eq!(format!("{}://{}", loc.scheme(), loc.path), want, "{s}");
    }
    let err = Location::parse("lmdb://rel/x.lmdb").unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("absolute"), "{err}");
    assert_eq!(
        Location::parse("rel/x.lmdb").unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn same_location_shares_one_store_and_readonly_gets_its_own_id() {
    let reg = Registry::new();
    let loc = unique("share");
    let a = reg.open(1, &open_req(&loc, false)).unwrap();
    let b = reg.open(2, &open_req(&loc, false)).unwrap();
    let r = reg.open(3, &open_req(&loc, true)).unwrap();
    assert_eq!(a.store, b.store);
    assert_ne!(a.store, r.store);
    assert_eq!(a.canonical, format!("{loc}#default"));
    assert_eq!(r.canonical, a.canonical);
    assert!(a.caps.write && !r.caps.write);

    assert_eq!(execute(&reg, a.store, extend_one), Response::Len(1));
    assert!(reg.lookup(r.store).unwrap().1);
    assert_eq!(execute(&reg, r.store, len), Response::Len(1));
    let (h, ro) = reg.lookup(r.store).unwrap();
    let refused = h.execute(Request::Clear(StoreRef { store: r.store }), ro);
    assert!(matches!(refused, Response::Error(e) if e.code == ErrorCode::ReadOnly));

    let st = reg.status();
    assert_eq!(st.len(), 1);
    assert_eq!((st[0].len, st[0].clients, st[0].commits), (1, 3, 1));
}

#[test]
fn memory_stores_outlive_their_connections_until_removed() {
    let reg = Registry::new();
    let loc = unique("keep");
    let a = reg.open(1, &open_req(&loc, false)).unwrap();
    reg.close(1, a.store);
    reg.connection_closed(1);
    assert!(reg.lookup(a.store).is_ok());
    reg.removed(a.store);
    let err = reg.lookup(a.store).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownStore);
    let again = reg.open(1, &open_req(&loc, false)).unwrap();
    assert!(again.store > a.store, "ids are never reused");
}

#[test]
fn shutdown_all_closes_everything_and_refuses_new_opens() {
    let reg = Registry::new();
    let a = reg.open(1, &open_req(&unique("down"), false)).unwrap();
    reg.shutdown_all();
    assert!(reg.status().is_empty());
    assert_eq!(
        reg.lookup(a.store).unwrap_err().code(),
        ErrorCode::UnknownStore
    );
    let err = reg.open(1, &open_req(&unique("late"), false)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ShuttingDown);
}

#[test]
fn concurrent_opens_of_one_location_start_one_store() {
    let reg = Arc::new(Registry::new());
    let loc = unique("race");
    let ids: Vec<StoreId> = (0..8)
        .map(|conn| {
            let (reg, loc) = (reg.clone(), loc.clone());
            std::thread::spawn(move || reg.open(conn, &open_req(&loc, false)).unwrap().store)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
    assert_eq!(reg.status()[0].clients, 8);
}

#[cfg(feature = "lmdb")]
#[test]
fn a_file_store_closes_when_its_last_connection_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = format!("{}/x.lmdb", tmp.path().display());
    let reg = Registry::new();
    let a = reg.open(1, &open_req(&loc, false)).unwrap();
    let b = reg.open(2, &open_req(&loc, false)).unwrap();
    assert_eq!(a.store, b.store);
    reg.connection_closed(1);
    assert!(reg.lookup(a.store).is_ok(), "connection 2 still uses it");
    reg.close(2, b.store);
    assert!(reg.status().is_empty());
    assert_eq!(
        reg.lookup(a.store).unwrap_err().code(),
        ErrorCode::UnknownStore
    );
    let again = reg.open(3, &open_req(&loc, false)).unwrap();
    assert_ne!(again.store, a.store);
}

#[cfg(feature = "lmdb")]
#[test]
fn a_writable_open_upgrades_a_read_only_store_and_keeps_its_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = format!("{}/up.lmdb", tmp.path().display());
    let reg = Registry::new();
    let w = reg.open(1, &open_req(&loc, false)).unwrap();
    reg.close(1, w.store);
    let r = reg.open(2, &open_req(&loc, true)).unwrap();
    let w = reg.open(3, &open_req(&loc, false)).unwrap();
    assert!(w.caps.write);
    assert_eq!(execute(&reg, w.store, extend_one), Response::Len(1));
    assert!(reg.lookup(r.store).unwrap().1);
    assert_eq!(execute(&reg, r.store, len), Response::Len(1));
}

#[cfg(feature = "lmdb")]
fn lmdb_location(tmp: &tempfile::TempDir, name: &str) -> String {
    format!("{}/{name}", tmp.path().display())
}

#[cfg(feature = "lmdb")]
#[test]
fn an_idle_file_store_is_released_and_reopened_under_the_same_id() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = lmdb_location(&tmp, "idle.lmdb");
    let reg = Registry::new();
    let a = reg.open(1, &open_req(&loc, false)).unwrap();
    let r = reg.open(2, &open_req(&loc, true)).unwrap();
    assert_eq!(execute(&reg, a.store, extend_one), Response::Len(1));
    // The open and the request count as uses: a first look only folds them in.
    assert!(reg.release_idle(Duration::from_secs(3600)));
    assert!(!reg.release_idle(Duration::ZERO), "nothing left to watch");
    let st = reg.status();
    assert!(st[0].released, "{st:?}");
    assert_eq!((st[0].len, st[0].clients), (1, 2));

    // The files are closed: another open of the environment in this process succeeds.
    let opts = OpenOptions {
        path: Location::parse(&loc).unwrap().path,
        group: DEFAULT_GROUP.into(),
        readonly: false,
        options: Default::default(),
    };
    drop((table::by_scheme("lmdb").unwrap().open)(&opts).unwrap());

    // Both ids work again, on one re-opened store.
    assert_eq!(execute(&reg, a.store, extend_one), Response::Len(2));
    assert_eq!(execute(&reg, r.store, len), Response::Len(2));
    assert!(!reg.status()[0].released);
}

#[cfg(feature = "lmdb")]
#[test]
fn a_store_is_not_released_while_a_request_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = lmdb_location(&tmp, "busy.lmdb");
    let reg = Registry::new();
    let a = reg.open(1, &open_req(&loc, false)).unwrap();
    let held = reg.lookup(a.store).unwrap();
    reg.release_idle(Duration::ZERO);
    assert!(reg.release_idle(Duration::ZERO), "still watched");
    let st = reg.status();
    assert!(!st[0].released);
    assert_eq!(st[0].in_flight, 1);
    drop(held);
    reg.release_idle(Duration::ZERO);
    assert!(reg.status()[0].released);
}

#[cfg(feature = "lmdb")]
#[test]
fn a_released_store_goes_with_its_last_user() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = lmdb_location(&tmp, "gone.lmdb");
    let reg = Registry::new();
    let a = reg.open(1, &open_req(&loc, false)).unwrap();
    reg.release_idle(Duration::ZERO);
    reg.release_idle(Duration::ZERO);
    assert!(reg.status()[0].released);
    assert_eq!(reg.stores_by_connection().get(&1), Some(&1));
    reg.connection_closed(1);
    assert!(reg.status().is_empty());
    assert_eq!(
        reg.lookup(a.store).unwrap_err().code(),
        ErrorCode::UnknownStore
    );
    // A new open of the location starts afresh.
    let again = reg.open(2, &open_req(&loc, false)).unwrap();
    assert_ne!(again.store, a.store);
}

#[test]
fn memory_stores_are_never_released() {
    let reg = Registry::new();
    let a = reg.open(1, &open_req(&unique("never"), false)).unwrap();
    assert_eq!(execute(&reg, a.store, extend_one), Response::Len(1));
    assert!(
        !reg.release_idle(Duration::ZERO),
        "memory stores are not watched"
    );
    let st = reg.status();
    assert!(!st[0].released);
    assert_eq!(st[0].len, 1);
}

#[cfg(feature = "lmdb")]
#[test]
fn shutdown_all_forgets_released_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::new();
    let a = reg
        .open(1, &open_req(&lmdb_location(&tmp, "s.lmdb"), false))
        .unwrap();
    reg.release_idle(Duration::ZERO);
    reg.release_idle(Duration::ZERO);
    reg.shutdown_all();
    assert!(reg.status().is_empty());
    assert_eq!(
        reg.lookup(a.store).unwrap_err().code(),
        ErrorCode::UnknownStore
    );
}

#[test]
fn status_reports_the_idle_time_of_stores_that_are_never_released() {
    let reg = Registry::new();
    let a = reg.open(1, &open_req(&unique("idle"), false)).unwrap();
    assert_eq!(reg.status()[0].idle_secs, 0);
    // Pretend the last use was long ago: the next status must not see a stale "used".
    {
        let mut inner = reg.lock();
        let key = inner.ids[&a.store].key.clone();
        if let Some(Slot::Ready(e)) = inner.slots.get_mut(&key) {
            e.last_use -= Duration::from_secs(90);
        }
    }
    assert!(reg.status()[0].idle_secs >= 90);
    assert_eq!(execute(&reg, a.store, len), Response::Len(0));
    assert_eq!(reg.status()[0].idle_secs, 0);
}
