"""An in-process, pure-Python Store-like with the native ``Store``'s semantics (no daemon).

Used as the ``inproc`` backend parametrization: it proves the facades work on any
Store-like object, not only on the native one. Rows are kept encoded (msgpack-numpy per
field, like the daemon), so reads return fresh objects and type fidelity matches.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]
import msgpack_numpy  # type: ignore[import-untyped]
import numpy as np
from asebytes import ReadWriteBackend
from asebytes.exceptions import (
    AsebytesTypeError,
    IndexOutOfRangeError,
    KeyNotFoundError,
    ReadOnlyError,
)

_TABLES: dict[str, list[dict[Any, bytes] | None]] = {}
_LOCK = threading.RLock()


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "O":
        raise TypeError("object arrays cannot be stored")
    if isinstance(obj, (np.ndarray, np.generic)):
        return msgpack_numpy.encode(obj)
    raise TypeError(f"cannot store a value of type {type(obj).__name__}")


def _check_keys(value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"dict key {k!r} is not a str")
            _check_keys(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_keys(v)


def encode_value(value: Any, key: str = "") -> bytes:
    try:
        _check_keys(value)
        return msgpack.packb(
            value, default=_default, use_bin_type=True, strict_types=False
        )
    except (TypeError, ValueError) as exc:
        raise AsebytesTypeError(f"Cannot store value for key {key!r}: {exc}") from None


def decode_value(data: bytes) -> Any:
    value = msgpack.unpackb(data, object_hook=msgpack_numpy.decode, raw=False)
    return _fresh(value)


def _fresh(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


class Store(ReadWriteBackend[Any, Any]):
    """A pure-Python stand-in for the native daemon-backed store (same methods, same
    index rules), used as an in-process backend."""

    _negative_indices = True

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return sorted(k.partition("#")[2] for k in _TABLES if k.startswith(path + "#"))

    def __init__(
        self,
        location: str,
        *,
        group: str | None = None,
        readonly: bool = False,
        map_size: int | None = None,
        tier: str = "object",
    ) -> None:
        self._location = location
        self._group = group
        self._readonly = readonly
        self._tier = tier
        self._key = f"{location}#{group or 'default'}"
        with _LOCK:
            _TABLES.setdefault(self._key, [])

    location = property(lambda self: self._location)
    group = property(lambda self: self._group)
    readonly = property(lambda self: self._readonly)
    tier = property(lambda self: self._tier)
    canonical = property(lambda self: self._key)
    backend_name = property(lambda self: "fake")

    def __repr__(self) -> str:
        return f"Store({self._key!r}, tier={self._tier!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self._location, self._group, self._readonly, self._tier))

    @property
    def _rows(self) -> list[dict[Any, bytes] | None]:
        rows = _TABLES.get(self._key)
        if rows is None:
            raise KeyNotFoundError(f"{self._key} was removed")
        return rows

    def _w(self) -> list[dict[Any, bytes] | None]:
        if self._readonly:
            raise ReadOnlyError("Backend is read-only")
        return self._rows

    def _norm(self, index: int, n: int) -> int:
        i = int(index)
        pos = i + n if i < 0 else i
        if pos < 0 or pos >= n:
            raise IndexOutOfRangeError(f"Index {i} out of range [0, {n})")
        return pos

    def _enc(self, row: dict[Any, Any] | None) -> dict[Any, bytes] | None:
        if not row:
            return None
        if self._tier == "blob":
            return dict(row)
        return {k: encode_value(v, k) for k, v in row.items()}

    def _dec(
        self,
        row: dict[Any, bytes],
        keys: Sequence[Any] | None,
        missing_ok: bool,
        i: int,
    ) -> dict[Any, Any]:
        if keys is not None:
            missing = [k for k in keys if k not in row]
            if missing and not missing_ok:
                raise KeyNotFoundError(f"Invalid keys at index {i}: {missing}")
            row = {k: row[k] for k in keys if k in row}
        if self._tier == "blob":
            return dict(row)
        return {k: decode_value(v) for k, v in row.items()}

    def __len__(self) -> int:
        return len(self._rows)

    def len(self) -> int:
        return len(self._rows)

    def get(
        self, index: int, keys: Sequence[Any] | None = None
    ) -> dict[Any, Any] | None:
        with _LOCK:
            rows = self._rows
            i = self._norm(index, len(rows))
            row = rows[i]
            return None if row is None else self._dec(row, keys, False, i)

    def get_many(
        self,
        indices: Sequence[int],
        keys: Sequence[Any] | None = None,
        missing_ok: bool = True,
    ) -> list[dict[Any, Any] | None]:
        with _LOCK:
            rows = self._rows
            out = []
            for index in indices:
                i = self._norm(index, len(rows))
                row = rows[i]
                out.append(None if row is None else self._dec(row, keys, missing_ok, i))
            return out

    def get_column(self, key: Any, indices: Sequence[int] | None = None) -> list[Any]:
        with _LOCK:
            rows = self._rows
            idx = (
                range(len(rows))
                if indices is None
                else [self._norm(i, len(rows)) for i in indices]
            )
            out: list[Any] = []
            for i in idx:
                row = rows[i]
                if row is None or key not in row:
                    out.append(None)
                else:
                    out.append(
                        row[key] if self._tier == "blob" else decode_value(row[key])
                    )
            present = any(rows[i] is not None and key in rows[i] for i in idx)  # type: ignore[operator]
            if not present and any(rows[i] is not None for i in idx):
                # as the daemon: a key no selected real row has is a typo
                raise KeyNotFoundError(key)
            return out

    def keys(self, index: int) -> list[Any]:
        with _LOCK:
            rows = self._rows
            row = rows[self._norm(index, len(rows))]
            return [] if row is None else list(row)

    def schema_keys(self) -> list[Any]:
        with _LOCK:
            return sorted({k for r in self._rows if r for k in r})

    def extend(self, rows: Sequence[dict[Any, Any] | None]) -> int:
        encoded = [self._enc(r) for r in rows]
        with _LOCK:
            table = self._w()
            table.extend(encoded)
            return len(table)

    def insert(self, index: int, row: dict[Any, Any] | None) -> int:
        enc = self._enc(row)
        with _LOCK:
            table = self._w()
            table.insert(int(index), enc)
            return len(table)

    def set(self, index: int, row: dict[Any, Any] | None) -> None:
        enc = self._enc(row)
        with _LOCK:
            table = self._w()
            if index == len(table):  # as the daemon: set at len appends
                table.append(enc)
                return
            table[self._norm(index, len(table))] = enc

    def set_many(
        self, indices: Sequence[int], rows: Sequence[dict[Any, Any] | None]
    ) -> None:
        enc = [self._enc(r) for r in rows]
        with _LOCK:
            table = self._w()
            pos = [self._norm(i, len(table)) for i in indices]
            for p, r in zip(pos, enc, strict=True):
                table[p] = r

    def update(self, index: int, data: dict[Any, Any]) -> None:
        self.update_many([index], [data])

    def update_many(
        self, indices: Sequence[int], data: Sequence[dict[Any, Any]]
    ) -> None:
        enc = [self._enc(d) or {} for d in data]
        with _LOCK:
            table = self._w()
            pos = [self._norm(i, len(table)) for i in indices]
            for p, d in zip(pos, enc, strict=True):
                merged = dict(table[p] or {})
                merged.update(d)
                table[p] = merged or None

    def delete(self, index: int) -> int:
        with _LOCK:
            table = self._w()
            del table[self._norm(index, len(table))]
            return len(table)

    def delete_range(self, start: int, stop: int) -> int:
        with _LOCK:
            table = self._w()
            if not 0 <= start <= stop <= len(table):
                raise IndexOutOfRangeError(
                    f"range {start}..{stop} out of range [0, {len(table)}]"
                )
            del table[start:stop]
            return len(table)

    def drop_keys(
        self, keys: Sequence[Any], indices: Sequence[int] | None = None
    ) -> None:
        with _LOCK:
            table = self._w()
            pos = (
                range(len(table))
                if indices is None
                else [self._norm(i, len(table)) for i in indices]
            )
            for p in pos:
                row = table[p]
                if row is not None:
                    table[p] = {k: v for k, v in row.items() if k not in keys} or None

    def reserve(self, n: int) -> int:
        with _LOCK:
            table = self._w()
            table.extend([None] * int(n))
            return len(table)

    def clear(self) -> None:
        with _LOCK:
            self._w().clear()

    def remove(self) -> None:
        with _LOCK:
            self._w()
            del _TABLES[self._key]

    def close(self) -> None:
        return None

    def delete_many(self, start: int, stop: int) -> None:
        self.delete_range(start, stop)

    def set_rows(self, indices: Sequence[int], rows: Sequence[Any]) -> None:
        self.set_many(indices, rows)

    def update_rows(self, indices: Sequence[int], data: Sequence[Any]) -> None:
        self.update_many(indices, data)

    def set_column_rows(
        self, key: Any, indices: Sequence[int], values: Sequence[Any]
    ) -> None:
        self.update_many(indices, [{key: v} for v in values])


def _reopen(location: str, group: str | None, readonly: bool, tier: str) -> Store:
    return Store(location, group=group, readonly=readonly, tier=tier)
