"""The sync ``Store``'s reference-compatible bulk writes and ``get_column_numpy``.

Each bulk write is one request, so one transaction on the daemon: a failing element
leaves the store unchanged, and the store's commit counter moves by one.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from asebytes import _native
from asebytes.exceptions import (
    AsebytesTypeError,
    AsebytesValueError,
    IndexOutOfRangeError,
    KeyNotFoundError,
)

pytestmark = pytest.mark.usefixtures("daemon")


def mem(tier="object"):
    return _native.Store(f"memory://bulk-{uuid.uuid4().hex}", tier=tier)


def rows(s):
    return s.get_many(range(len(s)))


def commits(s):
    (st,) = [
        x for x in _native.daemon_status()["stores"] if x["canonical"] == s.canonical
    ]
    return st["commits"]


def one_transaction(s, write):
    """Runs `write` and checks it committed exactly once."""
    before = commits(s)
    write()
    assert commits(s) == before + 1


@pytest.fixture
def five():
    s = mem()
    s.extend([{"i": i} for i in range(5)])
    return s


def test_set_many_with_an_int_start_writes_consecutive_rows(five):
    one_transaction(five, lambda: five.set_many(1, [{"s": 1}, None, {"s": 3}]))
    assert rows(five) == [{"i": 0}, {"s": 1}, None, {"s": 3}, {"i": 4}]
    five.set_many(np.int64(4), [{"s": 4}])
    five.set_many(-2, [{"t": 3}])
    assert rows(five)[3:] == [{"t": 3}, {"s": 4}]
    five.set_many(2, [])
    assert len(five) == 5


def test_set_many_with_indices_and_its_atomicity(five):
    one_transaction(five, lambda: five.set_many([4, 0], [{"s": 4}, {"s": 0}]))
    assert rows(five) == [{"s": 0}, {"i": 1}, {"i": 2}, {"i": 3}, {"s": 4}]
    before = rows(five)
    with pytest.raises(IndexOutOfRangeError):
        five.set_many([1, 5], [{"x": 1}, {"x": 2}])
    with pytest.raises(IndexOutOfRangeError):
        five.set_many(4, [{"x": 1}, {"x": 2}])
    with pytest.raises(AsebytesValueError, match="set_many: 1 indices but 2 rows"):
        five.set_many([1], [{"x": 1}, {"x": 2}])
    with pytest.raises(
        AsebytesTypeError, match="start must be an integer or a sequence"
    ):
        five.set_many(1.0, [{"x": 1}])
    with pytest.raises(AsebytesTypeError, match="rows must be a sequence of dicts"):
        five.set_many(0, {"x": 1})
    assert rows(five) == before


def test_update_many_with_an_int_start_or_indices(five):
    one_transaction(five, lambda: five.update_many(3, [{"u": 3}, {"u": 4}]))
    five.update_many(np.array([0, 1]), [{"u": 0}, {"i": "one"}])
    assert rows(five) == [
        {"i": 0, "u": 0},
        {"i": "one"},
        {"i": 2},
        {"i": 3, "u": 3},
        {"i": 4, "u": 4},
    ]
    before = rows(five)
    with pytest.raises(IndexOutOfRangeError):
        five.update_many([0, 9], [{"v": 1}, {"v": 2}])
    with pytest.raises(IndexOutOfRangeError):
        five.update_many(4, [{"v": 1}, {"v": 2}])
    with pytest.raises(AsebytesValueError, match="update_many: 2 indices but 1 rows"):
        five.update_many([0, 1], [{"v": 1}])
    with pytest.raises(AsebytesTypeError, match="data must be a sequence of dicts"):
        five.update_many(0, {"v": 1})
    assert rows(five) == before


def test_set_column_with_an_int_start_or_indices(five):
    one_transaction(five, lambda: five.set_column("e", 1, [1.0, np.float32(2), None]))
    assert five.get_column("e", [1, 2, 3]) == [1.0, 2.0, None]
    assert type(five.get(2)["e"]) is np.float32
    assert five.get(3) == {"i": 3, "e": None}, "None is a value, as update({key: None})"
    five.set_column("e", [4, 0], np.array([40.0, 0.5]))
    assert five.get_column("e") == [0.5, 1.0, 2.0, None, 40.0]
    assert rows(five)[0] == {"i": 0, "e": 0.5}, "other keys stay"
    before = rows(five)
    with pytest.raises(IndexOutOfRangeError):
        five.set_column("e", [0, 7], [1.0, 2.0])
    with pytest.raises(IndexOutOfRangeError):
        five.set_column("e", 4, [1.0, 2.0])
    with pytest.raises(AsebytesValueError, match="set_column: 2 indices but 3 values"):
        five.set_column("e", [0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(AsebytesTypeError, match="for key 'e'"):
        five.set_column("e", 0, [object()])
    with pytest.raises(AsebytesTypeError, match="keys must be str"):
        five.set_column(b"e", 0, [1])
    assert rows(five) == before


def test_set_column_on_the_blob_tier_stores_bytes():
    b = mem("blob")
    b.extend([{b"k": b"0"}, {b"k": b"1"}])
    b.set_column(b"v", 0, [b"a", bytearray(b"b")])
    assert b.get_many([0, 1]) == [{b"k": b"0", b"v": b"a"}, {b"k": b"1", b"v": b"b"}]
    with pytest.raises(AsebytesTypeError, match='blob value for key "v" must be bytes'):
        b.set_column(b"v", 0, [1])


def test_delete_many_is_delete_range(five):
    assert five.delete_many(1, 3) == 3
    assert rows(five) == [{"i": 0}, {"i": 3}, {"i": 4}]
    with pytest.raises(IndexOutOfRangeError, match=r"delete_many\(-1, 2\)"):
        five.delete_many(-1, 2)


def test_get_many_returns_only_present_keys_by_default(five):
    five.update(1, {"x": 1})
    assert five.get_many([0, 1], keys=["x"]) == [{}, {"x": 1}]
    with pytest.raises(KeyNotFoundError, match=r"Invalid keys at index 0: \['x'\]"):
        five.get_many([0, 1], keys=["x"], missing_ok=False)
    with pytest.raises(KeyNotFoundError, match=r"Invalid keys at index 0: \['x'\]"):
        five.get(0, keys=["x"])


# --------------------------------------------------------------------------------------
# get_column_numpy
# --------------------------------------------------------------------------------------


def trajectory(n, atoms=3):
    rng = np.random.default_rng(7)
    return [
        {
            "calc.energy": float(rng.normal()),
            "arrays.positions": rng.normal(size=(atoms, 3)),
            "arrays.forces32": rng.normal(size=(atoms, 3)).astype(np.float32),
            "info.step": i,
            "info.ok": i % 2 == 0,
            "info.t": np.float32(i / 2),
        }
        for i in range(n)
    ]


def test_numpy_column_of_floats_and_of_arrays():
    s = mem()
    s.extend(trajectory(6, atoms=9))
    e = s.get_column_numpy("calc.energy")
    assert e.shape == (6,) and e.dtype == np.float64
    np.testing.assert_array_equal(e, s.get_column("calc.energy"))
    pos = s.get_column_numpy("arrays.positions")
    assert pos.shape == (6, 9, 3) and pos.dtype == np.float64
    np.testing.assert_array_equal(pos, np.stack(s.get_column("arrays.positions")))
    f32 = s.get_column_numpy("arrays.forces32", [5, 0])
    assert f32.dtype == np.float32 and f32.shape == (2, 9, 3)
    np.testing.assert_array_equal(
        f32, np.stack(s.get_column("arrays.forces32", [5, 0]))
    )


def test_numpy_column_of_ints_bools_and_numpy_scalars():
    s = mem()
    s.extend(trajectory(4))
    steps = s.get_column_numpy("info.step")
    assert steps.dtype == np.int64 and steps.tolist() == [0, 1, 2, 3]
    ok = s.get_column_numpy("info.ok")
    assert ok.dtype == np.bool_ and ok.tolist() == [True, False, True, False]
    t = s.get_column_numpy("info.t")
    assert t.dtype == np.float32 and t.tolist() == [0.0, 0.5, 1.0, 1.5]


def test_numpy_column_is_writable_and_the_callers_own():
    s = mem()
    s.extend(trajectory(3))
    pos = s.get_column_numpy("arrays.positions")
    assert pos.flags.writeable and pos.flags.c_contiguous and pos.flags.owndata
    pos[:] = 0.0
    assert np.abs(s.get_column_numpy("arrays.positions")).sum() > 0


def test_ragged_column_is_refused_with_both_shapes():
    s = mem()
    s.extend([{"p": np.zeros((9, 3))}] * 3 + [{"p": np.zeros((12, 3))}])
    with pytest.raises(AsebytesValueError) as e:
        s.get_column_numpy("p")
    assert str(e.value) == (
        "Column 'p' is ragged: row 0 has shape (9, 3) but row 3 has shape (12, 3); "
        "to_numpy() needs one shape and dtype -- use to_list() for per-frame arrays"
    )
    assert isinstance(e.value, ValueError)
    assert s.get_column_numpy("p", [0, 1]).shape == (2, 9, 3)


def test_missing_values_are_refused_naming_the_row():
    s = mem()
    s.extend([{"calc.energy": 1.0}] * 7 + [{"other": 1}, None])
    with pytest.raises(AsebytesValueError) as e:
        s.get_column_numpy("calc.energy")
    assert str(e.value) == (
        "Column 'calc.energy' has no value at row 7 (placeholder row or a row without "
        "the key); to_numpy() needs a value in every row -- use to_list()"
    )
    with pytest.raises(AsebytesValueError, match="no value at row 8"):
        s.get_column_numpy("calc.energy", [0, 8])
    with pytest.raises(KeyNotFoundError) as k:
        s.get_column_numpy("nope")
    assert k.value.args == ("nope",), "a key no row has is a KeyError, as get_column"


def test_mixed_dtypes_are_refused_naming_both():
    s = mem()
    s.extend([{"x": 1.0}, {"x": 2}])
    with pytest.raises(
        AsebytesValueError,
        match=r"mixes dtypes: row 0 has dtype float64 but row 1 has dtype int64.*to_list\(\)",
    ):
        s.get_column_numpy("x")
    s.extend([{"y": np.int64(1)}, {"y": 2}])
    y = s.get_column_numpy("y", [2, 3])
    assert y.dtype == np.int64 and y.tolist() == [1, 2], "one dtype, stored either way"


def test_values_numpy_cannot_pack_fall_back_or_are_refused():
    s = mem()
    s.extend(
        [{"l": [1.0, 2.0], "s": "ab", "d": {"a": 1}, "n": [1, None]} for _ in range(2)]
    )
    lists = s.get_column_numpy("l")
    assert lists.dtype == np.float64 and lists.shape == (2, 2)
    assert s.get_column_numpy("s").tolist() == ["ab", "ab"]
    for key in ("d", "n"):
        with pytest.raises(AsebytesValueError, match=r"use to_list\(\)"):
            s.get_column_numpy(key)
    s.extend([{"l": [1.0]}])
    with pytest.raises(
        AsebytesValueError, match=r"does not form one array.*use to_list\(\)"
    ):
        s.get_column_numpy("l")


def test_empty_selections_and_the_blob_tier():
    s = mem()
    empty = s.get_column_numpy("anything")
    assert empty.shape == (0,) and empty.dtype == np.float64
    s.extend([{"e": 1.0}])
    assert s.get_column_numpy("e", []).shape == (0,)
    with pytest.raises(AsebytesTypeError, match="object-tier"):
        mem("blob").get_column_numpy(b"e")
