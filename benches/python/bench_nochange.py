"""Reads while nothing changed: the row-at-a-time patterns, with and without the published
generation and read-ahead cache, against the reference asebytes 0.3.3, in one run.

Peers, interleaved round by round, each in its own process:

* ``cached``: asebytes-rs through its daemon, as shipped (``len()`` from the published
  generation, walks served by the read-ahead cache);
* ``uncached``: the same build with ``ASEBYTES_SHARED_GEN=0`` (every ``len`` and every row is
  a round trip, as before the cache existed);
* ``tracked``: the same build with ``ASEBYTES_GC_UNTRACK=0`` (every part of a returned
  ``Atoms`` tracked by Python's cycle collector, as before it left the cycle-free parts out);
* ``ref``: asebytes 0.3.3 in-process on its own LMDB file.

Patterns (1000 ethanol-sized frames, per frame or per call, median of rounds):

* ``ASEIO db[i]`` in order; in a random order, on a fresh handle (cold: nothing cached yet)
  and again on the same handle (warm: every row was read before and nothing changed since);
* ``ObjectIO db.get(i, keys=["arrays.positions"])`` in order;
* ``ObjectIO db[i]`` in order (dicts, no ``Atoms``);
* ``len(db)``;
* asyncio: ``await db[i]`` of ``AsyncASEIO`` in order, on a fresh handle, and
  ``await db.len()`` (the reference runs its own async facade).

Every timed read is checked against the written data. Usage:
``python benches/python/bench_nochange.py --ref-python .venv-ref/bin/python``
(``just bench-nochange``). Results: ``benches/results/nochange.json`` and ``.md``
(``--out DIR`` writes them elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_daemon import private_daemon

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import N_FRAMES, checksum, make_frames

ROOT = Path(__file__).resolve().parents[2]
PEERS = ("cached", "uncached", "tracked", "ref")
LEN_CALLS = 20_000


def per_item(fn, items: int, repeats: int) -> tuple[float, object]:
    """Median seconds per item over ``repeats`` calls of ``fn``, and its last result."""
    out = None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) / items)
    return statistics.median(times) * 1e6, out


async def per_item_async(make, items: int, repeats: int) -> tuple[float, object]:
    """``per_item`` of a coroutine function."""
    out = None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = await make()
        times.append((time.perf_counter() - t0) / items)
    return statistics.median(times) * 1e6, out


def worker(path: str, repeats: int, part: str, ref: bool) -> dict:
    """Runs in the peer's own process and virtualenv; returns µs per frame (or call).

    ``part`` is ``atoms`` (ASEIO patterns), ``object`` (ObjectIO patterns and ``len``) or
    ``async`` (the asyncio facade): the reference cannot open one LMDB environment twice
    in a process, so each part runs in its own, and the reference reuses its one handle
    where ours takes a fresh one (a cold cache)."""
    import numpy as np
    from asebytes import ASEIO, ObjectIO

    frames = make_frames()
    if part == "atoms":
        db = ASEIO(path)
        if len(db) == 0:
            db.extend(frames)
        return atoms_part(db, path, repeats, checksum(frames), ref)
    if part == "async":
        import asyncio

        return asyncio.run(async_part(path, repeats, checksum(frames), ref))
    positions = [f.positions for f in frames]
    obj = ObjectIO(path)
    n = len(obj)
    assert n == N_FRAMES, f"expected {N_FRAMES} rows, found {n}"
    fresh = (lambda: obj) if ref else (lambda: ObjectIO(path))
    res: dict[str, float] = {}
    keys = ["arrays.positions"]

    def get_positions() -> list:
        h = fresh()
        return [h.get(i, keys=keys) for i in range(n)]

    res["get_positions"], got = per_item(get_positions, n, repeats)
    assert all(
        np.array_equal(r["arrays.positions"], p) for r, p in zip(got, positions)
    ), "get(keys) returned wrong data"

    def objects() -> list:
        h = fresh()
        return [h[i] for i in range(n)]

    res["objectio_in_order"], got = per_item(objects, n, repeats)
    assert all(
        np.array_equal(r["arrays.positions"], p) for r, p in zip(got, positions)
    ), "ObjectIO read returned wrong data"

    def lens() -> int:
        return sum(len(obj) for _ in range(LEN_CALLS))

    res["len"], total = per_item(lens, LEN_CALLS, repeats)
    assert total == n * LEN_CALLS
    return res


def atoms_part(db, path: str, repeats: int, expected: float, ref: bool) -> dict:
    """``ASEIO db[i]`` in order, and in a random order on a fresh and a warm handle."""
    import numpy as np
    from asebytes import ASEIO

    n = len(db)
    assert n == N_FRAMES, f"expected {N_FRAMES} rows, found {n}"
    order = np.random.default_rng(7).permutation(n).tolist()
    fresh = (lambda: db) if ref else (lambda: ASEIO(path))
    res: dict[str, float] = {}

    def in_order(h) -> list:
        return [h[i] for i in range(n)]

    def shuffled(h) -> list:
        got = [None] * n
        for i in order:
            got[i] = h[i]
        return got

    in_order(db)  # warm connections and page cache equally for every peer
    res["atoms_in_order"], got = per_item(lambda: in_order(fresh()), n, repeats)
    assert checksum(got) == expected, "in-order read returned wrong data"
    res["atoms_random_cold"], got = per_item(lambda: shuffled(fresh()), n, repeats)
    assert checksum(got) == expected, "random read returned wrong data"
    warm = fresh()
    shuffled(warm)
    res["atoms_random_warm"], got = per_item(lambda: shuffled(warm), n, repeats)
    assert checksum(got) == expected, "random read returned wrong data"
    return res


async def async_part(path: str, repeats: int, expected: float, ref: bool) -> dict:
    """``await db[i]`` of ``AsyncASEIO`` in order, and ``await db.len()``."""
    from asebytes import AsyncASEIO

    db = AsyncASEIO(path)
    n = await db.len()
    assert n == N_FRAMES, f"expected {N_FRAMES} rows, found {n}"
    fresh = (lambda: db) if ref else (lambda: AsyncASEIO(path))
    res: dict[str, float] = {}

    async def in_order(h) -> list:
        return [await h[i] for i in range(n)]

    await in_order(db)  # warm the connection and page cache
    res["async_atoms_in_order"], got = await per_item_async(
        lambda: in_order(fresh()), n, repeats
    )
    assert checksum(got) == expected, "async in-order read returned wrong data"

    async def lens() -> int:
        total = 0
        for _ in range(LEN_CALLS):
            total += await db.len()
        return total

    res["async_len"], total = await per_item_async(lens, LEN_CALLS, repeats)
    assert total == n * LEN_CALLS
    return res


def run_peer(python: str, path: str, repeats: int, env: dict, ref: bool) -> dict:
    res: dict = {}
    for part in ("atoms", "object", "async"):
        cmd = [python, __file__, "--worker", part, "--path", path]
        cmd += ["--repeats", str(repeats)] + (["--ref"] if ref else [])
        out = subprocess.run(
            cmd, env=env, check=True, capture_output=True, text=True, timeout=1800
        )
        res.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return res


ROWS = [
    ("atoms_in_order", "`ASEIO db[i]`, in order", 0.25),
    ("atoms_random_cold", "`ASEIO db[i]`, random order, fresh handle", 0.35),
    ("atoms_random_warm", "`ASEIO db[i]`, random order, rows read before", 0.35),
    ("get_positions", '`db.get(i, keys=["arrays.positions"])`, in order', 0.5),
    ("objectio_in_order", "`ObjectIO db[i]`, in order", None),
    ("len", "`len(db)`, per call", None),
    ("async_atoms_in_order", "`AsyncASEIO await db[i]`, in order", None),
    ("async_len", "`await db.len()`, per call", None),
]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per peer")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per round")
    ap.add_argument(
        "--out",
        default=str(ROOT / "benches" / "results"),
        help="directory for nochange.json and nochange.md",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--ref", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.path, args.repeats, args.worker, args.ref)))
        return

    with (
        tempfile.TemporaryDirectory(prefix="asebytes-bench-") as tmp,
        private_daemon(tmp) as env,
    ):
        ours = str(Path(tmp) / "ours.lmdb")
        peers = {
            "cached": (sys.executable, ours, env),
            "uncached": (sys.executable, ours, {**env, "ASEBYTES_SHARED_GEN": "0"}),
            # The same build with every part of an Atoms tracked by the cyclic GC (before).
            "tracked": (sys.executable, ours, {**env, "ASEBYTES_GC_UNTRACK": "0"}),
            "ref": (args.ref_python, str(Path(tmp) / "ref.lmdb"), env),
        }
        rounds: dict[str, list[dict]] = {k: [] for k in peers}
        for _ in range(args.rounds):
            for name, (python, path, peer_env) in peers.items():
                rounds[name].append(
                    run_peer(python, path, args.repeats, peer_env, name == "ref")
                )

    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for name, rs in rounds.items()
    }
    res = {
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "frames": N_FRAMES,
        "note": "2 vCPUs shared with other jobs while measured: compare ratios, not µs",
        "us": med,
        "ratios_vs_ref": {k: med["cached"][k] / med["ref"][k] for k in med["ref"]},
        "ratios_vs_uncached": {
            k: med["cached"][k] / med["uncached"][k] for k in med["uncached"]
        },
        "ratios_vs_tracked": {
            k: med["cached"][k] / med["tracked"][k] for k in med["tracked"]
        },
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "nochange.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [
        (
            "| pattern (µs per frame or call) | cached | uncached (`ASEBYTES_SHARED_GEN=0`) "
            "| GC-tracked (`ASEBYTES_GC_UNTRACK=0`) | asebytes 0.3.3 | cached / 0.3.3 "
            "| cached / uncached | cached / GC-tracked | target vs 0.3.3 |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label, target in ROWS:
        c, u, r = med["cached"][key], med["uncached"][key], med["ref"][key]
        t = med["tracked"][key]
        goal = f"≤ {target}" if target else ""
        lines.append(
            f"| {label} | {c:.2f} | {u:.2f} | {t:.2f} | {r:.2f} | {c / r:.2f} "
            f"| {c / u:.2f} | {c / t:.2f} | {goal} |"
        )
    table = "\n".join(lines) + "\n"
    (out_dir / "nochange.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
