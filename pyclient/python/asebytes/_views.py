"""Lazy row and column views over a facade (``db[0:10]``, ``db["calc.energy"]``, ...).

A view stores *which* rows it covers as a chain of selectors (see :mod:`asebytes._index`),
never the rows themselves, and reads nothing until it is iterated or materialised. Each
materialisation resolves the selectors afresh (one ``len`` request, only when a slice or a
mask over the whole store needs it) and then reads in batches: ``to_list()`` is one
``get_many``/``get_column`` request, iteration and ``chunked(n)`` one request per chunk.
Column reads ask the daemon for the requested keys only.

Chaining works in both orders: ``db[0:500]["calc.energy"]`` and
``db["calc.energy"][0:500]`` cover the same rows and give the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

import numpy as np

from ._index import (
    ColumnSelector,
    IntIndex,
    RowSelector,
    check_index,
    parse_index,
    select,
)
from .exceptions import AsebytesTypeError, AsebytesValueError, KeyNotFoundError

if TYPE_CHECKING:
    import ase

__all__ = ["ASEColumnView", "ColumnView", "RowView"]

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

#: Rows per ``get_many`` request when iterating (a view or a facade).
ITER_CHUNK = 256


class _Parent(Protocol[R_co]):
    """What a view needs from its facade (the facades in ``_io.py`` provide it)."""

    @property
    def _key_types(self) -> tuple[type, ...]: ...
    def __len__(self) -> int: ...
    def _normalize_key(self, key: Any) -> Any: ...
    def _read_result(self, index: int) -> R_co: ...
    def _read_results(self, indices: list[int]) -> list[Any]: ...
    def _read_column(self, key: Any, indices: list[int] | None) -> list[Any]: ...
    def _read_columns(
        self, keys: list[Any], indices: list[int]
    ) -> list[dict[Any, Any] | None]: ...
    def _read_partials(self, keys: list[Any], indices: list[int]) -> list[Any]: ...


class _Rows:
    """The rows a view covers: every row of the store (no selectors) or the selectors
    applied in turn. Immutable; narrowing returns a new instance."""

    __slots__ = ("_selectors",)

    def __init__(self, selectors: tuple[RowSelector, ...] = ()) -> None:
        self._selectors = selectors

    @classmethod
    def of(cls, indices: Sequence[int] | np.ndarray | range | None) -> _Rows:
        if indices is None:
            return cls()
        return cls((RowSelector(positions=tuple(int(i) for i in indices)),))

    @property
    def is_all(self) -> bool:
        return not self._selectors

    def narrow(self, selector: RowSelector) -> _Rows:
        return _Rows((*self._selectors, selector))

    def resolve(self, length: Callable[[], int]) -> list[int]:
        """Row positions (as the daemon will normalise them); calls ``length`` at most once."""
        cached: list[int] = []

        def once() -> int:
            if not cached:
                cached.append(length())
            return cached[0]

        current: list[int] | None = None
        for selector in self._selectors:
            current = select(current, selector, once)
        if current is None:
            return list(range(once()))
        return current

    def count(self, length: Callable[[], int]) -> int:
        """How many rows, without reading any when the selection is explicit."""
        if len(self._selectors) == 1 and self._selectors[0].positions is not None:
            return len(self._selectors[0].positions)
        if self.is_all:
            return length()
        return len(self.resolve(length))


def _pick(parent: _Parent[Any], rows: _Rows, position: int) -> int:
    """The absolute row for view-relative ``position`` (negatives count from the view end)."""
    indices = rows.resolve(parent.__len__)
    return indices[check_index(position, len(indices))]


class RowView(Generic[R]):
    """A lazy selection of rows: ``db[2:10]``, ``db[[0, 5, -1]]``, ``db[mask]``.

    ``len``, ``bool``, ``view[i]`` (a row), ``view[slice | ints | mask]`` (a narrower view),
    ``view["key"]`` / ``view[["a", "b"]]`` (column views over these rows), iteration
    (batched), :meth:`chunked`, :meth:`to_list`.
    """

    __slots__ = ("_column_view_cls", "_parent", "_rows")

    def __init__(
        self,
        parent: _Parent[R],
        indices: Sequence[int] | np.ndarray | range | _Rows,
        *,
        column_view_cls: type[ColumnView] | None = None,
    ) -> None:
        self._parent = parent
        self._rows = indices if isinstance(indices, _Rows) else _Rows.of(indices)
        self._column_view_cls = column_view_cls or ColumnView

    def _indices(self) -> list[int]:
        return self._rows.resolve(self._parent.__len__)

    def __len__(self) -> int:
        return self._rows.count(self._parent.__len__)

    def __bool__(self) -> bool:
        return len(self) > 0

    @overload
    def __getitem__(self, key: int) -> R: ...
    @overload
    def __getitem__(self, key: slice | list[int] | np.ndarray) -> RowView[R]: ...
    @overload
    def __getitem__(self, key: str | list[str]) -> ColumnView: ...

    def __getitem__(self, key: Any) -> Any:
        parsed = parse_index(key, key_types=self._parent._key_types)
        if isinstance(parsed, IntIndex):
            return self._parent._read_result(
                _pick(self._parent, self._rows, parsed.value)
            )
        if isinstance(parsed, RowSelector):
            return RowView(
                self._parent,
                self._rows.narrow(parsed),
                column_view_cls=self._column_view_cls,
            )
        return self._column_view_cls(self._parent, _column_keys(parsed), self._rows)

    def __iter__(self) -> Iterator[R]:
        return self.chunked(ITER_CHUNK)

    def chunked(self, chunk_size: int = 1000) -> Iterator[R]:
        """Yield rows one by one, reading ``chunk_size`` rows per request."""
        if chunk_size < 1:
            raise AsebytesValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return _iter_chunks(self._parent, self._indices(), chunk_size)

    def to_list(self) -> list[R]:
        """Every row of the view, read in one request (one consistent snapshot)."""
        indices = self._indices()
        if not indices:
            return []
        return self._parent._read_results(indices)

    def __repr__(self) -> str:
        return f"RowView(len={len(self)})"


def _iter_chunks(
    parent: _Parent[R], indices: list[int], chunk_size: int
) -> Iterator[R]:
    for start in range(0, len(indices), chunk_size):
        yield from parent._read_results(indices[start : start + chunk_size])


def _column_keys(parsed: ColumnSelector) -> Any:
    return parsed.keys[0] if parsed.single else list(parsed.keys)


class ColumnView:
    """A lazy view of one key (``db["calc.energy"]``) or several keys (``db[["a", "b"]]``).

    Single key: values (``None`` where a row lacks the key or is a placeholder).
    Several keys: per row a list of values in key order (``None`` for a placeholder row).
    A key that no row has raises ``KeyError(key)`` when read.
    """

    __slots__ = ("_keys", "_parent", "_rows", "_single")

    def __init__(
        self,
        parent: _Parent[Any],
        keys: Any,
        indices: Sequence[int] | np.ndarray | range | _Rows | None = None,
    ) -> None:
        self._parent = parent
        self._single = not isinstance(keys, (list, tuple))
        raw = [keys] if self._single else list(keys)
        self._keys = [parent._normalize_key(k) for k in raw]
        self._rows = indices if isinstance(indices, _Rows) else _Rows.of(indices)

    def _indices(self) -> list[int]:
        return self._rows.resolve(self._parent.__len__)

    def _same_keys(self) -> Any:
        return self._keys[0] if self._single else list(self._keys)

    def __len__(self) -> int:
        return self._rows.count(self._parent.__len__)

    def __bool__(self) -> bool:
        return len(self) > 0

    def _narrowed(self, keys: Any, rows: _Rows) -> ColumnView:
        return type(self)(self._parent, keys, rows)

    def __getitem__(self, key: Any) -> Any:
        parsed = parse_index(key, key_types=self._parent._key_types)
        if isinstance(parsed, IntIndex):
            return self._one(_pick(self._parent, self._rows, parsed.value))
        if isinstance(parsed, RowSelector):
            return self._narrowed(self._same_keys(), self._rows.narrow(parsed))
        return self._narrowed(_column_keys(parsed), self._rows)

    def _one(self, index: int) -> Any:
        if self._single:
            return self._parent._read_column(self._keys[0], [index])[0]
        row = self._parent._read_columns(self._keys, [index])[0]
        return None if row is None else [row.get(k) for k in self._keys]

    def _values(self) -> list[Any]:
        """Single key: the column; several keys: per row a list of values or ``None``."""
        if self._single:
            indices = None if self._rows.is_all else self._indices()
            if indices is not None and not indices:
                return []
            return self._parent._read_column(self._keys[0], indices)
        indices = self._indices()
        if not indices:
            return []
        keys = self._keys
        return [
            None if row is None else [row.get(k) for k in keys]
            for row in self._parent._read_columns(keys, indices)
        ]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values())

    def to_list(self) -> list[Any]:
        """The values, read in one request."""
        return self._values()

    def to_dict(self) -> dict[Any, list[Any]]:
        """``{key: [values...]}`` for every requested key."""
        values = self._values()
        if self._single:
            return {self._keys[0]: values}
        return {
            key: [None if row is None else row[j] for row in values]
            for j, key in enumerate(self._keys)
        }

    def to_numpy(self) -> np.ndarray:
        """One packed array (single key only) when every value has the same shape and
        dtype; otherwise ``ValueError`` saying why."""
        if not self._single:
            raise AsebytesValueError(
                "to_numpy() needs a single-key column view; use db['key'].to_numpy()"
            )
        values = self._values()
        arrays = [np.asarray(v) for v in values if v is not None]
        if len(arrays) != len(values):
            raise AsebytesValueError(
                f"Column {self._keys[0]!r} has missing values (placeholder rows or rows "
                "without the key); to_numpy() needs a value in every row"
            )
        if not arrays:
            return np.empty((0,))
        first = arrays[0]
        for a in arrays:
            if a.shape != first.shape or a.dtype != first.dtype:
                raise AsebytesValueError(
                    f"Column {self._keys[0]!r} mixes shapes/dtypes ({first.shape} "
                    f"{first.dtype} vs {a.shape} {a.dtype}); use to_list() instead"
                )
        return np.stack(arrays)

    def __repr__(self) -> str:
        name = type(self).__name__
        if self._single:
            return f"{name}(key={self._keys[0]!r}, len={len(self)})"
        return f"{name}(keys={self._keys!r}, len={len(self)})"


class ASEColumnView(ColumnView):
    """Column view of an ``ASEIO``: every item is an ``ase.Atoms`` built from the requested
    keys only (e.g. an empty Atoms whose calculator holds just ``energy``). A row that has
    none of the keys gives ``None``; a placeholder row raises ``TypeError``."""

    __slots__ = ()

    def _atoms(self, indices: list[int]) -> list[ase.Atoms | None]:
        if not indices:
            return []
        atoms: list[ase.Atoms | None] = self._parent._read_partials(self._keys, indices)
        return atoms

    def _one(self, index: int) -> Any:
        return self._atoms([index])[0]

    def _values(self) -> list[Any]:
        return self._atoms(self._indices())

    def to_dict(self) -> dict[Any, list[Any]]:
        raise AsebytesTypeError(
            "to_dict() is not available on ASEIO column views. ASEIO always returns "
            "ase.Atoms -- use to_list(), or ObjectIO for plain values."
        )

    def to_numpy(self) -> np.ndarray:
        raise AsebytesTypeError(
            "to_numpy() is not available on ASEIO column views (items are ase.Atoms); "
            "open the store with ObjectIO for plain values."
        )


def missing_everywhere(
    keys: list[Any], rows: list[dict[Any, Any] | None]
) -> KeyNotFoundError | None:
    """``KeyError(key)`` for the first requested key that no real row has (``None`` when
    every row is a placeholder: there is nothing to contradict)."""
    real = [row for row in rows if row is not None]
    if not real:
        return None
    for key in keys:
        if not any(key in row for row in real):
            return KeyNotFoundError(key)
    return None
