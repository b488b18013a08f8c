"""The synchronous facades ``BlobIO``, ``ObjectIO`` and ``ASEIO``.

A facade is a ``MutableSequence`` over one backend. With a location string the backend is
a daemon-backed store (see :mod:`asebytes._registry` and :mod:`asebytes._stores`); any
:class:`~asebytes.ReadBackend` instance, including a user's own, is accepted instead.
Every method runs an operation of :mod:`asebytes._core` (shared with the async facades)
against the backend; multi-row reads go through the lazy views of
:mod:`asebytes._views`; iteration reads ``ITER_CHUNK`` rows per call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, MutableSequence, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

import ase
import numpy as np

from . import _cache, _registry
from ._abc import ReadWriteBackend
from ._concat import ConcatView, concat
from ._core import ITER_CHUNK, FacadeCore, InRange, Op, chunks, run
from ._display import Displayable
from ._follow import FollowCursor, Stop
from ._index import ColumnSelector, IntIndex, RowSelector, parse_index
from ._schema import SchemaEntry
from ._tiers import ASETier, BlobTier, ObjectTier, flatten_update
from ._views import ASEColumnView, ColumnView, RowView, _Rows

__all__ = ["ASEIO", "BlobIO", "ObjectIO"]

R = TypeVar("R")
T = TypeVar("T")

#: A row index: a Python int or any numpy integer (negatives count from the end).
Index = int | np.integer[Any]


def _is_location(backend: Any) -> bool:
    """Whether a facade's ``backend`` argument names a daemon-served location."""
    return isinstance(backend, (str, os.PathLike)) or (
        isinstance(backend, (list, tuple)) and bool(backend)
    )


class _Facade(Displayable, FacadeCore, MutableSequence[R], Generic[R]):
    """Behaviour shared by the three sync facades; the tier mixin sets the row types."""

    _column_view_cls: ClassVar[type[ColumnView]] = ColumnView
    _close_on_exit: ClassVar[bool] = True

    def __init__(
        self, backend: Any, *, readonly: bool | None = None, **kwargs: Any
    ) -> None:
        if isinstance(backend, (list, tuple)) and backend:
            backend = _registry.shard_list(backend)
        if not isinstance(backend, (str, os.PathLike)):
            _registry.refuse_options(kwargs)
        else:
            backend = _registry.open_backend(
                os.fspath(backend), tier=self._tier, readonly=readonly, **kwargs
            )
        self._attach(backend)

    def _run(self, op: Op[T]) -> T:
        return run(op, self._backend)

    # ------------------------------------------------------------------ reads

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        """Groups stored at ``path``."""
        return _registry.list_groups(os.fspath(path), **kwargs)

    def __len__(self) -> int:
        return len(self._backend)

    @overload  # type: ignore[override]
    def __getitem__(self, index: Index) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> RowView[R]: ...
    @overload
    def __getitem__(self, index: list[int] | np.ndarray) -> RowView[R]: ...
    @overload
    def __getitem__(self, index: str | list[str]) -> ColumnView: ...

    def __getitem__(self, index: Any) -> Any:
        if type(index) is int and self._neg:
            # The hot path of `db[i]` loops: one backend call, same result as below.
            if self._native_atoms:
                return self._backend.get_atoms(index)
            return self._build_result(self._backend.get(index))
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

    def get(self, index: Index, keys: Sequence[Any] | None = None) -> Any:
        """Row ``index`` (``None`` for a placeholder), optionally only ``keys``; a requested
        key the row lacks raises ``KeyError("Invalid keys at index i: [...]")``."""
        if type(index) is int and self._neg and type(keys) is list:
            # The hot path of `get(i, keys=[...])` loops: one backend call, same result.
            wanted = self._keys_arg(keys)
            if self._native_atoms:
                return self._backend.get_atoms(index, wanted)
            return self._partial(index, wanted, self._backend.get(index, wanted))
        return self._run(self._op_get(index, keys))

    def keys(self, index: Index) -> list[Any]:
        """The keys of row ``index`` (``[]`` for a placeholder)."""
        return self._run(self._op_keys(index))

    def __iter__(self) -> Iterator[R]:
        return self._iter_range(range(len(self)))

    def __reversed__(self) -> Iterator[R]:
        return self._iter_range(range(len(self) - 1, -1, -1))

    def _iter_range(self, indices: range) -> Iterator[R]:
        for chunk in chunks(InRange(indices), ITER_CHUNK):
            yield from self._run(self._op_rows(chunk))

    def follow(
        self,
        start: Index = 0,
        *,
        timeout: float | None = None,
        stop: Stop | None = None,
        batch: int = ITER_CHUNK,
    ) -> Iterator[R]:
        """Rows from ``start`` on (negative counts from the end), then each row other
        processes append, as the daemon reports their commits; runs until ``stop`` is set
        (an event or a callable), no row came for ``timeout`` seconds, or the loop
        breaks. ``follow(start=len(db))`` yields only new rows. Rows are read ``batch``
        per request. ``UnsupportedOperationError`` for a backend that cannot grow or is
        not served by the daemon."""
        cursor = FollowCursor(self, start, timeout=timeout, stop=stop, batch=batch)
        return self._follow(cursor)

    def _follow(self, cursor: FollowCursor) -> Iterator[R]:
        while (rows := self._run(cursor.op_next())) is not None:
            yield from rows

    # ------------------------------------------------------------------ writes

    def __setitem__(self, index: Any, value: Any) -> None:
        self._run(self._op_set(index, value))

    def __delitem__(self, index: Any) -> None:
        self._run(self._op_delete(index))

    def insert(self, index: Index, value: Any) -> None:
        """Insert ``value`` before ``index`` (clamped like ``list.insert``)."""
        self._run(self._op_insert(index, value))

    def append(self, value: Any) -> None:
        """Append one row (one atomic call; never a read-then-insert race)."""
        self.extend([value])

    def extend(  # type: ignore[override]
        self, values: Iterable[Any], *, progress: bool | None = None
    ) -> int:
        """Append rows atomically (all or none) and return the new length. A long extend
        (a big list or a generator) shows a progress bar where someone watches (terminal,
        notebook); ``progress=False`` or ``ASEBYTES_PROGRESS=0`` turns it off."""
        return self._run(self._op_extend(values, progress))

    def __iadd__(self, values: Iterable[Any]) -> Self:  # type: ignore[misc]
        self.extend(values)
        return self

    def update(self, index: Index, data: Mapping[Any, Any]) -> None:
        """Merge ``data`` into row ``index`` (a placeholder becomes a real row)."""
        self._run(self._op_update(index, data))

    def drop(self, *, keys: Sequence[Any]) -> None:
        """Remove ``keys`` from every row."""
        self._run(self._op_drop(keys, None))

    def reserve(self, count: Index) -> None:
        """Append ``count`` placeholder rows."""
        self._run(self._op_reserve(count))

    def clear(self) -> None:
        """Remove every row, keep the container."""
        self._run(self._op_clear())

    def remove(self) -> None:  # type: ignore[override]
        """Remove the container itself (shadows ``MutableSequence.remove(value)``, as in the
        reference)."""
        self._run(self._op_remove())

    # ------------------------------------------------------------------ misc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._close_on_exit:
            close = getattr(self._backend, "close", None)
            if close is not None:
                close()

    def __add__(self, other: Any) -> ConcatView[R]:
        """``db_a + db_b``: a lazy, read-only :class:`~asebytes.ConcatView` (same facade
        class only; ``TypeError("Cannot concat X with Y")`` otherwise)."""
        return concat(self, other)

    def __radd__(self, other: Any) -> ConcatView[R]:
        if isinstance(other, list) and not other:  # sum([a, b], [])
            return ConcatView([self])
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self._backend!r})"


class _SchemaMixin(FacadeCore):
    def schema(self, index: Index | None = None) -> dict[str, SchemaEntry]:
        """``{key: SchemaEntry(dtype, shape)}`` of row ``index`` (default 0; negatives count
        from the end; a placeholder gives ``{}``)."""
        return run(self._op_schema(index), self._backend)


class ObjectIO(ObjectTier, _SchemaMixin, _Facade[dict[str, Any]]):
    """A mutable sequence of ``dict[str, Any]`` rows (numpy arrays, scalars, str, lists,
    nested dicts); ``None`` is a placeholder row."""


class BlobIO(BlobTier, _Facade[dict[bytes, bytes]]):
    """A mutable sequence of ``dict[bytes, bytes]`` rows stored as given; ``None`` is a
    placeholder row. Column keys may be ``bytes`` or ``str`` (UTF-8 encoded)."""


class ASEIO(ASETier, _SchemaMixin, _Facade[ase.Atoms]):
    """A mutable sequence of ``ase.Atoms`` (``None`` is a placeholder row).

    Stored with the key convention of :func:`asebytes.atoms_to_dict`; read back as
    :func:`asebytes.dict_to_atoms` builds them (fast, calculator-correct). Column views
    (``db["calc.energy"]``) yield Atoms built from the requested keys only; views'
    ``set`` takes Atoms or flat dicts.
    """

    _column_view_cls = ASEColumnView
    _close_on_exit = False  # the reference's ASEIO leaves the backend open on exit

    def __init__(
        self,
        backend: Any,
        *,
        readonly: bool | None = None,
        cache_to: str | os.PathLike[str] | ReadWriteBackend[Any, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        location, cache = _cache.parse(cache_to)
        if location is not None and _is_location(backend):
            # The daemon keeps the cache, shared by every process reading this source.
            kwargs["cache_to"] = location
        elif location is not None:
            cache = _registry.open_backend(location, tier=self._tier)
        super().__init__(backend, readonly=readonly, **kwargs)
        if cache_to is not None:
            _cache.warn_if_writable(self._backend, readonly)
        if cache is not None:
            wrapper = (
                _cache.ReadThroughWrite
                if isinstance(self._backend, ReadWriteBackend)
                else _cache.ReadThrough
            )
            self._attach(wrapper(self._backend, cache))

    def update(
        self,
        index: Index,
        data: Mapping[str, Any] | None = None,
        *,
        info: Mapping[str, Any] | None = None,
        arrays: Mapping[str, Any] | None = None,
        calc: Mapping[str, Any] | None = None,
    ) -> None:
        """Merge keys into row ``index``: a flat dict (``{"calc.energy": -1.0}``) and/or the
        keyword forms ``info=``, ``arrays=``, ``calc=``. Keys must start with ``arrays.``,
        ``info.``, ``calc.`` or be ``cell``/``pbc``/``constraints`` (``ValueError``
        otherwise); nothing to write is a no-op."""
        self._run(self._op_update(index, flatten_update(data, info, arrays, calc)))
