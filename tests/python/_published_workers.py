"""Functions run in child processes by test_published.py (importable under 'spawn')."""

from __future__ import annotations

import asyncio
from typing import Any

from ase import Atoms
from asebytes import ASEIO, AsyncASEIO, AsyncObjectIO, ObjectIO

#: The facades by name, sync and async.
FACADES: dict[str, tuple[type[Any], type[Any]]] = {
    "ObjectIO": (ObjectIO, AsyncObjectIO),
    "ASEIO": (ASEIO, AsyncASEIO),
}


def row(facade: str, k: int) -> Any:
    """Round ``k``'s row for ``facade``: ``{"v": k}``, or ``Atoms`` with ``info["v"] = k``."""
    if facade == "ASEIO":
        return Atoms("H", positions=[[0.0, 0.0, float(k)]], info={"v": k})
    return {"v": k}


def value(row: Any) -> int:
    """The round a row was written in (see :func:`row`)."""
    if isinstance(row, Atoms):
        return int(row.info["v"])
    return int(row["v"])


def append_and_overwrite(
    location: str,
    rounds: int,
    acked: Any,
    start: Any,
    facade: str = "ObjectIO",
    mode: str = "sync",
) -> None:
    """Per round ``k``: append round ``k``'s row, then overwrite row 0 with it; only after
    both are acknowledged publish ``k`` in ``acked``. Through the sync or the async
    ``facade``."""
    sync, asynchronous = FACADES[facade]
    if not start.wait(60):
        raise TimeoutError("start signal never came")
    if mode == "async":
        asyncio.run(_async_rounds(asynchronous(location), facade, rounds, acked))
        return
    db = sync(location)
    for k in range(1, rounds + 1):
        db.extend([row(facade, k)])
        db[0] = row(facade, k)
        acked.value = k


async def _async_rounds(db: Any, facade: str, rounds: int, acked: Any) -> None:
    for k in range(1, rounds + 1):
        await db.extend([row(facade, k)])
        await db[0].set(row(facade, k))
        acked.value = k
