"""The backend ABCs: a backend with only the abstract methods gets every default right.

Each behaviour test runs twice through the ``api`` fixture: on a sync ``ReadWriteBackend``
and on an ``AsyncReadWriteBackend`` (driven with ``asyncio.run``), both storing rows in a
plain list. ``SPIED`` defaults are recorded, so a test can say which default a default used.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from asebytes._abc import (
    AsyncBlobReadBackend,
    AsyncObjectReadWriteBackend,
    AsyncReadBackend,
    AsyncReadWriteBackend,
    BlobReadWriteBackend,
    ObjectReadBackend,
    ObjectReadWriteBackend,
    ReadBackend,
    ReadWriteBackend,
)
from asebytes._schema import SchemaEntry
from asebytes.exceptions import (
    AsebytesError,
    AsebytesValueError,
    UnsupportedOperationError,
)

Row = dict[Any, Any]


class Rows:
    """List storage shared by the test backends; ``calls`` records the abstract methods
    (and, in a ``spying`` subclass, the ``SPIED`` defaults) in call order."""

    def __init__(self, rows: list[Row | None] | None = None, *, strict: bool = True):
        self.rows: list[Row | None] = [
            None if r is None else dict(r) for r in rows or []
        ]
        self.strict = strict
        self.calls: list[tuple[Any, ...]] = []

    def _get(self, index: int, keys: list[Any] | None) -> Row | None:
        self.calls.append(("get", index))
        row = self.rows[index]
        if row is None:
            return None
        if keys is None:
            return dict(row)
        missing = [k for k in keys if k not in row]
        if missing and self.strict:
            raise KeyError(f"Invalid keys at index {index}: {missing}")
        return {k: row[k] for k in keys if k in row}

    def _set(self, index: int, value: Row | None) -> None:
        self.calls.append(("set", index))
        self.rows[index] = None if value is None else dict(value)

    def _delete(self, index: int) -> None:
        self.calls.append(("delete", index))
        del self.rows[index]

    def _extend(self, values: list[Row | None]) -> int:
        self.calls.append(("extend", len(values)))
        self.rows.extend(None if v is None else dict(v) for v in values)
        return len(self.rows)

    def _insert(self, index: int, value: Row | None) -> None:
        self.calls.append(("insert", index))
        self.rows.insert(index, None if value is None else dict(value))


class ListBackend(Rows, ReadWriteBackend[Any, Any]):
    """A sync backend with only the abstract methods."""

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return []

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, index: int, keys: list[Any] | None = None) -> Row | None:
        return self._get(index, keys)

    def set(self, index: int, value: Row | None) -> None:
        self._set(index, value)

    def delete(self, index: int) -> None:
        self._delete(index)

    def extend(self, values: list[Row | None]) -> int:
        return self._extend(values)

    def insert(self, index: int, value: Row | None) -> None:
        self._insert(index, value)


class AsyncListBackend(Rows, AsyncReadWriteBackend[Any, Any]):
    """An async backend with only the abstract methods."""

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return []

    async def len(self) -> int:
        return len(self.rows)

    async def get(self, index: int, keys: list[Any] | None = None) -> Row | None:
        return self._get(index, keys)

    async def set(self, index: int, value: Row | None) -> None:
        self._set(index, value)

    async def delete(self, index: int) -> None:
        self._delete(index)

    async def extend(self, values: list[Row | None]) -> int:
        return self._extend(values)

    async def insert(self, index: int, value: Row | None) -> None:
        self._insert(index, value)


SPIED = ("set_many", "update_many", "set_column", "update", "delete_many")


def spying(cls: type[Any]) -> type[Any]:
    """A subclass of ``cls`` that records each call of a ``SPIED`` default."""

    def recorder(name: str) -> Callable[..., Any]:
        base = getattr(cls, name)
        if inspect.iscoroutinefunction(base):

            async def arecord(self: Any, *args: Any) -> Any:
                self.calls.append((name, *args))
                return await base(self, *args)

            return arecord

        def record(self: Any, *args: Any) -> Any:
            self.calls.append((name, *args))
            return base(self, *args)

        return record

    return type(f"Spying{cls.__name__}", (cls,), {n: recorder(n) for n in SPIED})


SpyingListBackend = spying(ListBackend)
SpyingAsyncListBackend = spying(AsyncListBackend)


class Driver:
    """Calls a sync or an async backend the same way: ``d.get(0)``, ``d.len()``,
    ``d.iter_rows(...)`` (a list); an async method runs under ``asyncio.run``."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    @property
    def rows(self) -> list[Row | None]:
        rows: list[Row | None] = self.backend.rows
        return rows

    @property
    def calls(self) -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = self.backend.calls
        return calls

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def len(self) -> int:
        if isinstance(self.backend, AsyncReadBackend):
            return asyncio.run(self.backend.len())
        return len(self.backend)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.backend, name)
        if name == "iter_rows":
            if isinstance(self.backend, AsyncReadBackend):

                async def collect(*args: Any) -> list[Any]:
                    return [row async for row in method(*args)]

                return lambda *args: asyncio.run(collect(*args))
            return lambda *args: list(method(*args))
        if inspect.iscoroutinefunction(method):
            return lambda *args, **kwargs: asyncio.run(method(*args, **kwargs))
        return method  # type: ignore[no-any-return]


Make = Callable[..., Driver]


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Make:
    """``make(rows, strict=True)``: a spying list backend (sync or async) and its driver."""
    cls = SpyingListBackend if request.param == "sync" else SpyingAsyncListBackend

    def build(rows: list[Row | None] | None = None, *, strict: bool = True) -> Driver:
        return Driver(cls(rows, strict=strict))

    return build


def three() -> list[Row | None]:
    return [{"a": 0, "b": 0.5}, None, {"a": 2}]


# ── reads ─────────────────────────────────────────────────────────────────────────────


def test_get_many_and_iter_rows_call_get_per_index(make: Make) -> None:
    d = make(three())
    assert d.get_many([2, 0, 1]) == [{"a": 2}, {"a": 0, "b": 0.5}, None]
    assert d.iter_rows([0, 2], ["a"]) == [{"a": 0}, {"a": 2}]
    assert d.calls == [("get", i) for i in (2, 0, 1, 0, 2)]


@pytest.mark.parametrize("strict", [True, False], ids=["get-raises", "get-omits"])
def test_get_column_gives_none_for_placeholders_and_rows_missing_the_key(
    make: Make, strict: bool
) -> None:
    d = make(three(), strict=strict)
    assert d.get_column("b") == [0.5, None, None]
    assert d.get_column("a", [2, 0, 1, 2]) == [2, 0, None, 2]
    assert d.get_column("nowhere", [0]) == [None]


def test_get_column_without_indices_reads_every_row(make: Make) -> None:
    d = make([{"a": i} for i in range(4)])
    assert d.get_column("a") == [0, 1, 2, 3]
    assert d.get_column("a", []) == []


def test_keys_lists_the_row_keys_and_nothing_for_a_placeholder(make: Make) -> None:
    d = make(three())
    assert d.keys(0) == ["a", "b"]
    assert d.keys(1) == []


def test_schema_is_inferred_from_the_row_and_empty_for_a_placeholder(
    make: Make,
) -> None:
    d = make([{"pos": np.zeros((3, 2), dtype=np.float32), "n": 3, "s": "x"}, None])
    assert d.schema() == {
        "pos": SchemaEntry(np.dtype("float32"), (3, 2)),
        "n": SchemaEntry(np.dtype("int64"), ()),
        "s": SchemaEntry(str, ()),
    }
    assert d.schema(1) == {}


# ── writes ────────────────────────────────────────────────────────────────────────────


def test_update_merges_and_turns_a_placeholder_into_a_row(make: Make) -> None:
    d = make(three())
    d.update(0, {"b": 1.5, "c": "new"})
    d.update(1, {"a": 1})
    assert d.rows == [{"a": 0, "b": 1.5, "c": "new"}, {"a": 1}, {"a": 2}]


def test_delete_many_deletes_the_range_from_the_end(make: Make) -> None:
    d = make([{"i": i} for i in range(5)])
    d.delete_many(1, 4)
    assert d.rows == [{"i": 0}, {"i": 4}]
    assert [c for c in d.calls if c[0] == "delete"] == [
        ("delete", 3),
        ("delete", 2),
        ("delete", 1),
    ]


def test_drop_keys_on_an_index_subset_skips_placeholders(make: Make) -> None:
    d = make([{"a": 0, "b": 0}, None, {"a": 2, "b": 2}, {"a": 3, "b": 3}])
    d.drop_keys(["b", "absent"], [0, 1, 2])
    assert d.rows == [{"a": 0}, None, {"a": 2}, {"a": 3, "b": 3}]
    assert ("set", 1) not in d.calls


def test_drop_keys_without_indices_touches_every_row_that_has_a_key(
    make: Make,
) -> None:
    d = make([{"a": 0, "b": 0}, None, {"a": 2}])
    d.drop_keys(["b"])
    assert d.rows == [{"a": 0}, None, {"a": 2}]
    assert [c for c in d.calls if c[0] == "set"] == [("set", 0)]


def test_set_many_update_many_and_set_column_write_a_run_of_rows(
    make: Make,
) -> None:
    d = make([{"a": i} for i in range(5)])
    d.set_many(1, [{"x": 1}, None])
    d.update_many(3, [{"b": 3}, {"b": 4}])
    d.set_column("c", 0, ["c0", "c1"])
    assert d.rows == [
        {"a": 0, "c": "c0"},
        {"x": 1, "c": "c1"},
        None,
        {"a": 3, "b": 3},
        {"a": 4, "b": 4},
    ]


RUN = [2, 3, 4]

#: op -> (the write, on a driver and indices; the batched call it makes for ``RUN``)
INDEX_LIST_WRITES: dict[
    str, tuple[Callable[[Driver, list[int]], None], tuple[Any, ...]]
] = {
    "set_rows": (
        lambda d, ix: d.set_rows(ix, [{"n": i} for i in ix]),
        ("set_many", 2, [{"n": 2}, {"n": 3}, {"n": 4}]),
    ),
    "update_rows": (
        lambda d, ix: d.update_rows(ix, [{"n": i} for i in ix]),
        ("update_many", 2, [{"n": 2}, {"n": 3}, {"n": 4}]),
    ),
    "set_column_rows": (
        lambda d, ix: d.set_column_rows("n", ix, list(ix)),
        ("set_column", "n", 2, [2, 3, 4]),
    ),
}


@pytest.mark.parametrize("op", INDEX_LIST_WRITES)
def test_index_list_write_on_a_contiguous_run_is_one_batched_call(
    make: Make, op: str
) -> None:
    write, batched = INDEX_LIST_WRITES[op]
    d = make([{"a": i} for i in range(6)])
    write(d, RUN)
    assert [c for c in d.calls if c[0] == batched[0]] == [batched]
    assert [row.get("n") for row in d.rows if row] == [None, None, 2, 3, 4, None]


@pytest.mark.parametrize("op", INDEX_LIST_WRITES)
@pytest.mark.parametrize("indices", [[4, 1, 3], [1, 3], [-1, 0]])
def test_index_list_write_elsewhere_loops_per_index(
    make: Make, op: str, indices: list[int]
) -> None:
    write, batched = INDEX_LIST_WRITES[op]
    d = make([{"a": i} for i in range(6)])
    write(d, indices)
    assert batched[0] not in d.names()
    expect = {i % 6: i for i in indices}
    for pos, row in enumerate(d.rows):
        assert row is not None
        assert row.get("n") == expect.get(pos)


def test_index_list_write_on_negative_run_is_batched(make: Make) -> None:
    d = make([{"a": i} for i in range(4)])
    d.set_rows([-2, -1], [{"z": 1}, {"z": 2}])
    assert d.names().count("set_many") == 1
    assert d.rows[2:] == [{"z": 1}, {"z": 2}]


@pytest.mark.parametrize("op", ["set_rows", "update_rows", "set_column_rows"])
def test_index_list_write_with_mismatched_lengths_writes_nothing(
    make: Make, op: str
) -> None:
    d = make([{"a": i} for i in range(3)])
    args: tuple[Any, ...] = ([0, 1], [{"a": 9}])
    if op == "set_column_rows":
        args = ("a", [0, 1], [9])
    with pytest.raises(AsebytesValueError, match="2 indices but 1"):
        getattr(d, op)(*args)
    assert d.rows == [{"a": 0}, {"a": 1}, {"a": 2}]


def test_index_list_write_with_no_indices_does_nothing(make: Make) -> None:
    d = make([{"a": 0}])
    d.set_rows([], [])
    d.update_rows([], [])
    d.set_column_rows("a", [], [])
    assert d.calls == []


def test_reserve_appends_placeholders(make: Make) -> None:
    d = make([{"a": 0}])
    d.reserve(3)
    assert d.rows == [{"a": 0}, None, None, None]
    assert d.calls == [("extend", 3)]


def test_clear_deletes_every_row_through_delete_many(make: Make) -> None:
    d = make(three())
    d.clear()
    assert d.rows == []
    assert d.names().count("delete_many") == 1
    d.clear()  # empty: nothing to do
    assert d.names().count("delete_many") == 1


def test_remove_is_unsupported_and_names_the_backend(make: Make) -> None:
    d = make()
    with pytest.raises(
        NotImplementedError, match=r"ListBackend does not support remove\(\)"
    ) as info:
        d.remove()
    assert isinstance(info.value, UnsupportedOperationError)
    assert isinstance(info.value, AsebytesError)


# ── the classes themselves ────────────────────────────────────────────────────────────


def test_a_subclass_missing_an_abstract_method_cannot_be_instantiated() -> None:
    class NoGet(ReadBackend[str, Any]):
        @staticmethod
        def list_groups(path: str, **kwargs: Any) -> list[str]:
            return []

        def __len__(self) -> int:
            return 0

    class AsyncNoLen(AsyncReadBackend[str, Any]):
        @staticmethod
        def list_groups(path: str, **kwargs: Any) -> list[str]:
            return []

        async def get(self, index: int, keys: list[str] | None = None) -> Row | None:
            return None

    class ReadOnlyInWriteClothes(ReadWriteBackend[str, Any]):
        @staticmethod
        def list_groups(path: str, **kwargs: Any) -> list[str]:
            return []

        def __len__(self) -> int:
            return 0

        def get(self, index: int, keys: list[str] | None = None) -> Row | None:
            return None

    for cls, missing in [
        (NoGet, "get"),
        (AsyncNoLen, "len"),
        (ReadOnlyInWriteClothes, "delete, extend, insert, set"),
        (ReadBackend, "get"),
        (AsyncReadWriteBackend, "set"),
    ]:
        with pytest.raises(TypeError, match=f"abstract method.*{missing}"):
            cls()


def test_typing_aliases_are_subscripted_generics() -> None:
    assert ObjectReadBackend == ReadBackend[str, Any]
    assert BlobReadWriteBackend == ReadWriteBackend[bytes, bytes]
    assert AsyncBlobReadBackend == AsyncReadBackend[bytes, bytes]
    assert AsyncObjectReadWriteBackend == AsyncReadWriteBackend[str, Any]
    for alias in (ObjectReadBackend, ObjectReadWriteBackend, AsyncBlobReadBackend):
        with pytest.raises(TypeError):
            isinstance(ListBackend(), alias)
    assert isinstance(ListBackend(), ReadBackend)


def test_class_flags_default_as_the_reference() -> None:
    assert ReadBackend._returns_mutable is False
    assert ReadWriteBackend._returns_mutable is True
    assert AsyncReadBackend._returns_mutable is False
    assert AsyncReadWriteBackend._returns_mutable is True
    for cls in (ReadBackend, ReadWriteBackend, AsyncReadBackend, AsyncReadWriteBackend):
        assert cls._negative_indices is False


def test_a_read_only_backend_gets_the_read_defaults_and_no_writes() -> None:
    class Squares(ReadBackend[str, int]):
        @staticmethod
        def list_groups(path: str, **kwargs: Any) -> list[str]:
            return ["default"]

        def __len__(self) -> int:
            return 4

        def get(self, index: int, keys: list[str] | None = None) -> dict[str, int]:
            return {"sq": index * index}

    b = Squares()
    assert Squares.list_groups("anywhere") == ["default"]
    assert b.get_column("sq") == [0, 1, 4, 9]
    assert list(b.iter_rows([3])) == [{"sq": 9}]
    assert not hasattr(b, "set")
    assert not isinstance(b, ReadWriteBackend)


def test_async_iter_rows_is_an_async_generator() -> None:
    backend = AsyncListBackend(three())
    rows = backend.iter_rows([0, 1])
    assert isinstance(rows, AsyncIterator)

    async def collect() -> list[Row | None]:
        return [row async for row in rows]

    assert asyncio.run(collect()) == [{"a": 0, "b": 0.5}, None]
