"""Backends served by the daemon, with the same interface as any other backend.

The sync classes *are* the native ``asebytes._native.Store`` (every operation one request
to the daemon, implemented in Rust) plus the backend ABCs, so the facades treat them like
a user's own backend: one code path. The native store already applies the index rules
itself (``_negative_indices``) and does every multi-row write -- ``set_rows``,
``update_rows``, ``set_column_rows`` -- as one request, i.e. one transaction.

:class:`AsyncDaemonBackend` is the asyncio twin: ``asebytes._native.AsyncStore`` plans and
decodes each request, :mod:`asebytes._aconn` carries it over the event loop's connection.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar

from . import _aconn, _native
from ._abc import AsyncReadWriteBackend, ReadBackend, ReadWriteBackend
from .exceptions import AsebytesTypeError, AsebytesValueError, DaemonUnavailableError

__all__ = [
    "AsyncDaemonBackend",
    "DaemonBackend",
    "DaemonReadBackend",
    "LMDBBlobBackend",
    "LMDBObjectBackend",
    "LMDBObjectReadBackend",
    "MemoryBlobBackend",
    "MemoryObjectBackend",
]


class DaemonReadBackend(_native.Store, ReadBackend[Any, Any]):
    """A store served by the daemon, read through this handle only."""

    _negative_indices = True

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        if kwargs:
            raise AsebytesTypeError(
                f"Unexpected keyword argument(s) for list_groups: {', '.join(sorted(kwargs))}"
            )
        return _native.list_groups(path)


class DaemonBackend(DaemonReadBackend, ReadWriteBackend[Any, Any]):
    """A store served by the daemon, readable and writable."""

    _returns_mutable = True
    # Object-tier rows may be ``ase.Atoms``: converted in Rust from their arrays.
    _takes_atoms = True
    # The native multi-row writes take index lists: one request for any selection.
    set_rows = _native.Store.set_many  # type: ignore[assignment]
    update_rows = _native.Store.update_many  # type: ignore[assignment]
    set_column_rows = _native.Store.set_column  # type: ignore[assignment]


def _tiered(cls: type[Any], tier: str | None) -> str:
    want: str = cls._tier
    if tier not in (None, want):
        raise AsebytesValueError(f"{cls.__name__} stores {want} rows, not {tier} rows")
    return want


class _LMDB:
    """Constructor of the LMDB classes: ``(file, group=None, map_size=None, readonly=...)``
    as in the reference."""

    _tier: ClassVar[str]
    _readonly: ClassVar[bool | None] = None

    def __new__(
        cls,
        file: str,
        group: str | None = None,
        map_size: int | None = None,
        readonly: bool = False,
        *,
        tier: str | None = None,
    ) -> Any:
        if cls._readonly is not None:
            readonly = cls._readonly
        return _native.Store.__new__(  # type: ignore[call-arg]
            cls,
            file,
            group=group,
            readonly=readonly,
            map_size=map_size,
            tier=_tiered(cls, tier),
        )


class LMDBObjectBackend(_LMDB, DaemonBackend):
    """An LMDB file (reference layout) of ``dict[str, Any]`` rows, served by the daemon."""

    _tier = "object"


class LMDBObjectReadBackend(_LMDB, DaemonReadBackend):
    """An LMDB file of ``dict[str, Any]`` rows, opened read-only."""

    _tier = "object"
    _readonly = True


class LMDBBlobBackend(_LMDB, DaemonBackend):
    """An LMDB file of ``dict[bytes, bytes]`` rows (values stored as given)."""

    _tier = "blob"


class _Memory:
    """Constructor of the memory classes: ``(group=None)`` as in the reference. The rows
    live in the daemon, so every process of the user shares them (the reference keeps
    them per process); ``memory://name`` locations are served by the same classes."""

    _tier: ClassVar[str]

    def __new__(
        cls,
        group: str | None = None,
        *,
        location: str = "memory://",
        readonly: bool = False,
        map_size: int | None = None,
        tier: str | None = None,
    ) -> Any:
        return _native.Store.__new__(  # type: ignore[call-arg]
            cls,
            location,
            group=group,
            readonly=readonly,
            map_size=map_size,
            tier=_tiered(cls, tier),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        store: Any = self
        return (
            _reopen_memory,
            (type(self), store.location, store.group, store.readonly),
        )


def _reopen_memory(
    cls: type[Any], location: str, group: str | None, readonly: bool
) -> Any:
    return cls(group, location=location, readonly=readonly)


class MemoryObjectBackend(_Memory, DaemonBackend):
    """An in-memory store of ``dict[str, Any]`` rows, held by the daemon."""

    _tier = "object"


class MemoryBlobBackend(_Memory, DaemonBackend):
    """An in-memory store of ``dict[bytes, bytes]`` rows, held by the daemon."""

    _tier = "blob"


# ---------------------------------------------------------------------- async


def _remote(name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """An async backend method that plans request ``name`` natively and sends it, unless
    planning answered it already (``len`` and cached rows while nothing changed)."""

    async def method(self: AsyncDaemonBackend, *args: Any, **kwargs: Any) -> Any:
        call = getattr(self._plan, name)(*args, **kwargs)
        answered = call.local
        if answered is not None:
            return answered[0]
        return await self._call(call)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = (
        f"``{name}`` as one daemon request (see the sync ``Store.{name}``)."
    )
    return method


#: The backend ABC's names for native operations (the multi-row writes take index lists).
_ALIASES = {
    "set_rows": "set_many",
    "update_rows": "update_many",
    "set_column_rows": "set_column",
}
#: Native operations :class:`AsyncDaemonBackend` wraps by hand.
_OWN = ("follow_wait", "remove")


def _remote_operations() -> Any:
    """A class with one async method per operation of the native ``StoreOps`` (the one
    list the sync ``Store`` and ``AsyncStore`` share), plus the ABC's aliases: a native
    operation added in Rust is on the async backend too."""
    ops = _native.StoreOps
    names = [
        n
        for n, v in vars(ops).items()
        if not n.startswith("_") and callable(v) and n not in _OWN
    ]
    methods = {n: _remote(n) for n in names}
    methods |= {alias: _remote(name) for alias, name in _ALIASES.items()}
    return type("_RemoteOperations", (), methods)


_RemoteOperations: Any = _remote_operations()


class AsyncDaemonBackend(_RemoteOperations, AsyncReadWriteBackend[Any, Any]):  # type: ignore[misc]
    """A store served by the daemon, used from asyncio (``AsyncObjectIO("x.lmdb")``).

    Requests go over the event loop's one connection, pipelined; the store is opened on
    that connection on first use and re-opened by itself when the daemon forgot it. As
    with the sync ``Store``, ``len`` and rows read before are answered without a request
    while the store's published generation is unchanged, and a walk of single rows is
    read ahead in batches (the native handle decides, ``AsyncStore.attach``).
    """

    _negative_indices = True
    _returns_mutable = True
    _takes_atoms = True

    def __init__(
        self,
        location: str,
        *,
        group: str | None = None,
        readonly: bool = False,
        map_size: int | None = None,
        options: dict[str, Any] | None = None,
        tier: str = "object",
    ) -> None:
        self._plan = _native.AsyncStore(
            location,
            group=group,
            readonly=readonly,
            map_size=map_size,
            options=options,
            tier=tier,  # type: ignore[arg-type]
        )
        self._options = dict(options or {})
        self._key = (self._plan.location, group, readonly, tier)
        # The open the native handle was last told about (``AsyncStore.attach``).
        self._attached: _aconn.OpenStore | None = None
        # Live follow waits on a connection of its own (one per event loop): the loop's
        # shared connection is answered in order, so a wait there would hold up every
        # other request.
        self._follow_conns: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _aconn.Connection
        ] = weakref.WeakKeyDictionary()

    @property
    def location(self) -> str:
        return str(self._plan.location)

    @property
    def group(self) -> str | None:
        return self._plan.group

    @property
    def readonly(self) -> bool:
        return bool(self._plan.readonly)

    @property
    def tier(self) -> str:
        return str(self._plan.tier)

    @staticmethod
    def list_groups(path: str, **kwargs: Any) -> list[str]:
        return DaemonReadBackend.list_groups(path, **kwargs)

    async def _call(
        self,
        call: Any,
        connect: Callable[[], Awaitable[_aconn.Connection]] = _aconn.connection,
    ) -> Any:
        """Send ``call`` (over the loop's connection unless ``connect`` gives another). A
        read-ahead batch that fails is sent again as the one row asked for
        (``Call.fall_back``), as the sync client does."""
        while True:
            try:
                return await self._send(call, connect)
            except Exception:
                if not call.fall_back():
                    raise

    async def _send(
        self, call: Any, connect: Callable[[], Awaitable[_aconn.Connection]]
    ) -> Any:
        """One attempt at ``call``. When to re-open the store or resend is the sync
        client's policy, asked of the call itself (``Call.may_reopen`` /
        ``Call.may_resend``)."""
        while True:
            conn = await connect()
            sent = False
            try:
                store = await conn.open_store(self._key, self._plan.open())
                if store is not self._attached:
                    # Where the daemon publishes this store's generation, for the
                    # reads planning can answer.
                    self._plan.attach(store.published, store.typed_values)
                    self._attached = store
                sent = True
                return await conn.request(call, store.id, store.typed_values)
            except _aconn.StoreGone as gone:
                conn.forget_store(self._key)
                if not call.may_reopen():
                    call.finish(gone.reply)  # raises the daemon's error
                    raise
            except ConnectionError as err:
                # An open connection means the daemon answered "shutting down" without
                # running the request.
                refused = not conn.closed
                conn.close()
                if call.may_resend(refused):
                    continue
                if sent and not refused and not call.is_read:
                    raise DaemonUnavailableError(
                        f"{err} (while waiting for the reply to {call.name!r}; the "
                        "write may or may not have been applied)"
                    ) from err
                raise

    async def follow_wait(self, seen: int, timeout: float) -> tuple[int, int]:
        """Wait up to ``timeout`` seconds for more than ``seen`` rows: ``(generation,
        len)``, answered by the daemon as soon as a commit makes the store grow."""
        result: tuple[int, int] = await self._call(
            self._plan.follow_wait(seen, timeout), self._follow_connection
        )
        return result

    async def _follow_connection(self) -> _aconn.Connection:
        loop = asyncio.get_running_loop()
        conn = self._follow_conns.get(loop)
        if conn is None or conn.closed:
            conn = await _aconn.Connection.open()
            self._follow_conns[loop] = conn
        return conn

    async def aclose(self) -> None:
        """Nothing to release: the connection belongs to the event loop and the daemon
        closes the loop's stores when it ends."""

    def __reduce__(self) -> tuple[Any, ...]:
        plan = self._plan
        return (
            _reopen_async,
            (type(self), plan.location, *self._key[1:], self._options or None),
        )

    def __repr__(self) -> str:
        group = f", group={self.group!r}" if self.group is not None else ""
        ro = ", readonly=True" if self.readonly else ""
        return (
            f"{type(self).__name__}({_native.redact_location(self.location)!r}{group}, "
            f"tier={self.tier!r}{ro})"
        )

    async def remove(self) -> None:
        """Remove the container; the next use creates it afresh."""
        await self._call(self._plan.remove())
        (await _aconn.connection()).forget_store(self._key)


def _reopen_async(
    cls: type[AsyncDaemonBackend],
    location: str,
    group: str | None,
    readonly: bool,
    tier: str,
    options: dict[str, Any] | None = None,
) -> AsyncDaemonBackend:
    return cls(location, group=group, readonly=readonly, options=options, tier=tier)
