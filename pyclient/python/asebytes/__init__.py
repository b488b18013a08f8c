"""asebytes: store ASE ``Atoms`` (and plain rows) so that many processes share one store.

The public API of the ``asebytes`` library, served by a per-user daemon (``asebytesd``)
that owns every open store; handles hold no file resources, pickle, and survive ``fork``.

>>> from asebytes import ASEIO
>>> db = ASEIO("data.lmdb")            # doctest: +SKIP
>>> db.extend(frames)                   # doctest: +SKIP
>>> energies = db["calc.energy"][0:100].to_list()  # doctest: +SKIP
"""

from __future__ import annotations

import sys

from . import _native, exceptions
from ._abc import (
    AsyncBlobReadBackend,
    AsyncBlobReadWriteBackend,
    AsyncObjectReadBackend,
    AsyncObjectReadWriteBackend,
    AsyncReadBackend,
    AsyncReadWriteBackend,
    BlobReadBackend,
    BlobReadWriteBackend,
    ObjectReadBackend,
    ObjectReadWriteBackend,
    ReadBackend,
    ReadWriteBackend,
)
from ._adapters import (
    AsyncBlobToObjectReadAdapter,
    AsyncBlobToObjectReadWriteAdapter,
    AsyncObjectToBlobReadAdapter,
    AsyncObjectToBlobReadWriteAdapter,
    BlobToObjectReadAdapter,
    BlobToObjectReadWriteAdapter,
    ObjectToBlobReadAdapter,
    ObjectToBlobReadWriteAdapter,
    SyncToAsyncAdapter,
    SyncToAsyncReadAdapter,
    SyncToAsyncReadWriteAdapter,
    sync_to_async,
)
from ._aio import AsyncASEIO, AsyncBlobIO, AsyncObjectIO
from ._aviews import (
    AsyncASEColumnView,
    AsyncColumnView,
    AsyncRowView,
    AsyncSingleColumnView,
    AsyncSingleRowView,
)
from ._columnar import (
    BaseColumnarBackend,
    ColumnarBackend,
    PaddedColumnarBackend,
    RaggedColumnarBackend,
    ZarrBackend,
)
from ._concat import ConcatView
from ._convert import atoms_to_dict, decode, dict_to_atoms, encode, get_metadata
from ._core import FacadeCore as ViewParent
from ._h5md import H5MDBackend
from ._hub import COLABFIT, OPTIMADE, ColumnMapping
from ._io import ASEIO, BlobIO, ObjectIO
from ._json import AtomsDecoder, AtomsEncoder
from ._schema import SchemaEntry
from ._stores import (
    LMDBBlobBackend,
    LMDBObjectBackend,
    LMDBObjectReadBackend,
    MemoryObjectBackend,
)
from ._views import ASEColumnView, ColumnView, RowView
from .exceptions import AsebytesError

#: What an async view needs from its facade (the same core as the sync one).
AsyncViewParent = ViewParent

__version__: str = _native.__version__

# The daemon is linked into the extension: auto-spawn runs it with this interpreter.
_native.set_daemon_command([sys.executable, "-m", "asebytes.daemon", "run"])

__all__ = [
    "ASEIO",
    "COLABFIT",
    "OPTIMADE",
    "ASEColumnView",
    "AsebytesError",
    "AsyncASEColumnView",
    "AsyncASEIO",
    "AsyncBlobIO",
    "AsyncBlobReadBackend",
    "AsyncBlobReadWriteBackend",
    "AsyncBlobToObjectReadAdapter",
    "AsyncBlobToObjectReadWriteAdapter",
    "AsyncColumnView",
    "AsyncObjectIO",
    "AsyncObjectReadBackend",
    "AsyncObjectReadWriteBackend",
    "AsyncObjectToBlobReadAdapter",
    "AsyncObjectToBlobReadWriteAdapter",
    "AsyncReadBackend",
    "AsyncReadWriteBackend",
    "AsyncRowView",
    "AsyncSingleColumnView",
    "AsyncSingleRowView",
    "AsyncViewParent",
    "AtomsDecoder",
    "AtomsEncoder",
    "BaseColumnarBackend",
    "BlobIO",
    "BlobReadBackend",
    "BlobReadWriteBackend",
    "BlobToObjectReadAdapter",
    "BlobToObjectReadWriteAdapter",
    "ColumnMapping",
    "ColumnView",
    "ColumnarBackend",
    "ConcatView",
    "H5MDBackend",
    "LMDBBlobBackend",
    "LMDBObjectBackend",
    "LMDBObjectReadBackend",
    "MemoryObjectBackend",
    "ObjectIO",
    "ObjectReadBackend",
    "ObjectReadWriteBackend",
    "ObjectToBlobReadAdapter",
    "ObjectToBlobReadWriteAdapter",
    "PaddedColumnarBackend",
    "RaggedColumnarBackend",
    "ReadBackend",
    "ReadWriteBackend",
    "RowView",
    "SchemaEntry",
    "SyncToAsyncAdapter",
    "SyncToAsyncReadAdapter",
    "SyncToAsyncReadWriteAdapter",
    "ViewParent",
    "ZarrBackend",
    "__version__",
    "atoms_to_dict",
    "decode",
    "dict_to_atoms",
    "encode",
    "exceptions",
    "get_metadata",
    "sync_to_async",
]

#: Public names of the reference ``asebytes`` 0.3.x that later versions of this package add.
NOT_YET_AVAILABLE: frozenset[str] = frozenset(
    {
        # backend classes and hub mappings
        "ASEReadOnlyBackend",
        "HuggingFaceBackend",
        "MongoObjectBackend",
        "AsyncMongoObjectBackend",
        "RedisBlobBackend",
        "AsyncRedisBlobBackend",
    }
)


def __getattr__(name: str) -> object:
    if name in NOT_YET_AVAILABLE:
        raise ImportError(
            f"'{name}' is part of the asebytes API but not available yet in this version "
            f"of asebytes-rs ({__version__}); available now: {', '.join(sorted(__all__))}",
            name=name,
        )
    raise AttributeError(f"module 'asebytes' has no attribute '{name}'")
