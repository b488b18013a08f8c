"""Functions run in child processes by test_processes.py (importable under 'spawn')."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from ase import Atoms
from asebytes import ASEIO, ObjectIO, _native


def tagged_atoms(writer: int, batch: int, k: int) -> Atoms:
    atoms = Atoms("H2", positions=np.full((2, 3), float(k)))
    atoms.info.update({"w": writer, "b": batch, "k": k})
    return atoms


def append_batches(
    location: str, writer: int, size: int, rounds: int, start: Any
) -> int:
    """Wait for ``start``, then append ``rounds`` batches of ``size`` tagged Atoms."""
    db = ASEIO(location)
    if not start.wait(60):
        raise TimeoutError("start signal never came")
    for batch in range(rounds):
        db.extend([tagged_atoms(writer, batch, k) for k in range(size)])
    return writer


def write_and_ack(
    location: str, size: int, rounds: int, issued: Any, acked: Any, lock: Any
) -> None:
    """Append batches; count rows as *issued* before each extend, *acknowledged* after."""
    db = ObjectIO(location)
    for r in range(rounds):
        with lock:
            issued.value += size
        new_len = db.extend([{"r": r, "k": k} for k in range(size)])
        with lock:
            acked.value = max(acked.value, new_len)


def watch_len(
    location: str,
    issued: Any,
    acked: Any,
    lock: Any,
    watching: Any,
    done: Any,
    size: int,
) -> dict[str, Any]:
    """Poll len() until ``done``; report every violation of the length rules.

    ``watching`` is set after the first poll, so the writers start only once the
    watcher is looking (a spawned process can take longer to start than they run).
    """
    db = ObjectIO(location)
    seen: list[int] = []
    problems: list[str] = []
    while True:
        finished = done.is_set()
        with lock:
            floor = acked.value
        n = len(db)
        with lock:
            ceiling = issued.value
        if seen and n < seen[-1]:
            problems.append(f"len went backwards: {seen[-1]} -> {n}")
        if n < floor:
            problems.append(f"len {n} behind an acknowledged length {floor}")
        if n > ceiling:
            problems.append(f"len {n} ahead of the {ceiling} rows issued")
        if n % size:
            problems.append(f"len {n} splits a batch of {size}")
        seen.append(n)
        watching.set()
        if finished:
            return {
                "problems": problems,
                "polls": len(seen),
                "distinct": len(set(seen)),
            }


def extend_huge(location: str, rows: int, width: int, about_to_extend: Any) -> None:
    db = ObjectIO(location)
    batch = [{"k": k, "x": np.full(width, float(k))} for k in range(rows)]
    about_to_extend.set()
    db.extend(batch)
    os._exit(0)


def use_inherited(db: Any, queue: Any) -> None:
    """Use a facade inherited through fork (or received by pickling under spawn)."""
    try:
        before = len(db)
        new_len = db.extend([{"child": os.getpid()}])
        socket = _native.socket_path()
        queue.put(("ok", before, db[new_len - 1]["child"], os.getpid(), socket))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        queue.put(("error", repr(exc), None, os.getpid(), None))


def report(queue: Any, fn_name: str, *args: Any) -> None:
    """Run ``fn_name(*args)`` and put ``("ok", result)`` or ``("error", repr)`` on ``queue``."""
    try:
        queue.put(("ok", globals()[fn_name](*args)))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        queue.put(("error", repr(exc)))
