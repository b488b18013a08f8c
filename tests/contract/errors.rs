//! Refusals: read-only clients and stores, capability honesty, bad input that must leave the
//! store exactly as it was, and requests that are not store requests (CONTRACT.md "Writes",
//! "Errors"; STYLE.md 5: every false flag means `Unsupported`).

use asebytes_protocol::request::{ListGroups, Open, StoreRef};
use asebytes_protocol::{Capabilities, ErrorCode, Request, Response};
use asebytes_tests::*;

pub fn trials(fx: &BackendFixture, out: &mut Vec<Trial>) {
    register!(fx, out;
        test_readonly_client_refuses_every_write;
        test_readonly_client_can_read;
        test_readonly_open_refuses_every_write;
        test_capability_honesty;
        test_bad_input_never_changes_stored_data;
        test_set_many_with_one_bad_index_writes_nothing needs write_can_set;
        test_length_mismatch_is_invalid_argument needs write_can_set, write_can_update;
        test_delete_range_bad_bounds needs write_can_delete;
        test_reserve_beyond_the_limit_is_invalid_argument;
        test_non_store_requests_are_bad_request;
    );
}

fn seeded(h: &Harness) -> Result<(), Failed> {
    h.extend(ethanol_rows(42, 4))?;
    h.extend(vec![None])?;
    Ok(())
}

fn test_readonly_client_refuses_every_write(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    let before = h.contents()?;
    let commits = h.store.commits();
    for req in every_write() {
        let name = req.name();
        let e = expect_err(name, h.store.execute(req, true), ErrorCode::ReadOnly)?;
        check_eq(name, e.message.as_str(), "Backend is read-only")?;
    }
    check_eq("contents", h.contents()?, before)?;
    check_eq("nothing was queued", h.store.commits(), commits)
}

fn test_readonly_client_can_read(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    check_eq("len", h.store.execute(len(), true), Response::Len(5))?;
    check_eq(
        "placeholder",
        h.store.execute(get(-1), true),
        Response::Row(None),
    )?;
    ensure!(
        matches!(h.store.execute(get_column("calc.energy", None), true), Response::Column(c) if c.len() == 5),
        "column"
    );
    Ok(())
}

fn test_readonly_open_refuses_every_write(fx: &BackendFixture) -> Result<(), Failed> {
    let mut h = Harness::new(fx)?;
    seeded(&h)?;
    let before = h.contents()?;
    h.reopen_readonly()?;
    ensure!(
        !h.store.info().caps.write,
        "a read-only open must not report `write`"
    );
    for req in every_write() {
        let name = req.name();
        let e = h.err(req, ErrorCode::ReadOnly)?;
        check_eq(name, e.message.as_str(), "Backend is read-only")?;
    }
    check_eq("contents readable and unchanged", h.contents()?, before)
}

/// A capability flag by name, and how to read it.
type Flag = (&'static str, fn(&Capabilities) -> bool);

/// Each operation with the flag it needs: a false flag must give `Unsupported` naming the
/// backend; a true one must never.
fn gated() -> Vec<(Flag, Request)> {
    let insert_flag: Flag = ("write_can_insert", |c| c.write_can_insert);
    let set_flag: Flag = ("write_can_set", |c| c.write_can_set);
    let update_flag: Flag = ("write_can_update", |c| c.write_can_update);
    let delete_flag: Flag = ("write_can_delete", |c| c.write_can_delete);
    let drop_flag: Flag = ("write_can_drop_keys", |c| c.write_can_drop_keys);
    let keys_flag: Flag = ("read_with_keys", |c| c.read_with_keys);
    let remove_flag: Flag = ("write_can_remove", |c| c.write_can_remove);
    vec![
        (insert_flag, insert(0, Some(r(&[("a", "1")])))),
        (set_flag, set(0, Some(r(&[("a", "1")])))),
        (set_flag, set_many(vec![0], vec![None])),
        (update_flag, update(0, r(&[("a", "2")]))),
        (update_flag, update_many(vec![0], vec![r(&[("a", "2")])])),
        (delete_flag, delete(0)),
        (delete_flag, delete_range(0, 1)),
        (drop_flag, drop_keys(&["a"], None)),
        (keys_flag, get_keys(0, &["calc.energy"])),
        (keys_flag, get_many(vec![0], Some(&["calc.energy"]))),
        // Last: it ends the store.
        (remove_flag, remove()),
    ]
}

fn test_capability_honesty(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    let caps = h.store.info().caps;
    check_eq("caps reported by the store", caps, fx.caps)?;
    ensure!(caps.read, "every backend reads");
    ensure!(caps.write, "a writable open reports `write`");
    for ((flag, has), req) in gated() {
        let name = req.name();
        let before = h.contents()?;
        let resp = h.exec(req);
        if has(&caps) {
            ensure!(
                !matches!(&resp, Response::Error(e) if e.code == ErrorCode::Unsupported),
                "{name}: `{flag}` is true but the store answered {resp:?}"
            );
        } else {
            let e = expect_err(name, resp, ErrorCode::Unsupported)?;
            ensure!(
                e.message.starts_with(&format!(
                    "the {} backend does not support",
                    h.store.info().scheme
                )),
                "{name}: message should name the backend and the operation: {}",
                e.message
            );
            check_eq(name, h.contents()?, before)?;
        }
    }
    Ok(())
}

/// Requests that must fail on a 5-row store, with the code each must fail with when the
/// backend has the capability.
fn failing() -> Vec<(Request, ErrorCode)> {
    vec![
        (set(6, Some(r(&[("a", "1")]))), ErrorCode::IndexOutOfRange),
        (set(-6, None), ErrorCode::IndexOutOfRange),
        (set_many(vec![0, 1], vec![None]), ErrorCode::InvalidArgument),
        (
            set_many(vec![0, 9], vec![None, None]),
            ErrorCode::IndexOutOfRange,
        ),
        (update(5, r(&[("a", "1")])), ErrorCode::IndexOutOfRange),
        (update_many(vec![0], vec![]), ErrorCode::InvalidArgument),
        (
            update_many(vec![0, -6], vec![r(&[("a", "1")]), r(&[("a", "1")])]),
            ErrorCode::IndexOutOfRange,
        ),
        (delete(5), ErrorCode::IndexOutOfRange),
        (delete(-6), ErrorCode::IndexOutOfRange),
        (delete_range(2, 6), ErrorCode::IndexOutOfRange),
        (delete_range(3, 2), ErrorCode::InvalidArgument),
        (
            drop_keys(&["calc.energy"], Some(vec![0, 5])),
            ErrorCode::IndexOutOfRange,
        ),
        (reserve(u64::MAX), ErrorCode::InvalidArgument),
        (get(5), ErrorCode::IndexOutOfRange),
        (
            get_keys(0, &["calc.energy", "missing"]),
            ErrorCode::NotFound,
        ),
        (get_many(vec![0, 5], None), ErrorCode::IndexOutOfRange),
        (get_column("missing", None), ErrorCode::NotFound),
        (keys(-6), ErrorCode::IndexOutOfRange),
    ]
}

fn test_bad_input_never_changes_stored_data(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    let before = h.contents()?;
    for (req, code) in failing() {
        let name = format!("{req:?}");
        let resp = h.exec(req);
        match resp {
            Response::Error(e) if e.code == code || e.code == ErrorCode::Unsupported => {}
            other => return Err(format!("{name}: wanted {code:?}, got {other:?}").into()),
        }
        check_eq(&name, h.contents()?, before.clone())?;
    }
    Ok(())
}

fn test_set_many_with_one_bad_index_writes_nothing(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    let before = h.contents()?;
    let rows = vec![Some(tagged("x")), Some(tagged("y")), Some(tagged("z"))];
    let e = h.err(set_many(vec![0, 1, 7], rows), ErrorCode::IndexOutOfRange)?;
    check_eq("message", e.message.as_str(), "Index 7 out of range [0, 5)")?;
    check_eq("contents", h.contents()?, before)
}

fn test_length_mismatch_is_invalid_argument(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    let before = h.contents()?;
    let e = h.err(
        set_many(vec![0, 1], vec![Some(tagged("x"))]),
        ErrorCode::InvalidArgument,
    )?;
    ensure!(
        e.message.contains("2 indices but 1 rows"),
        "message: {}",
        e.message
    );
    h.err(
        update_many(vec![0], vec![r(&[("a", "1")]), r(&[("a", "2")])]),
        ErrorCode::InvalidArgument,
    )?;
    check_eq("contents", h.contents()?, before)
}

fn test_delete_range_bad_bounds(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    let before = h.contents()?;
    let e = h.err(delete_range(0, 6), ErrorCode::IndexOutOfRange)?;
    check_eq("message", e.message.as_str(), "Index 6 out of range [0, 5)")?;
    h.err(delete_range(4, 1), ErrorCode::InvalidArgument)?;
    h.err(delete_range(9, 9), ErrorCode::IndexOutOfRange)?;
    check_eq("contents", h.contents()?, before)
}

fn test_reserve_beyond_the_limit_is_invalid_argument(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let e = h.err(reserve(u64::MAX), ErrorCode::InvalidArgument)?;
    ensure!(e.message.contains("reserve"), "message: {}", e.message);
    check_eq("len", h.len()?, 0)
}

fn test_non_store_requests_are_bad_request(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    seeded(&h)?;
    let others = [
        Request::Ping,
        Request::Status,
        Request::Shutdown,
        Request::Open(Open {
            location: "memory://x".into(),
            ..Open::default()
        }),
        Request::Close(StoreRef { store: 0 }),
        Request::ListGroups(ListGroups {
            location: "memory://x".into(),
        }),
    ];
    for req in others {
        let name = req.name();
        let e = h.err(req, ErrorCode::BadRequest)?;
        ensure!(
            e.message.contains(name),
            "{name}: message should name the request: {}",
            e.message
        );
    }
    check_eq("store still serves", h.len()?, 5)
}
