"""``cache_to=``: the read-through cache of :class:`~asebytes.ASEIO` and
:class:`~asebytes.AsyncASEIO`.

A location string (``"cache.lmdb"``) asks the daemon to keep the cache
(``docs/cache.md``): the source is opened with the option ``cache_to`` and every process
reading the same source through the same cache shares it. A user's own
:class:`~asebytes.ReadWriteBackend` instance becomes an in-process read-through,
:class:`ReadThrough`. Unlike the reference, only ``IndexError``/``KeyError`` from the
cache and a placeholder row count as misses, so a gap the cache filled with placeholders
is never served as a row.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

from . import _registry
from ._abc import ReadBackend, ReadWriteBackend
from .exceptions import AsebytesTypeError, KeyNotFoundError

__all__ = ["ReadThrough", "ReadThroughWrite", "parse", "warn_if_writable"]

_log = logging.getLogger(__name__)

#: What a cache answered when it does not hold the row.
_MISS: Any = object()


def parse(cache_to: object) -> tuple[str | None, ReadWriteBackend[Any, Any] | None]:
    """``(daemon location, None)`` for a location, ``(None, backend)`` for a backend
    instance, ``(None, None)`` for no cache; ``TypeError`` for anything else."""
    if cache_to is None:
        return None, None
    if isinstance(cache_to, (str, os.PathLike)):
        return _registry.resolve(os.fspath(cache_to)).location, None
    if isinstance(cache_to, ReadWriteBackend):
        return None, cache_to
    raise AsebytesTypeError(
        f"cache_to must be str or ReadWriteBackend, got {type(cache_to).__name__}"
    )


def warn_if_writable(backend: Any, readonly: bool | None) -> None:
    """The reference's warning for a cache in front of a source that can change."""
    if readonly is True:
        return
    caps = getattr(backend, "capabilities", None)  # a daemon store knows for sure
    writable = (
        bool(caps["write"])
        if isinstance(caps, dict)
        else isinstance(backend, ReadWriteBackend)
    )
    if writable:
        warnings.warn(
            "cache_to with a writable source may serve stale data after mutations. "
            "cache_to is designed for immutable sources.",
            UserWarning,
            stacklevel=3,
        )


class ReadThrough(ReadBackend[Any, Any]):
    """Reads of ``source`` served from ``cache`` where it holds the row, else read from
    the source and copied into the cache (best effort: a cache that refuses a row leaves
    the read unharmed). ``len`` is always the source's."""

    def __init__(self, source: Any, cache: ReadWriteBackend[Any, Any]) -> None:
        self._source = source
        self._cache = cache

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return _registry.list_groups(path, **kwargs)

    def __len__(self) -> int:
        return len(self._source)

    def _cached(self, index: int, keys: list[Any] | None) -> Any:
        try:
            row = self._cache.get(index, keys)
        except (IndexError, KeyError):
            return _MISS
        return _MISS if row is None else row

    def _fill(self, index: int, row: dict[Any, Any]) -> None:
        try:
            n = len(self._cache)
            if index < n:
                self._cache.set(index, row)
                return
            # The gap becomes placeholders, which are misses, never rows.
            self._cache.extend([None] * (index - n) + [row])
        except Exception as e:  # noqa: BLE001 - a cache write is best effort, as the reference's
            _log.debug("cache_to: row %d not cached: %r", index, e)

    def get(self, index: int, keys: list[Any] | None = None) -> dict[Any, Any] | None:
        hit = self._cached(index, keys)
        if hit is not _MISS:
            return dict(hit)
        row = self._source.get(index)
        if row is None:
            return None
        self._fill(index, row)
        if keys is None:
            return dict(row)
        missing = [k for k in keys if k not in row]
        if missing:
            raise KeyNotFoundError(f"Invalid keys at index {index}: {missing}")
        return {k: row[k] for k in keys}

    def iter_rows(
        self, indices: list[int], keys: list[Any] | None = None
    ) -> Iterator[dict[Any, Any] | None]:
        for i in indices:
            yield self.get(i, keys)

    def close(self) -> None:
        for part in (self._source, self._cache):
            close = getattr(part, "close", None)
            if close is not None:
                close()

    def __repr__(self) -> str:
        return f"ReadThrough({self._source!r}, cache_to={self._cache!r})"


class ReadThroughWrite(ReadThrough, ReadWriteBackend[Any, Any]):
    """:class:`ReadThrough` over a writable source: writes go to the source and drop
    what the cache holds for the rows they change (every row from an insert or delete
    on), so the cache never serves a row the source no longer has."""

    def _forget(self, index: int) -> None:
        try:
            if index < len(self._cache):
                self._cache.set(index, None)
        except Exception:  # noqa: BLE001 - then the whole cache goes
            self._forget_all()

    def _forget_all(self) -> None:
        try:
            self._cache.clear()
        except Exception:  # noqa: BLE001 - a cache that cannot even clear is not used again
            self._cache = _NoCache()

    def set(self, index: int, value: dict[Any, Any] | None) -> None:
        self._forget(index)
        self._source.set(index, value)

    def update(self, index: int, data: dict[Any, Any]) -> None:
        self._forget(index)
        self._source.update(index, data)

    def delete(self, index: int) -> None:
        self._forget_all()
        self._source.delete(index)

    def insert(self, index: int, value: dict[Any, Any] | None) -> None:
        self._forget_all()
        self._source.insert(index, value)

    def extend(self, values: list[dict[Any, Any] | None]) -> int:
        return int(self._source.extend(values))

    def drop_keys(self, keys: list[Any], indices: list[int] | None = None) -> None:
        self._forget_all()
        self._source.drop_keys(keys, indices)

    def clear(self) -> None:
        self._forget_all()
        self._source.clear()


class _NoCache(ReadWriteBackend[Any, Any]):
    """Stands in for a cache that failed to forget rows: holds nothing, keeps nothing."""

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return []

    def __len__(self) -> int:
        return 0

    def get(self, index: int, keys: list[Any] | None = None) -> dict[Any, Any] | None:
        raise IndexError(index)

    def set(self, index: int, value: dict[Any, Any] | None) -> None:
        raise IndexError(index)

    def delete(self, index: int) -> None:
        raise IndexError(index)

    def extend(self, values: list[dict[Any, Any] | None]) -> int:
        raise IndexError(len(values))

    def insert(self, index: int, value: dict[Any, Any] | None) -> None:
        raise IndexError(index)
