"""Live follow, written once for the sync and the async facades.

``db.follow(start)`` yields rows as other processes append them. The daemon pushes: a
``follow_wait(seen, timeout)`` backend call is one ``Follow`` request that the daemon
answers the moment a commit makes the store longer than ``seen`` (it keeps nothing per
follower, so a slow follower costs it nothing). The follower then reads the new rows in
batches of ``batch`` with ordinary reads and asks again with the length it has seen: every
row is yielded once, in order, however the writes were grouped into commits.

A wait is sent for at most :data:`HEARTBEAT` seconds at a time and sent again if nothing
came: that bounds how long a follower that vanished holds a daemon thread, and how long
Ctrl-C or a ``stop`` takes to be noticed. It is not polling: a commit answers the waiting
request at once, whenever it happens.

:class:`FollowCursor` is the state machine; its :meth:`FollowCursor.op_next` is an
operation of :mod:`asebytes._core`, driven by ``run`` (sync) or ``arun`` (async).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from typing import Any, Protocol, SupportsIndex

from ._abc import AsyncReadWriteBackend, ReadWriteBackend
from ._core import LEN, FacadeCore, InRange, Op
from .exceptions import AsebytesTypeError, AsebytesValueError, UnsupportedOperationError

__all__ = ["HEARTBEAT", "FollowCursor", "Stop"]

#: Longest single wait sent to the daemon (seconds).
HEARTBEAT = 0.5


class _Flag(Protocol):
    def is_set(self) -> bool: ...


#: What ``stop=`` takes: an event (``threading.Event``, ``asyncio.Event``, anything with
#: ``is_set()``) or a callable returning ``True`` to stop.
Stop = _Flag | Callable[[], bool]


def _stop_check(stop: Stop | None) -> Callable[[], bool]:
    if stop is None:
        return lambda: False
    is_set = getattr(stop, "is_set", None)
    if callable(is_set):
        return lambda: bool(is_set())
    if callable(stop):
        return lambda: bool(stop())
    raise AsebytesTypeError(
        f"stop= takes an event (with is_set()) or a callable, got {type(stop).__name__}"
    )


def check_followable(core: FacadeCore) -> None:
    """Raise ``UnsupportedOperationError`` unless the facade's backend can be followed."""
    backend = core._backend
    if hasattr(backend, "follow_wait"):
        return
    name = type(backend).__name__
    if not isinstance(backend, (ReadWriteBackend, AsyncReadWriteBackend)):
        raise UnsupportedOperationError(
            f"{name} is read-only and cannot grow, so there is nothing to follow; "
            "follow() waits for rows other processes append to a store the asebytes "
            "daemon serves"
        )
    raise UnsupportedOperationError(
        f"{name} cannot be followed: follow() needs the commit notifications of a "
        "store the asebytes daemon serves (open the facade with a location string)"
    )


class FollowCursor:
    """Where one follower stands: the next row to yield and the length last seen."""

    def __init__(
        self,
        core: FacadeCore,
        start: SupportsIndex,
        *,
        timeout: float | None,
        stop: Stop | None,
        batch: int,
    ) -> None:
        check_followable(core)
        try:
            first = operator.index(start)
        except TypeError:
            raise AsebytesTypeError(
                f"start must be an int, got {type(start).__name__}"
            ) from None
        if timeout is not None and not timeout >= 0:
            raise AsebytesValueError(f"timeout must be >= 0 seconds, got {timeout}")
        if type(batch) is not int or batch < 1:
            raise AsebytesValueError(f"batch must be a positive int, got {batch!r}")
        self._core = core
        self._start = first
        self._timeout = timeout
        self._stopped = _stop_check(stop)
        self._batch = batch
        self._next = -1  # resolved on the first step
        self._known = 0  # rows the store had at the last answer

    def op_next(self) -> Op[list[Any] | None]:
        """The next batch of rows, waiting for a commit if there is none yet; ``None``
        when the follow ends (``stop`` set, or no new row within ``timeout``)."""
        if self._next < 0:
            yield from self._op_resolve_start()
        idle_since = time.monotonic()
        while True:
            if self._next < self._known:
                stop = min(self._known, self._next + self._batch)
                rows: list[Any] = yield from self._core._op_rows(
                    InRange(range(self._next, stop))
                )
                self._next = stop
                return rows
            if self._stopped():
                return None
            wait = HEARTBEAT
            if self._timeout is not None:
                left = self._timeout - (time.monotonic() - idle_since)
                if left <= 0:
                    return None
                wait = min(wait, left)
            _, n = yield ("follow_wait", (self._next, wait))
            self._known = int(n)

    def _op_resolve_start(self) -> Op[None]:
        n: int = yield (LEN, ())
        start = self._start
        if start < 0:
            start = max(0, n + start)
        self._next = start
        self._known = n
