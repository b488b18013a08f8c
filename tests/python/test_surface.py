"""One surface for sync and async: the operations are written once (the native
``StoreOps``, the adapters' table ``asebytes._operations.OPS``) and every surface has
each of them, with the same argument rules."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from asebytes import _adapters, _native, _operations, _stores


def _native_ops() -> list[str]:
    return [
        n
        for n, v in vars(_native.StoreOps).items()
        if not n.startswith("_") and callable(v)
    ]


def test_store_and_async_store_share_every_operation() -> None:
    ops = _native_ops()
    assert {"get", "extend", "set_column", "follow_wait", "remove"} <= set(ops)
    for name in ops:
        assert getattr(_native.Store, name) is getattr(_native.StoreOps, name)
        assert getattr(_native.AsyncStore, name) is getattr(_native.StoreOps, name)


def test_the_async_daemon_backend_has_every_native_operation() -> None:
    for name in _native_ops():
        method = getattr(_stores.AsyncDaemonBackend, name)
        assert inspect.iscoroutinefunction(method), name


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda s: s.get("x"), TypeError),
        (lambda s: s.get_many([0], keys=5), TypeError),
        (lambda s: s.extend([1]), TypeError),
        (lambda s: s.set_many([0, 1], [{"a": 1}]), ValueError),
        (lambda s: s.follow_wait(0, -1.0), ValueError),
    ],
)
def test_bad_arguments_raise_the_same_before_anything_is_sent(
    call: Any, exc: type[Exception]
) -> None:
    # Neither handle has connected: planning alone raises, identically.
    sync = _native.Store("memory://surface-never-opened")
    asyn = _native.AsyncStore("memory://surface-never-opened")
    with pytest.raises(exc) as a:
        call(sync)
    with pytest.raises(exc) as b:
        call(asyn)
    assert type(a.value) is type(b.value)
    assert str(a.value) == str(b.value)


@pytest.mark.parametrize(
    "cls",
    [
        _adapters.BlobToObjectReadWriteAdapter,
        _adapters.ObjectToBlobReadWriteAdapter,
        _adapters.AsyncBlobToObjectReadWriteAdapter,
        _adapters.AsyncObjectToBlobReadWriteAdapter,
        _adapters.SyncToAsyncReadWriteAdapter,
    ],
)
def test_every_adapter_forwards_every_operation(cls: type[Any]) -> None:
    asynchronous = cls.__name__.startswith(("Async", "SyncToAsync"))
    for op in _operations.OPS:
        method = getattr(cls, op.name)
        assert inspect.iscoroutinefunction(method) == asynchronous, op.name
        assert method.__qualname__ == op.name, f"{cls.__name__}.{op.name} not forwarded"


@pytest.mark.parametrize(
    "cls", [_adapters.BlobToObjectReadAdapter, _adapters.SyncToAsyncReadAdapter]
)
def test_read_adapters_have_no_writes(cls: type[Any]) -> None:
    for op in _operations.OPS:
        if op.write:
            assert not hasattr(cls, op.name), op.name
