"""Lazy row and column views over a facade (``db[0:10]``, ``db["calc.energy"]``, ...).

A view stores *which* rows it covers as a chain of selectors (see :mod:`asebytes._index`),
never the rows themselves, and reads nothing until it is iterated or materialised. Each
materialisation resolves the selectors afresh (one ``len`` call, only when a slice or a
mask over the whole store needs it) and then reads in batches: ``to_list()`` is one
``get_many``/``get_column`` call, iteration and ``chunked(n)`` one call per chunk. Writes
through a view (``set``, ``update``, ``delete``, ``drop``, column ``set``) are one backend
call each (one transaction on the daemon).

The view logic is written once as operations (:mod:`asebytes._core`) in the ``_*Base``
classes; :class:`RowView`/:class:`ColumnView` run them synchronously, the async views in
:mod:`asebytes._aviews` with ``await``. Chaining works in both orders:
``db[0:500]["calc.energy"]`` and ``db["calc.energy"][0:500]`` cover the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import numpy as np

from ._core import ITER_CHUNK, FacadeCore, Op, chunks, resolve
from ._display import Displayable
from ._index import (
    ColumnSelector,
    IntIndex,
    RowSelector,
    check_index,
    parse_index,
)
from .exceptions import AsebytesTypeError, AsebytesValueError

if TYPE_CHECKING:
    import ase

__all__ = ["ASEColumnView", "ColumnView", "RowView"]

R = TypeVar("R")


class _Rows:
    """The rows a view covers: every row of the store (no selectors) or the selectors
    applied in turn. Immutable; narrowing returns a new instance."""

    __slots__ = ("selectors",)

    def __init__(self, selectors: tuple[RowSelector, ...] = ()) -> None:
        self.selectors = selectors

    @classmethod
    def of(cls, indices: Sequence[int] | np.ndarray | range | None) -> _Rows:
        if indices is None:
            return cls()
        return cls((RowSelector(positions=tuple(int(i) for i in indices)),))

    @property
    def is_all(self) -> bool:
        return not self.selectors

    def narrow(self, selector: RowSelector) -> _Rows:
        return _Rows((*self.selectors, selector))

    def known_count(self) -> int | None:
        """How many rows, when that needs no read (one explicit list of positions)."""
        if len(self.selectors) == 1 and self.selectors[0].positions is not None:
            return len(self.selectors[0].positions)
        return None

    def op_indices(self) -> Op[list[int]]:
        return resolve(self.selectors)

    def op_count(self) -> Op[int]:
        known = self.known_count()
        if known is not None:
            return known
        return len((yield from self.op_indices()))

    def op_pick(self, position: int) -> Op[int]:
        """The row for view-relative ``position`` (negatives count from the view's end);
        over the whole store the position is passed on as is."""
        if self.is_all:
            return position
        indices = yield from self.op_indices()
        return indices[check_index(position, len(indices))]


def _column_keys(parsed: ColumnSelector) -> Any:
    return parsed.keys[0] if parsed.single else list(parsed.keys)


def _as_rows(indices: Sequence[int] | np.ndarray | range | _Rows | None) -> _Rows:
    return indices if isinstance(indices, _Rows) else _Rows.of(indices)


class _RowViewBase(Generic[R]):
    """Row-view operations shared by :class:`RowView` and ``AsyncRowView``."""

    __slots__ = ("_column_view_cls", "_parent", "_rows")

    def __init__(
        self,
        parent: FacadeCore,
        indices: Sequence[int] | np.ndarray | range | _Rows,
        *,
        column_view_cls: type[Any] | None = None,
    ) -> None:
        self._parent: Any = parent
        self._rows = _as_rows(indices)
        self._column_view_cls = column_view_cls or self._default_column_cls()

    def _default_column_cls(self) -> type[Any]:
        return ColumnView

    def _parse(self, key: Any) -> Any:
        return parse_index(key, key_types=self._parent._key_types)

    def _narrowed(self, selector: RowSelector) -> Any:
        return type(self)(
            self._parent,
            self._rows.narrow(selector),
            column_view_cls=self._column_view_cls,
        )

    def _columns(self, parsed: ColumnSelector) -> Any:
        return self._column_view_cls(self._parent, _column_keys(parsed), self._rows)

    def _op_item(self, position: int) -> Op[R]:
        index = yield from self._rows.op_pick(position)
        row: R = yield from self._parent._op_row(index)
        return row

    def _op_to_list(self) -> Op[list[R]]:
        indices = yield from self._rows.op_indices()
        rows: list[R] = yield from self._parent._op_rows(indices)
        return rows

    def _op_set(self, values: Any) -> Op[None]:
        indices = yield from self._rows.op_indices()
        yield from self._parent._op_set_rows(indices, values)

    def _op_update(self, data: Any) -> Op[None]:
        indices = yield from self._rows.op_indices()
        yield from self._parent._op_update_rows(indices, data)

    def _op_delete(self) -> Op[None]:
        indices = yield from self._rows.op_indices()
        yield from self._parent._op_delete_rows(indices)

    def _op_drop(self, keys: Sequence[Any]) -> Op[None]:
        indices = yield from self._rows.op_indices()
        if indices:
            yield from self._parent._op_drop(keys, indices)

    @staticmethod
    def _check_chunk(chunk_size: int) -> None:
        if chunk_size < 1:
            raise AsebytesValueError(f"chunk_size must be >= 1, got {chunk_size}")


class RowView(Displayable, _RowViewBase[R]):
    """A lazy selection of rows: ``db[2:10]``, ``db[[0, 5, -1]]``, ``db[mask]``.

    ``len``, ``bool``, ``view[i]`` (a row), ``view[slice | ints | mask]`` (a narrower view),
    ``view["key"]`` / ``view[["a", "b"]]`` (column views over these rows), iteration
    (batched), :meth:`chunked`, :meth:`to_list`; writes :meth:`set`, :meth:`update`,
    :meth:`delete`, :meth:`drop`.
    """

    __slots__ = ()

    def _run(self, op: Op[Any]) -> Any:
        return self._parent._run(op)

    def __len__(self) -> int:
        count: int = self._run(self._rows.op_count())
        return count

    def __bool__(self) -> bool:
        return len(self) > 0

    @overload
    def __getitem__(self, key: int) -> R: ...
    @overload
    def __getitem__(self, key: slice | list[int] | np.ndarray) -> RowView[R]: ...
    @overload
    def __getitem__(self, key: str | list[str]) -> ColumnView: ...

    def __getitem__(self, key: Any) -> Any:
        parsed = self._parse(key)
        if isinstance(parsed, IntIndex):
            return self._run(self._op_item(parsed.value))
        if isinstance(parsed, RowSelector):
            return self._narrowed(parsed)
        return self._columns(parsed)

    def __iter__(self) -> Iterator[R]:
        return self.chunked(ITER_CHUNK)

    def chunked(self, chunk_size: int = 1000) -> Iterator[R]:
        """Yield rows one by one, reading ``chunk_size`` rows per backend call."""
        self._check_chunk(chunk_size)
        indices: list[int] = self._run(self._rows.op_indices())
        return self._iter_chunks(indices, chunk_size)

    def _iter_chunks(self, indices: list[int], chunk_size: int) -> Iterator[R]:
        for chunk in chunks(indices, chunk_size):
            yield from self._run(self._parent._op_rows(chunk))

    def to_list(self) -> list[R]:
        """Every row of the view, read in one call (one consistent snapshot)."""
        rows: list[R] = self._run(self._op_to_list())
        return rows

    def set(self, values: list[Any]) -> None:
        """Replace the rows: one row (or ``None``) per index, written in one call."""
        self._run(self._op_set(values))

    def update(self, data: dict[Any, Any]) -> None:
        """Merge ``data`` into every row of the view, in one call."""
        self._run(self._op_update(data))

    def delete(self) -> None:
        """Delete the rows (they must be contiguous), in one call."""
        self._run(self._op_delete())

    def drop(self, keys: Sequence[Any]) -> None:
        """Remove ``keys`` from every row of the view, in one call."""
        self._run(self._op_drop(keys))

    def __add__(self, other: Any) -> Any:
        """``db[a:b] + other[c:d]``: a read-only :class:`~asebytes.ConcatView` of row
        views (or facades) of one facade class."""
        from ._concat import concat

        return concat(self, other)

    def __repr__(self) -> str:
        return f"RowView(len={len(self)})"


class _ColumnViewBase:
    """Column-view operations shared by the sync and the async column views."""

    __slots__ = ("_keys", "_parent", "_rows", "_single")

    def __init__(
        self,
        parent: FacadeCore,
        keys: Any,
        indices: Sequence[int] | np.ndarray | range | _Rows | None = None,
    ) -> None:
        self._parent: Any = parent
        self._single = not isinstance(keys, (list, tuple))
        raw = [keys] if self._single else list(keys)
        self._keys = [parent._normalize_key(k) for k in raw]
        self._rows = _as_rows(indices)

    def _same_keys(self) -> Any:
        return self._keys[0] if self._single else list(self._keys)

    def _parse(self, key: Any) -> Any:
        return parse_index(key, key_types=self._parent._key_types)

    def _narrowed(self, keys: Any, rows: _Rows) -> Any:
        return type(self)(self._parent, keys, rows)

    def _sub(self, parsed: Any) -> Any:
        """A narrower view for a row selector or other keys (``None`` for an int)."""
        if isinstance(parsed, RowSelector):
            return self._narrowed(self._same_keys(), self._rows.narrow(parsed))
        if isinstance(parsed, ColumnSelector):
            return self._narrowed(_column_keys(parsed), self._rows)
        return None

    def _op_one(self, position: int) -> Op[Any]:
        index = yield from self._rows.op_pick(position)
        if self._single:
            values = yield from self._parent._op_column(self._keys[0], [index])
            return values[0]
        rows = yield from self._parent._op_columns(self._keys, [index])
        return None if rows[0] is None else [rows[0].get(k) for k in self._keys]

    def _op_values(self) -> Op[list[Any]]:
        """Single key: the column; several keys: per row a list of values or ``None``."""
        if self._single:
            indices = None
            if not self._rows.is_all:
                indices = yield from self._rows.op_indices()
            values: list[Any] = yield from self._parent._op_column(
                self._keys[0], indices
            )
            return values
        indices = yield from self._rows.op_indices()
        keys = self._keys
        rows = yield from self._parent._op_columns(keys, indices)
        return [None if row is None else [row.get(k) for k in keys] for row in rows]

    def _op_dict(self) -> Op[dict[Any, list[Any]]]:
        values = yield from self._op_values()
        if self._single:
            return {self._keys[0]: values}
        return {
            key: [None if row is None else row[j] for row in values]
            for j, key in enumerate(self._keys)
        }

    def _op_numpy(self) -> Op[np.ndarray]:
        if not self._single:
            raise AsebytesValueError(
                "to_numpy() needs a single-key column view; use db['key'].to_numpy()"
            )
        indices = None
        if not self._rows.is_all:
            indices = yield from self._rows.op_indices()
        array: np.ndarray = yield from self._parent._op_numpy(self._keys[0], indices)
        return array

    def _op_set(self, values: Any) -> Op[None]:
        indices = yield from self._rows.op_indices()
        yield from self._parent._op_set_column(
            self._keys, self._single, indices, values
        )

    def _describe(self, length: object) -> str:
        name = type(self).__name__
        if self._single:
            return f"{name}(key={self._keys[0]!r}, len={length})"
        return f"{name}(keys={self._keys!r}, len={length})"


class _ASEColumns:
    """ASE column views: every item is an ``ase.Atoms`` built from the requested keys only
    (e.g. an empty Atoms whose calculator holds just ``energy``). A row that has none of the
    keys gives ``None``; a placeholder row raises ``TypeError``. ``to_numpy()`` returns the
    packed values of the column, as on ``ObjectIO`` (energies as a float array, positions
    as ``(n, atoms, 3)``)."""

    __slots__ = ()
    _keys: list[Any]
    _parent: Any
    _rows: _Rows

    def _op_one(self, position: int) -> Op[Any]:
        index = yield from self._rows.op_pick(position)
        atoms = yield from self._parent._op_partials(self._keys, [index])
        return atoms[0]

    def _op_values(self) -> Op[list[ase.Atoms | None]]:
        indices = yield from self._rows.op_indices()
        atoms: list[ase.Atoms | None] = yield from self._parent._op_partials(
            self._keys, indices
        )
        return atoms

    def _op_dict(self) -> Op[dict[Any, list[Any]]]:
        raise AsebytesTypeError(
            "to_dict() is not available on ASEIO column views. ASEIO always returns "
            "ase.Atoms -- use to_list(), or ObjectIO for plain values."
        )
        yield  # pragma: no cover - makes this an operation


class ColumnView(Displayable, _ColumnViewBase):
    """A lazy view of one key (``db["calc.energy"]``) or several keys (``db[["a", "b"]]``).

    Single key: values (``None`` where a row lacks the key or is a placeholder).
    Several keys: per row a list of values in key order (``None`` for a placeholder row).
    A key that no row has raises ``KeyError(key)`` when read. :meth:`set` writes back.
    """

    __slots__ = ()

    def _run(self, op: Op[Any]) -> Any:
        return self._parent._run(op)

    def __len__(self) -> int:
        count: int = self._run(self._rows.op_count())
        return count

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, key: Any) -> Any:
        parsed = self._parse(key)
        if isinstance(parsed, IntIndex):
            return self._run(self._op_one(parsed.value))
        return self._sub(parsed)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.to_list())

    def to_list(self) -> list[Any]:
        """The values, read in one call."""
        values: list[Any] = self._run(self._op_values())
        return values

    def to_dict(self) -> dict[Any, list[Any]]:
        """``{key: [values...]}`` for every requested key."""
        out: dict[Any, list[Any]] = self._run(self._op_dict())
        return out

    def to_numpy(self) -> np.ndarray:
        """One packed array (single key only) when every value has the same shape and
        dtype (``(n, *shape)``); otherwise ``ValueError`` saying why (ragged per-atom
        arrays: use ``to_list()``)."""
        array: np.ndarray = self._run(self._op_numpy())
        return array

    def set(self, values: list[Any]) -> None:
        """Write back: one value per row (single key) or one list of values in key order
        per row (several keys), in one call."""
        self._run(self._op_set(values))

    def __repr__(self) -> str:
        return self._describe(len(self))


class ASEColumnView(_ASEColumns, ColumnView):
    """Column view of an ``ASEIO``: every item is an ``ase.Atoms`` built from the requested
    keys only; ``to_numpy()`` gives the packed values; ``to_dict()`` raises ``TypeError``
    (use ``ObjectIO``)."""

    __slots__ = ()
