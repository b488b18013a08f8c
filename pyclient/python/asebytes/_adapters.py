"""Adapters between backend tiers: blob ⇄ object, and sync → async.

They sit between the facades (:mod:`asebytes._io`) and a backend (:mod:`asebytes._abc`):

* ``BlobToObject*`` show a blob backend (``dict[bytes, bytes]`` rows) as an object backend
  (``dict[str, Any]`` rows): keys are UTF-8 encoded, values packed with
  ``asebytes._native.encode_value`` on the way in and unpacked with ``decode_value`` on the
  way out (msgpack-numpy, byte-identical to the reference). ``ObjectToBlob*`` are the mirror
  image. ``Async*`` do the same over async backends.
* ``SyncToAsync*`` run each call of a sync backend in a worker thread
  (``asyncio.to_thread``); ``sync_to_async`` picks the read or read-write one.

Placeholders (``None`` rows) pass through untouched. Each write converts and validates all
of its input before it calls the wrapped backend, so bad input (a non-bytes blob value, a
value that cannot be stored) raises ``TypeError`` and leaves the store as it was. Each
method forwards to the same method of the wrapped backend, so one batched call
(``extend``, ``set_rows``, ``delete_many``, ...) stays one call. Every adapter exposes the
wrapped backend as ``.backend`` and mirrors its ``_negative_indices``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, TypeVar, overload

from . import _native, _operations
from ._abc import (
    AsyncReadBackend,
    AsyncReadWriteBackend,
    ReadBackend,
    ReadWriteBackend,
)
from ._schema import SchemaEntry
from .exceptions import (
    AsebytesTypeError,
    AsebytesValueError,
    UnsupportedOperationError,
)

__all__ = [
    "AsyncBlobToObjectReadAdapter",
    "AsyncBlobToObjectReadWriteAdapter",
    "AsyncObjectToBlobReadAdapter",
    "AsyncObjectToBlobReadWriteAdapter",
    "BlobToObjectReadAdapter",
    "BlobToObjectReadWriteAdapter",
    "ObjectToBlobReadAdapter",
    "ObjectToBlobReadWriteAdapter",
    "SyncToAsyncAdapter",
    "SyncToAsyncReadAdapter",
    "SyncToAsyncReadWriteAdapter",
    "sync_to_async",
]

K = TypeVar("K")
V = TypeVar("V")

Row = dict[Any, Any]


# ── conversions (one place, used by the sync and the async adapters) ──────────────────


def _type_name(value: object) -> str:
    return type(value).__name__


def _key_name(key: object) -> str:
    """A key as text for error messages (blob keys may be any bytes)."""
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="backslashreplace")
    return str(key)


def _key_to_blob(key: object) -> bytes:
    if not isinstance(key, str):
        raise AsebytesTypeError(f"object keys must be str, got {_type_name(key)!r}")
    return key.encode()


def _key_to_object(key: object) -> str:
    if not isinstance(key, bytes):
        raise AsebytesTypeError(f"blob keys must be bytes, got {_type_name(key)!r}")
    try:
        return key.decode()
    except UnicodeDecodeError as err:
        raise AsebytesValueError(
            f"blob key {key!r} is not valid UTF-8, so it has no object-tier name"
        ) from err


def _as_dict(row: object) -> Row:
    if isinstance(row, dict):
        return row
    if isinstance(row, Mapping):
        return dict(row)
    raise AsebytesTypeError(f"a row must be a dict, got {_type_name(row)!r}")


def _row_to_blob(row: object) -> dict[bytes, bytes]:
    """Pack an object row; ``TypeError`` naming the key for a value that cannot be stored."""
    return _native.encode_row(_as_dict(row))


def _row_to_object(row: object) -> dict[str, Any]:
    """Unpack a blob row a backend returned (the native decoder checks the types)."""
    return _native.decode_row(_as_dict(row))


def _blob_input_to_object(row: object) -> dict[str, Any]:
    """Unpack a blob row the caller wants written: keys and values must be ``bytes``."""
    data = _as_dict(row)
    for key, value in data.items():
        _key_to_object(key)
        _check_blob_value(value, key)
    return _native.decode_row(data)


def _check_blob_value(value: object, key: object) -> bytes:
    if not isinstance(value, bytes):
        raise AsebytesTypeError(
            f"blob values must be bytes, got {_type_name(value)!r} "
            f"for key {_key_name(key)!r}"
        )
    return value


def _value_to_blob(value: object, key: object) -> bytes:
    return _native.encode_value(value, _key_name(key))


def _value_to_object(value: object, key: object) -> Any:
    return _native.decode_value(_check_blob_value(value, key))


@dataclass(frozen=True)
class _Codec:
    """How keys, rows and values cross an adapter: ``*_in`` from the adapter's own tier to
    the wrapped backend's tier (writes, requested keys), ``*_out`` back (reads). Value
    functions get the adapter-side key, for error messages."""

    key_in: Callable[[Any], Any]
    key_out: Callable[[Any], Any]
    row_in: Callable[[Any], Row]
    row_out: Callable[[Any], Row]
    value_in: Callable[[Any, Any], Any]
    value_out: Callable[[Any, Any], Any]

    def keys_in(self, keys: list[Any] | None) -> list[Any] | None:
        return None if keys is None else self.key_list_in(keys)

    def key_list_in(self, keys: list[Any]) -> list[Any]:
        return [self.key_in(k) for k in keys]

    def keys_out(self, keys: list[Any]) -> list[Any]:
        return [self.key_out(k) for k in keys]

    def rows_in(self, rows: list[Any]) -> list[Row | None]:
        return [None if row is None else self.row_in(row) for row in rows]

    def dicts_in(self, rows: list[Any]) -> list[Row]:
        return [self.row_in(row) for row in rows]

    def rows_out(self, rows: list[Any]) -> list[Row | None]:
        return [None if row is None else self.row_out(row) for row in rows]

    def maybe_row_in(self, row: Any) -> Row | None:
        return None if row is None else self.row_in(row)

    def maybe_row_out(self, row: Any) -> Row | None:
        return None if row is None else self.row_out(row)

    def values_in(self, key: Any, values: list[Any]) -> list[Any]:
        return [self.value_in(v, key) for v in values]

    def column_out(self, key: Any, values: list[Any]) -> list[Any]:
        """A column read: ``None`` (placeholder or missing key) stays ``None``."""
        return [None if v is None else self.value_out(v, key) for v in values]


_BLOB_TO_OBJECT = _Codec(
    key_in=_key_to_blob,
    key_out=_key_to_object,
    row_in=_row_to_blob,
    row_out=_row_to_object,
    value_in=_value_to_blob,
    value_out=_value_to_object,
)
_OBJECT_TO_BLOB = _Codec(
    key_in=_key_to_object,
    key_out=_key_to_blob,
    row_in=_blob_input_to_object,
    row_out=_row_to_blob,
    value_in=_value_to_object,
    value_out=_value_to_blob,
)


def _no_list_groups(cls: type) -> NoReturn:
    raise UnsupportedOperationError(
        f"{cls.__name__} wraps a backend instance and has no list_groups(); "
        "call list_groups on the wrapped backend's class"
    )


def _close(backend: object) -> Any:
    """Call ``backend.close()`` if it has one, returning its result."""
    close = getattr(backend, "close", None)
    return None if close is None else close()


async def _aclose(backend: object) -> None:
    """Close an async backend: its ``aclose()``, else its ``close()`` (awaited if async)."""
    aclose = getattr(backend, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    result = _close(backend)
    if inspect.isawaitable(result):
        await result


# ── blob ⇄ object, sync ───────────────────────────────────────────────────────────────


_ConvertingReads: Any = _operations.mixin(_operations.converting, write=False)
_ConvertingWrites: Any = _operations.mixin(_operations.converting, write=True)


class _ConvertingReadAdapter(_ConvertingReads, ReadBackend[K, V]):  # type: ignore[misc]
    """Read methods of the blob ⇄ object adapters; ``_codec`` says which way. The
    forwarding methods come from :data:`asebytes._operations.OPS`."""

    _codec: ClassVar[_Codec]
    backend: ReadBackend[Any, Any]

    def __init__(self, backend: ReadBackend[Any, Any]) -> None:
        self.backend = backend
        self._negative_indices = getattr(backend, "_negative_indices", False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r})"

    @classmethod
    def list_groups(cls, path: str, **kwargs: Any) -> list[str]:
        """Unsupported: an adapter has no path of its own."""
        _no_list_groups(cls)

    def __len__(self) -> int:
        return len(self.backend)

    def iter_rows(
        self, indices: list[int], keys: list[K] | None = None
    ) -> Iterator[dict[K, V] | None]:
        codec = self._codec
        for row in self.backend.iter_rows(indices, codec.keys_in(keys)):
            yield codec.maybe_row_out(row)

    def close(self) -> None:
        """Close the wrapped backend, if it can be closed."""
        _close(self.backend)


class _ConvertingReadWriteAdapter(
    _ConvertingWrites,  # type: ignore[misc]
    _ConvertingReadAdapter[K, V],
    ReadWriteBackend[K, V],
):
    """Write methods of the blob ⇄ object adapters: convert everything, then forward
    (from :data:`asebytes._operations.OPS`)."""

    backend: ReadWriteBackend[Any, Any]


class BlobToObjectReadAdapter(_ConvertingReadAdapter[str, Any]):
    """An object-tier view (``dict[str, Any]`` rows) of a blob-tier backend.

    Values are unpacked on read; ``schema`` is inferred from the unpacked row.
    """

    _codec = _BLOB_TO_OBJECT

    def __init__(self, backend: ReadBackend[bytes, bytes]) -> None:
        super().__init__(backend)


class BlobToObjectReadWriteAdapter(
    BlobToObjectReadAdapter, _ConvertingReadWriteAdapter[str, Any]
):
    """A writable object-tier view of a blob-tier backend: values are packed field by
    field (``TypeError`` naming the key for one that cannot be stored) before anything is
    written."""

    def __init__(self, backend: ReadWriteBackend[bytes, bytes]) -> None:
        super().__init__(backend)


class ObjectToBlobReadAdapter(_ConvertingReadAdapter[bytes, bytes]):
    """A blob-tier view (``dict[bytes, bytes]`` rows) of an object-tier backend: values
    are packed on read. ``schema`` describes the packed row (every value ``bytes``), as in
    the reference."""

    _codec = _OBJECT_TO_BLOB

    def __init__(self, backend: ReadBackend[str, Any]) -> None:
        super().__init__(backend)


class ObjectToBlobReadWriteAdapter(
    ObjectToBlobReadAdapter, _ConvertingReadWriteAdapter[bytes, bytes]
):
    """A writable blob-tier view of an object-tier backend: written values must be
    ``bytes`` holding one packed value each; they are unpacked before the wrapped backend
    sees them."""

    def __init__(self, backend: ReadWriteBackend[str, Any]) -> None:
        super().__init__(backend)


# ── blob ⇄ object, async ──────────────────────────────────────────────────────────────


_AsyncConvertingReads: Any = _operations.mixin(
    _operations.converting_async, write=False
)
_AsyncConvertingWrites: Any = _operations.mixin(
    _operations.converting_async, write=True
)


class _AsyncConvertingReadAdapter(_AsyncConvertingReads, AsyncReadBackend[K, V]):  # type: ignore[misc]
    """Read methods of the async blob ⇄ object adapters; ``_codec`` says which way. The
    forwarding methods come from :data:`asebytes._operations.OPS`."""

    _codec: ClassVar[_Codec]
    backend: AsyncReadBackend[Any, Any]

    def __init__(self, backend: AsyncReadBackend[Any, Any]) -> None:
        self.backend = backend
        self._negative_indices = getattr(backend, "_negative_indices", False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r})"

    @classmethod
    def list_groups(cls, path: str, **kwargs: Any) -> list[str]:
        """Unsupported: an adapter has no path of its own."""
        _no_list_groups(cls)

    async def len(self) -> int:
        return await self.backend.len()

    async def iter_rows(
        self, indices: list[int], keys: list[K] | None = None
    ) -> AsyncIterator[dict[K, V] | None]:
        codec = self._codec
        async for row in self.backend.iter_rows(indices, codec.keys_in(keys)):
            yield codec.maybe_row_out(row)

    def close(self) -> Any:
        """Forward the wrapped backend's ``close()`` (its result: await it if it is a
        coroutine, or use :meth:`aclose`)."""
        return _close(self.backend)

    async def aclose(self) -> None:
        """Close the wrapped backend: its ``aclose()``, else its ``close()``."""
        await _aclose(self.backend)


class _AsyncConvertingReadWriteAdapter(
    _AsyncConvertingWrites,  # type: ignore[misc]
    _AsyncConvertingReadAdapter[K, V],
    AsyncReadWriteBackend[K, V],
):
    """Write methods of the async blob ⇄ object adapters (from
    :data:`asebytes._operations.OPS`)."""

    backend: AsyncReadWriteBackend[Any, Any]


class AsyncBlobToObjectReadAdapter(_AsyncConvertingReadAdapter[str, Any]):
    """The async :class:`BlobToObjectReadAdapter`."""

    _codec = _BLOB_TO_OBJECT

    def __init__(self, backend: AsyncReadBackend[bytes, bytes]) -> None:
        super().__init__(backend)


class AsyncBlobToObjectReadWriteAdapter(
    AsyncBlobToObjectReadAdapter, _AsyncConvertingReadWriteAdapter[str, Any]
):
    """The async :class:`BlobToObjectReadWriteAdapter`."""

    def __init__(self, backend: AsyncReadWriteBackend[bytes, bytes]) -> None:
        super().__init__(backend)


class AsyncObjectToBlobReadAdapter(_AsyncConvertingReadAdapter[bytes, bytes]):
    """The async :class:`ObjectToBlobReadAdapter`."""

    _codec = _OBJECT_TO_BLOB

    def __init__(self, backend: AsyncReadBackend[str, Any]) -> None:
        super().__init__(backend)


class AsyncObjectToBlobReadWriteAdapter(
    AsyncObjectToBlobReadAdapter, _AsyncConvertingReadWriteAdapter[bytes, bytes]
):
    """The async :class:`ObjectToBlobReadWriteAdapter`."""

    def __init__(self, backend: AsyncReadWriteBackend[str, Any]) -> None:
        super().__init__(backend)


# ── sync → async ──────────────────────────────────────────────────────────────────────


_ThreadedReads: Any = _operations.mixin(_operations.threaded, write=False)
_ThreadedWrites: Any = _operations.mixin(_operations.threaded, write=True)


class SyncToAsyncReadAdapter(_ThreadedReads, AsyncReadBackend[K, V]):  # type: ignore[misc]
    """An async view of a sync backend: each call runs in a worker thread
    (``asyncio.to_thread``), so the event loop never blocks on the backend.

    ``iter_rows`` reads all requested rows in one thread call, then yields them.
    Mirrors the wrapped backend's ``_returns_mutable`` and ``_negative_indices``.
    """

    backend: ReadBackend[K, V]

    def __init__(self, backend: ReadBackend[K, V]) -> None:
        self.backend = backend
        self._returns_mutable = getattr(backend, "_returns_mutable", True)
        self._negative_indices = getattr(backend, "_negative_indices", False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r})"

    @classmethod
    def list_groups(cls, path: str, **kwargs: Any) -> list[str]:
        """Unsupported: an adapter has no path of its own."""
        _no_list_groups(cls)

    async def len(self) -> int:
        return await asyncio.to_thread(len, self.backend)

    async def iter_rows(
        self, indices: list[int], keys: list[K] | None = None
    ) -> AsyncIterator[dict[K, V] | None]:
        def read_all() -> list[dict[K, V] | None]:
            return list(self.backend.iter_rows(indices, keys))

        for row in await asyncio.to_thread(read_all):
            yield row

    async def schema(self, index: int = 0) -> dict[K, SchemaEntry]:
        return await asyncio.to_thread(self.backend.schema, index)

    def close(self) -> None:
        """Close the wrapped backend (in this thread), if it can be closed."""
        _close(self.backend)

    async def aclose(self) -> None:
        """Close the wrapped backend in a worker thread, if it can be closed."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


class SyncToAsyncReadWriteAdapter(
    _ThreadedWrites,  # type: ignore[misc]
    SyncToAsyncReadAdapter[K, V],
    AsyncReadWriteBackend[K, V],
):
    """:class:`SyncToAsyncReadAdapter` plus every write, each in a worker thread (from
    :data:`asebytes._operations.OPS`)."""

    backend: ReadWriteBackend[K, V]

    def __init__(self, backend: ReadWriteBackend[K, V]) -> None:
        super().__init__(backend)


#: The reference's name for the read-write adapter (an alias, not a dispatcher: use
#: :func:`sync_to_async` to pick the right one).
SyncToAsyncAdapter = SyncToAsyncReadWriteAdapter


@overload
def sync_to_async(
    backend: ReadWriteBackend[K, V],
) -> SyncToAsyncReadWriteAdapter[K, V]: ...
@overload
def sync_to_async(backend: ReadBackend[K, V]) -> SyncToAsyncReadAdapter[K, V]: ...
def sync_to_async(backend: ReadBackend[K, V]) -> SyncToAsyncReadAdapter[K, V]:
    """Wrap a sync backend for the async facades: the read-write adapter for a
    :class:`ReadWriteBackend`, else the read-only one."""
    if isinstance(backend, AsyncReadBackend):
        raise AsebytesTypeError(
            f"{_type_name(backend)} is already async; pass it to the async facade as is"
        )
    if isinstance(backend, ReadWriteBackend):
        return SyncToAsyncReadWriteAdapter(backend)
    return SyncToAsyncReadAdapter(backend)
