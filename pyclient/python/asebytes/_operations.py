"""The backend operations that adapters forward, written once for every flavour.

An adapter wraps a backend and forwards each operation to the same operation of the
wrapped backend, so one batched call stays one call. There are three flavours -- blob ⇄
object converting (sync), the same over async backends, and sync → async in a worker
thread -- and all of them are made here from one table, :data:`OPS`: per operation, how
its arguments cross to the wrapped backend's tier and how its result comes back. A new
operation is one entry here; every adapter has it.

:func:`mixin` turns the table into a class of methods, which the adapters list first among
their bases (so the forwarding methods take precedence over the ABCs' generic defaults).
The mixins are typed ``Any`` for mypy; the adapters' signatures are the ABCs'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Converts a call's arguments (after the codec) to the wrapped backend's.
ArgsIn = Callable[..., tuple[Any, ...]]
#: Converts the wrapped backend's result (after the codec and the call's arguments) back.
ResultOut = Callable[..., Any]


@dataclass(frozen=True)
class Op:
    """One forwarded backend operation.

    ``args_in(codec, *args, **kwargs)`` gives the wrapped backend's positional arguments
    and ``result_out(codec, result, *args, **kwargs)`` the adapter's result, for
    converting adapters; ``None`` passes arguments or the result through unchanged.
    """

    name: str
    write: bool
    args_in: ArgsIn | None = None
    result_out: ResultOut | None = None


def _row_arg(c: Any, index: Any, row: Any) -> tuple[Any, ...]:
    return (index, c.maybe_row_in(row))


def _rows_arg(c: Any, where: Any, rows: Any) -> tuple[Any, ...]:
    return (where, c.rows_in(rows))


def _dicts_arg(c: Any, where: Any, data: Any) -> tuple[Any, ...]:
    return (where, c.dicts_in(data))


def _column_arg(c: Any, key: Any, where: Any, values: Any) -> tuple[Any, ...]:
    return (c.key_in(key), where, c.values_in(key, values))


def _keys_arg(c: Any, where: Any, keys: Any = None) -> tuple[Any, ...]:
    return (where, c.keys_in(keys))


OPS: tuple[Op, ...] = (
    # reads
    Op("get", False, _keys_arg, lambda c, row, *_, **__: c.maybe_row_out(row)),
    Op("get_many", False, _keys_arg, lambda c, rows, *_, **__: c.rows_out(rows)),
    Op(
        "get_column",
        False,
        lambda c, key, indices=None: (c.key_in(key), indices),
        lambda c, values, key, *_, **__: c.column_out(key, values),
    ),
    Op("keys", False, None, lambda c, keys, *_, **__: c.keys_out(keys)),
    # writes
    Op("set", True, _row_arg),
    Op("insert", True, _row_arg),
    Op("update", True, lambda c, index, data: (index, c.row_in(data))),
    Op("extend", True, lambda c, rows: (c.rows_in(rows),)),
    Op("set_many", True, _rows_arg),
    Op("set_rows", True, _rows_arg),
    Op("update_many", True, _dicts_arg),
    Op("update_rows", True, _dicts_arg),
    Op("set_column", True, _column_arg),
    Op("set_column_rows", True, _column_arg),
    Op(
        "drop_keys",
        True,
        lambda c, keys, indices=None: (c.key_list_in(keys), indices),
    ),
    Op("delete", True),
    Op("delete_many", True),
    Op("reserve", True),
    Op("clear", True),
    Op("remove", True),
)


def _named(method: Callable[..., Any], name: str, doc: str) -> Callable[..., Any]:
    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc
    return method


def _args_in(op: Op, codec: Any, args: Any, kwargs: Any) -> tuple[Any, Any]:
    """The wrapped backend's ``(args, kwargs)`` for a call of ``op``."""
    if op.args_in is None:
        return args, kwargs
    return op.args_in(codec, *args, **kwargs), {}


def _result_out(op: Op, codec: Any, result: Any, args: Any, kwargs: Any) -> Any:
    """The adapter's result from the wrapped backend's."""
    if op.result_out is None:
        return result
    return op.result_out(codec, result, *args, **kwargs)


def converting(op: Op) -> Callable[..., Any]:
    """The sync method: convert the arguments, call the wrapped backend, convert back."""

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        a, k = _args_in(op, self._codec, args, kwargs)
        result = getattr(self.backend, op.name)(*a, **k)
        return _result_out(op, self._codec, result, args, kwargs)

    return _named(
        method,
        op.name,
        f"``{op.name}`` of the wrapped backend, converted (see the ABC).",
    )


def converting_async(op: Op) -> Callable[..., Any]:
    """The async method: as :func:`converting`, awaiting the wrapped async backend."""

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        a, k = _args_in(op, self._codec, args, kwargs)
        result = await getattr(self.backend, op.name)(*a, **k)
        return _result_out(op, self._codec, result, args, kwargs)

    return _named(
        method,
        op.name,
        f"``{op.name}`` of the wrapped backend, converted (see the ABC).",
    )


def threaded(op: Op) -> Callable[..., Any]:
    """The async method that runs the wrapped sync backend's method in a worker thread."""

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.backend, op.name), *args, **kwargs)

    return _named(
        method,
        op.name,
        f"``{op.name}`` of the wrapped sync backend, in a worker thread (see the ABC).",
    )


def mixin(build: Callable[[Op], Callable[..., Any]], *, write: bool) -> Any:
    """A class with one method per read (``write=False``) or write operation of
    :data:`OPS`, each made by ``build``."""
    kind = "Writes" if write else "Reads"
    methods = {op.name: build(op) for op in OPS if op.write == write}
    return type(f"_{build.__name__.title().replace('_', '')}{kind}", (), methods)
