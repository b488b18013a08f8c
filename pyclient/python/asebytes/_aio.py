"""The async facades ``AsyncBlobIO``, ``AsyncObjectIO`` and ``AsyncASEIO``.

Same operations as the sync facades (:mod:`asebytes._core`), awaited. With a location
string the backend is :class:`~asebytes._stores.AsyncDaemonBackend`: the event loop's one
connection to the daemon, requests pipelined, no thread per call. An async backend
instance is used as is; a sync one is wrapped with :func:`asebytes.sync_to_async` (its
calls then run in worker threads, as in the reference).

Not sequences: ``len(adb)`` is a ``TypeError`` (use ``await adb.len()``); ``adb[i]`` is an
awaitable single-row view (``await adb[i]``, ``await adb[i].set(row)``,
``await adb[i].delete()``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

import ase

from . import _cache, _registry
from ._abc import AsyncReadBackend, ReadBackend, ReadWriteBackend
from ._adapters import sync_to_async
from ._aviews import (
    AsyncASEColumnView,
    AsyncColumnView,
    AsyncRowView,
    AsyncSingleRowView,
)
from ._core import ITER_CHUNK, FacadeCore, InRange, Op, arun, chunks
from ._display import Displayable
from ._follow import FollowCursor, Stop
from ._index import ColumnSelector, IntIndex, RowSelector, parse_index
from ._schema import SchemaEntry
from ._tiers import ASETier, BlobTier, ObjectTier, flatten_update
from ._views import _Rows
from .exceptions import AsebytesTypeError

__all__ = ["AsyncASEIO", "AsyncBlobIO", "AsyncObjectIO"]

R = TypeVar("R")
T = TypeVar("T")


def _sync_source(
    backend: Any, readonly: bool | None, kwargs: dict[str, Any], tier: str
) -> ReadBackend[Any, Any]:
    """The sync backend an in-process read-through of an async facade reads from."""
    if isinstance(backend, (list, tuple)) and backend:
        backend = _registry.shard_list(backend)
    if isinstance(backend, (str, os.PathLike)):
        source: ReadBackend[Any, Any] = _registry.open_backend(
            os.fspath(backend), tier=tier, readonly=readonly, **kwargs
        )
        return source
    _registry.refuse_options(kwargs)
    if not isinstance(backend, ReadBackend):
        raise AsebytesTypeError(
            "AsyncASEIO(cache_to=<backend instance>) reads through a sync source; got "
            f"{type(backend).__name__}. Pass a location, or cache_to as a location."
        )
    return backend


class _AsyncFacade(Displayable, FacadeCore, Generic[R]):
    """Behaviour shared by the three async facades; the tier mixin sets the row types."""

    _column_view_cls: ClassVar[type[AsyncColumnView]] = AsyncColumnView

    def __init__(
        self, backend: Any, *, readonly: bool | None = None, **kwargs: Any
    ) -> None:
        if isinstance(backend, (list, tuple)) and backend:
            backend = _registry.shard_list(backend)
        if isinstance(backend, (str, os.PathLike)):
            backend = _registry.open_backend(
                os.fspath(backend),
                tier=self._tier,
                readonly=readonly,
                asynchronous=True,
                **kwargs,
            )
        else:
            _registry.refuse_options(kwargs)
            if not isinstance(backend, AsyncReadBackend):
                backend = sync_to_async(backend)
        self._attach(backend)

    async def _arun(self, op: Op[T]) -> T:
        return await arun(op, self._backend)

    # ------------------------------------------------------------------ reads

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        """Groups stored at ``path``."""
        return _registry.list_groups(os.fspath(path), **kwargs)

    def __len__(self) -> int:
        raise AsebytesTypeError(
            "len() is not available on async objects. Use 'await db.len()' instead."
        )

    async def len(self) -> int:
        """The number of rows (always current)."""
        return await self._arun(self._op_len())

    def __getitem__(self, index: Any) -> Any:
        parsed = parse_index(index, key_types=self._key_types)
        if isinstance(parsed, IntIndex):
            return AsyncSingleRowView(self, _Rows(), parsed.value)
        if isinstance(parsed, RowSelector):
            return AsyncRowView(
                self, _Rows((parsed,)), column_view_cls=self._column_view_cls
            )
        assert isinstance(parsed, ColumnSelector)
        keys = parsed.keys[0] if parsed.single else list(parsed.keys)
        return self._column_view_cls(self, keys)

    async def get(self, index: Any, keys: Sequence[Any] | None = None) -> Any:
        """Row ``index`` (``None`` for a placeholder), optionally only ``keys``."""
        return await self._arun(self._op_get(index, keys))

    async def keys(self, index: Any) -> list[Any]:
        """The keys of row ``index`` (``[]`` for a placeholder)."""
        return await self._arun(self._op_keys(index))

    async def __aiter__(self) -> AsyncIterator[R]:
        n = await self.len()
        for chunk in chunks(InRange(range(n)), ITER_CHUNK):
            for row in await self._arun(self._op_rows(chunk)):
                yield row

    def follow(
        self,
        start: int = 0,
        *,
        timeout: float | None = None,
        stop: Stop | None = None,
        batch: int = ITER_CHUNK,
    ) -> AsyncIterator[R]:
        """``async for row in db.follow():`` the rows from ``start`` on, then each row
        other processes append, as the daemon reports their commits (see the sync
        ``follow``). The waits use a connection of their own, so other requests of the
        event loop never queue behind them."""
        cursor = FollowCursor(self, start, timeout=timeout, stop=stop, batch=batch)
        return self._follow(cursor)

    async def _follow(self, cursor: FollowCursor) -> AsyncIterator[R]:
        while (rows := await self._arun(cursor.op_next())) is not None:
            for row in rows:
                yield row

    # ------------------------------------------------------------------ writes

    async def extend(
        self, values: Iterable[Any], *, progress: bool | None = None
    ) -> int:
        """Append rows atomically (all or none) and return the new length (a progress bar
        for long work, as ``ObjectIO.extend``)."""
        return await self._arun(self._op_extend(values, progress))

    async def insert(self, index: Any, value: Any) -> None:
        """Insert ``value`` before ``index`` (clamped like ``list.insert``)."""
        await self._arun(self._op_insert(index, value))

    async def update(self, index: Any, data: Mapping[Any, Any]) -> None:
        """Merge ``data`` into row ``index``."""
        await self._arun(self._op_update(index, data))

    async def drop(self, *, keys: Sequence[Any]) -> None:
        """Remove ``keys`` from every row."""
        await self._arun(self._op_drop(keys, None))

    async def reserve(self, count: Any) -> None:
        """Append ``count`` placeholder rows."""
        await self._arun(self._op_reserve(count))

    async def clear(self) -> None:
        """Remove every row, keep the container."""
        await self._arun(self._op_clear())

    async def remove(self) -> None:
        """Remove the container itself."""
        await self._arun(self._op_remove())

    # ------------------------------------------------------------------ misc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        aclose = getattr(self._backend, "aclose", None)
        if aclose is not None:
            await aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self._backend!r})"


class _AsyncSchemaMixin(FacadeCore):
    async def schema(self, index: Any = None) -> dict[str, SchemaEntry]:
        """``{key: SchemaEntry(dtype, shape)}`` of row ``index`` (default 0)."""
        return await arun(self._op_schema(index), self._backend)


class AsyncObjectIO(ObjectTier, _AsyncSchemaMixin, _AsyncFacade[dict[str, Any]]):
    """Async twin of :class:`asebytes.ObjectIO`."""


class AsyncBlobIO(BlobTier, _AsyncFacade[dict[bytes, bytes]]):
    """Async twin of :class:`asebytes.BlobIO`."""


class AsyncASEIO(ASETier, _AsyncSchemaMixin, _AsyncFacade[ase.Atoms]):
    """Async twin of :class:`asebytes.ASEIO`: ``await db[i]`` is an ``ase.Atoms``;
    ``await db[i].set(atoms_or_dict)``."""

    _column_view_cls = AsyncASEColumnView

    def __init__(
        self,
        backend: Any,
        *,
        readonly: bool | None = None,
        cache_to: str | os.PathLike[str] | ReadWriteBackend[Any, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        location, cache = _cache.parse(cache_to)
        if location is not None and not isinstance(
            backend, (str, os.PathLike, list, tuple)
        ):
            cache = _registry.open_backend(location, tier=self._tier)
        elif location is not None:
            # The daemon keeps the cache, shared by every process reading this source.
            kwargs["cache_to"] = location
        if cache is not None:
            # An in-process read-through runs on the sync twin of the source, in worker
            # threads (as any sync backend in an async facade).
            source = _sync_source(backend, readonly, kwargs, self._tier)
            if cache_to is not None:
                _cache.warn_if_writable(source, readonly)
            wrapper = (
                _cache.ReadThroughWrite
                if isinstance(source, ReadWriteBackend)
                else _cache.ReadThrough
            )
            super().__init__(wrapper(source, cache))
            return
        if cache_to is not None and readonly is not True:
            # Whether the source is writable, from a sync handle on the same store.
            probe = _sync_source(backend, readonly, dict(kwargs), self._tier)
            _cache.warn_if_writable(probe, readonly)
            getattr(probe, "close", lambda: None)()
        super().__init__(backend, readonly=readonly, **kwargs)

    async def update(
        self,
        index: Any,
        data: Mapping[str, Any] | None = None,
        *,
        info: Mapping[str, Any] | None = None,
        arrays: Mapping[str, Any] | None = None,
        calc: Mapping[str, Any] | None = None,
    ) -> None:
        """Merge keys into row ``index`` (the forms of :meth:`asebytes.ASEIO.update`)."""
        await self._arun(
            self._op_update(index, flatten_update(data, info, arrays, calc))
        )
