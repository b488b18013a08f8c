//! Columns: `GetColumn` (holes, placeholders, unknown keys), column writes through
//! `UpdateMany`, and `DropKeys` (CONTRACT.md "Rows and values", "Writes").

use asebytes_protocol::{ErrorCode, Response};
use asebytes_tests::*;

pub fn trials(fx: &BackendFixture, out: &mut Vec<Trial>) {
    register!(fx, out;
        test_get_column_over_all_rows;
        test_get_column_with_indices_in_order_and_negative;
        test_get_column_row_without_the_key_gives_none;
        test_get_column_placeholders_give_none;
        test_get_column_key_no_row_has_is_not_found;
        test_get_column_of_only_placeholders_is_all_none;
        test_get_column_empty_selection;
        test_get_column_out_of_range;
        test_update_many_writes_a_column needs write_can_update;
        test_drop_keys_from_every_row needs write_can_drop_keys;
        test_drop_keys_from_selected_rows needs write_can_drop_keys;
        test_drop_keys_emptying_a_row_makes_a_placeholder needs write_can_drop_keys;
        test_drop_keys_absent_keys_are_ignored needs write_can_drop_keys;
        test_drop_keys_out_of_range_changes_nothing needs write_can_drop_keys;
    );
}

fn v(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn energies(h: &Harness) -> Result<(), Failed> {
    let rows = vec![
        Some(r(&[("calc.energy", "1"), ("id", "a")])),
        Some(r(&[("id", "b")])),
        None,
        Some(r(&[("calc.energy", "4")])),
    ];
    check_eq("extend", h.extend(rows)?, 4)
}

fn test_get_column_over_all_rows(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let rows = ethanol_rows(21, 30);
    h.extend(rows.clone())?;
    let want: Vec<Option<Vec<u8>>> = rows
        .iter()
        .flatten()
        .map(|row| {
            row.iter()
                .find(|(k, _)| k.as_slice() == b"calc.energy")
                .map(|(_, v)| v.to_vec())
        })
        .collect();
    check_eq(
        "column",
        as_column(h.ok(get_column("calc.energy", None))?)?,
        want,
    )
}

fn test_get_column_with_indices_in_order_and_negative(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    energies(&h)?;
    let got = as_column(h.ok(get_column("calc.energy", Some(vec![-1, 0, 3, 0])))?)?;
    check_eq("column", got, vec![v("4"), v("1"), v("4"), v("1")])
}

fn test_get_column_row_without_the_key_gives_none(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    energies(&h)?;
    let got = as_column(h.ok(get_column("id", None))?)?;
    check_eq("column", got, vec![v("a"), v("b"), None, None])
}

fn test_get_column_placeholders_give_none(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    energies(&h)?;
    let got = as_column(h.ok(get_column("calc.energy", Some(vec![2, 1, 0])))?)?;
    check_eq("column", got, vec![None, None, v("1")])
}

fn test_get_column_key_no_row_has_is_not_found(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    energies(&h)?;
    let e = h.err(get_column("calc.nope", None), ErrorCode::NotFound)?;
    check_eq("message", e.message.as_str(), "calc.nope")?;
    check_eq("keys field", e.keys, Some(vec!["calc.nope".to_string()]))?;
    // Known elsewhere, absent from every selected real row: still a missing key.
    let e = h.err(get_column("id", Some(vec![3, 2])), ErrorCode::NotFound)?;
    check_eq("keys field", e.keys, Some(vec!["id".to_string()]))
}

fn test_get_column_of_only_placeholders_is_all_none(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![None, None, Some(tagged("x"))])?;
    let got = as_column(h.ok(get_column("anything", Some(vec![0, 1])))?)?;
    check_eq("column", got, vec![None, None])
}

fn test_get_column_empty_selection(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    check_eq(
        "empty store",
        h.ok(get_column("k", None))?,
        Response::Column(vec![]),
    )?;
    energies(&h)?;
    check_eq(
        "no indices",
        h.ok(get_column("k", Some(vec![])))?,
        Response::Column(vec![]),
    )
}

fn test_get_column_out_of_range(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    energies(&h)?;
    let e = h.err(
        get_column("calc.energy", Some(vec![0, 4])),
        ErrorCode::IndexOutOfRange,
    )?;
    check_eq("message", e.message.as_str(), "Index 4 out of range [0, 4)")?;
    h.err(
        get_column("calc.energy", Some(vec![-5])),
        ErrorCode::IndexOutOfRange,
    )
    .map(drop)
}

fn test_update_many_writes_a_column(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    energies(&h)?;
    let data = (0..4)
        .map(|i| r(&[("calc.stress", &format!("s{i}"))]))
        .collect();
    h.ok(update_many(vec![0, 1, 2, 3], data))?;
    let got = as_column(h.ok(get_column("calc.stress", None))?)?;
    check_eq("column", got, vec![v("s0"), v("s1"), v("s2"), v("s3")])?;
    check_eq(
        "untouched column",
        as_column(h.ok(get_column("calc.energy", None))?)?,
        vec![v("1"), None, None, v("4")],
    )
}

fn test_drop_keys_from_every_row(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![
        Some(r(&[("a", "1"), ("b", "2")])),
        None,
        Some(r(&[("b", "3"), ("c", "4")])),
    ])?;
    check_eq("drop", h.ok(drop_keys(&["b"], None))?, Response::Ok)?;
    let want = vec![Some(r(&[("a", "1")])), None, Some(r(&[("c", "4")]))];
    check_eq(
        "rows",
        h.contents()?.rows,
        want.into_iter().map(canon).collect(),
    )?;
    h.err(get_column("b", None), ErrorCode::NotFound).map(drop)
}

fn test_drop_keys_from_selected_rows(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![
        Some(r(&[("a", "1"), ("b", "2")])),
        Some(r(&[("a", "3"), ("b", "4")])),
    ])?;
    h.ok(drop_keys(&["a"], Some(vec![-1, -1])))?;
    let want = vec![Some(r(&[("a", "1"), ("b", "2")])), Some(r(&[("b", "4")]))];
    check_eq(
        "rows",
        h.contents()?.rows,
        want.into_iter().map(canon).collect(),
    )
}

fn test_drop_keys_emptying_a_row_makes_a_placeholder(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![
        Some(r(&[("a", "1")])),
        Some(r(&[("a", "2"), ("b", "3")])),
    ])?;
    h.ok(drop_keys(&["a"], None))?;
    check_eq("row 0", h.row(0)?, None)?;
    check_eq("keys(0)", as_keys(h.ok(keys(0))?)?, vec![])?;
    if fx.caps.read_with_keys {
        check_eq("get with keys", as_row(h.ok(get_keys(0, &["a"]))?)?, None)?;
    }
    check_eq("row 1", h.row(1)?, Some(r(&[("b", "3")])))
}

fn test_drop_keys_absent_keys_are_ignored(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1")])), None])?;
    let before = h.contents()?;
    h.ok(drop_keys(&["zz", "yy"], None))?;
    h.ok(drop_keys(&[], Some(vec![0])))?;
    check_eq("rows", h.contents()?.rows, before.rows)
}

fn test_drop_keys_out_of_range_changes_nothing(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1")])), Some(r(&[("a", "2")]))])?;
    let before = h.contents()?;
    let e = h.err(
        drop_keys(&["a"], Some(vec![0, 2])),
        ErrorCode::IndexOutOfRange,
    )?;
    check_eq("message", e.message.as_str(), "Index 2 out of range [0, 2)")?;
    check_eq("contents", h.contents()?, before)
}
