"""Index normalisation shared by the facades and the views (pure functions, no I/O).

An index given to ``db[...]`` or to a view is classified once by :func:`parse_index` into
one of three shapes:

* :class:`IntIndex` -- a single row. Negative values are passed on untouched: the daemon
  normalises them inside the operation's own transaction, so no length is read here.
* :class:`RowSelector` -- a slice, a list of row positions or a boolean mask. It is applied
  lazily by :func:`select` to whatever the view currently covers; only slices and masks
  over the whole store need the store's length.
* :class:`ColumnSelector` -- one key (``str``) or several keys (list of ``str``).

Anything else is a ``TypeError`` naming the type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import AsebytesTypeError, IndexOutOfRangeError

__all__ = [
    "ColumnSelector",
    "IntIndex",
    "ParsedIndex",
    "RowSelector",
    "as_int",
    "check_index",
    "parse_index",
    "select",
]


@dataclass(frozen=True, slots=True)
class IntIndex:
    """One row position as the caller gave it (may be negative)."""

    value: int


@dataclass(frozen=True, slots=True)
class RowSelector:
    """A multi-row selection: exactly one of ``slice_``, ``positions`` or ``mask`` is set."""

    slice_: slice | None = None
    positions: tuple[int, ...] | None = None
    mask: tuple[bool, ...] | None = None


@dataclass(frozen=True, slots=True)
class ColumnSelector:
    """Column access: ``single`` is true for ``db["key"]``, false for ``db[["a", "b"]]``."""

    keys: tuple[Any, ...]
    single: bool


ParsedIndex = IntIndex | RowSelector | ColumnSelector


def as_int(index: object) -> int | None:
    """``index`` as a Python ``int`` if it is an integer scalar (``bool`` counts, as in
    ``list``), else ``None``."""
    if isinstance(index, int):
        return int(index)
    if isinstance(index, np.integer):
        return int(index)
    return None


def _unsupported(index: object, detail: str = "") -> AsebytesTypeError:
    suffix = f" ({detail})" if detail else ""
    return AsebytesTypeError(
        f"Unsupported index type: {type(index)}{suffix}. Use an int, a slice, a list or "
        "array of ints, a boolean mask, a str key or a list of str keys."
    )


def _is_key(item: object, key_types: tuple[type, ...]) -> bool:
    return isinstance(item, key_types)


def parse_index(index: object, *, key_types: tuple[type, ...] = (str,)) -> ParsedIndex:
    """Classify ``index``; ``key_types`` are the types accepted as column keys.

    Raises ``TypeError("Unsupported index type: <class ...>")`` for anything else.
    """
    scalar = as_int(index)
    if scalar is not None:
        return IntIndex(scalar)
    if isinstance(index, slice):
        return RowSelector(slice_=index)
    if _is_key(index, key_types):
        return ColumnSelector(keys=(index,), single=True)
    if isinstance(index, np.ndarray):
        return _parse_array(index, key_types)
    if isinstance(index, range):
        return RowSelector(positions=tuple(index))
    if isinstance(index, (list, tuple)):
        return _parse_sequence(index, key_types)
    raise _unsupported(index)


def _parse_array(index: np.ndarray, key_types: tuple[type, ...]) -> ParsedIndex:
    if index.ndim == 0:
        if index.dtype.kind in "iu":
            return IntIndex(int(index))
        raise _unsupported(index, f"0-d array of dtype {index.dtype}")
    if index.ndim != 1:
        raise _unsupported(index, f"{index.ndim}-d array; use a 1-d array")
    kind = index.dtype.kind
    if kind == "b":
        return RowSelector(mask=tuple(bool(v) for v in index.tolist()))
    if index.size == 0:
        return RowSelector(positions=())
    if kind in "iu":
        return RowSelector(positions=tuple(int(v) for v in index.tolist()))
    if kind in "US":
        return _parse_sequence(index.tolist(), key_types)
    raise _unsupported(index, f"array of dtype {index.dtype}")


def _parse_sequence(index: Sequence[Any], key_types: tuple[type, ...]) -> ParsedIndex:
    if len(index) == 0:
        return RowSelector(positions=())
    if all(isinstance(v, (bool, np.bool_)) for v in index):
        return RowSelector(mask=tuple(bool(v) for v in index))
    if all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
        for v in index
    ):
        return RowSelector(positions=tuple(int(v) for v in index))
    if all(_is_key(v, key_types) for v in index):
        return ColumnSelector(keys=tuple(index), single=False)
    kinds = sorted({type(v).__name__ for v in index})
    raise _unsupported(
        index, f"elements must be all int, all bool or all keys; got {', '.join(kinds)}"
    )


def check_index(index: int, n: int) -> int:
    """``index`` normalised against ``n`` rows, or ``IndexError("Index i out of range [0, n)")``."""
    pos = index + n if index < 0 else index
    if pos < 0 or pos >= n:
        raise IndexOutOfRangeError(f"Index {index} out of range [0, {n})")
    return pos


def select(
    current: list[int] | None, selector: RowSelector, length: Callable[[], int]
) -> list[int]:
    """Apply ``selector`` to the rows a view covers.

    ``current`` is the list of row positions the view covers, or ``None`` for "every row of
    the store", in which case ``length`` is called (once) only when the selector needs it:
    slices and masks do, explicit positions do not (the daemon normalises negatives and
    bounds-checks them against the length it sees in the same snapshot).
    """
    if current is None:
        if selector.positions is not None:
            return list(selector.positions)
        n = length()
        if selector.slice_ is not None:
            return list(range(n)[selector.slice_])
        assert selector.mask is not None
        return _apply_mask(list(range(n)), selector.mask)
    if selector.slice_ is not None:
        return current[selector.slice_]
    if selector.mask is not None:
        return _apply_mask(current, selector.mask)
    assert selector.positions is not None
    n = len(current)
    return [current[check_index(p, n)] for p in selector.positions]


def _apply_mask(current: list[int], mask: tuple[bool, ...]) -> list[int]:
    if len(mask) != len(current):
        raise IndexOutOfRangeError(
            f"Boolean mask of length {len(mask)} does not match the {len(current)} rows it "
            "selects from; a mask needs exactly one entry per row."
        )
    return [i for i, keep in zip(current, mask, strict=True) if keep]
