//! The oracle property: random sequences of requests applied to the memory reference and to
//! the backend under test give the same answers (same rows, same error codes and fields) and
//! the same full contents after every step. proptest shrinks a failure to a minimal
//! sequence. `PROPTEST_CASES` sets the number of sequences.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use asebytes_daemon::backend::memory::MemoryBackend;
use asebytes_daemon::backend::{Backend, OpenOptions};
use asebytes_daemon::store::StoreHandle;
use asebytes_protocol::request::GetMany;
use asebytes_protocol::{ErrorCode, Key, Request, Response, Row, WireError};
use asebytes_tests::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

pub fn trials(fx: &BackendFixture, out: &mut Vec<Trial>) {
    register!(fx, out;
        test_random_operations_match_the_memory_oracle;
        test_random_operations_on_a_large_store_match_the_memory_oracle;
    );
}

const KEYS: [&str; 4] = ["a", "b", "calc.energy", "arrays.positions"];

fn key() -> impl Strategy<Value = Key> {
    prop::sample::select(&KEYS[..]).prop_map(k)
}

fn fields() -> impl Strategy<Value = Row> {
    // Up to 4 fields, keys may repeat (last value wins), values are short byte strings.
    prop::collection::vec((key(), prop::collection::vec(any::<u8>(), 0..4)), 0..4).prop_map(|fs| {
        fs.into_iter()
            .map(|(k, v)| (k, serde_bytes::ByteBuf::from(v)))
            .collect()
    })
}

fn row() -> impl Strategy<Value = Option<Row>> {
    prop::option::weighted(0.8, fields())
}

/// Indices around a store of about `span` rows: in range, negative, and out of range.
fn index(span: i64) -> impl Strategy<Value = i64> {
    -(span + 2)..(span + 2)
}

fn key_list() -> impl Strategy<Value = Option<Vec<&'static str>>> {
    prop::option::of(prop::collection::vec(prop::sample::select(&KEYS[..]), 0..3))
}

fn request(span: i64) -> impl Strategy<Value = Request> {
    let index = move || index(span);
    let bound = (span + 2) as u64;
    prop_oneof![
        4 => prop::collection::vec(row(), 0..4).prop_map(extend),
        2 => (index(), row()).prop_map(|(i, r)| insert(i, r)),
        2 => (index(), row()).prop_map(|(i, r)| set(i, r)),
        1 => (prop::collection::vec(index(), 0..3), prop::collection::vec(row(), 0..3))
            .prop_map(|(i, r)| set_many(i, r)),
        2 => (index(), fields()).prop_map(|(i, d)| update(i, d)),
        1 => (prop::collection::vec(index(), 0..3), prop::collection::vec(fields(), 0..3))
            .prop_map(|(i, d)| update_many(i, d)),
        2 => index().prop_map(delete),
        1 => (0..bound, 0..bound).prop_map(|(a, b)| delete_range(a, b)),
        1 => (prop::collection::vec(prop::sample::select(&KEYS[..]), 0..3), prop::option::of(prop::collection::vec(index(), 0..3)))
            .prop_map(|(ks, ix)| drop_keys(&ks, ix)),
        1 => (0u64..3).prop_map(reserve),
        1 => Just(clear()),
        2 => (index(), key_list()).prop_map(|(i, ks)| match ks {
            Some(ks) => get_keys(i, &ks),
            None => get(i),
        }),
        2 => (prop::collection::vec(index(), 0..4), key_list(), any::<bool>()).prop_map(|(ix, ks, missing_ok)| {
            Request::GetMany(GetMany { store: 0, indices: ix, keys: ks.map(|ks| asebytes_tests::ks(&ks)), missing_ok })
        }),
        2 => (prop::sample::select(&KEYS[..]), prop::option::of(prop::collection::vec(index(), 0..4)))
            .prop_map(|(key, ix)| get_column(key, ix)),
        1 => index().prop_map(keys),
        1 => Just(len()),
        1 => Just(schema()),
    ]
}

/// What must agree between oracle and backend: row field order may differ per backend
/// (sorted or as written), and so may the order `Keys` lists a row's keys in.
#[derive(Debug, PartialEq)]
enum Answer {
    Plain(Response),
    Row(Option<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>),
    Rows(Vec<Option<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>>),
    Keys(Vec<Key>),
    Error(WireError),
}

fn answer(req: &Request, resp: Response) -> Answer {
    match resp {
        // A refusal names its backend; the oracle is another backend.
        Response::Error(mut e) if e.code == ErrorCode::Unsupported => {
            e.message.clear();
            Answer::Error(e)
        }
        Response::Error(e) => Answer::Error(e),
        // A projection keeps the requested order on every backend; a whole row need not.
        Response::Row(row) if matches!(req, Request::Get(g) if g.keys.is_none()) => {
            Answer::Row(canon(row))
        }
        Response::Rows(rows) if matches!(req, Request::GetMany(g) if g.keys.is_none()) => {
            Answer::Rows(rows.into_iter().map(canon).collect())
        }
        Response::Keys(mut keys) if matches!(req, Request::Keys(_)) => {
            keys.sort();
            Answer::Keys(keys)
        }
        other => Answer::Plain(other),
    }
}

/// Rows written to both stores before a sequence starts; more than one LMDB block (1024
/// rows) so inserts and deletes cross block boundaries.
fn prefill(rows: usize) -> Vec<Option<Row>> {
    (0..rows)
        .map(|i| match i % 7 {
            0 => None,
            1 => Some(r(&[("b", &i.to_string())])),
            _ => Some(r(&[("a", &i.to_string()), ("calc.energy", "e")])),
        })
        .collect()
}

fn run_sequence(
    fx: &BackendFixture,
    name: &str,
    prefilled: usize,
    requests: &[Request],
) -> Result<(), TestCaseError> {
    let fail = |e: Failed| TestCaseError::fail(e.message().unwrap_or("failed").to_string());
    let subject = Harness::new(fx).map_err(fail)?;
    let opts = OpenOptions {
        path: name.into(),
        group: "default".into(),
        readonly: false,
        options: Default::default(),
    };
    let memory = MemoryBackend::open(&opts).map_err(|e| fail(format!("oracle: {e}").into()))?;
    // Narrowed to the subject's capabilities, so both refuse the same requests.
    let oracle = StoreHandle::spawn(Box::new(WithCaps::new(Box::new(memory), fx.caps)))
        .map_err(|e| fail(format!("oracle spawn: {e}").into()))?;
    if prefilled > 0 {
        prop_assert_eq!(
            subject.exec(extend(prefill(prefilled))),
            Response::Len(prefilled as u64)
        );
        prop_assert_eq!(
            oracle.execute(extend(prefill(prefilled)), false),
            Response::Len(prefilled as u64)
        );
    }
    let result = (|| {
        for (step, req) in requests.iter().enumerate() {
            let want = answer(req, oracle.execute(req.clone(), false));
            let got = answer(req, subject.exec(req.clone()));
            // A schema answer is checked with the contents below (keys no row has any
            // more are the backend's to keep or not).
            if !matches!(req, Request::Schema(_)) {
                prop_assert_eq!(&got, &want, "step {}: {:?}", step, req);
            }
            let want = contents(&oracle).map_err(fail)?;
            let got = subject.contents().map_err(fail)?;
            prop_assert_eq!(&got.rows, &want.rows, "rows after step {}: {:?}", step, req);
            // A schema names every key a row has and nothing never written; keeping keys
            // no row has any more is up to the backend (Redis keeps no schema).
            let present: BTreeSet<&Vec<u8>> =
                got.rows.iter().flatten().flat_map(|r| r.keys()).collect();
            let listed: BTreeSet<&Vec<u8>> = got.schema.iter().collect();
            let ever: BTreeSet<&Vec<u8>> = want.schema.iter().collect();
            prop_assert!(
                present.is_subset(&listed) && listed.is_subset(&ever),
                "schema after step {} ({:?}): {:?}, rows have {:?}, written ever {:?}",
                step,
                req,
                listed,
                present,
                ever
            );
        }
        Ok(())
    })();
    // The oracle is a memory store that would live as long as the process.
    let _ = oracle.shutdown();
    if let Ok(mut memory) = MemoryBackend::open(&opts) {
        let _ = memory.remove();
    }
    result
}

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

fn run_oracle(
    fx: &BackendFixture,
    cases: u32,
    prefilled: usize,
    steps: usize,
) -> Result<(), Failed> {
    let counter = AtomicU64::new(0);
    let span = prefilled as i64 + 8;
    runner(cases)
        .run(
            &prop::collection::vec(request(span), 1..steps),
            |requests| {
                let case = counter.fetch_add(1, Ordering::Relaxed);
                let name = format!(
                    "oracle-{}-{prefilled}-{}-{case}",
                    fx.name,
                    std::process::id()
                );
                run_sequence(fx, &name, prefilled, &requests)
            },
        )
        .map_err(|e| Failed::from(format!("{e}")))
}

/// Sequences to run on `fx`: `PROPTEST_CASES` (default 64), a quarter on a slow test server.
fn cases_for(fx: &BackendFixture) -> u32 {
    let n = cases(64);
    if fx.slow { n.div_ceil(4) } else { n }
}

fn test_random_operations_match_the_memory_oracle(fx: &BackendFixture) -> Result<(), Failed> {
    run_oracle(fx, cases_for(fx), 0, 40)
}

fn test_random_operations_on_a_large_store_match_the_memory_oracle(
    fx: &BackendFixture,
) -> Result<(), Failed> {
    run_oracle(fx, cases_for(fx).div_ceil(8), 2100, 24)
}
