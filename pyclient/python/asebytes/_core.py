"""What every facade does, written once for the sync and the async facades.

An *operation* (``_op_*``) is a generator that validates and converts its input, then
``yield``\\ s the backend calls it needs as ``(method name, args)`` and receives each
result back; its return value is the facade's answer. :func:`run` drives an operation
against a sync backend, :func:`arun` against an async one (``await backend.method(...)``),
so ``ObjectIO.update`` and ``AsyncObjectIO.update`` are the same code and cannot drift
apart. Backend exceptions are thrown back into the operation at the ``yield`` that asked.

Index rules (CONTRACT): negative indices count from the end for every operation and out of
range is ``IndexError("Index i out of range [0, n)")``. A backend that says it applies
these rules itself (``_negative_indices = True``: the daemon-backed stores, inside the
operation's own transaction) gets indices untouched; for any other backend the operation
reads the length first and normalises.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from ._abc import AsyncReadWriteBackend, ReadWriteBackend, contiguous_start
from ._index import IntIndex, RowSelector, check_index, parse_index, select
from ._progress import track
from ._schema import SchemaEntry
from .exceptions import (
    AsebytesTypeError,
    AsebytesValueError,
    KeyNotFoundError,
    ReadOnlyError,
)

__all__ = ["ITER_CHUNK", "LEN", "FacadeCore", "InRange", "Op", "arun", "resolve", "run"]

T = TypeVar("T")

#: One backend call: method name and positional arguments.
Call = tuple[str, tuple[Any, ...]]
#: An operation: yields backend calls, returns the facade's answer.
Op = Generator[Call, Any, T]

#: The length call (``len(backend)`` on sync backends, ``await backend.len()`` on async).
LEN = "__len__"

#: Rows per ``get_many`` request when iterating (a view or a facade).
ITER_CHUNK = 256


def run(op: Op[T], backend: Any) -> T:
    """Drive ``op`` against a sync backend."""
    try:
        name, args = next(op)
        while True:
            try:
                result = getattr(backend, name)(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the operation
                name, args = op.throw(exc)
            else:
                name, args = op.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


async def arun(op: Op[T], backend: Any) -> T:
    """Drive ``op`` against an async backend (``len`` becomes ``await backend.len()``)."""
    try:
        name, args = next(op)
        while True:
            try:
                method = getattr(backend, "len" if name == LEN else name)
                result = await method(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the operation
                name, args = op.throw(exc)
            else:
                name, args = op.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


class InRange(list[int]):
    """Row positions known to be in ``[0, len)`` (derived from a length just read), so
    no backend needs them checked again."""

    __slots__ = ()


def chunks(indices: list[int], size: int) -> Iterator[list[int]]:
    """``indices`` in pieces of ``size`` (pieces of an :class:`InRange` stay in range)."""
    kind = InRange if isinstance(indices, InRange) else list
    for start in range(0, len(indices), size):
        yield kind(indices[start : start + size])


def int_index(index: object, what: str) -> int:
    """``index`` as an int (Python or numpy integer), else ``TypeError`` naming ``what``."""
    parsed = parse_index(index)
    if not isinstance(parsed, IntIndex):
        raise AsebytesTypeError(f"{what} needs an int index, got {type(index)}")
    return parsed.value


def resolve(selectors: tuple[RowSelector, ...]) -> Op[list[int]]:
    """The row positions a chain of selectors covers (reads the length only when the first
    selector is a slice or a mask, or when there is none: every row)."""
    first_positions = selectors and selectors[0].positions is not None
    n = -1 if first_positions else (yield (LEN, ()))

    def length() -> int:
        return n

    current: list[int] | None = None
    for selector in selectors:
        current = select(current, selector, length)
    if current is None:
        return InRange(range(n))
    return current if first_positions else InRange(current)


class FacadeCore:
    """Backend access shared by the facades and their views (sync and async).

    Subclasses set the tier hooks (:meth:`_prepare_row`, :meth:`_build_result`, ...); the
    constructor of the concrete facade sets ``_backend`` through :meth:`_attach`.
    """

    _tier: ClassVar[str] = "object"
    _key_types: tuple[type, ...] = (str,)
    #: ASE facades: read ``Atoms`` through the backend's ``get_atoms_many`` when it has one.
    _reads_atoms: ClassVar[bool] = False
    _backend: Any
    _neg: bool
    _writable: bool
    _native_atoms: bool
    _native_numpy: bool

    def _attach(self, backend: Any) -> None:
        self._backend = backend
        self._neg = bool(getattr(backend, "_negative_indices", False))
        self._writable = isinstance(
            backend, (ReadWriteBackend, AsyncReadWriteBackend)
        ) and not getattr(backend, "readonly", False)
        self._native_atoms = self._reads_atoms and hasattr(backend, "get_atoms_many")
        self._native_numpy = hasattr(backend, "get_column_numpy")

    # ------------------------------------------------------------------ tier hooks

    def _normalize_key(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise AsebytesTypeError(
                f"Keys of {type(self).__name__} are str, got {key!r}"
            )
        return key

    def _prepare_row(self, row: Any) -> dict[Any, Any] | None:
        """A row as the caller gives it to ``extend``/``set`` -> the backend's form."""
        raise NotImplementedError

    def _prepare_view_row(self, row: Any) -> dict[Any, Any] | None:
        """A row given to a view's ``set`` (ASEIO also takes plain dicts there)."""
        return self._prepare_row(row)

    def _prepare_update(self, data: Any) -> dict[Any, Any]:
        """A partial row for ``update`` -> the backend's form."""
        if not isinstance(data, Mapping):
            raise AsebytesTypeError(f"update() needs a dict, got {type(data)}")
        return {self._normalize_key(k): v for k, v in data.items()}

    def _prepare_column_values(
        self, key: Any, values: list[Any]
    ) -> tuple[Any, list[Any]]:
        """The values of a one-key column write -> ``(key, values)`` in the backend's form;
        the key is checked once, not once per value."""
        if not values:
            return self._normalize_key(key), []
        ((k, first),) = self._prepare_update({key: values[0]}).items()
        return k, [first, *values[1:]]

    def _build_result(self, row: Any) -> Any:
        return row

    def _build_partial(self, row: dict[Any, Any]) -> Any:
        return row

    def _check_writable(self) -> None:
        if not self._writable:
            raise ReadOnlyError("Backend is read-only")

    def _keys_arg(self, keys: Any) -> list[Any]:
        if isinstance(keys, (str, bytes)):
            raise AsebytesTypeError("keys= must be a list of keys, not a single key")
        return [self._normalize_key(k) for k in keys]

    # ------------------------------------------------------------------ indices

    def _op_index(self, index: int) -> Op[int]:
        """``index`` as the backend takes it (normalised unless the backend does it)."""
        if self._neg:
            return index
        n = yield (LEN, ())
        return check_index(index, n)

    def _op_positions(self, indices: list[int]) -> Op[list[int]]:
        """Explicit row positions as the backend takes them."""
        if self._neg or not indices or isinstance(indices, InRange):
            return indices
        n = yield (LEN, ())
        return [check_index(i, n) for i in indices]

    def _op_absolute(self, indices: list[int]) -> Op[list[int]]:
        """Row positions with negatives resolved (for range-based backend calls)."""
        if all(i >= 0 for i in indices) and self._neg:
            return indices
        n = yield (LEN, ())
        return [check_index(i, n) for i in indices]

    # ------------------------------------------------------------------ reads

    def _op_len(self) -> Op[int]:
        n: int = yield (LEN, ())
        return n

    def _op_row(self, index: int) -> Op[Any]:
        """Row ``index`` as the facade returns it."""
        i = yield from self._op_index(index)
        if self._native_atoms:
            return (yield ("get_atoms", (i,)))
        return self._build_result((yield ("get", (i,))))

    def _op_rows(self, indices: list[int]) -> Op[list[Any]]:
        """Rows ``indices`` as the facade returns them (one backend call)."""
        indices = yield from self._op_positions(indices)
        if not indices:
            return []
        if self._native_atoms:
            atoms: list[Any] = yield ("get_atoms_many", (indices,))
            return atoms
        build = self._build_result
        return [build(row) for row in (yield ("get_many", (indices,)))]

    def _op_get(self, index: Any, keys: Sequence[Any] | None) -> Op[Any]:
        """``get(i, keys=)``: a requested key the row lacks is ``KeyError``."""
        i = int_index(index, "get()")
        if keys is None:
            return (yield from self._op_row(i))
        wanted = self._keys_arg(keys)
        pos = yield from self._op_index(i)
        if self._native_atoms:
            # The native store raises KeyError("Invalid keys at index i: [...]") itself.
            return (yield ("get_atoms", (pos, wanted)))
        row = yield ("get", (pos, wanted))
        return self._partial(index, wanted, row)

    def _partial(self, index: Any, wanted: list[Any], row: Any) -> Any:
        """The ``keys=`` selection of a row read with ``get(index, keys=wanted)``."""
        if row is None:
            return None
        missing = [k for k in wanted if k not in row]
        if missing:
            raise KeyNotFoundError(f"Invalid keys at index {index}: {missing}")
        return self._build_partial({k: row[k] for k in wanted})

    def _op_values_at(self, index: int, keys: list[Any]) -> Op[list[Any] | None]:
        """The raw values of ``keys`` in row ``index`` (``await adb[i]["key"]``); ``None``
        for a placeholder, ``KeyError`` for a key the row lacks."""
        pos = yield from self._op_index(index)
        row = yield ("get", (pos, keys))
        if row is None:
            return None
        missing = [k for k in keys if k not in row]
        if missing:
            raise KeyNotFoundError(f"Invalid keys at index {index}: {missing}")
        return [row[k] for k in keys]

    def _op_column(self, key: Any, indices: list[int] | None) -> Op[list[Any]]:
        """Single-key column (``None`` where a row lacks the key); a key that no real row
        has raises ``KeyError(key)``."""
        if indices is not None:
            indices = yield from self._op_positions(indices)
            if not indices:
                return []
        values: list[Any] = yield ("get_column", (key, indices))
        if values and all(v is None for v in values):
            # Either the key exists nowhere or every row is a placeholder/lacks it.
            where = list(range(len(values))) if indices is None else indices
            rows = yield ("get_many", (where, [key]))
            error = missing_everywhere([key], rows)
            if error is not None:
                raise error
        return values

    def _op_columns(
        self, keys: list[Any], indices: list[int]
    ) -> Op[list[dict[Any, Any] | None]]:
        """Rows with only ``keys`` (missing keys tolerated); ``KeyError`` for a key that no
        real row has."""
        indices = yield from self._op_positions(indices)
        if not indices:
            return []
        rows: list[dict[Any, Any] | None] = yield ("get_many", (indices, keys))
        error = missing_everywhere(keys, rows)
        if error is not None:
            raise error
        return rows

    def _op_partials(self, keys: list[Any], indices: list[int]) -> Op[list[Any]]:
        """ASEIO column views: Atoms from ``keys`` only, ``None`` for a row without any of
        them; a placeholder row is ``TypeError``, a key no row has ``KeyError``."""
        if self._native_atoms:
            indices = yield from self._op_positions(indices)
            if not indices:
                return []
            atoms: list[Any] = yield ("get_atoms_many", (indices, keys, True))
            return atoms
        out: list[Any] = []
        for row in (yield from self._op_columns(keys, indices)):
            if row is None:
                raise AsebytesTypeError(
                    "Cannot build ase.Atoms from a placeholder row."
                )
            out.append(self._build_partial(row) if row else None)
        return out

    def _op_numpy(self, key: Any, indices: list[int] | None) -> Op[np.ndarray]:
        """One packed array of a column (same shape and dtype in every row)."""
        if self._native_numpy:
            if indices is not None:
                indices = yield from self._op_positions(indices)
            array: np.ndarray = yield ("get_column_numpy", (key, indices))
            return array
        return stack_column(key, (yield from self._op_column(key, indices)))

    def _op_keys(self, index: Any) -> Op[list[Any]]:
        i = yield from self._op_index(int_index(index, "keys()"))
        keys: list[Any] = yield ("keys", (i,))
        return keys

    def _op_schema(self, index: Any) -> Op[dict[str, SchemaEntry]]:
        i = yield from self._op_index(
            0 if index is None else int_index(index, "schema()")
        )
        schema: dict[str, SchemaEntry] = yield ("schema", (i,))
        return schema

    # ------------------------------------------------------------------ writes

    def _op_set(self, index: Any, value: Any, *, view: bool = False) -> Op[None]:
        """``db[i] = row``; ``view`` for ``adb[i].set(row)`` (ASE also takes dicts).
        ``i == len`` appends; beyond is ``IndexError``."""
        i = int_index(index, "Item assignment")
        self._check_writable()
        row = self._prepare_view_row(value) if view else self._prepare_row(value)
        if self._neg:  # the backend appends at len itself, in its own transaction
            yield ("set", (i, row))
            return
        n = yield (LEN, ())
        if i == n:  # `db[len(db)] = row` appends (`io[0] = atoms` on a new file)
            yield ("extend", ([row],))
            return
        yield ("set", (check_index(i, n), row))

    def _op_delete(self, index: Any) -> Op[None]:
        self._check_writable()
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise AsebytesTypeError(
                    "del db[a:b:step] needs step 1; delete rows one by one otherwise"
                )
            n = yield (LEN, ())
            start, stop, _ = index.indices(n)
            if stop > start:
                yield ("delete_many", (start, stop))
            return
        pos = yield from self._op_index(int_index(index, "Item deletion"))
        yield ("delete", (pos,))

    def _op_insert(self, index: Any, value: Any) -> Op[None]:
        i = int_index(index, "insert()")
        self._check_writable()
        row = self._prepare_row(value)
        if not self._neg:  # list.insert clamps
            n = yield (LEN, ())
            i = min(max(i + n if i < 0 else i, 0), n)
        yield ("insert", (i, row))

    def _op_extend(
        self, values: Iterable[Any], progress: bool | None = None
    ) -> Op[int]:
        self._check_writable()
        prepare = self._prepare_row
        rows = [prepare(v) for v in track(values, desc="extend", progress=progress)]
        new_len: int = yield ("extend", (rows,))
        return new_len

    def _op_update(self, index: Any, data: Any) -> Op[None]:
        i = int_index(index, "update()")
        self._check_writable()
        partial = self._prepare_update(data)
        pos = yield from self._op_index(i)
        if partial:
            yield ("update", (pos, partial))

    def _op_drop(self, keys: Sequence[Any], indices: list[int] | None) -> Op[None]:
        self._check_writable()
        wanted = self._keys_arg(keys)
        if indices is not None:
            indices = yield from self._op_positions(indices)
            if not indices:
                return
        yield ("drop_keys", (wanted, indices))

    def _op_reserve(self, count: Any) -> Op[None]:
        self._check_writable()
        n = int_index(count, "reserve()")
        if n < 0:
            raise AsebytesValueError(f"reserve({n}): the count must be >= 0")
        yield ("reserve", (n,))

    def _op_clear(self) -> Op[None]:
        self._check_writable()
        yield ("clear", ())

    def _op_remove(self) -> Op[None]:
        self._check_writable()
        yield ("remove", ())

    # ------------------------------------------------------------------ view write-back

    def _op_set_rows(self, indices: list[int], values: Any) -> Op[None]:
        """``view.set(rows)``: one row per index, one backend call."""
        self._check_writable()
        if not isinstance(values, list):
            raise AsebytesTypeError(
                f"set() needs a list of rows, got {type(values).__name__}"
            )
        if len(values) != len(indices):
            raise AsebytesValueError(
                f"Length mismatch: the view has {len(indices)} rows, got {len(values)} values"
            )
        for value in values:
            if isinstance(value, (list, tuple)):
                raise AsebytesValueError(
                    "set() takes one row (a dict) per index, got a list; to write values of "
                    "one key use a column view: db['key'][a:b].set(values)"
                )
        rows = [self._prepare_view_row(v) for v in values]
        if not indices:
            return
        indices = yield from self._op_positions(indices)
        yield ("set_rows", (indices, rows))

    def _op_update_rows(self, indices: list[int], data: Any) -> Op[None]:
        """``view.update(dict)``: merge ``data`` into every row, one backend call."""
        self._check_writable()
        if not isinstance(data, Mapping):
            raise AsebytesTypeError(f"update() needs a dict, got {type(data).__name__}")
        partial = self._prepare_update(data)
        if not indices or not partial:
            return
        indices = yield from self._op_positions(indices)
        yield ("update_rows", (indices, [partial] * len(indices)))

    def _op_delete_rows(self, indices: list[int]) -> Op[None]:
        """``view.delete()``: the rows must form one contiguous block."""
        self._check_writable()
        if not indices:
            return
        absolute = sorted((yield from self._op_absolute(indices)))
        start = contiguous_start(absolute)
        if start is None:
            raise AsebytesTypeError(
                "delete() requires contiguous indices (a slice with step 1 or a list "
                "such as [3, 4, 5]); delete other selections row by row, from the end"
            )
        yield ("delete_many", (start, start + len(absolute)))

    def _op_set_column(
        self, keys: list[Any], single: bool, indices: list[int], values: Any
    ) -> Op[None]:
        """``column_view.set(values)``: one value (single key) or one list of values in key
        order (several keys) per row, one backend call."""
        self._check_writable()
        if not isinstance(values, list):
            raise AsebytesTypeError(
                f"set() needs a list of values, got {type(values).__name__}"
            )
        if len(values) != len(indices):
            raise AsebytesValueError(
                f"Length mismatch: the view has {len(indices)} rows, got {len(values)} values"
            )
        if single:
            key, checked = self._prepare_column_values(keys[0], values)
            if indices:
                indices = yield from self._op_positions(indices)
                yield ("set_column_rows", (key, indices, checked))
            return
        data = []
        for row in values:
            if not isinstance(row, (list, tuple)):
                raise AsebytesTypeError(
                    f"set() on a column view of {len(keys)} keys needs one list of "
                    f"{len(keys)} values per row, got {type(row).__name__}"
                )
            if len(row) != len(keys):
                raise AsebytesValueError(
                    f"Length mismatch: {len(keys)} keys but a row of {len(row)} values"
                )
            data.append(self._prepare_update(dict(zip(keys, row, strict=True))))
        if indices:
            indices = yield from self._op_positions(indices)
            yield ("update_rows", (indices, data))


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


def stack_column(key: Any, values: list[Any]) -> np.ndarray:
    """``values`` of column ``key`` packed into one array, or ``ValueError`` saying why not
    (used for backends without a native ``get_column_numpy``)."""
    for row, v in enumerate(values):
        if v is None:
            raise AsebytesValueError(
                f"Column {key!r} has no value at row {row} (placeholder row or a row "
                "without the key); to_numpy() needs a value in every row -- use to_list()"
            )
    if not values:
        return np.empty((0,))
    arrays = [np.asarray(v) for v in values]
    first = arrays[0]
    for row, a in enumerate(arrays):
        if a.shape != first.shape:
            raise AsebytesValueError(
                f"Column {key!r} is ragged: row 0 has shape {first.shape} but row {row} has "
                f"shape {a.shape}; to_numpy() needs one shape and dtype -- use to_list() "
                "for per-frame arrays"
            )
        if a.dtype != first.dtype:
            raise AsebytesValueError(
                f"Column {key!r} mixes dtypes: row 0 is {first.dtype} but row {row} is "
                f"{a.dtype}; to_numpy() needs one shape and dtype -- use to_list()"
            )
    if first.dtype == object:
        raise AsebytesValueError(
            f"Column {key!r} holds values numpy cannot pack ({type(values[0]).__name__}); "
            "use to_list()"
        )
    return np.stack(arrays)
