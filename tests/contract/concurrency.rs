//! Many clients at once through one store: group commit never loses, duplicates or
//! interleaves rows of a batch; `len` only grows under appends; readers see whole batches;
//! a bad write in a busy queue fails alone (CONTRACT.md "Many processes at once").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use asebytes_protocol::{ErrorCode, Response, Row};
use asebytes_tests::*;

pub fn trials(fx: &BackendFixture, out: &mut Vec<Trial>) {
    register!(fx, out;
        test_concurrent_extends_keep_batches_whole_and_contiguous;
        test_concurrent_updates_of_one_row_lose_nothing needs write_can_update;
        test_bad_writes_fail_alone_in_a_busy_queue needs write_can_set;
    );
}

const WRITERS: usize = 4;
const BATCHES: usize = 25;

/// Distinct sizes per writer and batch, 1..=13 rows.
fn batch_size(writer: usize, batch: usize) -> usize {
    1 + (writer * 7 + batch * 3) % 13
}

fn batch_rows(writer: usize, batch: usize) -> Vec<Option<Row>> {
    let size = batch_size(writer, batch);
    (0..size)
        .map(|pos| {
            Some(r(&[
                ("id", &format!("{writer}:{batch}:{pos}:{size}")),
                ("calc.energy", "0"),
            ]))
        })
        .collect()
}

/// (writer, batch, pos, size) of a row written by [`batch_rows`].
fn parse(row: &Option<Row>) -> Result<(usize, usize, usize, usize), Failed> {
    let row = row.as_ref().ok_or("a placeholder appeared")?;
    let id = row
        .iter()
        .find(|(k, _)| k.as_slice() == b"id")
        .ok_or("row without id")?;
    let parts: Vec<usize> = String::from_utf8_lossy(&id.1)
        .split(':')
        .map(|p| p.parse().map_err(|_| format!("bad id {:?}", id.1)))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [w, b, p, s] => Ok((w, b, p, s)),
        _ => Err(format!("bad id {:?}", id.1).into()),
    }
}

/// Every batch in `rows` is whole, contiguous and in order; each writer's batches appear in
/// the order it sent them. Returns the batches seen.
fn check_batches(rows: &[Option<Row>]) -> Result<BTreeSet<(usize, usize)>, Failed> {
    let mut seen = BTreeSet::new();
    let mut last_batch: BTreeMap<usize, usize> = BTreeMap::new();
    let mut i = 0;
    while i < rows.len() {
        let (w, b, pos, size) = parse(&rows[i])?;
        ensure!(
            pos == 0,
            "row {i}: batch {w}:{b} starts at position {pos} (interleaved or torn)"
        );
        ensure!(
            i + size <= rows.len(),
            "row {i}: batch {w}:{b} of {size} rows is cut off at the end"
        );
        for (offset, row) in rows[i..i + size].iter().enumerate() {
            let got = parse(row)?;
            ensure!(
                got == (w, b, offset, size),
                "row {}: {got:?} inside batch {w}:{b}",
                i + offset
            );
        }
        ensure!(seen.insert((w, b)), "batch {w}:{b} appears twice");
        if let Some(prev) = last_batch.insert(w, b) {
            ensure!(
                prev < b,
                "writer {w}: batch {b} committed before batch {prev}"
            );
        }
        i += size;
    }
    Ok(seen)
}

fn test_concurrent_extends_keep_batches_whole_and_contiguous(
    fx: &BackendFixture,
) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let done = AtomicBool::new(false);
    let total: usize = (0..WRITERS)
        .flat_map(|w| (0..BATCHES).map(move |b| batch_size(w, b)))
        .sum();
    std::thread::scope(|s| -> Result<(), Failed> {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = h.store.clone();
                s.spawn(move || -> Result<(), Failed> {
                    let mut last = 0;
                    for b in 0..BATCHES {
                        let n = as_len(store.execute(extend(batch_rows(w, b)), false))?;
                        ensure!(
                            n > last,
                            "writer {w}: new len {n} not above its previous {last}"
                        );
                        last = n;
                    }
                    Ok(())
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let store = h.store.clone();
                let done = &done;
                s.spawn(move || -> Result<usize, Failed> {
                    let (mut prev, mut rounds) = (0u64, 0usize);
                    while !done.load(Ordering::Acquire) || rounds == 0 {
                        let n = store.len().map_err(|e| format!("len: {e}"))?;
                        ensure!(n >= prev, "len went from {prev} down to {n}");
                        prev = n;
                        let rows =
                            as_rows(store.execute(get_many((0..n as i64).collect(), None), false))?;
                        check_batches(&rows)?;
                        rounds += 1;
                    }
                    Ok(rounds)
                })
            })
            .collect();
        let mut result = Ok(());
        for w in writers {
            let r = w
                .join()
                .map_err(|_| Failed::from("writer panicked"))
                .and_then(|r| r);
            result = result.and(r);
        }
        done.store(true, Ordering::Release);
        for rd in readers {
            rd.join()
                .map_err(|_| Failed::from("reader panicked"))
                .and_then(|r| r)?;
        }
        result
    })?;
    let n = h.len()?;
    check_eq("len", n as usize, total)?;
    let rows = as_rows(h.ok(get_many((0..n as i64).collect(), None))?)?;
    let seen = check_batches(&rows)?;
    check_eq("every batch exactly once", seen.len(), WRITERS * BATCHES)?;
    ensure!(
        h.store.commits() <= (WRITERS * BATCHES) as u64,
        "more commits than write requests"
    );
    Ok(())
}

fn test_concurrent_updates_of_one_row_lose_nothing(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("base", "0")]))])?;
    const THREADS: usize = 4;
    const EACH: usize = 20;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let store = h.store.clone();
            s.spawn(move || {
                for j in 0..EACH {
                    let resp = store.execute(update(-1, r(&[(&format!("k{t}.{j}"), "v")])), false);
                    assert_eq!(resp, Response::Ok, "update {t}.{j}");
                }
            });
        }
    });
    let got = as_keys(h.ok(keys(0))?)?;
    check_eq(
        "keys after concurrent updates",
        got.len(),
        1 + THREADS * EACH,
    )
}

fn test_bad_writes_fail_alone_in_a_busy_queue(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("seed", "0")]))])?;
    const THREADS: usize = 4;
    const EACH: usize = 30;
    std::thread::scope(|s| -> Result<(), Failed> {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = h.store.clone();
                s.spawn(move || -> Result<(), Failed> {
                    for j in 0..EACH {
                        let good =
                            store.execute(extend(vec![Some(tagged(&format!("{t}.{j}")))]), false);
                        ensure!(
                            matches!(good, Response::Len(_)),
                            "good extend {t}.{j}: {good:?}"
                        );
                        let bad = store.execute(set(1_000_000, Some(tagged("never"))), false);
                        expect_err("set far out of range", bad, ErrorCode::IndexOutOfRange)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| Failed::from("worker panicked"))
                .and_then(|r| r)
        })
    })?;
    let contents = h.contents()?;
    check_eq("len", contents.rows.len(), 1 + THREADS * EACH)?;
    let never = contents
        .rows
        .iter()
        .flatten()
        .filter(|row| row.get(b"id".as_slice()) == Some(&b"never".to_vec()));
    check_eq("rows written by failed sets", never.count(), 0)
}
