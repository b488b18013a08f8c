//! A store's life: what the handle reports, commit counting, shutdown (idempotent, flushes
//! what was queued, refuses what comes after), close on drop, and data surviving a reopen
//! (CONTRACT.md "Many processes at once": every acknowledged write is durable).

use std::collections::BTreeSet;

use asebytes_daemon::store::StoreHandle;
use asebytes_protocol::{ErrorCode, Response};
use asebytes_tests::*;

pub fn trials(fx: &BackendFixture, out: &mut Vec<Trial>) {
    register!(fx, out;
        test_info_reports_scheme_and_canonical_location;
        test_commits_count_write_transactions_only;
        test_shutdown_is_idempotent;
        test_requests_after_shutdown_answer_shutting_down;
        test_reopen_after_shutdown_keeps_every_acknowledged_write;
        test_dropping_every_handle_closes_the_store;
        test_shutdown_during_writes_keeps_exactly_the_acknowledged_ones;
        test_persistent_store_survives_reopen needs persistent;
    );
}

fn test_info_reports_scheme_and_canonical_location(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let info = h.store.info();
    check_eq("scheme", info.scheme, fx.scheme)?;
    ensure!(
        info.canonical.starts_with(&format!("{}://", fx.scheme)),
        "canonical {}",
        info.canonical
    );
    ensure!(
        info.canonical.ends_with("#default"),
        "canonical {} should name the group",
        info.canonical
    );
    Ok(())
}

fn test_commits_count_write_transactions_only(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    check_eq("new store", h.store.commits(), 0)?;
    h.extend(vec![Some(tagged("a"))])?;
    check_eq("after one extend", h.store.commits(), 1)?;
    h.ok(get(0))?;
    h.ok(get_many(vec![0], None))?;
    check_eq("reads commit nothing", h.store.commits(), 1)?;
    // A write rejected inside the transaction (index checked against the length there).
    let rejected = if fx.caps.write_can_delete {
        Some(delete_range(5, 9))
    } else if fx.caps.write_can_set {
        Some(set(5, None))
    } else {
        None
    };
    if let Some(req) = rejected {
        h.err(req, ErrorCode::IndexOutOfRange)?;
        check_eq("a rejected write commits nothing", h.store.commits(), 1)?;
    }
    h.store.execute(extend(vec![None]), true);
    check_eq("a read-only refusal commits nothing", h.store.commits(), 1)?;
    h.ok(reserve(2))?;
    check_eq("after reserve", h.store.commits(), 2)
}

fn test_shutdown_is_idempotent(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(tagged("a"))])?;
    let clone = h.store.clone();
    h.store
        .shutdown()
        .map_err(|e| format!("first shutdown: {e}"))?;
    h.store
        .shutdown()
        .map_err(|e| format!("second shutdown: {e}"))?;
    clone
        .shutdown()
        .map_err(|e| format!("shutdown through a clone: {e}"))?;
    Ok(())
}

fn test_requests_after_shutdown_answer_shutting_down(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(tagged("a")), Some(tagged("b"))])?;
    h.store.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    let mut requests = vec![
        len(),
        get(0),
        get_many(vec![0], None),
        get_column("id", None),
        keys(0),
        schema(),
    ];
    requests.extend(every_write());
    for req in requests {
        let name = req.name();
        expect_err(name, h.exec(req), ErrorCode::ShuttingDown)?;
    }
    ensure!(h.store.len().is_err(), "len() after shutdown must fail");
    Ok(())
}

fn test_reopen_after_shutdown_keeps_every_acknowledged_write(
    fx: &BackendFixture,
) -> Result<(), Failed> {
    let mut h = Harness::new(fx)?;
    h.extend(ethanol_rows(77, 12))?;
    h.extend(vec![None, Some(vec![])])?;
    if fx.caps.write_can_update {
        h.ok(update(3, r(&[("calc.stress", "s")])))?;
    }
    if fx.caps.write_can_delete {
        h.ok(delete(0))?;
    }
    let before = h.contents()?;
    h.reopen()?;
    check_eq("contents after reopen", h.contents()?, before)?;
    check_eq(
        "writes go on after reopen",
        h.extend(vec![Some(tagged("z"))])?,
        h.len()?,
    )
}

fn test_dropping_every_handle_closes_the_store(fx: &BackendFixture) -> Result<(), Failed> {
    let dir = tempfile::TempDir::new().map_err(|e| format!("tempdir: {e}"))?;
    let first = StoreHandle::spawn((fx.make)(dir.path())).map_err(|e| format!("spawn: {e}"))?;
    let clone = first.clone();
    let resp = clone.execute(extend(ethanol_rows(5, 3)), false);
    check_eq("extend", resp, Response::Len(3))?;
    drop(first);
    drop(clone);
    // Opening again only works (for LMDB) and only sees the rows if the drop committed and
    // closed the backend.
    let again = StoreHandle::spawn((fx.make)(dir.path())).map_err(|e| format!("spawn: {e}"))?;
    check_eq("rows after drop and reopen", again.len(), Ok(3))?;
    again
        .shutdown()
        .map_err(|e| format!("shutdown: {e}").into())
}

fn test_shutdown_during_writes_keeps_exactly_the_acknowledged_ones(
    fx: &BackendFixture,
) -> Result<(), Failed> {
    let mut h = Harness::new(fx)?;
    let acked = std::thread::scope(|s| -> Result<BTreeSet<String>, Failed> {
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let store = h.store.clone();
                s.spawn(move || -> Result<Vec<String>, Failed> {
                    let mut acked = Vec::new();
                    for j in 0.. {
                        let tag = format!("{t}.{j}");
                        match store.execute(extend(vec![Some(tagged(&tag))]), false) {
                            Response::Len(_) => acked.push(tag),
                            Response::Error(e) if e.code == ErrorCode::ShuttingDown => {
                                return Ok(acked);
                            }
                            other => return Err(format!("extend {tag}: {other:?}").into()),
                        }
                    }
                    Ok(acked)
                })
            })
            .collect();
        // Shut down once some writes have landed, while the writers are still busy.
        poll_until(std::time::Duration::from_secs(30), || {
            Ok(h.store.len().unwrap_or(0) >= 20)
        })?;
        h.store.shutdown().map_err(|e| format!("shutdown: {e}"))?;
        let mut all = BTreeSet::new();
        for w in writers {
            all.extend(w.join().map_err(|_| Failed::from("writer panicked"))??);
        }
        Ok(all)
    })?;
    h.reopen()?;
    let stored: BTreeSet<String> = h
        .contents()?
        .rows
        .into_iter()
        .flatten()
        .filter_map(|row| {
            row.get(b"id".as_slice())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
        .collect();
    ensure!(
        acked.len() >= 20,
        "only {} writes acknowledged",
        acked.len()
    );
    check_eq(
        "stored rows are exactly the acknowledged writes",
        stored,
        acked,
    )
}

fn test_persistent_store_survives_reopen(fx: &BackendFixture) -> Result<(), Failed> {
    let dir = tempfile::TempDir::new().map_err(|e| format!("tempdir: {e}"))?;
    let rows = ethanol_rows(99, 50);
    {
        let store = StoreHandle::spawn((fx.make)(dir.path())).map_err(|e| format!("spawn: {e}"))?;
        check_eq(
            "extend",
            store.execute(extend(rows.clone()), false),
            Response::Len(50),
        )?;
        store.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    }
    let store = StoreHandle::spawn((fx.make)(dir.path())).map_err(|e| format!("spawn: {e}"))?;
    let got = contents(&store)?;
    check_eq("rows", got.rows, rows.into_iter().map(canon).collect())
}
