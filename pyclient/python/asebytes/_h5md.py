"""H5MD files (``*.h5md``, and ``*.h5`` files holding an ``h5md`` group) served by the
daemon under the reference's class name ``H5MDBackend``.

The file is the one znh5md, ZnDraw and MDAnalysis read: ``/particles/<group>/position``,
``/observables/<group>/potential_energy``, ... (``docs/backends/h5md.md``). The keywords
are the reference's: ``group`` (default: the first particles group of an existing file,
else ``"atoms"``), ``readonly``, ``compression``, ``compression_opts``, ``chunk_frames``,
``author_name``, ``author_email``. ``pbc_group``, ``variable_shape``, ``chunk_size`` and
``rdcc_nbytes`` are accepted and have no effect, as in the reference (per-frame pbc and
variable atom counts are always stored; chunking follows ``chunk_frames``).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from . import _native
from ._stores import DaemonBackend, _tiered
from .exceptions import AsebytesTypeError

__all__ = ["H5MDBackend"]

#: Marks "keyword not given" where ``None`` has a meaning of its own.
_DEFAULT: Any = object()


def _location(file: str) -> str:
    if "://" in file:
        return file  # already a daemon location (a pickled handle re-opening)
    return f"h5md://{os.path.abspath(file)}"


class H5MDBackend(DaemonBackend):
    """An H5MD store of ``dict[str, Any]`` rows, readable by znh5md:
    ``H5MDBackend("md.h5md", author_name="me", compression="gzip")``."""

    _tier: ClassVar[str] = "object"

    def __new__(
        cls,
        file: str | os.PathLike[str] | None = None,
        *,
        file_handle: Any = None,
        file_factory: Any = None,
        group: str | None = None,
        readonly: bool = False,
        compression: str | bool | None | object = _DEFAULT,
        compression_opts: int | None = None,
        chunk_frames: int | None = None,
        pbc_group: bool = True,
        author_name: str | None = None,
        author_email: str | None = None,
        rdcc_nbytes: int | None = None,
        variable_shape: bool = True,
        chunk_size: Any = None,
        options: dict[str, Any] | None = None,
        tier: str | None = None,
    ) -> Any:
        del (
            pbc_group,
            rdcc_nbytes,
            variable_shape,
            chunk_size,
        )  # no effect, as in the reference
        if file_handle is not None or file_factory is not None:
            raise AsebytesTypeError(
                "file_handle= and file_factory= are not supported: the daemon opens the file "
                "itself so that every process shares it; pass its path"
            )
        if file is None:
            raise AsebytesTypeError("H5MDBackend() needs the path of the file")
        if compression is None:
            compression = False  # h5py and the reference: None means no compression
        elif compression is _DEFAULT:
            compression = None
        given = {
            "compression": compression,
            "compression_opts": compression_opts,
            "chunk_frames": chunk_frames,
            "author_name": author_name,
            "author_email": author_email,
            **(options or {}),
        }
        opts = {k: v for k, v in given.items() if v is not None}
        return _native.Store.__new__(  # type: ignore[call-arg]
            cls,
            _location(os.fspath(file)),
            group=group,
            readonly=readonly,
            options=opts or None,
            tier=_tiered(cls, tier),
        )

    @staticmethod
    def list_groups(path: str | os.PathLike[str], **kwargs: Any) -> list[str]:
        """Particles groups of an H5MD file (``[]`` if it does not exist)."""
        if kwargs:
            raise AsebytesTypeError(
                f"Unexpected keyword argument(s) for list_groups: {', '.join(sorted(kwargs))}"
            )
        return _native.list_groups(_location(os.fspath(path)))
