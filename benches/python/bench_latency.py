"""Latency and read-speed benchmark: asebytes-rs through its daemon vs the reference asebytes.

Measures, side by side in one run (peers interleaved, each in its own process):

* the round trip of a tiny request (``ping``) from Python through the daemon, with client and
  daemon unpinned as users run them (p50 / p99);
* ``ASEIO`` reads of 1000 ethanol-sized frames (9 atoms, energy, forces, stress) one by one
  (``db[i]``) and as a view (``db[0:1000].to_list()``), ours vs the in-process reference
  ``asebytes==0.3.3`` on LMDB;
* the same view read through the async facade once it exists (reported as n/a before).

Every timed read is checked against the written data: a benchmark that reads wrong data fails.

Usage: ``python benches/python/bench_latency.py --ref-python .venv-ref/bin/python``
(``just bench-latency``). Results go to ``benches/results/latency.json`` and ``.md``.
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

N_FRAMES = 1000
SEED = 42
ROOT = Path(__file__).resolve().parents[2]


def make_frames(n: int = N_FRAMES, seed: int = SEED) -> list:
    """Ethanol-sized frames, identical in every virtualenv (same seed, same numpy)."""
    import numpy as np
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = Atoms("C2H6O", positions=rng.normal(size=(9, 3)))
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=float(rng.normal()),
            forces=rng.normal(size=(9, 3)),
            stress=rng.normal(size=6),
        )
        atoms.info["step"] = i
        frames.append(atoms)
    return frames


def checksum(frames: list) -> float:
    """A number that changes if any position or energy read back is wrong."""
    total = 0.0
    for k, atoms in enumerate(frames):
        total += float(atoms.positions.sum()) * (k + 1) + atoms.get_potential_energy()
    return round(total, 6)


def timed(fn, repeats: int) -> tuple[list[float], object]:
    out = None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def worker(impl: str, path: str, repeats: int) -> dict:
    """Runs inside the peer's own process and virtualenv; prints one JSON line."""
    from asebytes import ASEIO

    frames = make_frames()
    expected = checksum(frames)
    db = ASEIO(path)
    if len(db) == 0:
        db.extend(frames)
    n = len(db)
    assert n == N_FRAMES, f"{impl}: expected {N_FRAMES} rows, found {n}"

    def one_by_one():
        return [db[i] for i in range(n)]

    def as_view():
        return db[0:n].to_list()

    one_by_one()  # warm caches and connections equally for both peers
    t_single, got = timed(one_by_one, repeats)
    assert checksum(got) == expected, f"{impl}: one-by-one read returned wrong data"
    t_view, got = timed(as_view, repeats)
    assert checksum(got) == expected, f"{impl}: view read returned wrong data"
    result = {
        "impl": impl,
        "single_us_per_frame": statistics.median(t_single) / n * 1e6,
        "view_us_per_frame": statistics.median(t_view) / n * 1e6,
    }
    if impl == "ours":
        from asebytes import _native

        lat = []
        for _ in range(2000):
            _native.ping()
        for _ in range(20000):
            t0 = time.perf_counter_ns()
            _native.ping()
            lat.append(time.perf_counter_ns() - t0)
        lat.sort()
        result["ping_p50_us"] = lat[len(lat) // 2] / 1e3
        result["ping_p99_us"] = lat[int(len(lat) * 0.99)] / 1e3
        result.update(async_view(path, n, expected, repeats))
    return result


def async_view(path: str, n: int, expected: float, repeats: int) -> dict:
    """The async facade's view read, when this build has it."""
    try:
        from asebytes import AsyncASEIO
    except (ImportError, AttributeError):
        return {}
    import asyncio

    async def run() -> list[float]:
        db = AsyncASEIO(path)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            got = await db[0:n].to_list()
            times.append(time.perf_counter() - t0)
        assert checksum(got) == expected, "async view read returned wrong data"
        return times

    return {"async_view_us_per_frame": statistics.median(asyncio.run(run())) / n * 1e6}


def run_peer(python: str, impl: str, path: str, repeats: int, env: dict) -> dict:
    cmd = [
        python,
        __file__,
        "--worker",
        impl,
        "--path",
        path,
        "--repeats",
        str(repeats),
    ]
    out = subprocess.run(
        cmd, env=env, check=True, capture_output=True, text=True, timeout=900
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per peer")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per round")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.repeats)))
        return

    with (
        tempfile.TemporaryDirectory(prefix="asebytes-bench-") as tmp,
        private_daemon(tmp) as env,
    ):
        peers = {
            "ours": (sys.executable, str(Path(tmp) / "ours.lmdb")),
            "ref": (args.ref_python, str(Path(tmp) / "ref.lmdb")),
        }
        rounds: dict[str, list[dict]] = {k: [] for k in peers}
        for _ in range(args.rounds):
            for impl, (python, path) in peers.items():
                rounds[impl].append(run_peer(python, impl, path, args.repeats, env))

    def med(impl: str, key: str) -> float | None:
        vals = [r[key] for r in rounds[impl] if key in r]
        return statistics.median(vals) if vals else None

    res = {
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "frames": N_FRAMES,
        "ours": {k: med("ours", k) for k in rounds["ours"][0] if k != "impl"},
        "ref": {k: med("ref", k) for k in rounds["ref"][0] if k != "impl"},
    }
    res["ratios"] = {
        "single": res["ours"]["single_us_per_frame"]
        / res["ref"]["single_us_per_frame"],
        "view": res["ours"]["view_us_per_frame"] / res["ref"]["view_us_per_frame"],
    }
    if res["ours"].get("async_view_us_per_frame"):
        res["ratios"]["async_view_vs_sync_view"] = (
            res["ours"]["async_view_us_per_frame"] / res["ours"]["view_us_per_frame"]
        )
    out_dir = ROOT / "benches" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latency.json").write_text(json.dumps(res, indent=2) + "\n")
    o, r = res["ours"], res["ref"]
    lines = [
        "| measurement | asebytes-rs (daemon) | asebytes 0.3.3 (in-process) | ratio | target |",
        "|---|---|---|---|---|",
        f"| ping round trip p50 / p99 | {o['ping_p50_us']:.1f} / {o['ping_p99_us']:.1f} µs | n/a | | p50 ≤ 8 µs |",
        f"| `db[i]` one by one, per frame | {o['single_us_per_frame']:.1f} µs | {r['single_us_per_frame']:.1f} µs | {res['ratios']['single']:.2f} | ≤ 0.6 |",
        f"| `db[0:1000].to_list()`, per frame | {o['view_us_per_frame']:.1f} µs | {r['view_us_per_frame']:.1f} µs | {res['ratios']['view']:.2f} | ≤ 0.4 |",
    ]
    if "async_view_vs_sync_view" in res["ratios"]:
        lines.append(
            f"| `await db[0:1000].to_list()`, per frame | {o['async_view_us_per_frame']:.1f} µs | n/a | "
            f"{res['ratios']['async_view_vs_sync_view']:.2f} (vs sync view) | ≤ 1.0 |"
        )
    table = "\n".join(lines) + "\n"
    (out_dir / "latency.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
