"""Columnar stores (Zarr v3 and HDF5) served by the daemon, under the class names users
of ``asebytes`` have: ``ZarrBackend`` (its README) and 0.3.3's ``ColumnarBackend``,
``RaggedColumnarBackend``, ``PaddedColumnarBackend``, ``BaseColumnarBackend``.

The file extension picks the engine (``.zarr``/``.zarrp`` Zarr, ``.h5``/``.h5p`` HDF5)
and, for the generic classes, the layout (``p`` = padded); ``RaggedColumnarBackend`` and
``PaddedColumnarBackend`` force their layout whatever the extension, as in the
reference. The keywords are the reference's: Zarr ``compressor``, ``clevel``,
``shuffle``; HDF5 ``compression``, ``compression_opts``; both ``chunk_frames``. A keyword
the engine does not take is refused by the daemon, which lists what it accepts.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from . import _native
from ._stores import DaemonBackend, _tiered
from .exceptions import AsebytesTypeError, AsebytesValueError

__all__ = [
    "BaseColumnarBackend",
    "ColumnarBackend",
    "PaddedColumnarBackend",
    "RaggedColumnarBackend",
    "ZarrBackend",
]

#: Extension -> (engine scheme, padded by default); the daemon's padded schemes add ``p``.
_EXTENSIONS: dict[str, tuple[str, bool]] = {
    ".zarr": ("zarr", False),
    ".zarrp": ("zarr", True),
    ".h5": ("hdf5", False),
    ".h5p": ("hdf5", True),
}


#: Marks "keyword not given" where ``None`` has a meaning of its own.
_DEFAULT: Any = object()


def _location(file: str, engine: str | None, padded: bool | None) -> str:
    """``<scheme>:///abs/path`` for the daemon: scheme = engine, plus ``p`` if padded."""
    if "://" in file:
        return file  # already a daemon location (a pickled handle re-opening)
    path = os.path.abspath(file)
    ext = os.path.splitext(path)[1].lower()
    found = _EXTENSIONS.get(ext)
    if engine is None:
        if found is None:
            raise AsebytesValueError(
                f"cannot tell the columnar engine of {file!r} from its extension; use "
                f"one of {', '.join(_EXTENSIONS)}"
            )
        engine = found[0]
    if padded is None:
        padded = found[1] if found is not None else False
    return f"{engine}{'p' if padded else ''}://{path}"


class BaseColumnarBackend(DaemonBackend):
    """A columnar store of ``dict[str, Any]`` rows (one array per key), served by the
    daemon: ``(file, group=None, readonly=False, **engine keywords)``."""

    _tier: ClassVar[str] = "object"
    #: Forced layout (``None``: from the extension).
    _padded: ClassVar[bool | None] = None
    #: Forced engine (``None``: from the extension).
    _engine: ClassVar[str | None] = None

    def __new__(
        cls,
        file: str | os.PathLike[str] | None = None,
        group: str | None = None,
        readonly: bool = False,
        *,
        compressor: str | None = None,
        clevel: int | None = None,
        shuffle: bool | None = None,
        chunk_frames: int | None = None,
        compression: str | bool | None | object = _DEFAULT,
        compression_opts: int | None = None,
        store: Any = None,
        file_handle: Any = None,
        file_factory: Any = None,
        map_size: int | None = None,
        options: dict[str, Any] | None = None,
        tier: str | None = None,
    ) -> Any:
        if store is not None or file_handle is not None or file_factory is not None:
            raise AsebytesTypeError(
                "store=, file_handle= and file_factory= are not supported: the daemon opens "
                "the file itself so that every process shares it; pass its path"
            )
        if file is None:
            raise AsebytesTypeError(f"{cls.__name__}() needs the path of the store")
        if compression is None:
            compression = False  # h5py and the reference: None means no compression
        elif compression is _DEFAULT:
            compression = None
        given = {
            "compressor": compressor,
            "clevel": clevel,
            "shuffle": shuffle,
            "chunk_frames": chunk_frames,
            "compression": compression,
            "compression_opts": compression_opts,
            **(options or {}),
        }
        opts = {k: v for k, v in given.items() if v is not None}
        return _native.Store.__new__(  # type: ignore[call-arg]
            cls,
            _location(os.fspath(file), cls._engine, cls._padded),
            group=group,
            readonly=readonly,
            map_size=map_size,
            options=opts or None,
            tier=_tiered(cls, tier),
        )


class RaggedColumnarBackend(BaseColumnarBackend):
    """Per-atom columns stored flat with ``_offsets``/``_lengths`` (the ``.zarr``/``.h5``
    layout), whatever the extension."""

    _padded = False


#: 0.3.3's name for the ragged layout.
ColumnarBackend = RaggedColumnarBackend


class PaddedColumnarBackend(BaseColumnarBackend):
    """Per-atom columns padded to the largest frame with ``_n_atoms`` (the
    ``.zarrp``/``.h5p`` layout), whatever the extension."""

    _padded = True


class ZarrBackend(BaseColumnarBackend):
    """A Zarr v3 store (``ZarrBackend("t.zarr", compressor="zstd", clevel=9)``); ragged
    unless the path ends in ``.zarrp``."""

    _engine = "zarr"
