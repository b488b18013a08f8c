"""Run the async facades through the sync facades' test bodies.

:class:`SyncFacade` presents the API of ``ObjectIO``/``BlobIO``/``ASEIO`` and does every
call through the async facade (``AsyncObjectIO``, ...) on its own event loop, the way a
user would write it with ``await``: ``db[i]`` is ``await adb[i]``, ``db[i] = row`` is
``await adb[i].set(row)``, ``len(view)`` is ``await view.len()``, iteration is
``async for``. So one test body checks one behaviour on both facades (the ``mode``
parameter of the backend fixtures), with no second copy of the tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Self, TypeVar

import asebytes
from asebytes import AsyncColumnView, AsyncRowView

T = TypeVar("T")

#: The async twin of each sync facade.
ASYNC_TWIN: dict[type[Any], type[Any]] = {
    asebytes.ObjectIO: asebytes.AsyncObjectIO,
    asebytes.BlobIO: asebytes.AsyncBlobIO,
    asebytes.ASEIO: asebytes.AsyncASEIO,
}


def unwrap(obj: Any) -> Any:
    """The async facade or view behind a shim (anything else as is)."""
    return obj._a if isinstance(obj, _Shim) else obj


class Loop:
    """One event loop for one test; :meth:`close` shuts it down like ``asyncio.run``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


class _Shim:
    __slots__ = ("_a", "_loop")

    def __init__(self, inner: Any, loop: Loop) -> None:
        self._a = inner
        self._loop = loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    def _wrap(self, value: Any) -> Any:
        """Views become shims; awaitable single items are awaited."""
        if isinstance(value, (AsyncRowView, AsyncColumnView)):
            return SyncView(value, self._loop)
        if hasattr(value, "__await__"):
            return self._run(_await(value))
        return value

    def __getitem__(self, key: Any) -> Any:
        return self._wrap(self._a[key])

    def __iter__(self) -> Iterator[Any]:
        return iter(self._run(_collect(aiter(self._a))))

    def __repr__(self) -> str:
        return repr(self._a)


async def _await(awaitable: Any) -> Any:
    return await awaitable


class SyncView(_Shim):
    """A sync row/column view over an async one."""

    __slots__ = ()

    def __len__(self) -> int:
        return self._run(self._a.len())

    def __bool__(self) -> bool:
        return len(self) > 0

    def chunked(self, chunk_size: int = 1000) -> Iterator[Any]:
        return iter(self._run(_collect(self._a.chunked(chunk_size))))

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._a, name)  # to_list, to_dict, to_numpy, set, update, ...

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(method(*args, **kwargs))

        return call


class SyncFacade(_Shim):
    """The sync facade API over an async facade (see the module docstring)."""

    __slots__ = ()

    @property
    def _backend(self) -> Any:
        return self._a._backend

    def __len__(self) -> int:
        return self._run(self._a.len())

    def __setitem__(self, index: Any, row: Any) -> None:
        self._run(self._a[index].set(row))

    def __delitem__(self, index: Any) -> None:
        self._run(self._a[index].delete())

    def append(self, value: Any) -> None:
        self._run(self._a.extend([value]))

    def __iadd__(self, values: Any) -> Self:
        self._run(self._a.extend(values))
        return self

    def __enter__(self) -> Self:
        self._run(self._a.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._a.__aexit__(*exc))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._a, name)  # get, keys, extend, insert, update, drop, ...
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            return self._run(result) if asyncio.iscoroutine(result) else result

        return call
