"""Lazy row and column views: laziness, chaining in both orders, chunking, masks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _async_shim import SyncView, unwrap
from _helpers import assert_same, make_atoms
from ase import Atoms
from asebytes import (
    ASEIO,
    ASEColumnView,
    AsyncASEColumnView,
    ColumnView,
    ObjectIO,
    RowView,
)
from conftest import Backend, CountingStore


@pytest.fixture
def db(any_backend: Backend) -> ObjectIO:
    d = any_backend.open(ObjectIO)
    d.extend({"i": i, "e": -float(i), "v": np.full(2, i)} for i in range(20))
    return d


@pytest.mark.parametrize(
    "make",
    [
        lambda d: d[2:8],
        lambda d: d[[1, -1]],
        lambda d: d[np.array([True] * 20)],
        lambda d: d["e"],
        lambda d: d[["e", "i"]],
        lambda d: d[2:8]["e"][1:3],
        lambda d: d["e"][::2][[0, 1]],
        lambda d: d[::-1][np.arange(3)],
    ],
)
def test_views_read_nothing_before_materialisation(
    db: ObjectIO, spy: Any, make: Any
) -> None:
    counting: CountingStore = spy(db)
    view = make(db)
    assert isinstance(view, (RowView, ColumnView, SyncView))
    assert counting.calls == []


def test_row_view_to_list_is_one_len_and_one_get_many(db: ObjectIO, spy: Any) -> None:
    counting: CountingStore = spy(db)
    assert [r["i"] for r in db[2:8:2].to_list()] == [2, 4, 6]
    assert counting.names() == ["len", "get_many"]


def test_explicit_positions_need_no_length(db: ObjectIO, spy: Any) -> None:
    counting: CountingStore = spy(db)
    assert [r["i"] for r in db[[3, -1, 3]].to_list()] == [3, 19, 3]
    # A backend that applies the index rules itself needs no length; a user's minimal
    # backend gets the positions resolved (and checked) by the facade first.
    native = getattr(counting._inner, "_negative_indices", False)
    expected = ["get_many"] if native else ["len", "get_many"]
    assert counting.names() == expected
    assert len(db[[1, 2, 3]]) == 3
    assert counting.names() == expected


def test_column_view_over_all_rows_is_one_get_column(db: ObjectIO, spy: Any) -> None:
    counting: CountingStore = spy(db)
    assert db["i"].to_list() == list(range(20))
    assert counting.calls == [("get_column", ("i", None))]


def test_multi_key_column_requests_only_those_keys(db: ObjectIO, spy: Any) -> None:
    counting: CountingStore = spy(db)
    assert db[["i", "e"]][0:2].to_list() == [[0, -0.0], [1, -1.0]]
    get_many = [args for name, args in counting.calls if name == "get_many"]
    assert len(get_many) == 1
    assert list(get_many[0][1]) == ["i", "e"]


@pytest.mark.parametrize(
    ("rows", "key"),
    [
        (slice(0, 5), "e"),
        (slice(None, None, -3), "i"),
        ([4, 1, -2], "v"),
        (slice(15, 100), "e"),
    ],
)
def test_chaining_both_orders_is_equal(db: ObjectIO, rows: Any, key: str) -> None:
    a = db[rows][key].to_list()
    b = db[key][rows].to_list()
    assert_same(a, b)
    assert len(a) == len(db[rows])


def test_chaining_row_views_composes_relative_positions(db: ObjectIO) -> None:
    view = db[5:15][::2][[0, -1]]
    assert [r["i"] for r in view] == [5, 13]
    assert view[-1]["i"] == 13
    assert db[10:][2]["i"] == 12
    assert db[::-1][0:3]["i"].to_list() == [19, 18, 17]


def test_row_view_int_out_of_view_is_index_error(db: ObjectIO) -> None:
    with pytest.raises(IndexError, match=r"Index 3 out of range \[0, 3\)"):
        db[0:3][3]
    with pytest.raises(IndexError, match=r"Index -4 out of range \[0, 3\)"):
        db["i"][0:3][-4]


def test_view_over_rows_beyond_the_end_is_index_error_at_read(db: ObjectIO) -> None:
    view = db[[0, 25]]
    with pytest.raises(IndexError, match=r"Index 25 out of range \[0, 20\)"):
        view.to_list()


def test_slices_clip_like_python(db: ObjectIO) -> None:
    assert db[30:40].to_list() == []
    assert len(db[18:100]) == 2
    assert not db[5:5]
    assert db[[]].to_list() == []


def test_mask_selects_true_rows(db: ObjectIO) -> None:
    mask = np.zeros(20, dtype=bool)
    mask[[1, 4, 19]] = True
    assert [r["i"] for r in db[mask]] == [1, 4, 19]
    assert db[list(mask)]["i"].to_list() == [1, 4, 19]
    assert db["i"][mask].to_list() == [1, 4, 19]
    assert db[2:5][[True, False, True]]["i"].to_list() == [2, 4]


@pytest.mark.parametrize("length", [0, 19, 21])
def test_mask_of_wrong_length_is_index_error(db: ObjectIO, length: int) -> None:
    with pytest.raises(IndexError, match=f"mask of length {length}"):
        db[np.ones(length, dtype=bool)].to_list()


def test_views_are_resolved_at_materialisation_not_creation(db: ObjectIO) -> None:
    view = db[18:]
    column = db["i"]
    db.extend([{"i": 20}, {"i": 21}])
    assert [r["i"] for r in view] == [18, 19, 20, 21]
    assert column.to_list()[-1] == 21
    assert len(column) == 22


def test_iteration_of_views_is_batched(any_backend: Backend, spy: Any) -> None:
    db = any_backend.open(ObjectIO)
    db.extend({"i": i} for i in range(300))
    counting: CountingStore = spy(db)
    assert [r["i"] for r in db[10:]] == list(range(10, 300))
    assert counting.names() == ["len", "get_many", "get_many"]


def test_chunked_reads_chunk_size_rows_per_request(db: ObjectIO, spy: Any) -> None:
    counting: CountingStore = spy(db)
    assert [r["i"] for r in db[0:10].chunked(4)] == list(range(10))
    sizes = [len(args[0]) for name, args in counting.calls if name == "get_many"]
    assert sizes == [4, 4, 2]
    with pytest.raises(ValueError, match="chunk_size"):
        next(db[:].chunked(0))


def test_column_values_missing_key_and_placeholders(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"a": 1, "b": "x"}, {"b": "y"}, None, {"a": 4}])
    assert db["a"].to_list() == [1, None, None, 4]
    assert db[["a", "b"]].to_list() == [[1, "x"], [None, "y"], None, [4, None]]
    assert db["a"][3] == 4
    assert db["a"][2] is None  # a placeholder alone: nothing to contradict
    assert db[["a", "b"]][2] is None
    with pytest.raises(KeyError, match="'a'"):
        db[["a", "b"]][1]  # same rule per key as single-key columns
    assert db["a"].to_dict() == {"a": [1, None, None, 4]}
    assert db[["b", "a"]].to_dict() == {
        "b": ["x", "y", None, None],
        "a": [1, None, None, 4],
    }


def test_column_key_no_selected_row_has_is_key_error(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"a": 1}, {"a": 2}, {"b": 3}])
    with pytest.raises(KeyError, match="nope"):
        db["nope"].to_list()
    with pytest.raises(KeyError, match="nope"):
        db[["a", "nope"]].to_list()
    with pytest.raises(KeyError, match="'a'"):
        db["a"][2]  # as the reference: the one selected real row lacks the key
    with pytest.raises(KeyError, match="'b'"):
        db[0:2]["b"].to_list()
    assert db["b"].to_list() == [None, None, 3]


def test_column_view_sub_indexing_and_key_switch(
    any_backend: Backend, db: ObjectIO
) -> None:
    view = db["e"][2:6]
    assert view[0] == -2.0
    assert view["i"].to_list() == [2, 3, 4, 5]
    assert view[["i", "e"]][-1] == [5, -5.0]
    if any_backend.mode == "sync":
        assert repr(view) == "ColumnView(key='e', len=4)"
        assert repr(db[["i", "e"]]) == "ColumnView(keys=['i', 'e'], len=20)"
        assert repr(db[0:3]) == "RowView(len=3)"
    else:  # repr never awaits: a length that needs a read shows as '?'
        assert repr(view) == "AsyncColumnView(key='e', len=?)"
        assert repr(db[[0, 2]]) == "AsyncRowView(len=2)"


def test_column_to_numpy_packs_uniform_values(db: ObjectIO) -> None:
    packed = db["v"][0:3].to_numpy()
    assert packed.shape == (3, 2)
    assert_same(packed[2], np.full(2, 2))
    db.update(0, {"v": np.zeros(5)})
    with pytest.raises(ValueError, match="ragged"):
        db["v"].to_numpy()


def test_row_view_column_views_use_view_rows(db: ObjectIO) -> None:
    assert db[[3, 1]][["i"]].to_list() == [[3], [1]]
    assert db[[3, 1]]["i"].to_dict() == {"i": [3, 1]}


def test_ase_row_view_yields_atoms(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(i) for i in range(5)])
    view = db[1:4]
    assert [a.info["i"] for a in view] == [1, 2, 3]
    assert [a.info["i"] for a in view.to_list()] == [1, 2, 3]
    assert view[0].info["i"] == 1
    column = unwrap(view["calc.energy"])
    assert isinstance(column, (ASEColumnView, AsyncASEColumnView))


def test_ase_column_view_builds_atoms_from_requested_keys_only(
    any_backend: Backend,
) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(i) for i in range(4)])
    energies = db[0:3]["calc.energy"].to_list()
    assert all(isinstance(a, Atoms) and len(a) == 0 for a in energies)
    assert [a.calc.results for a in energies] == [
        {"energy": -0.0},
        {"energy": -1.0},
        {"energy": -2.0},
    ]
    assert [a.get_potential_energy() for a in db["calc.energy"][0:3]] == [
        -0.0,
        -1.0,
        -2.0,
    ]
    pos = db[["arrays.positions", "arrays.numbers"]][-1]
    assert_same(pos.positions, db[3].positions)
    assert pos.calc is None and pos.info == {}
    assert [a.calc.results["energy"] for a in db[0:3]["calc.energy"]] == [
        a.calc.results["energy"] for a in db["calc.energy"][0:3]
    ]


def test_ase_column_view_placeholder_is_type_error_and_no_dict(
    any_backend: Backend,
) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0), None])
    with pytest.raises(TypeError, match="placeholder row"):
        db["calc.energy"].to_list()
    with pytest.raises(TypeError, match="to_dict"):
        db["calc.energy"].to_dict()
    if any_backend.mode == "sync":
        assert repr(db["calc.energy"]) == "ASEColumnView(key='calc.energy', len=2)"
    else:
        assert repr(db["calc.energy"]) == "AsyncASEColumnView(key='calc.energy', len=?)"


def test_ase_column_view_row_without_the_key_is_none(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0), make_atoms(1, calc=False)])
    energies = db["calc.energy"].to_list()
    assert energies[0].get_potential_energy() == -0.0
    assert energies[1] is None
