"""Async views: the same lazy selections as :mod:`asebytes._views`, awaited.

``adb[i]`` is an :class:`AsyncSingleRowView` (``await`` it for the row; ``set``, ``update``,
``delete``, ``keys``; ``adb[i]["key"]`` is an awaitable :class:`AsyncSingleColumnView`),
``adb[a:b]`` / ``adb[[...]]`` an :class:`AsyncRowView` (``to_list``, ``async for``,
``chunked``, write-back), ``adb["key"]`` an :class:`AsyncColumnView` (``to_list``,
``to_dict``, ``to_numpy``, ``set``). Every method runs the operation of the sync view
(``_views._RowViewBase`` / ``_ColumnViewBase``) with ``await``, so both behave alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Generator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from ._core import ITER_CHUNK, FacadeCore, Op, chunks
from ._display import Displayable
from ._index import IntIndex, RowSelector
from ._views import _ASEColumns, _ColumnViewBase, _Rows, _RowViewBase
from .exceptions import AsebytesTypeError

__all__ = [
    "AsyncASEColumnView",
    "AsyncColumnView",
    "AsyncRowView",
    "AsyncSingleColumnView",
    "AsyncSingleRowView",
]

R = TypeVar("R")


def _no_len(view: object) -> AsebytesTypeError:
    return AsebytesTypeError(
        f"len() of this {type(view).__name__} needs the store's length; use "
        "'await view.len()' instead."
    )


class _Awaitable:
    """Runs one operation when awaited."""

    __slots__ = ()
    _parent: Any

    def _op(self) -> Op[Any]:
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, Any]:
        coro: Coroutine[Any, Any, Any] = self._parent._arun(self._op())
        return coro.__await__()


class AsyncSingleRowView(_Awaitable, Generic[R]):
    """One row, ``adb[i]`` (or ``view[i]``): ``await`` it for the row (``None`` for a
    placeholder; ``IndexError`` when out of range)."""

    __slots__ = ("_parent", "_position", "_rows")

    def __init__(self, parent: FacadeCore, rows: _Rows, position: int) -> None:
        self._parent: Any = parent
        self._rows = rows
        self._position = position

    def _op_index(self) -> Op[int]:
        return self._rows.op_pick(self._position)

    def _op(self) -> Op[R]:
        index = yield from self._op_index()
        row: R = yield from self._parent._op_row(index)
        return row

    def _then(self, make: Any) -> Op[Any]:
        index = yield from self._op_index()
        return (yield from make(index))

    async def set(self, row: Any) -> None:
        """Replace the row (ASE facades take ``Atoms`` or a flat dict; ``None`` makes it a
        placeholder)."""
        parent = self._parent
        await parent._arun(self._then(lambda i: parent._op_set(i, row, view=True)))

    async def update(self, data: dict[Any, Any]) -> None:
        """Merge ``data`` into the row."""
        await self._parent._arun(self._then(lambda i: self._parent._op_update(i, data)))

    async def delete(self) -> None:
        """Delete the row (later rows move up)."""
        await self._parent._arun(self._then(self._parent._op_delete))

    async def keys(self) -> list[Any]:
        """The row's keys (``[]`` for a placeholder)."""
        keys: list[Any] = await self._parent._arun(self._then(self._parent._op_keys))
        return keys

    def __getitem__(self, key: Any) -> AsyncSingleColumnView:
        keys = key if isinstance(key, list) else [key]
        for k in keys:
            if not isinstance(k, self._parent._key_types):
                raise AsebytesTypeError(f"Unsupported key type: {type(k)}")
        return AsyncSingleColumnView(self, key)

    def __repr__(self) -> str:
        return f"AsyncSingleRowView(index={self._position})"


class AsyncSingleColumnView(_Awaitable):
    """``adb[i]["key"]`` (the raw value) or ``adb[i][["a", "b"]]`` (a list of values in key
    order), awaited. A key the row lacks is ``KeyError``."""

    __slots__ = ("_keys", "_parent", "_row", "_single")

    def __init__(self, row: AsyncSingleRowView[Any], keys: Any) -> None:
        self._row = row
        self._parent = row._parent
        self._single = not isinstance(keys, list)
        raw = [keys] if self._single else list(keys)
        self._keys = [self._parent._normalize_key(k) for k in raw]

    def _op(self) -> Op[Any]:
        index = yield from self._row._op_index()
        values = yield from self._parent._op_values_at(index, self._keys)
        if values is None or not self._single:
            return values
        return values[0]

    def __repr__(self) -> str:
        return f"AsyncSingleColumnView(keys={self._keys!r})"


class _AsyncSized:
    """Length and running of an async view: ``len(view)`` only when the count needs no
    read (an explicit list of rows), ``await view.len()`` always."""

    __slots__ = ()
    _parent: Any
    _rows: _Rows

    async def _arun(self, op: Op[Any]) -> Any:
        return await self._parent._arun(op)

    def __len__(self) -> int:
        known = self._rows.known_count()
        if known is None:
            raise _no_len(self)
        return known

    async def len(self) -> int:
        """How many rows the view covers (reads the store's length if needed)."""
        count: int = await self._arun(self._rows.op_count())
        return count


class AsyncRowView(Displayable, _AsyncSized, _RowViewBase[R]):
    """A lazy selection of rows, awaited: ``await view.to_list()``, ``async for``,
    ``chunked(n)``, ``view[i]`` (awaitable), narrower views, column views, and the
    write-backs ``set``, ``update``, ``delete``, ``drop``."""

    __slots__ = ()

    def _default_column_cls(self) -> type[Any]:
        return AsyncColumnView

    def __getitem__(self, key: Any) -> Any:
        parsed = self._parse(key)
        if isinstance(parsed, IntIndex):
            return AsyncSingleRowView(self._parent, self._rows, parsed.value)
        if isinstance(parsed, RowSelector):
            return self._narrowed(parsed)
        return self._columns(parsed)

    def __aiter__(self) -> AsyncIterator[R]:
        return self.chunked(ITER_CHUNK)

    async def chunked(self, chunk_size: int = 1000) -> AsyncIterator[R]:
        """Yield rows one by one, reading ``chunk_size`` rows per request."""
        self._check_chunk(chunk_size)
        indices: list[int] = await self._arun(self._rows.op_indices())
        for chunk in chunks(indices, chunk_size):
            rows = await self._arun(self._parent._op_rows(chunk))
            for row in rows:
                yield row

    async def to_list(self) -> list[R]:
        """Every row of the view, read in one request (one consistent snapshot)."""
        rows: list[R] = await self._arun(self._op_to_list())
        return rows

    async def set(self, values: list[Any]) -> None:
        """Replace the rows: one row (or ``None``) per index, in one request."""
        await self._arun(self._op_set(values))

    async def update(self, data: dict[Any, Any]) -> None:
        """Merge ``data`` into every row of the view, in one request."""
        await self._arun(self._op_update(data))

    async def delete(self) -> None:
        """Delete the rows (they must be contiguous), in one request."""
        await self._arun(self._op_delete())

    async def drop(self, keys: Sequence[Any]) -> None:
        """Remove ``keys`` from every row of the view, in one request."""
        await self._arun(self._op_drop(keys))

    def __repr__(self) -> str:
        known = self._rows.known_count()
        return f"AsyncRowView(len={'?' if known is None else known})"


class AsyncColumnView(Displayable, _AsyncSized, _ColumnViewBase):
    """A lazy view of one key or several keys, awaited: ``to_list``, ``to_dict``,
    ``to_numpy``, ``async for``, ``view[i]`` (awaitable), sub-views, ``set``."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        parsed = self._parse(key)
        if isinstance(parsed, IntIndex):
            return _AsyncColumnItem(self, parsed.value)
        return self._sub(parsed)

    async def __aiter__(self) -> AsyncIterator[Any]:
        for value in await self.to_list():
            yield value

    async def to_list(self) -> list[Any]:
        """The values, read in one request."""
        values: list[Any] = await self._arun(self._op_values())
        return values

    async def to_dict(self) -> dict[Any, list[Any]]:
        """``{key: [values...]}`` for every requested key."""
        out: dict[Any, list[Any]] = await self._arun(self._op_dict())
        return out

    async def to_numpy(self) -> np.ndarray:
        """One packed array (single key; same shape and dtype in every row)."""
        array: np.ndarray = await self._arun(self._op_numpy())
        return array

    async def set(self, values: list[Any]) -> None:
        """Write back one value (or one list of values in key order) per row, in one
        request."""
        await self._arun(self._op_set(values))

    def __repr__(self) -> str:
        known = self._rows.known_count()
        return self._describe("?" if known is None else known)


class _AsyncColumnItem(_Awaitable):
    """``column_view[i]``, awaited: the value (or Atoms, for ASE column views)."""

    __slots__ = ("_parent", "_position", "_view")

    def __init__(self, view: AsyncColumnView, position: int) -> None:
        self._view = view
        self._parent = view._parent
        self._position = position

    def _op(self) -> Op[Any]:
        return self._view._op_one(self._position)


class AsyncASEColumnView(_ASEColumns, AsyncColumnView):
    """Column view of an ``AsyncASEIO``: items are ``ase.Atoms`` built from the requested
    keys only; ``to_numpy`` gives the packed values (``to_dict`` raises ``TypeError``)."""

    __slots__ = ()
