"""Processes ``test_cache_to.py`` starts: each prints what it saw as its last stdout line.

``fill SRC CACHE K``: prints the daemon's pid, reads frames in a seeded random order and
prints ``progress`` after ``K`` of them, then keeps reading (the test kills the daemon).
``read SRC CACHE``: reads every frame, prints ``{"energies": [...], "fills": n}``.
``ref SRC LMDB CACHE``: run with the reference ``asebytes`` 0.3.3: prints what its
``cache_to`` does with the same inputs (bad type, writable source, in-order reads).
"""

from __future__ import annotations

import json
import random
import sys
import warnings
from typing import Any


def _fills(source: str) -> int:
    import os

    from asebytes import _native

    real = os.path.realpath(source)
    return sum(
        s["cache_fills"]
        for s in _native.daemon_status()["stores"]
        if "?cache_to=" in s["canonical"] and real in s["canonical"]
    )


def fill(source: str, cache: str, k: int) -> None:
    import asebytes
    from asebytes import _native

    db = asebytes.ASEIO(source, cache_to=cache)
    print(_native.daemon_status()["pid"], flush=True)
    order = list(range(len(db)))
    random.Random(7).shuffle(order)
    for n, i in enumerate(order * 1000):
        db[i]
        if n == k:
            print("progress", flush=True)


def read(source: str, cache: str) -> None:
    import asebytes

    db = asebytes.ASEIO(source, cache_to=cache)
    energies = [float(a.calc.results["energy"]) for a in db]
    print(json.dumps({"energies": energies, "fills": _fills(source)}), flush=True)


def read_shuffled(source: str, cache: str, seed: int, out: Any) -> None:
    """Reads every frame in a seeded random order; puts ``{index: energy}`` on ``out``
    (a multiprocessing queue)."""
    import asebytes

    db = asebytes.ASEIO(source, cache_to=cache)
    order = list(range(len(db)))
    random.Random(seed).shuffle(order)
    out.put({i: float(db[i].calc.results["energy"]) for i in order})


def ref(source: str, lmdb: str, cache: str) -> None:
    import asebytes

    out: dict[str, Any] = {}
    try:
        asebytes.ASEIO(source, cache_to=123)
    except TypeError as e:
        out["bad_type"] = str(e)
    import gc

    db = asebytes.ASEIO(lmdb)
    db.extend([a for a in asebytes.ASEIO(source)][:2])
    del db  # the reference opens one LMDB environment once per process
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asebytes.ASEIO(lmdb, cache_to=cache + "-w.lmdb")
    out["warned"] = [str(w.message) for w in caught if w.category is UserWarning]
    db = asebytes.ASEIO(source, cache_to=cache)
    energies = []
    while True:  # its len() raises for ASE files ("Length unknown")
        try:
            energies.append(float(db[len(energies)].calc.results["energy"]))
        except IndexError:
            break
    out["in_order"] = energies
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "fill":
        fill(args[0], args[1], int(args[2]))
    elif mode == "read":
        read(args[0], args[1])
    else:
        ref(*args)
