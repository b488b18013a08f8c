"""Writes through views: RowView.set/update/delete/drop and ColumnView.set, on every
backend, through the sync and the async facades (the ``mode`` of the backend fixtures).

Each write is one backend call (one request, one transaction on the daemon), checked with
a spy; bad input raises before anything is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _helpers import assert_same, make_atoms
from asebytes import ASEIO, BlobIO, ObjectIO
from conftest import Backend, CountingStore

WRITES = {
    "set_rows",
    "update_rows",
    "set_column_rows",
    "delete_many",
    "drop_keys",
    "set",
    "update",
    "delete",
}


def rows(n: int) -> list[dict[str, Any]]:
    return [{"i": i, "e": float(-i), "x": np.full(3, float(i))} for i in range(n)]


@pytest.fixture
def db(any_backend: Backend) -> Any:
    d = any_backend.open(ObjectIO)
    d.extend(rows(10))
    return d


def writes(counting: CountingStore) -> list[str]:
    return [name for name in counting.names() if name in WRITES]


def snapshot(db: Any) -> list[Any]:
    return db[:].to_list()


# ----------------------------------------------------------------------------- RowView


def test_rowview_set_contiguous_is_one_call(db: Any, spy: Any) -> None:
    new = [{"i": 100 + k} for k in range(3)]
    counting = spy(db)
    db[2:5].set(new)
    assert writes(counting) == ["set_rows"]
    assert [r["i"] for r in snapshot(db)] == [0, 1, 100, 101, 102, 5, 6, 7, 8, 9]


def test_rowview_set_scattered_and_negative_is_one_call(db: Any, spy: Any) -> None:
    counting = spy(db)
    db[[7, 1, -1]].set([{"i": 70}, None, {"i": 90}])
    assert writes(counting) == ["set_rows"]
    got = snapshot(db)
    assert got[7] == {"i": 70} and got[1] is None and got[9] == {"i": 90}


def test_rowview_set_validates_before_writing(db: Any) -> None:
    before = snapshot(db)
    with pytest.raises(TypeError, match="list"):
        db[0:2].set(({"i": 1}, {"i": 2}))
    with pytest.raises(ValueError, match="Length mismatch"):
        db[0:2].set([{"i": 1}])
    with pytest.raises(ValueError, match="column view"):
        db[0:2].set([[1, 2], [3, 4]])
    assert_same(snapshot(db), before)


def test_unstorable_values_in_view_writes_leave_the_store_unchanged(
    any_backend: Backend,
) -> None:
    if any_backend.name == "custom":
        pytest.skip("a user's minimal backend writes row by row (its own atomicity)")
    db = any_backend.open(ObjectIO)
    db.extend(rows(4))
    before = snapshot(db)
    with pytest.raises(TypeError, match="bad"):
        db[0:2].set([{"i": 1}, {"bad": object()}])
    with pytest.raises(TypeError, match="e"):
        db["e"][0:2].set([1.0, object()])
    with pytest.raises(TypeError, match="e"):
        db[["e", "i"]][0:2].set([[1.0, 1], [object(), 2]])
    assert_same(snapshot(db), before)


def test_rowview_update_merges_into_every_row_in_one_call(db: Any, spy: Any) -> None:
    counting = spy(db)
    db[0:10:3].update({"tag": "train", "e": 1.5})
    assert writes(counting) == ["update_rows"]
    got = snapshot(db)
    for i, row in enumerate(got):
        if i % 3 == 0:
            assert row["tag"] == "train" and row["e"] == 1.5 and row["i"] == i
        else:
            assert "tag" not in row and row["e"] == float(-i)


def test_rowview_update_needs_a_dict(db: Any) -> None:
    with pytest.raises(TypeError, match="dict"):
        db[0:2].update([("a", 1)])


def test_rowview_delete_contiguous_is_one_call(db: Any, spy: Any) -> None:
    counting = spy(db)
    db[3:6].delete()
    assert writes(counting) == ["delete_many"]
    assert [r["i"] for r in snapshot(db)] == [0, 1, 2, 6, 7, 8, 9]


def test_rowview_delete_unordered_contiguous_list(db: Any) -> None:
    db[[-1, -3, -2]].delete()
    assert [r["i"] for r in snapshot(db)] == list(range(7))


def test_rowview_delete_non_contiguous_is_type_error(db: Any) -> None:
    before = snapshot(db)
    with pytest.raises(TypeError, match="contiguous"):
        db[0:10:2].delete()
    assert_same(snapshot(db), before)


def test_rowview_delete_empty_is_a_no_op(db: Any) -> None:
    db[5:5].delete()
    assert len(db) == 10


def test_rowview_drop_removes_keys_from_those_rows(db: Any, spy: Any) -> None:
    counting = spy(db)
    db[0:2].drop(["x", "e"])
    assert writes(counting) == ["drop_keys"]
    got = snapshot(db)
    assert got[0] == {"i": 0} and got[1] == {"i": 1}
    assert set(got[2]) == {"i", "e", "x"}


# ----------------------------------------------------------------------------- ColumnView


def test_column_set_of_1000_energies_is_one_call(
    any_backend: Backend, spy: Any
) -> None:
    db = any_backend.open(ObjectIO)
    db.extend(rows(1000))
    counting = spy(db)
    db["e"].set([float(k) * 0.5 for k in range(1000)])
    assert writes(counting) == ["set_column_rows"]
    assert db["e"].to_list() == [float(k) * 0.5 for k in range(1000)]
    assert db[999]["i"] == 999  # other keys untouched


def test_column_set_on_a_slice_and_on_scattered_rows(db: Any) -> None:
    db["e"][2:4].set([10.0, 11.0])
    db["e"][[-1, 0]].set([99.0, 98.0])
    assert db["e"].to_list() == [
        98.0,
        -1.0,
        10.0,
        11.0,
        -4.0,
        -5.0,
        -6.0,
        -7.0,
        -8.0,
        99.0,
    ]


def test_chained_column_set_both_orders(db: Any) -> None:
    db[0:3]["e"].set([1.0, 2.0, 3.0])
    db["e"][3:6].set([4.0, 5.0, 6.0])
    assert db["e"][0:6].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_column_set_adds_a_new_key(db: Any) -> None:
    db["new"][0:2].set(["a", "b"])
    assert db["new"].to_list()[:3] == ["a", "b", None]


def test_multi_column_set_writes_lists_in_key_order(db: Any, spy: Any) -> None:
    counting = spy(db)
    db[["e", "tag"]][1:3].set([[0.5, "a"], [0.25, "b"]])
    assert writes(counting) == ["update_rows"]
    assert db[["e", "tag"]][0:4].to_list() == [
        [0.0, None],
        [0.5, "a"],
        [0.25, "b"],
        [-3.0, None],
    ]


def test_column_set_validates_before_writing(db: Any) -> None:
    before = snapshot(db)
    with pytest.raises(TypeError, match="list"):
        db["e"][0:2].set(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="Length mismatch"):
        db["e"][0:2].set([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="list of 2 values"):
        db[["e", "i"]][0:2].set([1.0, 2.0])
    with pytest.raises(ValueError, match="Length mismatch"):
        db[["e", "i"]][0:2].set([[1.0], [2.0]])
    assert_same(snapshot(db), before)


def test_out_of_range_write_leaves_the_store_unchanged(db: Any) -> None:
    before = snapshot(db)
    with pytest.raises(IndexError):
        db[[0, 42]].set([{"i": 0}, {"i": 1}])
    with pytest.raises(IndexError):
        db["e"][[1, -11]].set([0.0, 0.0])
    assert_same(snapshot(db), before)


# ----------------------------------------------------------------------------- tiers


def test_aseio_view_set_takes_atoms_and_flat_dicts(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(i) for i in range(4)])
    db[0:2].set([make_atoms(10, 3), {"calc.energy": -7.0, "info.tag": "x"}])
    assert db[0].info["i"] == 10 and len(db[0]) == 3
    assert db[1].get_potential_energy() == -7.0 and len(db[1]) == 0
    with pytest.raises(ValueError, match="Invalid key"):
        db[2:3].set([{"energy": 1.0}])


def test_aseio_column_set_and_update(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(i) for i in range(4)])
    db["calc.energy"][0:4].set([1.0, 2.0, 3.0, 4.0])
    db[0:4].update({"info.tag": "train"})
    got = db[0:4].to_list()
    assert [a.get_potential_energy() for a in got] == [1.0, 2.0, 3.0, 4.0]
    assert all(a.info["tag"] == "train" for a in got)
    with pytest.raises(ValueError, match="Invalid key"):
        db[0:2].update({"tag": "x"})


def test_blobio_view_writes_take_bytes(any_backend: Backend) -> None:
    db = any_backend.open(BlobIO)
    db.extend([{b"a": bytes([i])} for i in range(4)])
    db[1:3].set([{b"a": b"x"}, {b"b": b"y"}])
    db["a"][0:1].set([b"z"])
    assert db[0:3].to_list() == [{b"a": b"z"}, {b"a": b"x"}, {b"b": b"y"}]
    with pytest.raises(TypeError, match="bytes"):
        db["a"][0:1].set(["text"])


def test_readonly_views_refuse_writes(backend: Backend) -> None:
    backend.open(ObjectIO).extend(rows(3))
    ro = backend.open(ObjectIO, readonly=True)
    for write in (
        lambda: ro[0:2].set([{"i": 1}, {"i": 2}]),
        lambda: ro[0:2].update({"i": 1}),
        lambda: ro[0:2].delete(),
        lambda: ro["e"][0:1].set([1.0]),
    ):
        with pytest.raises(TypeError, match="Backend is read-only"):
            write()
