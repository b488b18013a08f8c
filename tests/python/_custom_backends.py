"""A user's own backends, written the way the README's "Custom backends" section shows:
only the abstract methods of ``ReadWriteBackend``, strict ``0 <= i < len`` indices, no
batching. Everything else (negative indices, views, batched writes, column reads) comes
from the ABC's defaults and the facades, which is what the ``custom`` and ``adapter``
backend parametrizations check.

Rows are kept per location in a process-global table, so opening the same location twice
sees the same rows (as a file would).
"""

from __future__ import annotations

import copy
from typing import Any

from asebytes import BlobToObjectReadWriteAdapter, ReadWriteBackend, _native

_TABLES: dict[str, list[Any]] = {}


class _ListBackend(ReadWriteBackend[Any, Any]):
    def __init__(self, name: str) -> None:
        self.rows = _TABLES.setdefault(name, [])

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return ["default"]

    def __len__(self) -> int:
        return len(self.rows)

    def _check(self, index: int) -> int:
        if not 0 <= index < len(self.rows):
            raise IndexError(index)
        return index

    def get(self, index: int, keys: list[Any] | None = None) -> dict[Any, Any] | None:
        row = self.rows[self._check(index)]
        if row is None:
            return None
        out = self._load(row)
        return out if keys is None else {k: out[k] for k in keys if k in out}

    def set(self, index: int, value: dict[Any, Any] | None) -> None:
        self.rows[self._check(index)] = self._store(value)

    def delete(self, index: int) -> None:
        del self.rows[self._check(index)]

    def extend(self, values: list[dict[Any, Any] | None]) -> int:
        stored = [self._store(v) for v in values]  # all converted before any is added
        self.rows.extend(stored)
        return len(self.rows)

    def insert(self, index: int, value: dict[Any, Any] | None) -> None:
        self.rows.insert(index, self._store(value))

    def _store(self, row: dict[Any, Any] | None) -> Any:
        raise NotImplementedError

    def _load(self, row: Any) -> dict[Any, Any]:
        raise NotImplementedError


class ListObjectBackend(_ListBackend):
    """``dict[str, Any]`` rows, each value kept msgpack-numpy encoded (type fidelity and
    copies for free, as a real storage backend would have)."""

    def _store(self, row: dict[str, Any] | None) -> dict[str, bytes] | None:
        if not row:
            return None
        return {k: _native.encode_value(v, k) for k, v in row.items()}

    def _load(self, row: dict[str, bytes]) -> dict[str, Any]:
        return {k: _native.decode_value(v) for k, v in row.items()}


class ListBlobBackend(_ListBackend):
    """``dict[bytes, bytes]`` rows stored as given."""

    def _store(self, row: dict[bytes, bytes] | None) -> dict[bytes, bytes] | None:
        return dict(row) if row else None

    def _load(self, row: dict[bytes, bytes]) -> dict[bytes, bytes]:
        return copy.copy(row)


def object_backend(kind: str, name: str) -> Any:
    """The object-tier backend of parametrization ``kind`` ("custom" or "adapter")."""
    if kind == "custom":
        return ListObjectBackend(name)
    return BlobToObjectReadWriteAdapter(ListBlobBackend(name))


def blob_backend(name: str) -> Any:
    """The blob-tier backend of both parametrizations: a custom blob backend."""
    return ListBlobBackend(name)


def forget(name: str) -> None:
    _TABLES.pop(name, None)
