"""The asyncio connection to the daemon: one per event loop, requests pipelined by id.

Pure asyncio, no threads and no second runtime: a Unix-socket transport whose protocol
cuts the byte stream into length-prefixed frames and resolves the future waiting for each
reply by its envelope id. Encoding requests and decoding replies is native
(``asebytes._native.AsyncStore`` plans a request as a ``Call``; ``Call.frame`` encodes it,
``Call.finish`` decodes the reply), so the event loop only moves bytes. Many coroutines
share the connection; none of them blocks the loop.

The connection opens lazily on first use in a loop (spawning the daemon in a worker thread
if it is not running, once), closes when the loop shuts down its async generators
(``asyncio.run`` does), and is replaced by a fresh one after the daemon went away.
Like the sync client, it talks only to a daemon running as its own user: before the
handshake it reads the peer's credentials (``SO_PEERCRED``) and refuses any other uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket as _socket
import struct
import weakref
from collections.abc import AsyncIterator, Hashable
from typing import Any, NamedTuple

from . import _native
from .exceptions import DaemonUnavailableError

__all__ = ["Connection", "StoreGone", "connection"]

_HEADER = 4

#: The connection (or the task opening it) of each running event loop.
_by_loop: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, asyncio.Future[Connection]
] = weakref.WeakKeyDictionary()


class StoreGone(Exception):
    """The daemon does not know the store id any more (restart, or the store was removed):
    open it again and retry. ``reply`` is the daemon's answer (its error, for when no
    retry is left)."""

    def __init__(self, name: str, reply: bytes | bytearray) -> None:
        super().__init__(name)
        self.reply = reply


class _Protocol(asyncio.BufferedProtocol):
    """Frames in, futures resolved by id; everything else is the connection's job.

    Small replies are read into one reusable scratch buffer, several per ``recv``; a reply
    that does not fit is read straight into its own buffer, which is handed to the
    decoder as is (a large ``to_list()`` reply is never copied on the Python side).
    """

    SCRATCH = 256 * 1024

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._scratch = bytearray(self.SCRATCH)
        self._filled = 0
        self._body: bytearray | None = None  # a large reply being read in place
        self._got = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._body is not None:
            return memoryview(self._body)[self._got :]
        return memoryview(self._scratch)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._body is not None:
            self._got += nbytes
            if self._got == len(self._body):
                body, self._body = self._body, None
                self._conn._deliver(body)
            return
        self._filled += nbytes
        self._split()

    def _split(self) -> None:
        """Deliver every complete frame in the scratch buffer; keep the partial one."""
        buf = self._scratch
        start, end = 0, self._filled
        with memoryview(buf) as view:
            while end - start >= _HEADER:
                n = int.from_bytes(view[start : start + _HEADER], "big")
                stop = start + _HEADER + n
                if stop <= end:
                    self._conn._deliver(bytes(view[start + _HEADER : stop]))
                    start = stop
                    continue
                if _HEADER + n > len(buf):  # too large for the scratch buffer
                    body = bytearray(n)
                    have = end - start - _HEADER
                    body[:have] = view[start + _HEADER : end]
                    self._body, self._got = body, have
                    start = end
                break
        if start:
            rest = end - start
            buf[:rest] = buf[start:end]
            self._filled = rest

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._lost(exc)


class OpenStore(NamedTuple):
    """A store as opened on one connection: its id, whether its backend decodes values
    (capability ``typed_values``: blob values then travel as msgpack bins), and where the
    daemon publishes its generation (``(index, tag, epoch)``, ``None`` if it does not;
    see ``AsyncStore.attach``)."""

    id: int
    typed_values: bool
    published: tuple[int, int, int] | None


class Connection:
    """One daemon connection in one event loop (see the module docstring)."""

    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.max_frame: int | None = None
        self.protocol = 0
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[bytes | bytearray]] = {}
        self._hello: asyncio.Future[bytes | bytearray] | None = None
        self._stores: dict[Hashable, asyncio.Future[OpenStore]] = {}
        self._lifetime: AsyncIterator[None] | None = None

    @classmethod
    async def open(cls) -> Connection:
        loop = asyncio.get_running_loop()
        socket = _native.socket_path()
        conn = cls(socket)
        try:
            transport, _ = await loop.create_unix_connection(
                lambda: _Protocol(conn), socket
            )
        except OSError:
            # Not running (or stale socket): start it like the sync client does, in a
            # worker thread so the loop keeps running, then connect once more.
            conn.socket = socket = await asyncio.to_thread(_native.ensure_daemon)
            try:
                transport, _ = await loop.create_unix_connection(
                    lambda: _Protocol(conn), socket
                )
            except OSError as exc:
                raise DaemonUnavailableError(
                    f"cannot connect to the asebytes daemon at {socket}: {exc}; see its "
                    "log (ASEBYTES_LOG) or run `asebytesd status`"
                ) from exc
        conn._transport = transport
        try:
            _check_owner(transport, socket)
        except DaemonUnavailableError:
            transport.close()
            raise
        await conn._handshake()
        conn._lifetime = conn._close_with_loop()
        await conn._lifetime.__anext__()
        return conn

    async def _handshake(self) -> None:
        assert self._transport is not None
        self._hello = asyncio.get_running_loop().create_future()
        self._transport.write(_native.hello_frame())
        info = _native.finish_hello(await self._hello)
        self.max_frame = int(info["max_frame"])
        self.protocol = int(info["protocol"])

    async def _close_with_loop(self) -> AsyncIterator[None]:
        """Parked after its first step; the loop's ``shutdown_asyncgens`` (run by
        ``asyncio.run`` before closing the loop) finalises it, closing the transport."""
        try:
            yield
            await asyncio.Future()  # never resumed
        finally:
            self.close()

    # ------------------------------------------------------------------ requests

    async def request(
        self, call: Any, store: int = 0, typed_values: bool = False
    ) -> Any:
        """Send ``call`` for store id ``store`` (whose backend decodes values if
        ``typed_values``) and return its decoded reply; raises :class:`StoreGone` for an
        unknown store id, ``DaemonUnavailableError`` when the connection is lost."""
        if self.closed or self._transport is None:
            raise self._gone(None)
        call.check_protocol(self.protocol)
        rid = next(self._ids)
        frame = call.frame(rid, store, self.max_frame, typed_values)
        fut: asyncio.Future[bytes | bytearray] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[rid] = fut
        self._transport.write(frame)
        try:
            reply = await fut
        finally:
            self._pending.pop(rid, None)
        _, unknown_store = _native.reply_header(reply)
        if unknown_store:
            raise StoreGone(call.name, reply)
        return call.finish(reply)

    async def open_store(self, key: Hashable, open_call: Any) -> OpenStore:
        """The store ``key`` as open on this connection, opening it once however many
        coroutines ask at the same time."""
        fut = self._stores.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._open_store(open_call))
            self._stores[key] = fut
        try:
            return await asyncio.shield(fut)
        except BaseException:
            if fut.done() and self._stores.get(key) is fut:
                del self._stores[key]
            raise

    async def _open_store(self, open_call: Any) -> OpenStore:
        info = await self.request(open_call)
        caps = info["capabilities"]
        return OpenStore(
            int(info["store"]),
            bool(caps.get("typed_values", False)),
            info.get("published"),
        )

    def forget_store(self, key: Hashable) -> None:
        self._stores.pop(key, None)

    # ------------------------------------------------------------------ transport events

    def _deliver(self, frame: bytes | bytearray) -> None:
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(frame)
            return
        rid, _ = _native.reply_header(frame)
        fut = self._pending.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_result(frame)

    def _gone(self, exc: Exception | None) -> DaemonUnavailableError:
        detail = f": {exc}" if exc else ""
        return DaemonUnavailableError(
            f"lost the connection to the asebytes daemon at {self.socket}{detail}; the "
            "next call reconnects (see the daemon log: ASEBYTES_LOG, `asebytesd status`)"
        )

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiting = list(self._pending.values())
        if self._hello is not None and not self._hello.done():
            waiting.append(self._hello)
        self._pending.clear()
        for fut in waiting:
            if not fut.done():
                fut.set_exception(self._gone(exc))

    def close(self) -> None:
        """Close the transport (pending requests fail with ``DaemonUnavailableError``)."""
        self.closed = True
        if self._transport is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._transport.close()


def peer_uid(transport: asyncio.BaseTransport) -> int:
    """The uid of the process on the other end of a connected Unix-socket transport."""
    sock = transport.get_extra_info("socket")
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(creds)
    return int(uid)


#: ``struct ucred``: pid, uid, gid.
_UCRED = struct.Struct("iII")


def _check_owner(transport: asyncio.BaseTransport, socket: str) -> None:
    """Refuses a daemon that runs as another user, as the sync client does: it would read
    and write our stores with its permissions, and see what we send."""
    peer, ours = peer_uid(transport), os.geteuid()
    if peer != ours:
        raise DaemonUnavailableError(
            f"cannot connect to the asebytes daemon at {socket}: the socket is served by "
            f"uid {peer}, not by you (uid {ours}). Start your own with `asebytesd run`, "
            "or set ASEBYTES_SOCKET to your daemon's socket"
        )


def _unusable(fut: asyncio.Future[Connection]) -> bool:
    return fut.cancelled() or fut.exception() is not None or fut.result().closed


async def connection() -> Connection:
    """The running loop's connection, opened on first use and after a lost one."""
    loop = asyncio.get_running_loop()
    fut = _by_loop.get(loop)
    if fut is not None and fut.done() and _unusable(fut):
        fut = None
    if fut is None:
        fut = asyncio.ensure_future(Connection.open())
        _by_loop[loop] = fut
    try:
        return await asyncio.shield(fut)
    except BaseException:
        if fut.done() and _by_loop.get(loop) is fut:
            del _by_loop[loop]
        raise
