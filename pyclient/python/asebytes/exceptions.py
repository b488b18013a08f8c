"""The exception hierarchy of asebytes.

Every exception raised by the package subclasses :class:`AsebytesError` *and* the builtin a
user would catch (``except KeyError`` keeps working). The native extension raises these
same classes; they live in pure Python so multiple inheritance is possible.
"""

from __future__ import annotations


class AsebytesError(Exception):
    """Base class of every asebytes error."""


class KeyNotFoundError(AsebytesError, KeyError):
    """A key (column, field) is missing."""


class IndexOutOfRangeError(AsebytesError, IndexError):
    """An index outside ``[-len, len)``."""


class AsebytesTypeError(AsebytesError, TypeError):
    """A value or argument of the wrong type."""


class AsebytesValueError(AsebytesError, ValueError):
    """A value of the right type that breaks a rule."""


class UnsupportedOperationError(AsebytesError, NotImplementedError):
    """The backend cannot perform this operation."""


class ReadOnlyError(AsebytesTypeError):
    """A write to a read-only store (``TypeError("Backend is read-only")``)."""


class DaemonUnavailableError(AsebytesError, ConnectionError):
    """The daemon cannot be reached or started; the message names the socket and the log."""


class DiskFullError(AsebytesError, OSError):
    """The filesystem holding a store is full (``errno.ENOSPC``).

    Raised as ``DiskFullError(errno.ENOSPC, message)``; the message names the store. The
    failed write stored nothing and earlier rows are intact: free some space and retry.
    """


class PermissionDeniedError(AsebytesError, PermissionError):
    """A remote refused access: a gated or private HuggingFace dataset read without a token
    that may read it (set ``HF_TOKEN`` or pass ``token=``)."""


class SourceNotFoundError(AsebytesError, FileNotFoundError):
    """A file a store reads is not there: an ASE file or aselmdb shard that does not exist,
    or was deleted or moved away while the store was open.

    Raised as ``SourceNotFoundError(errno.ENOENT, message)``; the message names the file.
    """


class ProtocolVersionError(AsebytesError, RuntimeError):
    """Client and daemon share no protocol version (restart the daemon: ``asebytesd stop``)."""


__all__ = [
    "AsebytesError",
    "AsebytesTypeError",
    "AsebytesValueError",
    "DaemonUnavailableError",
    "DiskFullError",
    "IndexOutOfRangeError",
    "KeyNotFoundError",
    "PermissionDeniedError",
    "ProtocolVersionError",
    "ReadOnlyError",
    "SourceNotFoundError",
    "UnsupportedOperationError",
]
