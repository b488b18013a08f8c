"""The synchronous facades ``BlobIO``, ``ObjectIO`` and ``ASEIO``.

A facade is a ``MutableSequence`` over one store. With a location string the store is a
daemon-backed native ``Store`` (see :mod:`asebytes._registry`); any object with the same
methods (a "Store-like", :class:`StoreLike`) is accepted instead. The facades are thin:
single-row operations are one request each and pass the index through untouched (the
daemon normalises negative indices and bounds-checks inside the operation's own
transaction); multi-row reads go through the lazy views in :mod:`asebytes._views`;
iteration reads ``ITER_CHUNK`` rows per request. Input is validated and converted before
anything is sent, so bad input never leaves a partial write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, MutableSequence, Sequence
from types import TracebackType
from typing import (
    Any,
    ClassVar,
    Generic,
    Protocol,
    Self,
    TypeVar,
    overload,
    runtime_checkable,
)

import ase
import numpy as np

from . import _registry
from ._convert import _atoms_to_dict, dict_to_atoms, validate_update_keys
from ._index import ColumnSelector, IntIndex, RowSelector, parse_index
from ._schema import SchemaEntry, infer_schema
from ._views import (
    ITER_CHUNK,
    ASEColumnView,
    ColumnView,
    RowView,
    _Rows,
    missing_everywhere,
)
from .exceptions import (
    AsebytesTypeError,
    KeyNotFoundError,
    ReadOnlyError,
    UnsupportedOperationError,
)

__all__ = ["ASEIO", "BlobIO", "ObjectIO", "StoreLike"]

R = TypeVar("R")
F = TypeVar("F", bound="_Facade[Any]")

#: A row index: a Python int or any numpy integer (negatives count from the end).
Index = int | np.integer[Any]


@runtime_checkable
class StoreLike(Protocol):
    """The store interface the facades use (the native ``asebytes._native.Store`` has it).

    Indices may be negative (count from the end); out of range raises ``IndexError``.
    A store may also offer ``get_atoms``/``get_atoms_many`` (as the native one does);
    ``ASEIO`` then reads ``Atoms`` through them instead of building them from the rows.
    """

    def __len__(self) -> int: ...
    def get(
        self, index: int, keys: Sequence[Any] | None = None
    ) -> dict[Any, Any] | None: ...
    def get_many(
        self,
        indices: Sequence[int],
        keys: Sequence[Any] | None = None,
        missing_ok: bool = False,
    ) -> list[dict[Any, Any] | None]: ...
    def get_column(
        self, key: Any, indices: Sequence[int] | None = None
    ) -> list[Any]: ...
    def keys(self, index: int) -> list[Any]: ...
    def extend(self, rows: Sequence[dict[Any, Any] | None]) -> int: ...
    def insert(self, index: int, row: dict[Any, Any] | None) -> int: ...
    def set(self, index: int, row: dict[Any, Any] | None) -> None: ...
    def update(self, index: int, data: dict[Any, Any]) -> None: ...
    def delete(self, index: int) -> int: ...
    def delete_range(self, start: int, stop: int) -> int: ...
    def drop_keys(
        self, keys: Sequence[Any], indices: Sequence[int] | None = None
    ) -> None: ...
    def reserve(self, n: int) -> int: ...
    def clear(self) -> None: ...
    def remove(self) -> None: ...


def _int_index(index: object, what: str) -> int:
    parsed = parse_index(index)
    if not isinstance(parsed, IntIndex):
        raise AsebytesTypeError(f"{what} needs an int index, got {type(index)}")
    return parsed.value


class _Facade(MutableSequence[R], Generic[R]):
    """Behaviour shared by the three facades; subclasses set the tier and row conversion."""

    _tier: ClassVar[str] = "object"
    _key_types: ClassVar[tuple[type, ...]] = (str,)
    _column_view_cls: ClassVar[type[ColumnView]] = ColumnView
    _close_on_exit: ClassVar[bool] = True

    def __init__(
        self,
        backend: str | os.PathLike[str] | StoreLike,
        *,
        readonly: bool | None = None,
        group: str | None = None,
        map_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(backend, (str, os.PathLike)):
            self._store: Any = _registry.open_store(
                os.fspath(backend),
                tier=self._tier,
                readonly=readonly,
                group=group,
                map_size=map_size,
                **kwargs,
            )
        else:
            if group is not None or map_size is not None or kwargs:
                raise AsebytesTypeError(
                    "group=, map_size= and backend keyword arguments apply only when the "
                    "backend is given as a location string; configure the backend instance "
                    "instead"
                )
            self._store = backend

    # ------------------------------------------------------------------ helpers

    def _check_writable(self) -> None:
        if getattr(self._store, "readonly", False):
            raise ReadOnlyError("Backend is read-only")

    def _normalize_key(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise AsebytesTypeError(
                f"Keys of {type(self).__name__} are str, got {key!r}"
            )
        return key

    def _prepare_row(self, row: Any) -> dict[Any, Any] | None:
        raise NotImplementedError

    def _build_result(self, row: Any) -> Any:
        return row

    def _build_partial(self, row: dict[Any, Any]) -> Any:
        return row

    # ------------------------------------------------------------------ view support

    def _read_result(self, index: int) -> Any:
        """Row ``index`` as the facade returns it (one request)."""
        return self._build_result(self._store.get(index))

    def _read_results(self, indices: list[int]) -> list[Any]:
        """Rows ``indices`` as the facade returns them (one request)."""
        build = self._build_result
        return [build(row) for row in self._store.get_many(indices)]

    def _read_partial(self, i: int, keys: list[Any], index: Any) -> Any:
        """Row ``i`` with only ``keys`` (all required), built by ``_build_partial``."""
        row = self._store.get(i, keys)
        if row is None:
            return None
        missing = [k for k in keys if k not in row]
        if missing:
            raise KeyNotFoundError(f"Invalid keys at index {index}: {missing}")
        return self._build_partial(row)

    def _read_partials(self, keys: list[Any], indices: list[int]) -> list[Any]:
        """Rows with only ``keys`` (ASEIO column views): each built by ``_build_partial``,
        ``None`` for a row that has none of the keys; a placeholder row raises
        ``TypeError``, a key that no row has ``KeyError``."""
        out: list[Any] = []
        for row in self._read_columns(keys, indices):
            if row is None:
                raise AsebytesTypeError(
                    "Cannot build ase.Atoms from a placeholder row."
                )
            out.append(self._build_partial(row) if row else None)
        return out

    def _read_column(self, key: Any, indices: list[int] | None) -> list[Any]:
        values: list[Any] = self._store.get_column(key, indices)
        return values

    def _read_columns(
        self, keys: list[Any], indices: list[int]
    ) -> list[dict[Any, Any] | None]:
        rows: list[dict[Any, Any] | None] = self._store.get_many(
            indices, keys, missing_ok=True
        )
        error = missing_everywhere(keys, rows)
        if error is not None:
            raise error
        return rows

    # ------------------------------------------------------------------ reads

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        """Groups stored at ``path``."""
        return _registry.list_groups(os.fspath(path), **kwargs)

    def __len__(self) -> int:
        return len(self._store)

    @overload  # type: ignore[override]
    def __getitem__(self, index: Index) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> RowView[R]: ...
    @overload
    def __getitem__(self, index: list[int] | np.ndarray) -> RowView[R]: ...
    @overload
    def __getitem__(self, index: str | list[str]) -> ColumnView: ...

    def __getitem__(self, index: Any) -> Any:
        if type(index) is int:  # the hot path of `db[i]` loops; same result as below
            return self._read_result(index)
        parsed = parse_index(index, key_types=self._key_types)
        if isinstance(parsed, IntIndex):
            return self._read_result(parsed.value)
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
        i = _int_index(index, "get()")
        if keys is None:
            return self._read_result(i)
        if isinstance(keys, (str, bytes)):
            raise AsebytesTypeError("keys= must be a list of keys, not a single key")
        return self._read_partial(i, [self._normalize_key(k) for k in keys], index)

    def keys(self, index: Index) -> list[Any]:
        """The keys of row ``index`` (``[]`` for a placeholder)."""
        keys: list[Any] = self._store.keys(_int_index(index, "keys()"))
        return keys

    def __iter__(self) -> Iterator[R]:
        return self._iter_range(range(len(self)))

    def __reversed__(self) -> Iterator[R]:
        return self._iter_range(range(len(self) - 1, -1, -1))

    def _iter_range(self, indices: range) -> Iterator[R]:
        for start in range(0, len(indices), ITER_CHUNK):
            yield from self._read_results(list(indices[start : start + ITER_CHUNK]))

    # ------------------------------------------------------------------ writes

    def __setitem__(self, index: Any, value: Any) -> None:
        i = _int_index(index, "Item assignment")
        self._check_writable()
        self._store.set(i, self._prepare_row(value))

    def __delitem__(self, index: Any) -> None:
        self._check_writable()
        if isinstance(index, slice) and index.step in (None, 1):
            start, stop, _ = index.indices(len(self))
            if stop > start:
                self._store.delete_range(start, stop)
            return
        self._store.delete(_int_index(index, "Item deletion"))

    def insert(self, index: Index, value: Any) -> None:
        """Insert ``value`` before ``index`` (clamped like ``list.insert``)."""
        i = _int_index(index, "insert()")
        self._check_writable()
        self._store.insert(i, self._prepare_row(value))

    def append(self, value: Any) -> None:
        """Append one row (one atomic request; never a read-then-insert race)."""
        self.extend([value])

    def extend(self, values: Iterable[Any]) -> int:  # type: ignore[override]
        """Append rows atomically (all or none) and return the new length."""
        self._check_writable()
        rows = [self._prepare_row(v) for v in values]
        new_len: int = self._store.extend(rows)
        return new_len

    def __iadd__(self, values: Iterable[Any]) -> Self:
        self.extend(values)
        return self

    def update(self, index: Index, data: Mapping[Any, Any]) -> None:
        """Merge ``data`` into row ``index`` (a placeholder becomes a real row)."""
        i = _int_index(index, "update()")
        self._check_writable()
        if not isinstance(data, Mapping):
            raise AsebytesTypeError(f"update() needs a dict, got {type(data)}")
        self._store.update(i, {self._normalize_key(k): v for k, v in data.items()})

    def drop(self, *, keys: Sequence[Any]) -> None:
        """Remove ``keys`` from every row."""
        self._check_writable()
        if isinstance(keys, (str, bytes)):
            raise AsebytesTypeError("keys= must be a list of keys, not a single key")
        self._store.drop_keys([self._normalize_key(k) for k in keys], None)

    def reserve(self, count: Index) -> None:
        """Append ``count`` placeholder rows."""
        self._check_writable()
        self._store.reserve(_int_index(count, "reserve()"))

    def clear(self) -> None:
        """Remove every row, keep the container."""
        self._check_writable()
        self._store.clear()

    def remove(self) -> None:  # type: ignore[override]
        """Remove the container itself (shadows ``MutableSequence.remove(value)``, as in the
        reference)."""
        self._check_writable()
        self._store.remove()

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
            close = getattr(self._store, "close", None)
            if close is not None:
                close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self._store!r})"


class _SchemaMixin:
    _store: Any

    def schema(self, index: Index | None = None) -> dict[str, SchemaEntry]:
        """``{key: SchemaEntry(dtype, shape)}`` of row ``index`` (default 0; negatives count
        from the end; a placeholder gives ``{}``)."""
        i = 0 if index is None else _int_index(index, "schema()")
        row = self._store.get(i)
        return {} if row is None else infer_schema(row)


class ObjectIO(_SchemaMixin, _Facade[dict[str, Any]]):
    """A mutable sequence of ``dict[str, Any]`` rows (numpy arrays, scalars, str, lists,
    nested dicts); ``None`` is a placeholder row."""

    _tier = "object"

    def _prepare_row(self, row: Any) -> dict[str, Any] | None:
        if row is None:
            return None
        if not isinstance(row, Mapping):
            raise AsebytesTypeError(
                f"ObjectIO rows must be dict[str, Any] or None, got {type(row)}"
            )
        out = {}
        for key, value in row.items():
            if not isinstance(key, str):
                raise AsebytesTypeError(f"ObjectIO row keys must be str, got {key!r}")
            out[key] = value
        return out or None


class BlobIO(_Facade[dict[bytes, bytes]]):
    """A mutable sequence of ``dict[bytes, bytes]`` rows stored as given; ``None`` is a
    placeholder row. Column keys may be ``bytes`` or ``str`` (UTF-8 encoded)."""

    _tier = "blob"
    _key_types = (str, bytes)

    def _normalize_key(self, key: Any) -> Any:
        if isinstance(key, str):
            return key.encode("utf-8")
        if isinstance(key, bytes):
            return key
        raise AsebytesTypeError(f"Keys of BlobIO are bytes (or str), got {key!r}")

    def _prepare_row(self, row: Any) -> dict[bytes, bytes] | None:
        if row is None:
            return None
        if not isinstance(row, Mapping):
            raise AsebytesTypeError(
                f"BlobIO rows must be dict[bytes, bytes] or None, got {type(row)}"
            )
        out = {}
        for key, value in row.items():
            if not isinstance(key, bytes):
                raise AsebytesTypeError(f"BlobIO row keys must be bytes, got {key!r}")
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise AsebytesTypeError(
                    f"BlobIO values must be bytes, got {type(value)} for key {key!r}"
                )
            out[key] = bytes(value)
        return out or None

    def update(self, index: Index, data: Mapping[Any, Any]) -> None:
        """Merge ``data`` (``dict[bytes, bytes]``) into row ``index``."""
        if isinstance(data, Mapping):
            self._prepare_row(data)
        super().update(index, data)


class ASEIO(_SchemaMixin, _Facade[ase.Atoms]):
    """A mutable sequence of ``ase.Atoms`` (``None`` is a placeholder row).

    Stored with the key convention of :func:`asebytes.atoms_to_dict`; read back as
    :func:`asebytes.dict_to_atoms` builds them (fast, calculator-correct). On the native
    store the Atoms are built in Rust straight from the reply (``Store.get_atoms`` and
    ``get_atoms_many``); on any other Store-like from the row dicts. Column views
    (``db["calc.energy"]``) yield Atoms built from the requested keys only.
    """

    _tier = "object"
    _column_view_cls = ASEColumnView
    _close_on_exit = False  # the reference's ASEIO leaves the backend open on exit

    def __init__(
        self,
        backend: str | os.PathLike[str] | StoreLike,
        *,
        readonly: bool | None = None,
        cache_to: object = None,
        group: str | None = None,
        map_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        if cache_to is not None:
            raise UnsupportedOperationError(
                "ASEIO(cache_to=...) is not available in this build yet; every process "
                "already shares one store through the daemon"
            )
        super().__init__(
            backend, readonly=readonly, group=group, map_size=map_size, **kwargs
        )

    def _prepare_row(self, row: Any) -> dict[str, Any] | None:
        if row is None:
            return None
        return _atoms_to_dict(row, copy=False)

    def _build_result(self, row: Any) -> ase.Atoms | None:
        if row is None:
            return None
        return dict_to_atoms(row, copy=False)

    def _build_partial(self, row: dict[Any, Any]) -> ase.Atoms:
        return dict_to_atoms(row, copy=False)

    # The native store builds the Atoms itself (same result as dict_to_atoms(row,
    # copy=False) on its rows); other Store-likes go through the row dicts.

    def _read_result(self, index: int) -> ase.Atoms | None:
        get_atoms = getattr(self._store, "get_atoms", None)
        if get_atoms is None:
            return super()._read_result(index)
        atoms: ase.Atoms | None = get_atoms(index)
        return atoms

    def _read_results(self, indices: list[int]) -> list[ase.Atoms | None]:
        get_atoms_many = getattr(self._store, "get_atoms_many", None)
        if get_atoms_many is None:
            return super()._read_results(indices)
        atoms: list[ase.Atoms | None] = get_atoms_many(indices)
        return atoms

    def _read_partial(self, i: int, keys: list[Any], index: Any) -> ase.Atoms | None:
        get_atoms = getattr(self._store, "get_atoms", None)
        if get_atoms is None:
            return super()._read_partial(i, keys, index)
        # The native store raises KeyError("Invalid keys at index i: [...]") itself.
        atoms: ase.Atoms | None = get_atoms(i, keys)
        return atoms

    def _read_partials(
        self, keys: list[Any], indices: list[int]
    ) -> list[ase.Atoms | None]:
        get_atoms_many = getattr(self._store, "get_atoms_many", None)
        if get_atoms_many is None:
            return super()._read_partials(keys, indices)
        # missing_ok=True applies the column-view rules of _Facade._read_partials natively.
        atoms: list[ase.Atoms | None] = get_atoms_many(indices, keys, missing_ok=True)
        return atoms

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
        self._check_writable()
        flat: dict[str, Any] = {}
        if data is not None:
            if not isinstance(data, Mapping):
                raise AsebytesTypeError(f"update() needs a dict, got {type(data)}")
            flat.update(data)
        for prefix, part in (("info", info), ("arrays", arrays), ("calc", calc)):
            if part:
                flat.update({f"{prefix}.{k}": v for k, v in part.items()})
        if not flat:
            return
        validate_update_keys(flat)
        super().update(index, flat)
