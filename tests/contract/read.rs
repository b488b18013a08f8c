//! Reads: `Len`, `Get`, `GetMany`, `Keys`, `Schema`; negative indices, bounds, key
//! strictness and placeholders (CONTRACT.md "Indexing" and "Rows and values").

use asebytes_protocol::{ErrorCode, Response};
use asebytes_tests::*;

pub fn trials(fx: &BackendFixture, out: &mut Vec<Trial>) {
    register!(fx, out;
        test_len_of_new_store_is_zero;
        test_get_returns_rows_as_written;
        test_get_negative_index;
        test_get_out_of_range_reports_index_and_len;
        test_get_on_empty_store_is_out_of_range;
        test_get_placeholder_is_none;
        test_get_with_keys_returns_exactly_those_keys_in_order needs read_with_keys;
        test_get_with_missing_key_is_not_found needs read_with_keys;
        test_get_with_keys_on_placeholder_is_none needs read_with_keys;
        test_get_with_empty_keys_returns_empty_row needs read_with_keys;
        test_get_with_keys_out_of_range needs read_with_keys;
        test_get_many_in_requested_order_with_duplicates_and_negatives;
        test_get_many_out_of_range_fails_whole_request;
        test_get_many_empty_indices;
        test_get_many_with_keys_is_strict needs read_with_keys;
        test_get_many_missing_ok_leaves_absent_keys_out needs read_with_keys;
        test_keys_lists_the_keys_of_a_row;
        test_keys_of_placeholder_is_empty;
        test_keys_out_of_range;
        test_schema_is_sorted_union_of_keys;
        test_schema_of_empty_store_is_empty;
        test_read_your_writes_across_threads;
    );
}

fn three(h: &Harness) -> Result<(), Failed> {
    check_eq(
        "extend",
        h.extend(vec![
            Some(tagged("0")),
            Some(tagged("1")),
            Some(tagged("2")),
        ])?,
        3,
    )
}

fn test_len_of_new_store_is_zero(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    check_eq("len", h.ok(len())?, Response::Len(0))
}

fn test_get_returns_rows_as_written(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let rows = ethanol_rows(11, 20);
    h.extend(rows.clone())?;
    for (i, want) in rows.into_iter().enumerate() {
        check_eq(&format!("row {i}"), canon(h.row(i as i64)?), canon(want))?;
    }
    Ok(())
}

fn test_get_negative_index(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    three(&h)?;
    check_eq("get(-1)", canon(h.row(-1)?), canon(Some(tagged("2"))))?;
    check_eq("get(-3)", canon(h.row(-3)?), canon(Some(tagged("0"))))
}

fn test_get_out_of_range_reports_index_and_len(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    three(&h)?;
    for index in [3, 7, -4, i64::MIN, i64::MAX] {
        let e = h.err(get(index), ErrorCode::IndexOutOfRange)?;
        check_eq(
            "message",
            e.message.as_str(),
            format!("Index {index} out of range [0, 3)").as_str(),
        )?;
        check_eq("index field", e.index, Some(index))?;
        check_eq("len field", e.len, Some(3))?;
    }
    Ok(())
}

fn test_get_on_empty_store_is_out_of_range(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let e = h.err(get(0), ErrorCode::IndexOutOfRange)?;
    check_eq("message", e.message.as_str(), "Index 0 out of range [0, 0)")?;
    h.err(get(-1), ErrorCode::IndexOutOfRange).map(drop)
}

fn test_get_placeholder_is_none(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![None, Some(tagged("a"))])?;
    check_eq("get(0)", h.row(0)?, None)?;
    check_eq("get(-2)", h.row(-2)?, None)
}

fn test_get_with_keys_returns_exactly_those_keys_in_order(
    fx: &BackendFixture,
) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1"), ("b", "2"), ("c", "3")]))])?;
    check_eq(
        "c,a",
        as_row(h.ok(get_keys(0, &["c", "a"]))?)?,
        Some(r(&[("c", "3"), ("a", "1")])),
    )?;
    check_eq(
        "b",
        as_row(h.ok(get_keys(-1, &["b"]))?)?,
        Some(r(&[("b", "2")])),
    )?;
    check_eq(
        "repeated key",
        as_row(h.ok(get_keys(0, &["b", "b"]))?)?,
        Some(r(&[("b", "2")])),
    )
}

fn test_get_with_missing_key_is_not_found(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1")])), Some(r(&[("a", "1")]))])?;
    let e = h.err(get_keys(-1, &["a", "nope", "zz"]), ErrorCode::NotFound)?;
    check_eq(
        "message",
        e.message.as_str(),
        "Invalid keys at index -1: ['nope', 'zz']",
    )?;
    check_eq(
        "keys field",
        e.keys,
        Some(vec!["nope".to_string(), "zz".to_string()]),
    )
}

fn test_get_with_keys_on_placeholder_is_none(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![None])?;
    check_eq(
        "placeholder",
        as_row(h.ok(get_keys(0, &["anything"]))?)?,
        None,
    )
}

fn test_get_with_empty_keys_returns_empty_row(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(tagged("a")), None])?;
    check_eq("real row", as_row(h.ok(get_keys(0, &[]))?)?, Some(vec![]))?;
    check_eq("placeholder", as_row(h.ok(get_keys(1, &[]))?)?, None)
}

fn test_get_with_keys_out_of_range(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    three(&h)?;
    let e = h.err(get_keys(-4, &["id"]), ErrorCode::IndexOutOfRange)?;
    check_eq(
        "message",
        e.message.as_str(),
        "Index -4 out of range [0, 3)",
    )
}

fn test_get_many_in_requested_order_with_duplicates_and_negatives(
    fx: &BackendFixture,
) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(tagged("0")), None, Some(tagged("2"))])?;
    let rows = as_rows(h.ok(get_many(vec![2, -3, 2, 1, -1], None))?)?;
    let want = [
        Some(tagged("2")),
        Some(tagged("0")),
        Some(tagged("2")),
        None,
        Some(tagged("2")),
    ];
    check_eq(
        "rows",
        rows.into_iter().map(canon).collect::<Vec<_>>(),
        want.into_iter().map(canon).collect(),
    )
}

fn test_get_many_out_of_range_fails_whole_request(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    three(&h)?;
    let e = h.err(
        get_many(vec![0, 1, -9, 2], None),
        ErrorCode::IndexOutOfRange,
    )?;
    check_eq(
        "message",
        e.message.as_str(),
        "Index -9 out of range [0, 3)",
    )?;
    check_eq("index field", e.index, Some(-9))
}

fn test_get_many_empty_indices(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    check_eq(
        "empty store",
        h.ok(get_many(vec![], None))?,
        Response::Rows(vec![]),
    )?;
    three(&h)?;
    check_eq(
        "filled store",
        h.ok(get_many(vec![], None))?,
        Response::Rows(vec![]),
    )?;
    if fx.caps.read_with_keys {
        let with_keys = h.ok(get_many(vec![], Some(&["id"])))?;
        check_eq("with keys", with_keys, Response::Rows(vec![]))?;
    }
    Ok(())
}

fn test_get_many_with_keys_is_strict(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![
        Some(r(&[("a", "1"), ("b", "2")])),
        None,
        Some(r(&[("a", "3")])),
    ])?;
    let e = h.err(
        get_many(vec![0, 1, -1], Some(&["b", "a"])),
        ErrorCode::NotFound,
    )?;
    check_eq(
        "message",
        e.message.as_str(),
        "Invalid keys at index -1: ['b']",
    )?;
    check_eq("keys field", e.keys, Some(vec!["b".to_string()]))?;
    let rows = as_rows(h.ok(get_many(vec![0, 1], Some(&["b", "a"])))?)?;
    check_eq(
        "projected",
        rows,
        vec![Some(r(&[("b", "2"), ("a", "1")])), None],
    )
}

fn test_get_many_missing_ok_leaves_absent_keys_out(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![
        Some(r(&[("a", "1"), ("b", "2")])),
        None,
        Some(r(&[("a", "3")])),
        Some(r(&[("c", "4")])),
    ])?;
    let rows = as_rows(h.ok(get_many_missing_ok(vec![0, 1, 2, 3], &["b", "a"]))?)?;
    let want = vec![
        Some(r(&[("b", "2"), ("a", "1")])),
        None,
        Some(r(&[("a", "3")])),
        Some(vec![]),
    ];
    check_eq("rows", rows, want)
}

fn test_keys_lists_the_keys_of_a_row(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![
        Some(r(&[("b", "1"), ("a", "2")])),
        Some(r(&[("c", "3")])),
    ])?;
    let mut got = as_keys(h.ok(keys(0))?)?;
    got.sort();
    check_eq("keys(0)", got, vec!["a".to_string(), "b".to_string()])?;
    check_eq("keys(-1)", as_keys(h.ok(keys(-1))?)?, vec!["c".to_string()])
}

fn test_keys_of_placeholder_is_empty(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![None])?;
    check_eq("keys", as_keys(h.ok(keys(0))?)?, vec![])
}

fn test_keys_out_of_range(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    three(&h)?;
    let e = h.err(keys(3), ErrorCode::IndexOutOfRange)?;
    check_eq("message", e.message.as_str(), "Index 3 out of range [0, 3)")?;
    h.err(keys(-4), ErrorCode::IndexOutOfRange).map(drop)
}

fn test_schema_is_sorted_union_of_keys(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![
        Some(r(&[("z", "1"), ("b", "2")])),
        None,
        Some(r(&[("a", "3"), ("b", "4")])),
    ])?;
    h.extend(ethanol_rows(3, 4))?;
    let got = as_keys(h.ok(schema())?)?;
    let mut want: Vec<String> = ["z", "b", "a"].iter().map(|s| s.to_string()).collect();
    for row in ethanol_rows(3, 4).into_iter().flatten() {
        want.extend(
            row.into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k).into_owned()),
        );
    }
    want.sort();
    want.dedup();
    check_eq("schema", got, want)
}

fn test_schema_of_empty_store_is_empty(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    check_eq("schema", as_keys(h.ok(schema())?)?, vec![])
}

/// A write acknowledged to one thread is visible to the next read of any other thread.
fn test_read_your_writes_across_threads(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let (tx, rx) = std::sync::mpsc::channel::<(u64, String)>();
    let writer = h.store.clone();
    let handle = std::thread::spawn(move || {
        for i in 0..50 {
            let tag = format!("w{i}");
            if let Response::Len(n) = writer.execute(extend(vec![Some(tagged(&tag))]), false) {
                let _ = tx.send((n, tag));
            }
        }
    });
    let mut seen = 0;
    for (n, tag) in rx {
        check_eq(
            "row just acknowledged",
            canon(h.row(n as i64 - 1)?),
            canon(Some(tagged(&tag))),
        )?;
        ensure!(h.len()? >= n, "len went below an acknowledged length {n}");
        seen += 1;
    }
    handle.join().map_err(|_| "writer thread panicked")?;
    check_eq("acknowledged writes", seen, 50)
}
