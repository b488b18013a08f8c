"""The backend ABCs: what a storage backend must implement to sit under a facade.

A backend stores positional rows (``0..len-1``); a row is a ``dict[K, V]`` or ``None`` (a
placeholder). ``K, V`` is ``bytes, bytes`` for the blob tier and ``str, Any`` for the object
tier (see the typing aliases at the end). The facades (:mod:`asebytes._io`) talk to a
backend only through these methods; the adapters (:mod:`asebytes._adapters`) turn a blob
backend into an object backend and back, and a sync backend into an async one.

A custom backend implements the few abstract methods and inherits a working default for
everything else; it overrides a default only to make it faster (one transaction, one
request). The defaults follow the reference ``asebytes`` 0.3.x, with its ``get_column``
bug fixed (a row that lacks the key gives ``None``) and three index-list writes added
(``set_rows``, ``update_rows``, ``set_column_rows``) that the facades use for writes
through views.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from typing import Any, Generic, TypeVar

from ._schema import SchemaEntry, infer_schema
from .exceptions import AsebytesValueError, UnsupportedOperationError

__all__ = [
    "AsyncBlobReadBackend",
    "AsyncBlobReadWriteBackend",
    "AsyncObjectReadBackend",
    "AsyncObjectReadWriteBackend",
    "AsyncReadBackend",
    "AsyncReadWriteBackend",
    "BlobReadBackend",
    "BlobReadWriteBackend",
    "ObjectReadBackend",
    "ObjectReadWriteBackend",
    "ReadBackend",
    "ReadWriteBackend",
]

K = TypeVar("K")
V = TypeVar("V")


def contiguous_start(indices: list[int]) -> int | None:
    """The first index when ``indices`` is ``i, i+1, ...`` on one side of zero, else ``None``.

    Runs that cross zero (``[-1, 0]``) are not contiguous: ``-1`` means the last row, so
    ``set_many(-1, ...)`` would write past the end instead of wrapping to row 0.
    """
    if not indices:
        return None
    first, last = indices[0], indices[-1]
    if first < 0 <= last:
        return None
    if all(b == a + 1 for a, b in pairwise(indices)):
        return first
    return None


def _check_lengths(
    operation: str, indices: list[int], what: str, items: list[Any]
) -> None:
    """Refuse an index-list write whose lists differ in length, before anything is written."""
    if len(indices) != len(items):
        raise AsebytesValueError(
            f"{operation}() got {len(indices)} indices but {len(items)} {what}; "
            "pass one per index"
        )


def _unsupported_remove(backend: object) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"{type(backend).__name__} does not support remove() "
        "(clear() deletes every row and keeps the store)"
    )


# ── sync ──────────────────────────────────────────────────────────────────────────────


class ReadBackend(ABC, Generic[K, V]):
    """A read-only backend.

    Must implement: ``list_groups`` (static), ``__len__`` and ``get``.

    Gets for free (override to make faster): ``get_many``, ``iter_rows``, ``get_column``,
    ``keys`` and ``schema``, all built on ``get``.

    ``_returns_mutable``: ``True`` if returned values may share memory with the store, so
    ``ASEIO`` copies arrays before building ``Atoms``. ``_negative_indices``: ``True`` if the
    backend itself resolves negative indices and raises
    ``IndexError("Index i out of range [0, n)")``; otherwise the facades normalise indices
    and bounds-check before calling it. Both are class attributes an instance may override.
    """

    _returns_mutable: bool = False
    _negative_indices: bool = False

    @staticmethod
    @abstractmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        """The group names stored at ``path`` (backend-specific ``kwargs``)."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of rows, placeholders included."""

    @abstractmethod
    def get(self, index: int, keys: list[K] | None = None) -> dict[K, V] | None:
        """Row ``index`` (only ``keys`` when given), or ``None`` for a placeholder."""

    def get_many(
        self, indices: list[int], keys: list[K] | None = None
    ) -> list[dict[K, V] | None]:
        """Rows at ``indices``, in order. Default: ``get`` per index."""
        return [self.get(i, keys) for i in indices]

    def iter_rows(
        self, indices: list[int], keys: list[K] | None = None
    ) -> Iterator[dict[K, V] | None]:
        """Rows at ``indices``, one at a time. Default: ``get`` per index."""
        for i in indices:
            yield self.get(i, keys)

    def get_column(self, key: K, indices: list[int] | None = None) -> list[V | None]:
        """The value of ``key`` at ``indices`` (default: every row). Default: ``get`` per
        index; a placeholder or a row without ``key`` gives ``None``."""
        if indices is None:
            indices = list(range(len(self)))
        values: list[V | None] = []
        for i in indices:
            try:
                row = self.get(i, [key])
            except KeyError:  # the contract's answer for a requested key the row lacks
                row = None
            values.append(None if row is None else row.get(key))
        return values

    def keys(self, index: int) -> list[K]:
        """The keys of row ``index`` (``[]`` for a placeholder). Default: from ``get``."""
        row = self.get(index)
        return [] if row is None else list(row)

    def schema(self, index: int = 0) -> dict[K, SchemaEntry]:
        """Dtype and shape per key of row ``index`` (``{}`` for a placeholder)."""
        row = self.get(index)
        return {} if row is None else infer_schema(row)


class ReadWriteBackend(ReadBackend[K, V]):
    """A read-write backend.

    Must implement, beyond :class:`ReadBackend`: ``set``, ``delete``, ``extend`` (returns
    the new length) and ``insert``.

    Gets for free (override to make faster): ``update``, ``delete_many``, ``drop_keys``,
    ``set_many``, ``update_many``, ``set_column``, ``reserve``, ``clear``, and the
    index-list writes ``set_rows``, ``update_rows``, ``set_column_rows`` (which call the
    contiguous ``*_many``/``set_column`` forms when the indices are a run). ``remove``
    raises :class:`~asebytes.exceptions.UnsupportedOperationError` unless overridden.
    """

    _returns_mutable: bool = True

    @abstractmethod
    def set(self, index: int, value: dict[K, V] | None) -> None:
        """Replace row ``index`` (``None`` makes it a placeholder)."""

    @abstractmethod
    def delete(self, index: int) -> None:
        """Delete row ``index``; later rows move down by one."""

    @abstractmethod
    def extend(self, values: list[dict[K, V] | None]) -> int:
        """Append ``values`` (all or none) and return the new number of rows."""

    @abstractmethod
    def insert(self, index: int, value: dict[K, V] | None) -> None:
        """Insert a row before ``index``; later rows move up by one."""

    def update(self, index: int, data: dict[K, V]) -> None:
        """Merge ``data`` into row ``index`` (a placeholder becomes a row).
        Default: ``get``, merge, ``set``."""
        row = dict(self.get(index) or {})
        row.update(data)
        self.set(index, row)

    def delete_many(self, start: int, stop: int) -> None:
        """Delete rows ``[start, stop)``. Default: ``delete`` from the last one down."""
        for i in range(stop - 1, start - 1, -1):
            self.delete(i)

    def drop_keys(self, keys: list[K], indices: list[int] | None = None) -> None:
        """Remove ``keys`` from the rows at ``indices`` (default: every row); placeholders
        stay placeholders. Default: ``get``, filter, ``set`` for each row that has a key."""
        if indices is None:
            indices = list(range(len(self)))
        drop = set(keys)
        for i in indices:
            row = self.get(i)
            if row is None or drop.isdisjoint(row):
                continue
            self.set(i, {k: v for k, v in row.items() if k not in drop})

    def set_many(self, start: int, data: list[dict[K, V] | None]) -> None:
        """Replace rows ``start, start+1, ...``. Default: ``set`` per row."""
        for i, row in enumerate(data):
            self.set(start + i, row)

    def update_many(self, start: int, data: list[dict[K, V]]) -> None:
        """Merge into rows ``start, start+1, ...``. Default: ``update`` per row."""
        for i, d in enumerate(data):
            self.update(start + i, d)

    def set_column(self, key: K, start: int, values: list[V]) -> None:
        """Set ``key`` in rows ``start, start+1, ...``. Default: ``update`` per row."""
        for i, v in enumerate(values):
            self.update(start + i, {key: v})

    def reserve(self, count: int) -> None:
        """Append ``count`` placeholders. Default: ``extend([None] * count)``."""
        self.extend([None] * count)

    def clear(self) -> None:
        """Delete every row, keeping the (empty) store. Default: ``delete_many(0, len)``."""
        n = len(self)
        if n:
            self.delete_many(0, n)

    def remove(self) -> None:
        """Delete the store itself. Default: unsupported."""
        raise _unsupported_remove(self)

    def set_rows(self, indices: list[int], rows: list[dict[K, V] | None]) -> None:
        """Replace the rows at ``indices`` (any order). Default: ``set_many`` for a
        contiguous run, else ``set`` per index."""
        _check_lengths("set_rows", indices, "rows", rows)
        start = contiguous_start(indices)
        if start is not None:
            self.set_many(start, rows)
            return
        for i, row in zip(indices, rows, strict=True):
            self.set(i, row)

    def update_rows(self, indices: list[int], data: list[dict[K, V]]) -> None:
        """Merge ``data`` into the rows at ``indices``. Default: ``update_many`` for a
        contiguous run, else ``update`` per index."""
        _check_lengths("update_rows", indices, "dicts", data)
        start = contiguous_start(indices)
        if start is not None:
            self.update_many(start, data)
            return
        for i, d in zip(indices, data, strict=True):
            self.update(i, d)

    def set_column_rows(self, key: K, indices: list[int], values: list[V]) -> None:
        """Set ``key`` in the rows at ``indices``. Default: ``set_column`` for a contiguous
        run, else ``update(i, {key: v})`` per index."""
        _check_lengths("set_column_rows", indices, "values", values)
        start = contiguous_start(indices)
        if start is not None:
            self.set_column(key, start, values)
            return
        for i, v in zip(indices, values, strict=True):
            self.update(i, {key: v})


# ── async ─────────────────────────────────────────────────────────────────────────────


class AsyncReadBackend(ABC, Generic[K, V]):
    """The async twin of :class:`ReadBackend`.

    Must implement: ``list_groups`` (static, synchronous), ``async len()`` (there is no
    ``__len__``) and ``async get``.

    Gets for free: the same defaults as :class:`ReadBackend`, awaited; ``iter_rows`` is an
    async generator.
    """

    _returns_mutable: bool = False
    _negative_indices: bool = False

    @staticmethod
    @abstractmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        """The group names stored at ``path`` (synchronous even on async backends)."""

    @abstractmethod
    async def len(self) -> int:
        """The number of rows, placeholders included."""

    @abstractmethod
    async def get(self, index: int, keys: list[K] | None = None) -> dict[K, V] | None:
        """Row ``index`` (only ``keys`` when given), or ``None`` for a placeholder."""

    async def get_many(
        self, indices: list[int], keys: list[K] | None = None
    ) -> list[dict[K, V] | None]:
        """Rows at ``indices``, in order. Default: ``get`` per index."""
        return [await self.get(i, keys) for i in indices]

    async def iter_rows(
        self, indices: list[int], keys: list[K] | None = None
    ) -> AsyncIterator[dict[K, V] | None]:
        """Rows at ``indices``, one at a time. Default: ``get`` per index."""
        for i in indices:
            yield await self.get(i, keys)

    async def get_column(
        self, key: K, indices: list[int] | None = None
    ) -> list[V | None]:
        """The value of ``key`` at ``indices`` (default: every row); a placeholder or a
        row without ``key`` gives ``None``."""
        if indices is None:
            indices = list(range(await self.len()))
        values: list[V | None] = []
        for i in indices:
            try:
                row = await self.get(i, [key])
            except KeyError:
                row = None
            values.append(None if row is None else row.get(key))
        return values

    async def keys(self, index: int) -> list[K]:
        """The keys of row ``index`` (``[]`` for a placeholder)."""
        row = await self.get(index)
        return [] if row is None else list(row)

    async def schema(self, index: int = 0) -> dict[K, SchemaEntry]:
        """Dtype and shape per key of row ``index`` (``{}`` for a placeholder)."""
        row = await self.get(index)
        return {} if row is None else infer_schema(row)


class AsyncReadWriteBackend(AsyncReadBackend[K, V]):
    """The async twin of :class:`ReadWriteBackend`.

    Must implement, beyond :class:`AsyncReadBackend`: ``async set``, ``delete``,
    ``extend`` (returns the new length) and ``insert``. Gets the same defaults as
    :class:`ReadWriteBackend`, awaited.
    """

    _returns_mutable: bool = True

    @abstractmethod
    async def set(self, index: int, value: dict[K, V] | None) -> None:
        """Replace row ``index`` (``None`` makes it a placeholder)."""

    @abstractmethod
    async def delete(self, index: int) -> None:
        """Delete row ``index``; later rows move down by one."""

    @abstractmethod
    async def extend(self, values: list[dict[K, V] | None]) -> int:
        """Append ``values`` (all or none) and return the new number of rows."""

    @abstractmethod
    async def insert(self, index: int, value: dict[K, V] | None) -> None:
        """Insert a row before ``index``; later rows move up by one."""

    async def update(self, index: int, data: dict[K, V]) -> None:
        """Merge ``data`` into row ``index`` (a placeholder becomes a row)."""
        row = dict(await self.get(index) or {})
        row.update(data)
        await self.set(index, row)

    async def delete_many(self, start: int, stop: int) -> None:
        """Delete rows ``[start, stop)``, from the last one down."""
        for i in range(stop - 1, start - 1, -1):
            await self.delete(i)

    async def drop_keys(self, keys: list[K], indices: list[int] | None = None) -> None:
        """Remove ``keys`` from the rows at ``indices`` (default: every row)."""
        if indices is None:
            indices = list(range(await self.len()))
        drop = set(keys)
        for i in indices:
            row = await self.get(i)
            if row is None or drop.isdisjoint(row):
                continue
            await self.set(i, {k: v for k, v in row.items() if k not in drop})

    async def set_many(self, start: int, data: list[dict[K, V] | None]) -> None:
        """Replace rows ``start, start+1, ...``."""
        for i, row in enumerate(data):
            await self.set(start + i, row)

    async def update_many(self, start: int, data: list[dict[K, V]]) -> None:
        """Merge into rows ``start, start+1, ...``."""
        for i, d in enumerate(data):
            await self.update(start + i, d)

    async def set_column(self, key: K, start: int, values: list[V]) -> None:
        """Set ``key`` in rows ``start, start+1, ...``."""
        for i, v in enumerate(values):
            await self.update(start + i, {key: v})

    async def reserve(self, count: int) -> None:
        """Append ``count`` placeholders."""
        await self.extend([None] * count)

    async def clear(self) -> None:
        """Delete every row, keeping the (empty) store."""
        n = await self.len()
        if n:
            await self.delete_many(0, n)

    async def remove(self) -> None:
        """Delete the store itself. Default: unsupported."""
        raise _unsupported_remove(self)

    async def set_rows(self, indices: list[int], rows: list[dict[K, V] | None]) -> None:
        """Replace the rows at ``indices``: ``set_many`` for a contiguous run, else
        ``set`` per index."""
        _check_lengths("set_rows", indices, "rows", rows)
        start = contiguous_start(indices)
        if start is not None:
            await self.set_many(start, rows)
            return
        for i, row in zip(indices, rows, strict=True):
            await self.set(i, row)

    async def update_rows(self, indices: list[int], data: list[dict[K, V]]) -> None:
        """Merge ``data`` into the rows at ``indices``: ``update_many`` for a contiguous
        run, else ``update`` per index."""
        _check_lengths("update_rows", indices, "dicts", data)
        start = contiguous_start(indices)
        if start is not None:
            await self.update_many(start, data)
            return
        for i, d in zip(indices, data, strict=True):
            await self.update(i, d)

    async def set_column_rows(
        self, key: K, indices: list[int], values: list[V]
    ) -> None:
        """Set ``key`` in the rows at ``indices``: ``set_column`` for a contiguous run,
        else ``update(i, {key: v})`` per index."""
        _check_lengths("set_column_rows", indices, "values", values)
        start = contiguous_start(indices)
        if start is not None:
            await self.set_column(key, start, values)
            return
        for i, v in zip(indices, values, strict=True):
            await self.update(i, {key: v})


# ── typing aliases (subscripted generics: ``isinstance`` against them raises TypeError) ─

BlobReadBackend = ReadBackend[bytes, bytes]
BlobReadWriteBackend = ReadWriteBackend[bytes, bytes]
ObjectReadBackend = ReadBackend[str, Any]
ObjectReadWriteBackend = ReadWriteBackend[str, Any]
AsyncBlobReadBackend = AsyncReadBackend[bytes, bytes]
AsyncBlobReadWriteBackend = AsyncReadWriteBackend[bytes, bytes]
AsyncObjectReadBackend = AsyncReadBackend[str, Any]
AsyncObjectReadWriteBackend = AsyncReadWriteBackend[str, Any]
