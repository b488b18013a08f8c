"""The adapters: blob ⇄ object conversion (sync and async) and sync → async.

The wrapped backends are the list backends of ``test_backend_abc``, made ``recording``:
every top-level call they receive is logged with its arguments, so a test can say exactly
what an adapter forwarded (and that a batched call stayed one call).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgpack  # type: ignore[import-untyped]
import msgpack_numpy  # type: ignore[import-untyped]
import numpy as np
import pytest
from _helpers import assert_same
from asebytes import _native
from asebytes._abc import (
    AsyncReadBackend,
    AsyncReadWriteBackend,
    ReadBackend,
    ReadWriteBackend,
)
from asebytes._adapters import (
    AsyncBlobToObjectReadAdapter,
    AsyncBlobToObjectReadWriteAdapter,
    AsyncObjectToBlobReadAdapter,
    AsyncObjectToBlobReadWriteAdapter,
    BlobToObjectReadAdapter,
    BlobToObjectReadWriteAdapter,
    ObjectToBlobReadAdapter,
    ObjectToBlobReadWriteAdapter,
    SyncToAsyncAdapter,
    SyncToAsyncReadAdapter,
    SyncToAsyncReadWriteAdapter,
    sync_to_async,
)
from asebytes.exceptions import AsebytesError, UnsupportedOperationError
from test_backend_abc import AsyncListBackend, Driver, ListBackend, Row

READS = ["get", "get_many", "iter_rows", "get_column", "keys", "schema"]
WRITES = [
    "set",
    "delete",
    "extend",
    "insert",
    "update",
    "delete_many",
    "drop_keys",
    "set_many",
    "update_many",
    "set_column",
    "reserve",
    "clear",
    "remove",
    "set_rows",
    "update_rows",
    "set_column_rows",
]


def recording(cls: type[Any]) -> type[Any]:
    """A subclass of ``cls`` logging each top-level call of ``READS + WRITES`` in ``log``
    (calls a default makes to other methods are not logged)."""

    def wrap(name: str) -> Callable[..., Any]:
        base = getattr(cls, name)

        def enter(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not self.__dict__.get("depth"):
                self.__dict__.setdefault("log", []).append(
                    (name, *args, *kwargs.values())
                )
            self.depth = self.__dict__.get("depth", 0) + 1

        if inspect.isasyncgenfunction(base):

            async def agen(self: Any, *args: Any, **kwargs: Any) -> Any:
                enter(self, args, kwargs)
                try:
                    async for row in base(self, *args, **kwargs):
                        yield row
                finally:
                    self.depth -= 1

            return agen
        if inspect.isgeneratorfunction(base):

            def gen(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
                enter(self, args, kwargs)
                try:
                    yield from base(self, *args, **kwargs)
                finally:
                    self.depth -= 1

            return gen
        if inspect.iscoroutinefunction(base):

            async def coro(self: Any, *args: Any, **kwargs: Any) -> Any:
                enter(self, args, kwargs)
                try:
                    return await base(self, *args, **kwargs)
                finally:
                    self.depth -= 1

            return coro

        def plain(self: Any, *args: Any, **kwargs: Any) -> Any:
            enter(self, args, kwargs)
            try:
                return base(self, *args, **kwargs)
            finally:
                self.depth -= 1

        return plain

    namespace = {n: wrap(n) for n in READS + WRITES}
    namespace["close"] = lambda self: self.__dict__.setdefault("log", []).append(
        ("close",)
    )
    return type(f"Recording{cls.__name__}", (cls,), namespace)


RecordingList = recording(ListBackend)
RecordingAsyncList = recording(AsyncListBackend)


def log(backend: Any) -> list[tuple[Any, ...]]:
    entries: list[tuple[Any, ...]] = backend.__dict__.get("log", [])
    return entries


def ev(value: Any, key: str = "") -> bytes:
    return _native.encode_value(value, key)


def enc(row: dict[str, Any]) -> dict[bytes, bytes]:
    return {k.encode(): ev(v, k) for k, v in row.items()}


# ── blob ⇄ object: one parametrised harness over both directions and both flavours ──


class R:
    """A row in a test table, rendered in the object or the blob form."""

    def __init__(self, **row: Any) -> None:
        self.row = row


class K:
    """A key, rendered as ``str`` or ``bytes``."""

    def __init__(self, key: str) -> None:
        self.key = key


class Val:
    """One value, rendered as itself or packed."""

    def __init__(self, value: Any) -> None:
        self.value = value


def render(template: Any, tier: str) -> Any:
    if isinstance(template, R):
        return dict(template.row) if tier == "object" else enc(template.row)
    if isinstance(template, K):
        return template.key if tier == "object" else template.key.encode()
    if isinstance(template, Val):
        return template.value if tier == "object" else ev(template.value)
    if isinstance(template, list):
        return [render(t, tier) for t in template]
    if isinstance(template, tuple):
        return tuple(render(t, tier) for t in template)
    return template


SEED = [R(a=0, s="zero"), None, R(a=2)]

#: (method, arguments): both written with ``R``/``K``/``Val`` in place of rows, keys, values
FORWARDED: list[tuple[str, tuple[Any, ...]]] = [
    ("get", (0, [K("a")])),
    ("get", (1, None)),
    ("get_many", ([2, 0, 1], None)),
    ("get_many", ([0], [K("s")])),
    ("iter_rows", ([2, 1], [K("a")])),
    ("get_column", (K("a"), [0, 1, 2])),
    ("get_column", (K("a"), None)),
    ("keys", (0,)),
    ("set", (0, R(b=1.5))),
    ("set", (2, None)),
    ("delete", (1,)),
    ("extend", ([R(a=3), None],)),
    ("insert", (1, R(x="y"))),
    ("insert", (0, None)),
    ("update", (1, R(a=1))),
    ("delete_many", (0, 2)),
    ("drop_keys", ([K("a")], [0, 2])),
    ("drop_keys", ([K("s")], None)),
    ("set_many", (1, [R(a=1), None])),
    ("update_many", (0, [R(b=True), R(b=False)])),
    ("set_column", (K("a"), 0, [Val(9), Val([1, 2])])),
    ("reserve", (2,)),
    ("clear", ()),
    ("set_rows", ([2, 0], [R(a=20), None])),
    ("update_rows", ([2, 0], [R(c="c"), R(c="d")])),
    ("set_column_rows", (K("n"), [2, 0], [Val(None), Val("v")])),
]

ADAPTERS = {
    # name: (adapter class, inner backend class, tier of the adapter, tier of the inner)
    "blob-to-object": (BlobToObjectReadWriteAdapter, RecordingList, "object", "blob"),
    "object-to-blob": (ObjectToBlobReadWriteAdapter, RecordingList, "blob", "object"),
    "async-blob-to-object": (
        AsyncBlobToObjectReadWriteAdapter,
        RecordingAsyncList,
        "object",
        "blob",
    ),
    "async-object-to-blob": (
        AsyncObjectToBlobReadWriteAdapter,
        RecordingAsyncList,
        "blob",
        "object",
    ),
}


class Pair:
    """An adapter over a seeded recording backend, driven like a sync backend."""

    def __init__(self, name: str, rows: list[Any] | None = None) -> None:
        adapter_cls, inner_cls, self.tier, self.inner_tier = ADAPTERS[name]
        rows = SEED if rows is None else rows
        self.inner = inner_cls(render(rows, self.inner_tier))
        self.adapter = adapter_cls(self.inner)
        self.d = Driver(self.adapter)
        self.expect = Driver(inner_cls(render(rows, self.tier)))

    def to_inner(self, row: Row | None) -> Row | None:
        """A row of the adapter's tier in the wrapped backend's form."""
        if row is None:
            return None
        return enc(row) if self.tier == "object" else _native.decode_row(row)


@pytest.fixture(params=list(ADAPTERS))
def pair_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.mark.parametrize(("method", "args"), FORWARDED, ids=lambda x: str(x)[:24])
def test_converting_adapter_forwards_each_call_once_converted(
    pair_name: str, method: str, args: tuple[Any, ...]
) -> None:
    p = Pair(pair_name)
    result = getattr(p.d, method)(*render(args, p.tier))
    assert log(p.inner) == [(method, *render(args, p.inner_tier))]
    # The same call on a plain backend of the adapter's own tier gives the same result
    # and leaves the same rows behind (in the inner tier's form).
    assert_same(result, getattr(p.expect, method)(*render(args, p.tier)))
    assert_same(p.inner.rows, [p.to_inner(row) for row in p.expect.rows])


def test_converting_adapter_forwards_remove(pair_name: str) -> None:
    p = Pair(pair_name)
    with pytest.raises(
        UnsupportedOperationError, match=r"ListBackend does not support"
    ):
        p.d.remove()
    assert log(p.inner) == [("remove",)]


def test_converting_adapter_schema_describes_its_own_tier(pair_name: str) -> None:
    p = Pair(pair_name, [R(a=np.zeros(3, dtype=np.int16), s="x")])
    schema = {k: (e.dtype, e.shape) for k, e in p.d.schema(0).items()}
    if p.tier == "object":
        assert schema == {"a": (np.dtype("int16"), (3,)), "s": (str, ())}
    else:  # as the reference: the packed row, every value bytes
        assert schema == {b"a": (bytes, ()), b"s": (bytes, ())}


def test_converting_adapters_expose_and_mirror_the_wrapped_backend(
    pair_name: str,
) -> None:
    p = Pair(pair_name)
    assert p.adapter.backend is p.inner
    assert p.adapter._negative_indices is False
    assert p.adapter._returns_mutable is True
    p.inner._negative_indices = True
    assert type(p.adapter)(p.inner)._negative_indices is True
    assert p.d.len() == 3
    closed = p.adapter.close()
    if inspect.isawaitable(closed):
        asyncio.run(closed)  # type: ignore[arg-type]
    assert log(p.inner) == [("close",)]


def test_read_adapters_keep_the_reference_returns_mutable() -> None:
    for cls in (BlobToObjectReadAdapter, ObjectToBlobReadAdapter):
        assert cls(ListBackend())._returns_mutable is False
    for acls in (AsyncBlobToObjectReadAdapter, AsyncObjectToBlobReadAdapter):
        assert acls(AsyncListBackend())._returns_mutable is False
    assert issubclass(BlobToObjectReadWriteAdapter, BlobToObjectReadAdapter)
    assert issubclass(AsyncObjectToBlobReadWriteAdapter, AsyncReadWriteBackend)
    assert not issubclass(ObjectToBlobReadAdapter, ReadWriteBackend)


# ── values survive the blob tier with their type ──────────────────────────────────────

VALUES: dict[str, Any] = {
    "int": 7,
    "big": 2**62,
    "neg": -3,
    "float": 0.1,
    "nan": float("nan"),
    "true": True,
    "false": False,
    "str": "héllo",
    "none": None,
    "bytes": b"\x00raw",
    "list": [1, "a", 2.5, None, [True]],
    "tuple": (1, 2),
    "nested": {"a": {"b": [1, {"c": "d"}]}, "arr": np.arange(3), "e": None},
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
    "i8": np.array([1, -2], dtype=np.int8),
    "u16": np.arange(3, dtype=np.uint16),
    "bools": np.array([True, False]),
    "c128": np.array([1 + 2j]),
    "empty": np.zeros((0, 3)),
    "np_i32": np.int32(5),
    "np_f32": np.float32(1.5),
    "np_bool": np.bool_(True),
    "np_u64": np.uint64(2**63),
}


def expected(value: Any) -> Any:
    """What a value reads back as: tuples become lists, everything else is unchanged."""
    if isinstance(value, tuple):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    return value


@pytest.fixture(params=["sync", "async", "async-over-thread"])
def object_view(request: pytest.FixtureRequest) -> tuple[Driver, Any]:
    """An object-tier adapter over an empty blob list backend, and that backend."""
    if request.param == "sync":
        inner: Any = ListBackend()
        return Driver(BlobToObjectReadWriteAdapter(inner)), inner
    if request.param == "async":
        inner = AsyncListBackend()
        return Driver(AsyncBlobToObjectReadWriteAdapter(inner)), inner
    inner = ListBackend()
    return Driver(AsyncBlobToObjectReadWriteAdapter(sync_to_async(inner))), inner


def test_blob_to_object_round_trips_every_storable_value(
    object_view: tuple[Driver, Any],
) -> None:
    d, inner = object_view
    assert d.extend([VALUES, None, {"k": 1}]) == 3
    assert inner.rows[0] == {k.encode(): ev(v, k) for k, v in VALUES.items()}
    want = {k: expected(v) for k, v in VALUES.items()}
    assert_same(d.get(0), want)
    assert_same(d.get_many([0, 1]), [want, None])
    assert_same(d.iter_rows([1, 0]), [None, want])
    assert_same(d.get(0, ["f32", "tuple"]), {"f32": want["f32"], "tuple": [1, 2]})
    assert d.keys(0) == list(VALUES)
    assert d.keys(1) == []
    for key in ("np_f32", "nested", "none"):
        assert_same(d.get_column(key), [want[key], None, None])
    assert d.schema(0)["f32"].shape == (2, 3)
    array = d.get(0)["f32"]
    array[0, 0] = 99.0  # a writable copy: the store does not change
    assert_same(d.get(0)["f32"], VALUES["f32"])


def test_object_to_blob_reads_are_the_reference_msgpack_bytes() -> None:
    plain = {k: v for k, v in VALUES.items() if not isinstance(v, (np.ndarray, dict))}
    plain["f64"] = np.linspace(0, 1, 5)
    blob = ObjectToBlobReadWriteAdapter(ListBackend([plain, None]))
    row = blob.get(0)
    assert row is not None
    for key, value in plain.items():
        reference = msgpack.packb(value, default=msgpack_numpy.encode)
        assert row[key.encode()] == reference == ev(value, key)
    assert blob.get_column(b"int") == [ev(7), None]
    assert blob.keys(0) == [k.encode() for k in plain]


def test_object_to_blob_writes_unpack_into_the_object_backend() -> None:
    inner = ListBackend()
    blob = ObjectToBlobReadWriteAdapter(inner)
    blob.extend([enc({"x": np.arange(2), "t": "a"}), None])
    blob.set_column(b"t", 0, [ev("b"), ev(None)])
    assert_same(inner.rows, [{"x": np.arange(2), "t": "b"}, {"t": None}])


# ── bad input: TypeError before the wrapped backend is touched ────────────────────────

BAD_OBJECT_WRITES: list[tuple[str, tuple[Any, ...]]] = [
    ("set", (0, {"a": object()})),
    ("set", (0, {"a": np.array([object()], dtype=object)})),
    ("set", (0, {"a": {1: "int key"}})),
    ("set", (0, {1: "x"})),
    ("set", (0, [("a", 1)])),
    ("extend", ([{"a": 1}, {"b": object()}],)),
    ("insert", (0, {"a": lambda: 0})),
    ("update", (0, {"a": {"deep": object()}})),
    ("update", (0, None)),
    ("set_many", (0, [None, {"a": object()}])),
    ("update_many", (0, [{"a": 1}, {"a": object()}])),
    ("set_column", ("a", 0, [1, object()])),
    ("set_column", (b"a", 0, [1])),
    ("drop_keys", ([b"a"], None)),
    ("set_rows", ([0, 1], [{"a": 1}, "row"])),
    ("update_rows", ([0], [{"a": object()}])),
    ("set_column_rows", ("a", [1, 0], [set(), 1])),
]

BAD_BLOB_WRITES: list[tuple[str, tuple[Any, ...]]] = [
    ("set", (0, {b"a": "text"})),
    ("set", (0, {"a": ev(1)})),
    ("set", (0, {b"a": None})),
    ("extend", ([enc({"a": 1}), {b"b": 1}],)),
    ("insert", (0, {b"a": bytearray(ev(1))})),
    ("update", (0, {b"a": memoryview(ev(1))})),
    ("set_many", (0, [None, {b"a": 1.5}])),
    ("update_many", (0, [{b"a": ev(1)}, {b"a": [ev(1)]}])),
    ("set_column", (b"a", 0, [ev(1), 2])),
    ("set_column", ("a", 0, [ev(1)])),
    ("drop_keys", (["a"], None)),
    ("set_rows", ([0], [{b"a": "x"}])),
    ("update_rows", ([1, 0], [{b"a": ev(2)}, {b"a": b"\xc1"}])),  # ValueError
    ("set_column_rows", (b"a", [0], [None])),
]


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    ("tier", "method", "args"),
    [("object", m, a) for m, a in BAD_OBJECT_WRITES]
    + [("blob", m, a) for m, a in BAD_BLOB_WRITES],
    ids=lambda x: str(x)[:30],
)
def test_bad_input_raises_and_leaves_the_wrapped_backend_untouched(
    flavour: str, tier: str, method: str, args: tuple[Any, ...]
) -> None:
    direction = "blob-to-object" if tier == "object" else "object-to-blob"
    p = Pair(direction if flavour == "sync" else f"async-{direction}")
    before = [None if r is None else dict(r) for r in p.inner.rows]
    # the one blob write of the right types but undecodable bytes is a ValueError
    error = ValueError if (tier, method) == ("blob", "update_rows") else TypeError
    with pytest.raises(error) as info:
        getattr(p.d, method)(*args)
    assert isinstance(info.value, AsebytesError)
    assert log(p.inner) == []
    assert p.inner.rows == before


def test_bad_keys_in_reads_raise_type_error(pair_name: str) -> None:
    p = Pair(pair_name)
    wrong = "a" if p.tier == "blob" else b"a"
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("get", (0, [wrong])),
        ("get_many", ([0], [wrong])),
        ("iter_rows", ([0], [wrong])),
        ("get_column", (wrong,)),
    ]
    for method, args in calls:
        with pytest.raises(TypeError, match="keys must be"):
            getattr(p.d, method)(*args)
    assert log(p.inner) == []


def test_error_names_the_key_of_an_unstorable_value() -> None:
    adapter = BlobToObjectReadWriteAdapter(ListBackend())
    with pytest.raises(TypeError, match="'calc.thing'"):
        adapter.extend([{"calc.thing": object()}])
    with pytest.raises(TypeError, match="'info.x'"):
        adapter.set_column("info.x", 0, [object()])


# ── list_groups ───────────────────────────────────────────────────────────────────────

ALL_ADAPTERS = [
    BlobToObjectReadAdapter,
    BlobToObjectReadWriteAdapter,
    ObjectToBlobReadAdapter,
    ObjectToBlobReadWriteAdapter,
    AsyncBlobToObjectReadAdapter,
    AsyncBlobToObjectReadWriteAdapter,
    AsyncObjectToBlobReadAdapter,
    AsyncObjectToBlobReadWriteAdapter,
    SyncToAsyncReadAdapter,
    SyncToAsyncReadWriteAdapter,
]


@pytest.mark.parametrize("cls", ALL_ADAPTERS, ids=lambda c: c.__name__)
def test_adapters_have_no_list_groups(cls: type[Any]) -> None:
    with pytest.raises(NotImplementedError, match=f"{cls.__name__} wraps a backend"):
        cls.list_groups("data.lmdb")


# ── sync → async ──────────────────────────────────────────────────────────────────────


class ReadOnlyList(ReadBackend[Any, Any]):
    def __init__(self, rows: list[Row | None]) -> None:
        self.rows = rows

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return []

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, index: int, keys: list[Any] | None = None) -> Row | None:
        return self.rows[index]


def test_sync_to_async_picks_the_adapter_by_capability() -> None:
    rw = sync_to_async(ListBackend())
    ro = sync_to_async(ReadOnlyList([]))
    assert type(rw) is SyncToAsyncReadWriteAdapter
    assert type(ro) is SyncToAsyncReadAdapter
    assert isinstance(rw, AsyncReadWriteBackend)
    assert not isinstance(ro, AsyncReadWriteBackend)
    assert isinstance(ro, AsyncReadBackend)
    assert SyncToAsyncAdapter is SyncToAsyncReadWriteAdapter
    with pytest.raises(TypeError, match="already async"):
        sync_to_async(AsyncListBackend())  # type: ignore[call-overload]


@pytest.mark.parametrize(("method", "args"), FORWARDED, ids=lambda x: str(x)[:24])
def test_sync_to_async_forwards_each_call_unchanged(
    method: str, args: tuple[Any, ...]
) -> None:
    inner = RecordingList(render(SEED, "object"))
    twin = Driver(ListBackend(render(SEED, "object")))
    d = Driver(sync_to_async(inner))
    plain = render(args, "object")
    assert_same(getattr(d, method)(*plain), getattr(twin, method)(*plain))
    assert log(inner) == [(method, *plain)]
    assert inner.rows == twin.rows


def test_sync_to_async_len_schema_and_remove() -> None:
    inner = RecordingList([{"a": np.zeros(2)}])
    d = Driver(sync_to_async(inner))
    assert d.len() == 1
    assert d.schema(0)["a"].shape == (2,)
    with pytest.raises(UnsupportedOperationError, match="ListBackend"):
        d.remove()


def test_sync_to_async_runs_each_call_in_a_worker_thread() -> None:
    seen: list[int] = []

    class WhereAmI(ListBackend):
        def get(self, index: int, keys: list[Any] | None = None) -> Row | None:
            seen.append(threading.get_ident())
            return super().get(index, keys)

    adapter = sync_to_async(WhereAmI([{"a": 1}]))

    async def main() -> Any:
        return await adapter.get(0), threading.get_ident()

    row, loop_thread = asyncio.run(main())
    assert row == {"a": 1}
    assert seen and loop_thread not in seen


def test_sync_to_async_iter_rows_reads_everything_in_one_thread_call() -> None:
    inner = RecordingList([{"i": i} for i in range(5)])
    adapter = sync_to_async(inner)

    async def first_then_log() -> tuple[Any, list[tuple[Any, ...]]]:
        rows = adapter.iter_rows([4, 0, 2])
        first = await rows.__anext__()
        gets = [c for c in inner.calls if c[0] == "get"]
        rest = [row async for row in rows]
        return [first, *rest], gets

    rows, gets_before_rest = asyncio.run(first_then_log())
    assert rows == [{"i": 4}, {"i": 0}, {"i": 2}]
    assert gets_before_rest == [("get", 4), ("get", 0), ("get", 2)]
    assert log(inner) == [("iter_rows", [4, 0, 2], None)]


def test_sync_to_async_serves_50_concurrent_gets() -> None:
    barrier = threading.Barrier(2, timeout=30)

    class Overlapping(ListBackend):
        def get(self, index: int, keys: list[Any] | None = None) -> Row | None:
            barrier.wait()  # returns only while another get runs at the same time
            return super().get(index, keys)

    adapter = sync_to_async(Overlapping([{"i": i} for i in range(50)]))

    async def main() -> list[Row | None]:
        return list(await asyncio.gather(*(adapter.get(i) for i in range(50))))

    assert asyncio.run(main()) == [{"i": i} for i in range(50)]


def test_sync_to_async_mirrors_the_flags_and_exposes_the_backend() -> None:
    class Native(ListBackend):
        _returns_mutable = False
        _negative_indices = True

    backend = Native()
    adapter = sync_to_async(backend)
    assert adapter.backend is backend
    assert adapter._returns_mutable is False
    assert adapter._negative_indices is True
    plain = sync_to_async(ReadOnlyList([]))
    assert plain._returns_mutable is False
    assert plain._negative_indices is False
    assert sync_to_async(ListBackend())._returns_mutable is True


def test_sync_to_async_closes_the_backend_in_a_worker_thread() -> None:
    closed: list[int] = []

    class Closable(ListBackend):
        def close(self) -> None:
            closed.append(threading.get_ident())

    adapter = sync_to_async(Closable())
    asyncio.run(adapter.aclose())
    assert len(closed) == 1
    assert closed[0] != threading.get_ident()
    adapter.close()
    assert closed[1] == threading.get_ident()
    asyncio.run(sync_to_async(ListBackend()).aclose())  # nothing to close: fine


def test_async_converting_adapter_aclose_prefers_aclose_and_awaits_close() -> None:
    events: list[str] = []

    class WithAclose(AsyncListBackend):
        async def aclose(self) -> None:
            events.append("aclose")

        def close(self) -> None:
            events.append("close")

    class WithAsyncClose(AsyncListBackend):
        async def close(self) -> None:
            events.append("async close")

    asyncio.run(AsyncBlobToObjectReadAdapter(WithAclose()).aclose())
    asyncio.run(AsyncObjectToBlobReadWriteAdapter(WithAsyncClose()).aclose())
    asyncio.run(AsyncBlobToObjectReadAdapter(AsyncListBackend()).aclose())
    assert events == ["aclose", "async close"]
