"""Facade operations (ObjectIO, BlobIO, ASEIO): every method, every index form, errors."""

from __future__ import annotations

import re
from typing import Any

import msgpack  # type: ignore[import-untyped]
import numpy as np
import pytest
from _helpers import assert_same, make_atoms
from asebytes import ASEIO, BlobIO, ObjectIO, exceptions
from asebytes.exceptions import AsebytesError, ReadOnlyError
from conftest import Backend, CountingStore


def skip_async(backend: Backend) -> None:
    if backend.mode == "async":
        pytest.skip("MutableSequence mixins: the async facades are not sequences")


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"i": i, "x": np.full(3, float(i))} for i in range(start, start + n)]


def contents(b: Backend) -> list[Any]:
    db = b.open(ObjectIO)
    return db[:].to_list()


@pytest.fixture
def db(any_backend: Backend) -> ObjectIO:
    d = any_backend.open(ObjectIO)
    d.extend(rows(5))
    return d


# ----------------------------------------------------------------------------- reads


def test_extend_returns_new_length_and_accepts_generators(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    assert db.extend(rows(3)) == 3
    assert db.extend(r for r in rows(2, 3)) == 5
    assert db.extend([]) == 5
    assert len(db) == 5
    assert [r["i"] for r in db] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "index", [0, 4, -1, -5, np.int64(2), np.int32(-2), np.uint16(1)]
)
def test_getitem_int_and_numpy_int_any_sign(db: ObjectIO, index: Any) -> None:
    assert db[index]["i"] == range(5)[int(index)]


@pytest.mark.parametrize("index", [5, 100, -6, np.int64(-100)])
def test_getitem_out_of_range_names_index_and_length(db: ObjectIO, index: Any) -> None:
    with pytest.raises(
        IndexError, match=rf"^Index {int(index)} out of range \[0, 5\)$"
    ) as info:
        db[index]
    assert isinstance(info.value, exceptions.IndexOutOfRangeError)


def test_getitem_on_empty_store_is_index_error(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    with pytest.raises(IndexError, match=r"Index 0 out of range \[0, 0\)"):
        db[0]


def test_getitem_single_row_is_one_request(db: ObjectIO, spy: Any) -> None:
    counting: CountingStore = spy(db)
    db[-1]
    # Backends that apply the index rules themselves get one call; a user's minimal
    # backend needs its length first to resolve -1.
    native = getattr(counting._inner, "_negative_indices", False)
    assert counting.names() == (["get"] if native else ["len", "get"])


@pytest.mark.parametrize("index", [1.0, None, {"a": 1}, [1, "a"], np.array([0.5])])
def test_getitem_unsupported_type_is_type_error(db: ObjectIO, index: Any) -> None:
    with pytest.raises(TypeError, match="Unsupported index type: <class"):
        db[index]


def test_get_returns_row_or_requested_keys_only(db: ObjectIO) -> None:
    assert_same(db.get(1), {"i": 1, "x": np.full(3, 1.0)})
    assert db.get(-1, keys=["i"]) == {"i": 4}
    assert db.get(np.int64(2), keys=[]) == {}


def test_get_missing_key_is_key_error_naming_index_and_keys(db: ObjectIO) -> None:
    with pytest.raises(KeyError, match=re.escape("Invalid keys at index 2: ['nope']")):
        db.get(2, keys=["i", "nope"])


def test_get_placeholder_is_none_even_with_keys(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([None, {"a": 1}])
    assert db.get(0) is None
    assert db.get(0, keys=["a"]) is None
    assert db[0] is None


def test_keys_lists_row_keys_any_index_sign(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"a": 1, "b": 2}, None])
    assert sorted(db.keys(0)) == ["a", "b"]
    assert sorted(db.keys(-2)) == ["a", "b"]
    assert db.keys(-1) == []
    with pytest.raises(IndexError, match=r"Index 2 out of range \[0, 2\)"):
        db.keys(2)


def test_len_is_current_without_caching(any_backend: Backend) -> None:
    a = any_backend.open(ObjectIO)
    b = any_backend.open(ObjectIO)
    assert len(a) == 0
    b.extend(rows(3))
    assert len(a) == 3


def test_iteration_reads_in_batches_of_256(any_backend: Backend, spy: Any) -> None:
    db = any_backend.open(ObjectIO)
    db.extend({"i": i} for i in range(600))
    counting: CountingStore = spy(db)
    assert [r["i"] for r in db] == list(range(600))
    assert counting.names() == ["len", "get_many", "get_many", "get_many"]
    assert [len(args[0]) for name, args in counting.calls if name == "get_many"] == [
        256,
        256,
        88,
    ]


def test_reversed_iterates_backwards_in_batches(db: ObjectIO) -> None:
    assert [r["i"] for r in reversed(db)] == [4, 3, 2, 1, 0]


def test_contains_index_count_use_row_equality(any_backend: Backend) -> None:
    skip_async(any_backend)
    db = any_backend.open(ObjectIO)
    db.extend([{"a": 1}, {"a": 2}, {"a": 1}])
    assert {"a": 2} in db
    assert {"a": 3} not in db
    assert db.index({"a": 2}) == 1
    assert db.count({"a": 1}) == 2


def test_schema_describes_row_types(any_backend: Backend) -> None:
    from asebytes import SchemaEntry

    db = any_backend.open(ObjectIO)
    db.extend(
        [
            {
                "f": 1.5,
                "i": 3,
                "b": True,
                "s": "x",
                "l": [1, 2],
                "a": np.zeros((2, 3), np.float32),
                "n": np.int16(4),
                "d": {"k": 1},
            },
            None,
        ]
    )
    schema = db.schema()
    assert schema == db.schema(-2) == db.schema(0)
    assert schema["f"] == SchemaEntry(np.dtype("float64"), ())
    assert schema["i"] == SchemaEntry(np.dtype("int64"), ())
    assert schema["b"] == SchemaEntry(np.dtype("bool"), ())
    assert schema["s"] == SchemaEntry(str, ())
    assert schema["l"] == SchemaEntry(list, (2,))
    assert schema["a"] == SchemaEntry(np.dtype("float32"), (2, 3))
    assert schema["n"] == SchemaEntry(np.dtype("int16"), ())
    assert schema["d"] == SchemaEntry(dict, ())
    assert db.schema(1) == {}


def test_schema_of_empty_store_is_index_error(any_backend: Backend) -> None:
    with pytest.raises(IndexError, match="out of range"):
        any_backend.open(ObjectIO).schema()


def test_repr_names_facade_and_backend(any_backend: Backend) -> None:
    prefix = "Async" if any_backend.mode == "async" else ""
    for cls in (ObjectIO, BlobIO, ASEIO):
        assert repr(any_backend.open(cls)).startswith(
            f"{prefix}{cls.__name__}(backend="
        )


def test_context_manager_returns_the_facade(any_backend: Backend) -> None:
    opened = any_backend.open(ObjectIO)
    with opened as db:
        db.extend(rows(2))
        assert db is opened
    opened_ase = any_backend.open(ASEIO)
    with opened_ase as adb:
        assert adb is opened_ase
    assert len(any_backend.open(ObjectIO)) == 2


# ----------------------------------------------------------------------------- writes


@pytest.mark.parametrize(("index", "pos"), [(1, 1), (-1, 4), (np.int64(-5), 0)])
def test_setitem_replaces_row_any_index_sign(
    db: ObjectIO, index: Any, pos: int
) -> None:
    db[index] = {"new": True}
    assert db[pos] == {"new": True}
    assert len(db) == 5


@pytest.mark.parametrize("index", [6, 100, -6])
def test_setitem_beyond_len_is_index_error_and_writes_nothing(
    any_backend: Backend, db: ObjectIO, index: int
) -> None:
    before = contents(any_backend)
    with pytest.raises(IndexError, match=rf"Index {index} out of range \[0, 5\)"):
        db[index] = {"new": True}
    assert_same(contents(any_backend), before)


def test_setitem_at_len_appends(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db[0] = {"i": 0}  # `io[0] = atoms` on a new store
    db[len(db)] = {"i": 1}
    db[np.int64(2)] = None
    assert [None if r is None else r["i"] for r in db] == [0, 1, None]
    with pytest.raises(IndexError, match=r"Index 4 out of range \[0, 3\)"):
        db[4] = {"i": 4}
    with pytest.raises(IndexError):  # only item assignment appends, never a view
        db[[3]].set([{"i": 3}])
    assert len(db) == 3


def test_aseio_setitem_at_len_appends_atoms(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    first, second = make_atoms(0), make_atoms(1)
    db[0] = first
    db[1] = second
    assert len(db) == 2
    assert db[1].get_chemical_symbols() == second.get_chemical_symbols()


def test_setitem_none_makes_a_placeholder(db: ObjectIO) -> None:
    db[2] = None
    assert db[2] is None
    db[3] = {}
    assert db[3] is None


@pytest.mark.parametrize(
    ("index", "remaining"),
    [(0, [1, 2, 3, 4]), (-1, [0, 1, 2, 3]), (np.int8(-3), [0, 1, 3, 4])],
)
def test_delitem_removes_and_shifts(
    db: ObjectIO, index: Any, remaining: list[int]
) -> None:
    del db[index]
    assert [r["i"] for r in db] == remaining


def test_delitem_out_of_range_is_index_error(db: ObjectIO) -> None:
    with pytest.raises(IndexError, match=r"Index 5 out of range \[0, 5\)"):
        del db[5]
    assert len(db) == 5


def test_delitem_contiguous_slice_deletes_range(db: ObjectIO) -> None:
    del db[1:3]
    assert [r["i"] for r in db] == [0, 3, 4]


@pytest.mark.parametrize(
    ("index", "order"),
    [
        (0, ["n", 0, 1, 2, 3, 4]),
        (2, [0, 1, "n", 2, 3, 4]),
        (-1, [0, 1, 2, 3, "n", 4]),
        (5, [0, 1, 2, 3, 4, "n"]),
        (100, [0, 1, 2, 3, 4, "n"]),
        (-100, ["n", 0, 1, 2, 3, 4]),
    ],
)
def test_insert_clamps_like_list_insert(
    db: ObjectIO, index: int, order: list[Any]
) -> None:
    db.insert(index, {"i": "n"})
    assert [r["i"] for r in db] == order


def test_insert_none_is_a_placeholder(db: ObjectIO) -> None:
    db.insert(1, None)
    assert db[1] is None and len(db) == 6


def test_append_is_one_extend_request(db: ObjectIO, spy: Any) -> None:
    counting: CountingStore = spy(db)
    db.append({"i": 5})
    assert counting.names() == ["extend"]
    assert db[-1] == {"i": 5}


def test_iadd_extends_and_pop_removes(any_backend: Backend, db: ObjectIO) -> None:
    skip_async(any_backend)
    db += [{"i": 5}]
    assert len(db) == 6
    assert db.pop()["i"] == 5
    assert db.pop(0)["i"] == 0
    assert [r["i"] for r in db] == [1, 2, 3, 4]


def test_update_merges_keys_any_index_sign(db: ObjectIO) -> None:
    db.update(-1, {"i": 40, "extra": "yes"})
    db.update(np.int64(0), {"x": np.zeros(2, np.int8)})
    assert db[4]["i"] == 40 and db[4]["extra"] == "yes"
    assert_same(db[0], {"i": 0, "x": np.zeros(2, np.int8)})


def test_update_turns_placeholder_into_row(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.reserve(1)
    db.update(0, {"a": 1})
    assert db[0] == {"a": 1}


def test_update_out_of_range_is_index_error(db: ObjectIO) -> None:
    with pytest.raises(IndexError, match=r"Index 7 out of range \[0, 5\)"):
        db.update(7, {"a": 1})


def test_update_with_non_dict_is_type_error(db: ObjectIO) -> None:
    with pytest.raises(TypeError, match="needs a dict"):
        db.update(0, [("a", 1)])  # type: ignore[arg-type]


def test_drop_removes_keys_from_every_row(db: ObjectIO) -> None:
    db.drop(keys=["x"])
    assert [r for r in db] == [{"i": i} for i in range(5)]


def test_drop_needs_keyword_list(db: ObjectIO) -> None:
    with pytest.raises(TypeError):
        db.drop(["x"])  # type: ignore[misc]
    with pytest.raises(TypeError, match="list of keys"):
        db.drop(keys="x")


def test_reserve_appends_placeholders(db: ObjectIO) -> None:
    db.reserve(3)
    assert len(db) == 8
    assert db[5:].to_list() == [None, None, None]


def test_clear_empties_and_keeps_store_usable(db: ObjectIO) -> None:
    db.clear()
    assert len(db) == 0
    assert db.extend(rows(1)) == 1


def test_remove_deletes_the_store(backend: Backend) -> None:
    db = backend.open(ObjectIO)
    db.extend(rows(2))
    db.remove()
    assert len(backend.open(ObjectIO)) == 0


# ----------------------------------------------------------------------------- bad input


BAD_ROWS: list[Any] = [
    [{"ok": 1}, "not a dict"],
    [{"ok": 1}, {1: "int key"}],
    [{"ok": 1}, {"obj": np.array([object()], dtype=object)}],
    [{"ok": 1}, {"x": object()}],
    [{"ok": 1}, {"nested": {2: "non-str key"}}],
]


@pytest.mark.parametrize("bad", BAD_ROWS)
def test_extend_with_bad_row_raises_type_error_and_writes_nothing(
    any_backend: Backend, db: ObjectIO, bad: list[Any]
) -> None:
    before = contents(any_backend)
    with pytest.raises(TypeError) as info:
        db.extend(bad)
    assert isinstance(info.value, AsebytesError)
    assert_same(contents(any_backend), before)


@pytest.mark.parametrize("bad", [row for _, row in BAD_ROWS])
def test_single_row_writes_with_bad_input_write_nothing(
    any_backend: Backend, db: ObjectIO, bad: Any
) -> None:
    before = contents(any_backend)
    with pytest.raises(TypeError):
        db[0] = bad
    with pytest.raises(TypeError):
        db.insert(0, bad)
    if isinstance(bad, dict):
        with pytest.raises(TypeError):
            db.update(0, bad)
    assert_same(contents(any_backend), before)


def test_object_array_error_names_the_key(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    with pytest.raises(TypeError, match="payload"):
        db.extend([{"payload": np.array([{}, 1], dtype=object)}])
    assert len(db) == 0


# ----------------------------------------------------------------------------- read-only


WRITES = [
    ("extend", lambda d: d.extend([{"a": 1}])),
    ("append", lambda d: d.append({"a": 1})),
    ("insert", lambda d: d.insert(0, {"a": 1})),
    ("setitem", lambda d: d.__setitem__(0, {"a": 1})),
    ("delitem", lambda d: d.__delitem__(0)),
    ("update", lambda d: d.update(0, {"a": 1})),
    ("drop", lambda d: d.drop(keys=["i"])),
    ("reserve", lambda d: d.reserve(1)),
    ("clear", lambda d: d.clear()),
    ("remove", lambda d: d.remove()),
]


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[n for n, _ in WRITES])
def test_readonly_store_refuses_every_write(
    backend: Backend, name: str, write: Any
) -> None:
    backend.open(ObjectIO).extend(rows(2))
    ro = backend.open(ObjectIO, readonly=True)
    with pytest.raises(TypeError, match="^Backend is read-only$") as info:
        write(ro)
    assert isinstance(info.value, ReadOnlyError)
    assert [r["i"] for r in ro] == [0, 1]


# ----------------------------------------------------------------------------- construction


def test_groups_are_separate_stores_and_listed(backend: Backend) -> None:
    a = ObjectIO(backend.location, group="train")
    b = ObjectIO(backend.location, group="test")
    a.extend(rows(2))
    b.extend(rows(1))
    assert (len(a), len(b)) == (2, 1)
    groups = ObjectIO.list_groups(backend.location)
    assert {"train", "test"} <= set(groups)
    assert ASEIO.list_groups(backend.location) == groups


def test_map_size_keyword_is_accepted(tmp_path: Any) -> None:
    db = ObjectIO(str(tmp_path / "m.lmdb"), map_size=2**24)
    assert db.extend(rows(1)) == 1


def test_unknown_keyword_is_type_error_naming_it(tmp_path: Any) -> None:
    with pytest.raises(TypeError, match="compressor"):
        ObjectIO(str(tmp_path / "m.lmdb"), compressor="zstd")


def test_store_instance_is_used_as_is(sync_backend: Backend) -> None:
    from asebytes import LMDBObjectBackend, MemoryObjectBackend

    if sync_backend.name == "lmdb":
        store = LMDBObjectBackend(sync_backend.location)
    else:
        store = MemoryObjectBackend(location=sync_backend.location)
    db = ObjectIO(store)
    db.extend(rows(2))
    assert db._backend is store
    assert len(ObjectIO(sync_backend.location)) == 2


def test_pathlike_location_is_accepted(tmp_path: Any) -> None:
    db = ObjectIO(tmp_path / "p.lmdb")
    db.extend(rows(1))
    assert len(ObjectIO(str(tmp_path / "p.lmdb"))) == 1


def test_relative_lmdb_path_is_resolved_in_the_callers_directory(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ObjectIO("rel.lmdb").extend(rows(1))
    assert (tmp_path / "rel.lmdb").exists()
    assert len(ObjectIO(str(tmp_path / "rel.lmdb"))) == 1


# ----------------------------------------------------------------------------- BlobIO


def test_blobio_rows_are_bytes_dicts(any_backend: Backend) -> None:
    db = any_backend.open(BlobIO)
    assert db.extend([{b"a": b"1", b"b": b"\x00\xff"}, None]) == 2
    assert db[0] == {b"a": b"1", b"b": b"\x00\xff"}
    assert db[1] is None
    assert db.get(0, keys=[b"a"]) == {b"a": b"1"}
    assert db[b"a"].to_list() == [b"1", None]
    assert db["a"].to_list() == [b"1", None]
    db.update(0, {b"c": b"3"})
    assert sorted(db.keys(0)) == [b"a", b"b", b"c"]


#: Bytes a store that decodes values (Zarr, HDF5: capability ``typed_values``) would
#: refuse or retype if they went unwrapped: not msgpack, empty, the msgpack int 49, a
#: msgpack bin itself.
AWKWARD = {b"ff": b"\x00\xff", b"empty": b"", b"one": b"1", b"bin": b"\xc4\x01x"}


def test_blobio_values_read_back_exactly_as_written(backend: Backend) -> None:
    db = backend.open(BlobIO)
    assert db.extend([AWKWARD, {b"one": b"2"}]) == 2
    assert db[0] == AWKWARD
    assert db.get(0, keys=[b"ff", b"empty"]) == {b"ff": b"\x00\xff", b"empty": b""}
    assert db[[1, 0]].to_list() == [{b"one": b"2"}, AWKWARD]
    assert db[b"one"].to_list() == [b"1", b"2"]
    assert db[[b"ff", b"one"]].to_list() == [[b"\x00\xff", b"1"], [None, b"2"]]
    db[1] = {b"one": b"\x93", b"ff": b"\xff"}
    db.update(1, {b"empty": b""})
    assert db[1] == {b"one": b"\x93", b"ff": b"\xff", b"empty": b""}
    db[[0, 1]].set([{b"bin": b"\x01"}, {b"bin": b"\x02"}])
    db[b"one"].set([b"", b"\x00"])
    assert db[:].to_list() == [
        {b"bin": b"\x01", b"one": b""},
        {b"bin": b"\x02", b"one": b"\x00"},
    ]
    assert sorted(db.keys(0)) == [b"bin", b"one"]


def test_blobio_reads_an_objectio_row_as_its_msgpack_bytes(backend: Backend) -> None:
    """As the reference's ObjectToBlob adapter: the value's msgpack-numpy bytes."""
    row = {"n": 3, "tag": "hi", "e": 1.5}
    backend.open(ObjectIO).extend([row])
    blob = backend.open(BlobIO)
    assert blob[0] == {k.encode(): msgpack.packb(v) for k, v in row.items()}
    assert blob[b"tag"].to_list() == [msgpack.packb("hi")]
    blob.extend([{b"raw": b"\x00\xff"}])
    assert backend.open(ObjectIO)[0] == row


@pytest.mark.parametrize(
    "bad", [{"str": b"key"}, {b"k": "str value"}, {b"k": 1}, [b"x"]]
)
def test_blobio_rejects_non_bytes_rows_and_writes_nothing(
    any_backend: Backend, bad: Any
) -> None:
    db = any_backend.open(BlobIO)
    db.extend([{b"a": b"1"}])
    with pytest.raises(TypeError):
        db.extend([{b"ok": b"1"}, bad])
    assert db[:].to_list() == [{b"a": b"1"}]


# ----------------------------------------------------------------------------- ASEIO


def test_aseio_ops_round_trip_atoms(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    frames = [make_atoms(i) for i in range(4)]
    assert db.extend(frames) == 4
    assert db[-1].info["i"] == 3
    db[0] = make_atoms(10)
    db.insert(1, make_atoms(11))
    del db[-1]
    assert [a.info["i"] for a in db] == [10, 11, 1, 2]
    db.append(None)
    assert db[-1] is None and db.get(-1) is None


def test_aseio_get_with_keys_builds_atoms_from_those_keys(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(3)])
    atoms = db.get(0, keys=["calc.energy", "info.i"])
    assert len(atoms) == 0
    assert atoms.calc.results == {"energy": -3.0}
    assert atoms.info == {"i": 3}
    with pytest.raises(KeyError, match="Invalid keys at index 0"):
        db.get(0, keys=["calc.stress"])


def test_aseio_positions_without_numbers_are_atoms_of_unknown_element(
    any_backend: Backend,
) -> None:
    # The pattern of a loop over positions: asebytes 0.3.3 answers it with an Atoms
    # holding the positions (and empty numbers); ours with as many atoms of element 0.
    db = any_backend.open(ASEIO)
    original = make_atoms(3)
    db.extend([original, None])
    n = len(original)
    for atoms in (
        db.get(0, keys=["arrays.positions"]),
        db[0:1]["arrays.positions"].to_list()[0],
        db[[0]][["arrays.positions"]].to_list()[0],
    ):
        assert len(atoms) == n
        assert_same(atoms.positions, original.positions)
        assert_same(atoms.numbers, np.zeros(n, dtype=np.int64))
    assert db.get(1, keys=["arrays.positions"]) is None
    assert_same(db[0:1]["arrays.positions"].to_numpy()[0], original.positions)


@pytest.mark.parametrize("bad", ["H2O", {"arrays.numbers": [1]}, 3, [make_atoms(0)]])
def test_aseio_non_atoms_is_type_error_and_writes_nothing(
    any_backend: Backend, bad: Any
) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0)])
    writes = [
        lambda: db.extend([make_atoms(1), bad]),
        lambda: db.insert(0, bad),
        lambda: db.append(bad),
    ]
    if any_backend.mode == "sync":  # the async single-row set() also takes flat dicts
        writes.append(lambda: db.__setitem__(0, bad))
    for write in writes:
        with pytest.raises(TypeError, match=r"^Input must be an ase\.Atoms object\.$"):
            write()
    assert [a.info["i"] for a in db] == [0]


def test_aseio_update_flat_and_keyword_forms(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0), make_atoms(1)])
    db.update(
        -1,
        {"calc.energy": -10.5},
        info={"tag": "done"},
        arrays={"q": np.arange(3.0)},
        calc={"extra": 1.0},
    )
    atoms = db[1]
    assert atoms.calc.results["energy"] == -10.5
    assert atoms.calc.results["extra"] == 1.0
    assert atoms.info["tag"] == "done"
    assert_same(atoms.arrays["q"], np.arange(3.0))
    db.update(0)  # nothing to write: a no-op


@pytest.mark.parametrize("key", ["energy", "positions", "arrays", "infox.a", "Cell"])
def test_aseio_update_invalid_key_is_value_error_and_writes_nothing(
    any_backend: Backend, key: str
) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0)])
    before = contents(any_backend)
    with pytest.raises(ValueError, match=f"Invalid key '{re.escape(key)}'"):
        db.update(0, {"calc.energy": 1.0, key: 1})
    assert_same(contents(any_backend), before)


def test_aseio_schema_uses_flat_keys(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0)])
    schema = db.schema(0)
    assert schema["arrays.positions"].shape == (2, 3)
    assert schema["calc.energy"].dtype == np.dtype("float64")
    assert schema["cell"].shape == (3, 3)
