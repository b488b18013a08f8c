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
from ._convert import atoms_to_dict, decode, dict_to_atoms, encode, get_metadata
from ._io import ASEIO, BlobIO, ObjectIO
from ._schema import SchemaEntry
from ._views import ASEColumnView, ColumnView, RowView
from .exceptions import AsebytesError

__version__: str = _native.__version__

# The daemon is linked into the extension: auto-spawn runs it with this interpreter.
_native.set_daemon_command([sys.executable, "-m", "asebytes.daemon", "run"])

__all__ = [
    "ASEIO",
    "ASEColumnView",
    "AsebytesError",
    "BlobIO",
    "ColumnView",
    "ObjectIO",
    "RowView",
    "SchemaEntry",
    "__version__",
    "atoms_to_dict",
    "decode",
    "dict_to_atoms",
    "encode",
    "exceptions",
    "get_metadata",
]

#: Public names of the reference ``asebytes`` 0.3.x that later versions of this package add.
NOT_YET_AVAILABLE: frozenset[str] = frozenset(
    {
        # async facades and views
        "AsyncBlobIO",
        "AsyncObjectIO",
        "AsyncASEIO",
        "AsyncRowView",
        "AsyncColumnView",
        "AsyncASEColumnView",
        "AsyncSingleRowView",
        "AsyncSingleColumnView",
        "AsyncViewParent",
        "ViewParent",
        "ConcatView",
        # backend ABCs and typing aliases
        "ReadBackend",
        "ReadWriteBackend",
        "BlobReadBackend",
        "BlobReadWriteBackend",
        "ObjectReadBackend",
        "ObjectReadWriteBackend",
        "AsyncReadBackend",
        "AsyncReadWriteBackend",
        "AsyncBlobReadBackend",
        "AsyncBlobReadWriteBackend",
        "AsyncObjectReadBackend",
        "AsyncObjectReadWriteBackend",
        # adapters
        "SyncToAsyncAdapter",
        "SyncToAsyncReadAdapter",
        "SyncToAsyncReadWriteAdapter",
        "sync_to_async",
        "BlobToObjectReadAdapter",
        "BlobToObjectReadWriteAdapter",
        "ObjectToBlobReadAdapter",
        "ObjectToBlobReadWriteAdapter",
        "AsyncBlobToObjectReadAdapter",
        "AsyncBlobToObjectReadWriteAdapter",
        "AsyncObjectToBlobReadAdapter",
        "AsyncObjectToBlobReadWriteAdapter",
        # JSON envelope
        "AtomsEncoder",
        "AtomsDecoder",
        # backend classes and hub mappings
        "ASEReadOnlyBackend",
        "MemoryObjectBackend",
        "LMDBBlobBackend",
        "LMDBObjectBackend",
        "LMDBObjectReadBackend",
        "HuggingFaceBackend",
        "ColumnMapping",
        "COLABFIT",
        "OPTIMADE",
        "H5MDBackend",
        "ZarrBackend",
        "BaseColumnarBackend",
        "RaggedColumnarBackend",
        "PaddedColumnarBackend",
        "ColumnarBackend",
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
