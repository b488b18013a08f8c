"""``ConcatView``: several facades (or row views) read as one lazy, read-only sequence.

``db_a + db_b`` (and ``sum([a, b, c], [])``) give a :class:`ConcatView`, as in the
reference. It is a read-only facade over :class:`_ConcatBackend`, which maps a global row
position to (source, local position) with cumulative offsets and sends each source one
batched request per read; everything else -- indexing, views, chaining, column reads,
``to_numpy()`` -- is the facades' own code (:mod:`asebytes._core`). Beyond the reference a
source may also be a sync ``RowView`` of a facade of the same class (``db[:100] + db2[5:]``);
its rows are fixed when the concatenation is made. Lengths are read afresh on every call.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from ._core import ITER_CHUNK, FacadeCore, InRange, Op, chunks, run
from ._display import Displayable
from ._index import ColumnSelector, IntIndex, RowSelector, check_index, parse_index
from ._schema import SchemaEntry
from ._views import RowView, _Rows
from .exceptions import AsebytesTypeError, AsebytesValueError, ReadOnlyError

__all__ = ["ConcatView", "concat"]

R = TypeVar("R")


class _Part:
    """One source: a facade's backend, and the rows of it taken (``None``: all, read live)."""

    __slots__ = ("backend", "positions")

    def __init__(self, backend: Any, positions: list[int] | None) -> None:
        self.backend = backend
        self.positions = positions

    def __len__(self) -> int:
        return len(self.backend) if self.positions is None else len(self.positions)

    def local(self, indices: list[int]) -> list[int]:
        if self.positions is None:
            return indices
        return [self.positions[i] for i in indices]


class _ConcatBackend:
    """A read-only backend over the sources' backends (global index -> source, local)."""

    _negative_indices = False

    def __init__(self, parts: list[_Part]) -> None:
        self.parts = parts

    def _offsets(self) -> list[int]:
        offsets = [0]
        for part in self.parts:
            offsets.append(offsets[-1] + len(part))
        return offsets

    def __len__(self) -> int:
        return self._offsets()[-1]

    def _buckets(
        self, indices: Sequence[int]
    ) -> list[tuple[_Part, list[int], list[int]]]:
        """Per source touched: (part, positions in the request, local row positions)."""
        offsets = self._offsets()
        total = offsets[-1]
        grouped: dict[int, tuple[list[int], list[int]]] = {}
        for pos, index in enumerate(indices):
            if not 0 <= index < total:
                check_index(index, total)  # raises IndexError naming index and length
            src = bisect.bisect_right(offsets, index) - 1
            where, local = grouped.setdefault(src, ([], []))
            where.append(pos)
            local.append(index - offsets[src])
        return [
            (self.parts[src], where, self.parts[src].local(local))
            for src, (where, local) in sorted(grouped.items())
        ]

    def _gather(self, indices: Sequence[int], method: str, *args: Any) -> list[Any]:
        out: list[Any] = [None] * len(indices)
        for part, where, local in self._buckets(indices):
            values = getattr(part.backend, method)(local, *args)
            for pos, value in zip(where, values, strict=True):
                out[pos] = value
        return out

    def _one(self, index: int) -> tuple[Any, int]:
        [(part, _, [local])] = self._buckets([index])
        return part.backend, local

    def get(self, index: int, keys: Sequence[Any] | None = None) -> Any:
        backend, local = self._one(index)
        return backend.get(local, keys)

    def get_many(self, indices: Sequence[int], keys: Any = None) -> list[Any]:
        return self._gather(indices, "get_many", keys)

    def get_atoms(self, index: int, keys: Sequence[str] | None = None) -> Any:
        backend, local = self._one(index)
        return backend.get_atoms(local, keys)

    def get_atoms_many(
        self, indices: Sequence[int], keys: Any = None, missing_ok: bool = False
    ) -> list[Any]:
        return self._gather(indices, "get_atoms_many", keys, missing_ok)

    def get_column(self, key: Any, indices: Sequence[int] | None = None) -> list[Any]:
        if indices is None:
            indices = range(len(self))
        out: list[Any] = [None] * len(indices)
        for part, where, local in self._buckets(indices):
            values = part.backend.get_column(key, local)
            for pos, value in zip(where, values, strict=True):
                out[pos] = value
        return out

    def get_column_numpy(
        self, key: str, indices: Sequence[int] | None = None
    ) -> np.ndarray:
        if indices is None:
            indices = range(len(self))
        pieces: list[tuple[list[int], np.ndarray]] = [
            (where, part.backend.get_column_numpy(key, local))
            for part, where, local in self._buckets(indices)
        ]
        if not pieces:
            return np.empty((0,))
        first = pieces[0][1]
        for _, array in pieces:
            if array.shape[1:] != first.shape[1:] or array.dtype != first.dtype:
                raise AsebytesValueError(
                    f"Column {key!r} differs between the concatenated sources "
                    f"({first.dtype}{list(first.shape[1:])} vs "
                    f"{array.dtype}{list(array.shape[1:])}); to_numpy() needs one shape "
                    "and dtype -- use to_list()"
                )
        out = np.empty((len(indices), *first.shape[1:]), dtype=first.dtype)
        for where, array in pieces:
            out[where] = array
        return out

    def keys(self, index: int) -> list[Any]:
        backend, local = self._one(index)
        keys: list[Any] = backend.keys(local)
        return keys

    def schema(self, index: int = 0) -> dict[str, SchemaEntry]:
        backend, local = self._one(index)
        schema: dict[str, SchemaEntry] = backend.schema(local)
        return schema


class ConcatView(Displayable, FacadeCore, Generic[R]):
    """Lazy, read-only concatenation of facades of one class (``db_a + db_b``).

    ``len``, iteration (batched per source), ``cv[i]``, ``cv[slice | ints | mask]`` (a
    ``RowView``), ``cv["key"]`` / ``cv[["a", "b"]]`` (column views, ``to_numpy()``
    included), ``cv + other`` (flattens). Every write raises
    ``TypeError("ConcatView is read-only")``.
    """

    def __init__(self, sources: Sequence[Any]) -> None:
        if not sources:
            raise AsebytesValueError("ConcatView requires at least one source")
        facades = [_facade_of(s) for s in sources]
        first = type(facades[0])
        for other in facades[1:]:
            if type(other) is not first:
                raise AsebytesTypeError(
                    f"Cannot concat {first.__name__} with {type(other).__name__}"
                )
        self._sources: list[Any] = list(sources)
        self._kind: Any = facades[0]
        self._key_types = self._kind._key_types
        self._column_view_cls = self._kind._column_view_cls
        parts = [_Part(f._backend, _positions_of(s)) for f, s in zip(facades, sources)]
        self._attach(_ConcatBackend(parts))
        self._writable = False
        self._native_atoms = self._kind._reads_atoms and all(
            hasattr(f._backend, "get_atoms_many") for f in facades
        )
        self._native_numpy = all(
            hasattr(f._backend, "get_column_numpy") for f in facades
        )

    # The tier (how rows are built and keys checked) is the sources'.
    def _normalize_key(self, key: Any) -> Any:
        return self._kind._normalize_key(key)

    def _build_result(self, row: Any) -> Any:
        return self._kind._build_result(row)

    def _build_partial(self, row: dict[Any, Any]) -> Any:
        return self._kind._build_partial(row)

    def _check_writable(self) -> None:
        raise ReadOnlyError("ConcatView is read-only")

    def _run(self, op: Op[Any]) -> Any:
        return run(op, self._backend)

    @property
    def sources(self) -> list[Any]:
        """The concatenated facades and views, in order."""
        return list(self._sources)

    def __len__(self) -> int:
        return len(self._backend)

    def __getitem__(self, index: Any) -> Any:
        parsed = parse_index(index, key_types=self._key_types)
        if isinstance(parsed, IntIndex):
            return self._run(self._op_row(parsed.value))
        if isinstance(parsed, RowSelector):
            return RowView(
                self, _Rows((parsed,)), column_view_cls=self._column_view_cls
            )
        assert isinstance(parsed, ColumnSelector)
        keys = parsed.keys[0] if parsed.single else list(parsed.keys)
        return self._column_view_cls(self, keys)

    def __iter__(self) -> Iterator[R]:
        for chunk in chunks(InRange(range(len(self))), ITER_CHUNK):
            yield from self._run(self._op_rows(chunk))

    def schema(self, index: int | None = None) -> dict[str, SchemaEntry]:
        """``{key: SchemaEntry}`` of row ``index`` (default 0) of the concatenation."""
        schema: dict[str, SchemaEntry] = self._run(self._op_schema(index))
        return schema

    def __add__(self, other: Any) -> ConcatView[R]:
        return concat(self, other)

    def __radd__(self, other: Any) -> ConcatView[R]:
        if isinstance(other, list) and not other:
            return self
        return NotImplemented

    def __repr__(self) -> str:
        return (
            f"ConcatView({type(self._kind).__name__}, n_sources={len(self._sources)}, "
            f"len={len(self)})"
        )


def _facade_of(source: Any) -> Any:
    """The facade behind a source (itself, or a sync ``RowView``'s parent)."""
    if isinstance(source, RowView):
        source = source._parent
    asynchronous = hasattr(source, "_arun")  # an async facade: its reads are awaited
    if (
        isinstance(source, ConcatView)
        or not isinstance(source, FacadeCore)
        or asynchronous
    ):
        raise AsebytesTypeError(
            f"ConcatView sources are sync facades or their row views, got "
            f"{type(source).__name__}"
        )
    return source


def _positions_of(source: Any) -> list[int] | None:
    """A row view's rows as absolute positions (``None`` for a whole facade)."""
    if not isinstance(source, RowView):
        return None
    parent = source._parent
    indices: list[int] = parent._run(source._rows.op_indices())
    if isinstance(indices, InRange):
        return list(indices)
    n = len(parent)
    return [check_index(i, n) for i in indices]


def _flat(item: Any) -> list[Any]:
    return item.sources if isinstance(item, ConcatView) else [item]


def concat(left: Any, right: Any) -> ConcatView[Any]:
    """``left + right`` for facades, row views and concatenations of one facade class;
    ``TypeError("Cannot concat X with Y")`` otherwise."""
    lhs, rhs = _flat(left), _flat(right)
    try:
        kind_l, kind_r = type(_facade_of(lhs[0])), type(_facade_of(rhs[0]))
    except AsebytesTypeError:
        kind_l, kind_r = type(left), type(right)
    if kind_l is not kind_r:
        raise AsebytesTypeError(
            f"Cannot concat {kind_l.__name__} with {kind_r.__name__}"
        )
    return ConcatView(lhs + rhs)
