//! Writes: `Extend`, `Insert`, `Set`, `SetMany`, `Update`, `UpdateMany`, `Delete`,
//! `DeleteRange`, `Reserve`, `Clear`, `Remove`; their lengths, shifting, clamping and
//! placeholder rules (CONTRACT.md "Indexing", "Rows and values" and "Writes").

use asebytes_protocol::{ErrorCode, Response};
use asebytes_tests::*;

pub fn trials(fx: &BackendFixture, out: &mut Vec<Trial>) {
    register!(fx, out;
        test_extend_returns_new_len;
        test_extend_empty_returns_current_len;
        test_extend_none_and_empty_rows_are_placeholders;
        test_extend_repeated_key_keeps_last_value;
        test_extend_many_rows_in_one_request;
        test_insert_in_the_middle_shifts_later_rows needs write_can_insert;
        test_insert_negative_index needs write_can_insert;
        test_insert_clamps_like_list_insert needs write_can_insert;
        test_insert_placeholder needs write_can_insert;
        test_set_replaces_a_row needs write_can_set;
        test_set_negative_index needs write_can_set;
        test_set_at_len_appends_beyond_is_out_of_range needs write_can_set;
        test_set_none_or_empty_makes_a_placeholder needs write_can_set;
        test_set_many_replaces_rows needs write_can_set;
        test_update_merges_keys needs write_can_update;
        test_update_adds_new_keys_to_schema needs write_can_update;
        test_update_placeholder_becomes_a_row needs write_can_update;
        test_update_empty_data_is_a_no_op_but_bounds_checked needs write_can_update;
        test_update_many_merges_per_row needs write_can_update;
        test_delete_shifts_later_rows needs write_can_delete;
        test_delete_negative_index needs write_can_delete;
        test_delete_range_shifts_later_rows needs write_can_delete;
        test_delete_range_empty_and_full needs write_can_delete;
        test_reserve_appends_placeholders;
        test_clear_empties_the_store;
        test_remove_drops_the_store needs write_can_remove;
    );
}

fn tags(h: &Harness) -> Result<Vec<Option<String>>, Failed> {
    let n = h.len()? as i64;
    let rows = as_rows(h.ok(get_many((0..n).collect(), None))?)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            row.map(|row| {
                row.into_iter()
                    .find(|(k, _)| k.as_slice() == b"id")
                    .map_or_else(
                        || "?".to_string(),
                        |(_, v)| String::from_utf8_lossy(&v).into_owned(),
                    )
            })
        })
        .collect())
}

fn t(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn abc(h: &Harness) -> Result<(), Failed> {
    check_eq(
        "extend",
        h.extend(vec![
            Some(tagged("a")),
            Some(tagged("b")),
            Some(tagged("c")),
        ])?,
        3,
    )
}

fn test_extend_returns_new_len(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    check_eq("first", h.extend(ethanol_rows(1, 3))?, 3)?;
    check_eq("second", h.extend(ethanol_rows(2, 4))?, 7)?;
    check_eq("len", h.len()?, 7)
}

fn test_extend_empty_returns_current_len(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    check_eq("empty store", h.extend(vec![])?, 0)?;
    abc(&h)?;
    check_eq("filled store", h.extend(vec![])?, 3)
}

fn test_extend_none_and_empty_rows_are_placeholders(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![None, Some(vec![]), Some(tagged("x"))])?;
    check_eq("none", h.row(0)?, None)?;
    check_eq("empty row", h.row(1)?, None)?;
    check_eq("keys of empty row", as_keys(h.ok(keys(1))?)?, vec![])
}

fn test_extend_repeated_key_keeps_last_value(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1"), ("b", "2"), ("a", "3")]))])?;
    check_eq(
        "row",
        canon(h.row(0)?),
        canon(Some(r(&[("a", "3"), ("b", "2")]))),
    )
}

fn test_extend_many_rows_in_one_request(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let rows = ethanol_rows(5, 3000);
    check_eq("len", h.extend(rows.clone())?, 3000)?;
    let got = h.contents()?;
    check_eq("rows", got.rows, rows.into_iter().map(canon).collect())
}

fn test_insert_in_the_middle_shifts_later_rows(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    check_eq(
        "insert(1)",
        h.ok(insert(1, Some(tagged("x"))))?,
        Response::Len(4),
    )?;
    check_eq("order", tags(&h)?, vec![t("a"), t("x"), t("b"), t("c")])
}

fn test_insert_negative_index(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    h.ok(insert(-1, Some(tagged("x"))))?;
    check_eq("order", tags(&h)?, vec![t("a"), t("b"), t("x"), t("c")])
}

fn test_insert_clamps_like_list_insert(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    check_eq(
        "insert(-100)",
        h.ok(insert(-100, Some(tagged("lo"))))?,
        Response::Len(4),
    )?;
    check_eq(
        "insert(100)",
        h.ok(insert(100, Some(tagged("hi"))))?,
        Response::Len(5),
    )?;
    check_eq(
        "insert(len)",
        h.ok(insert(5, Some(tagged("end"))))?,
        Response::Len(6),
    )?;
    check_eq(
        "insert(i64::MIN)",
        h.ok(insert(i64::MIN, Some(tagged("min"))))?,
        Response::Len(7),
    )?;
    check_eq(
        "order",
        tags(&h)?,
        vec![t("min"), t("lo"), t("a"), t("b"), t("c"), t("hi"), t("end")],
    )?;
    let fresh = Harness::new(fx)?;
    check_eq(
        "insert into empty",
        fresh.ok(insert(3, Some(tagged("only"))))?,
        Response::Len(1),
    )
}

fn test_insert_placeholder(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    h.ok(insert(0, None))?;
    h.ok(insert(2, Some(vec![])))?;
    check_eq("order", tags(&h)?, vec![None, t("a"), None, t("b"), t("c")])
}

fn test_set_replaces_a_row(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    check_eq(
        "set",
        h.ok(set(1, Some(r(&[("id", "B"), ("new", "1")]))))?,
        Response::Ok,
    )?;
    check_eq(
        "row",
        canon(h.row(1)?),
        canon(Some(r(&[("id", "B"), ("new", "1")]))),
    )?;
    check_eq("order", tags(&h)?, vec![t("a"), t("B"), t("c")])
}

fn test_set_negative_index(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    h.ok(set(-1, Some(tagged("C"))))?;
    h.ok(set(-3, Some(tagged("A"))))?;
    check_eq("order", tags(&h)?, vec![t("A"), t("b"), t("C")])
}

fn test_set_at_len_appends_beyond_is_out_of_range(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    let e = h.err(set(4, Some(tagged("d"))), ErrorCode::IndexOutOfRange)?;
    check_eq("message", e.message.as_str(), "Index 4 out of range [0, 3)")?;
    h.err(set(10, Some(tagged("d"))), ErrorCode::IndexOutOfRange)?;
    h.err(set(-4, None), ErrorCode::IndexOutOfRange)?;
    h.err(
        set_many(vec![3], vec![Some(tagged("d"))]),
        ErrorCode::IndexOutOfRange,
    )?;
    check_eq("len unchanged (no gap fill)", h.len()?, 3)?;
    h.ok(set(3, Some(tagged("d"))))?;
    check_eq(
        "set at len appends",
        tags(&h)?,
        vec![t("a"), t("b"), t("c"), t("d")],
    )?;
    let empty = Harness::new(fx)?;
    empty.ok(set(0, None))?;
    check_eq("set(0) on an empty store appends", empty.len()?, 1)?;
    empty.err(set(2, None), ErrorCode::IndexOutOfRange)?;
    check_eq("nothing gap-filled", empty.len()?, 1)
}

fn test_set_none_or_empty_makes_a_placeholder(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    h.ok(set(0, None))?;
    h.ok(set(2, Some(vec![])))?;
    check_eq("order", tags(&h)?, vec![None, t("b"), None])
}

fn test_set_many_replaces_rows(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    let resp = h.ok(set_many(
        vec![2, -3, 1],
        vec![Some(tagged("C")), Some(tagged("A")), None],
    ))?;
    check_eq("response", resp, Response::Ok)?;
    check_eq("order", tags(&h)?, vec![t("A"), None, t("C")])?;
    h.ok(set_many(
        vec![0, 0],
        vec![Some(tagged("first")), Some(tagged("last"))],
    ))?;
    check_eq("repeated index: last wins", tags(&h)?[0].clone(), t("last"))?;
    check_eq("empty", h.ok(set_many(vec![], vec![]))?, Response::Ok)
}

fn test_update_merges_keys(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1"), ("b", "2")]))])?;
    check_eq(
        "update",
        h.ok(update(-1, r(&[("b", "20"), ("c", "30")])))?,
        Response::Ok,
    )?;
    check_eq(
        "row",
        canon(h.row(0)?),
        canon(Some(r(&[("a", "1"), ("b", "20"), ("c", "30")]))),
    )
}

fn test_update_adds_new_keys_to_schema(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1")]))])?;
    h.ok(update(0, r(&[("calc.stress", "s")])))?;
    check_eq(
        "schema",
        as_keys(h.ok(schema())?)?,
        vec!["a".to_string(), "calc.stress".to_string()],
    )
}

fn test_update_placeholder_becomes_a_row(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![None])?;
    h.ok(update(0, r(&[("a", "1")])))?;
    check_eq("row", h.row(0)?, Some(r(&[("a", "1")])))
}

fn test_update_empty_data_is_a_no_op_but_bounds_checked(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1")])), None])?;
    let before = h.contents()?;
    check_eq("empty update", h.ok(update(0, vec![]))?, Response::Ok)?;
    check_eq(
        "empty update of placeholder",
        h.ok(update(1, vec![]))?,
        Response::Ok,
    )?;
    check_eq("unchanged", h.contents()?, before)?;
    let e = h.err(update(2, vec![]), ErrorCode::IndexOutOfRange)?;
    check_eq("message", e.message.as_str(), "Index 2 out of range [0, 2)")
}

fn test_update_many_merges_per_row(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(r(&[("a", "1")])), None, Some(r(&[("a", "3")]))])?;
    let resp = h.ok(update_many(
        vec![0, 1, -1],
        vec![r(&[("e", "x")]), r(&[("e", "y")]), vec![]],
    ))?;
    check_eq("response", resp, Response::Ok)?;
    let want = vec![
        Some(r(&[("a", "1"), ("e", "x")])),
        Some(r(&[("e", "y")])),
        Some(r(&[("a", "3")])),
    ];
    check_eq(
        "rows",
        h.contents()?.rows,
        want.into_iter().map(canon).collect(),
    )
}

fn test_delete_shifts_later_rows(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    check_eq("delete(1)", h.ok(delete(1))?, Response::Len(2))?;
    check_eq("order", tags(&h)?, vec![t("a"), t("c")])?;
    let e = h.err(delete(2), ErrorCode::IndexOutOfRange)?;
    check_eq("message", e.message.as_str(), "Index 2 out of range [0, 2)")
}

fn test_delete_negative_index(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    check_eq("delete(-1)", h.ok(delete(-1))?, Response::Len(2))?;
    check_eq("delete(-2)", h.ok(delete(-2))?, Response::Len(1))?;
    check_eq("order", tags(&h)?, vec![t("b")])?;
    h.err(delete(-2), ErrorCode::IndexOutOfRange).map(drop)
}

fn test_delete_range_shifts_later_rows(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    let rows: Vec<_> = (0..6).map(|i| Some(tagged(&i.to_string()))).collect();
    h.extend(rows)?;
    check_eq(
        "delete_range(1, 4)",
        h.ok(delete_range(1, 4))?,
        Response::Len(3),
    )?;
    check_eq("order", tags(&h)?, vec![t("0"), t("4"), t("5")])?;
    check_eq(
        "get(1) is the old row 4",
        canon(h.row(1)?),
        canon(Some(tagged("4"))),
    )
}

fn test_delete_range_empty_and_full(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    abc(&h)?;
    check_eq("empty range", h.ok(delete_range(2, 2))?, Response::Len(3))?;
    check_eq(
        "empty range at len",
        h.ok(delete_range(3, 3))?,
        Response::Len(3),
    )?;
    check_eq("full range", h.ok(delete_range(0, 3))?, Response::Len(0))?;
    check_eq("extend after", h.extend(vec![Some(tagged("z"))])?, 1)
}

fn test_reserve_appends_placeholders(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(vec![Some(tagged("a"))])?;
    check_eq("reserve(3)", h.ok(reserve(3))?, Response::Len(4))?;
    check_eq("reserve(0)", h.ok(reserve(0))?, Response::Len(4))?;
    check_eq("order", tags(&h)?, vec![t("a"), None, None, None])
}

fn test_clear_empties_the_store(fx: &BackendFixture) -> Result<(), Failed> {
    let h = Harness::new(fx)?;
    h.extend(ethanol_rows(9, 5))?;
    check_eq("clear", h.ok(clear())?, Response::Ok)?;
    check_eq("len", h.len()?, 0)?;
    h.err(get(0), ErrorCode::IndexOutOfRange)?;
    check_eq(
        "extend after clear",
        h.extend(vec![Some(tagged("new"))])?,
        1,
    )?;
    check_eq("row", canon(h.row(0)?), canon(Some(tagged("new"))))
}

fn test_remove_drops_the_store(fx: &BackendFixture) -> Result<(), Failed> {
    let mut h = Harness::new(fx)?;
    h.extend(ethanol_rows(4, 3))?;
    check_eq("remove", h.ok(remove())?, Response::Ok)?;
    let e = h.err(len(), ErrorCode::UnknownStore)?;
    check_eq("message", e.message.as_str(), "store was removed")?;
    h.err(extend(vec![None]), ErrorCode::UnknownStore)?;
    h.reopen()?;
    check_eq("re-opened store is empty", h.len()?, 0)
}
