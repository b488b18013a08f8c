"""Copy every row of one location into another (``asebytes convert``), safe to interrupt.

Rows travel as object rows (``dict[str, Any]``, placeholders as ``None``), so every key and
value type is kept, whatever the tier the data was written with. The copy goes in batches,
each one atomic ``extend`` of the destination, so an interrupted copy leaves a whole number
of batches: the destination is then a prefix of the source, and running the same command
again resumes after it. A destination that already holds rows that are *not* such a prefix
is refused unless ``append=True`` says to add the source after them.

Sources are any location the registry serves, plus files ASE reads (``*.xyz``,
``*.extxyz``, ``*.traj``, ...) while the daemon does not serve them: those are read in this
process with ``ase.io.iread``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._convert import atoms_to_dict
from ._io import ObjectIO
from ._progress import bar
from .exceptions import AsebytesValueError

__all__ = [
    "ASE_FILE_SUFFIXES",
    "Source",
    "TransferResult",
    "ase_file",
    "convert",
    "open_source",
]

#: Files read through ``ase.io`` when the daemon serves no backend for them.
ASE_FILE_SUFFIXES = (
    ".xyz",
    ".extxyz",
    ".traj",
    ".db",
    ".json",
    ".cif",
    ".pdb",
    ".vasp",
)

#: Rows compared when checking that a destination is a prefix of the source.
_PREFIX_SAMPLES = 5


@dataclass
class Source:
    """Rows to copy: their count (``None`` when unknown without reading everything), a
    reader of ``[start, stop)`` and an iterator from a position."""

    label: str
    length: int | None
    read: Callable[[int, int], list[dict[str, Any] | None]]
    iterate: Callable[[int], Iterator[dict[str, Any] | None]]


def ase_file(path: str) -> bool:
    """``path`` is an existing file of a format ``ase.io`` reads (by its suffix)."""
    return path.lower().endswith(ASE_FILE_SUFFIXES) and os.path.exists(path)


def open_source(location: str, group: str | None = None) -> Source:
    """The rows at ``location`` (a store, opened read-only, or an ASE-readable file)."""
    try:
        db = ObjectIO(location, readonly=True, group=group)
    except (KeyError, NotImplementedError):
        if not ase_file(location):
            raise
        return _ase_source(location)
    n = len(db)

    def read(start: int, stop: int) -> list[dict[str, Any] | None]:
        rows: list[dict[str, Any] | None] = list(db[start:stop].to_list())
        return rows

    def iterate(start: int) -> Iterator[dict[str, Any] | None]:
        size = 256
        for begin in range(start, n, size):
            yield from read(begin, min(begin + size, n))

    return Source(location, n, read, iterate)


def _ase_source(path: str) -> Source:
    import ase.io

    def iterate(start: int) -> Iterator[dict[str, Any] | None]:
        for atoms in ase.io.iread(path, index=f"{start}:"):
            yield atoms_to_dict(atoms)

    def read(start: int, stop: int) -> list[dict[str, Any] | None]:
        frames = ase.io.read(path, index=f"{start}:{stop}")
        return [atoms_to_dict(a) for a in frames]

    return Source(path, None, read, iterate)


@dataclass
class TransferResult:
    """What a :func:`convert` did: rows copied now, rows the destination had before (a
    resumed or appended copy), and its length at the end."""

    copied: int
    skipped: int
    length: int
    resumed: bool


def same_value(a: Any, b: Any) -> bool:
    """Equality of stored values (numpy-aware, NaN equal to NaN, nested)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if (
        isinstance(a, float)
        and isinstance(b, float)
        and math.isnan(a)
        and math.isnan(b)
    ):
        return True
    return bool(type(a) is type(b) and a == b)


def is_prefix(dst: ObjectIO, src: Source, n_dst: int) -> bool:
    """Whether the ``n_dst`` rows of ``dst`` are the first rows of ``src`` (checked on a
    few rows spread over the destination, its first and last included)."""
    if src.length is not None and n_dst > src.length:
        return False
    picks = sorted(
        {round(j * (n_dst - 1) / (_PREFIX_SAMPLES - 1)) for j in range(_PREFIX_SAMPLES)}
    )
    for i in picks:
        theirs = src.read(i, i + 1)
        if len(theirs) != 1:
            return False
        mine = dst[i]
        if (mine is None) != (theirs[0] is None):
            return False
        if mine is not None and not same_value(mine, theirs[0]):
            return False
    return True


def convert(
    src: str,
    dst: str,
    *,
    group: str | None = None,
    dst_group: str | None = None,
    append: bool = False,
    batch_size: int = 500,
    progress: bool | None = None,
) -> TransferResult:
    """Copy every row of ``src`` into ``dst`` in atomic batches of ``batch_size`` rows.

    An empty or new destination gets the whole source. A destination that is a prefix of
    the source (an interrupted copy) is resumed after its last row. Any other non-empty
    destination raises ``ValueError`` unless ``append=True`` (then the source goes after
    its rows). ``group`` is the source's group, ``dst_group`` the destination's (default:
    the same).
    """
    if batch_size < 1:
        raise AsebytesValueError(f"batch_size must be >= 1, got {batch_size}")
    source = open_source(src, group)
    target = ObjectIO(dst, group=dst_group if dst_group is not None else group)
    before = len(target)
    start, resumed = 0, False
    if before and not append:
        if not is_prefix(target, source, before):
            raise AsebytesValueError(
                f"destination {dst!r} already holds {before} rows that are not the start "
                f"of {src!r}; pass --append (append=True) to add the source after them, "
                "or choose a new destination"
            )
        start, resumed = before, True
    total = source.length
    copied = 0
    with bar(
        None if total is None else total + (before if append else 0),
        desc=f"convert {os.path.basename(src.rstrip('/')) or src}",
        initial=before,
        progress=progress,
    ) as b:
        batch: list[dict[str, Any] | None] = []
        for row in source.iterate(start):
            batch.append(row)
            if len(batch) >= batch_size:
                target.extend(batch, progress=False)
                copied += len(batch)
                b.update(len(batch))
                batch = []
        if batch:
            target.extend(batch, progress=False)
            copied += len(batch)
            b.update(len(batch))
    return TransferResult(copied, before, len(target), resumed)
