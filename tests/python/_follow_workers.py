"""Child-process bodies for test_follow.py (importable under 'spawn')."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import numpy as np
from ase import Atoms
from asebytes import ASEIO, AsyncASEIO


def frame(seq: int) -> Atoms:
    atoms = Atoms("H2O", positions=np.full((3, 3), float(seq)))
    atoms.info["seq"] = seq
    return atoms


def append_irregularly(
    location: str, batches: list[int], seed: int, start: Any, out: Any
) -> None:
    """Wait for ``start``, then append ``batches[j]`` frames at a time with random pauses
    (0-40 ms); report ``(first seq, count, wall time the extend returned)`` per batch."""
    db = ASEIO(location)
    rng = random.Random(seed)
    if not start.wait(60):
        raise TimeoutError("start signal never came")
    seq = 0
    acks = []
    for size in batches:
        time.sleep(rng.uniform(0.0, 0.04))
        db.extend([frame(seq + k) for k in range(size)])
        acks.append((seq, size, time.time()))
        seq += size
    out.put(("writer", acks))


def follow_sync(location: str, total: int, ready: Any, out: Any) -> None:
    """Follow with the sync facade until ``total`` frames came; report ``(seq, wall
    time received)`` per frame."""
    db = ASEIO(location)
    got = []
    ready.set()
    for atoms in db.follow(start=0, timeout=30):
        got.append((int(atoms.info["seq"]), time.time()))
        if len(got) == total:
            break
    out.put(("sync", got))


def follow_async(location: str, total: int, ready: Any, out: Any) -> None:
    """The same with the async facade."""

    async def main() -> list[tuple[int, float]]:
        db = AsyncASEIO(location)
        got = []
        ready.set()
        async for atoms in db.follow(start=0, timeout=30):
            got.append((int(atoms.info["seq"]), time.time()))
            if len(got) == total:
                break
        return got

    out.put(("async", asyncio.run(main())))
