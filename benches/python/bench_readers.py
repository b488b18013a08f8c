"""Many readers on few cores: aggregate `db[i]` rows/s of N reader processes, and the
latency of one lone reader, in one run.

A DataLoader on a laptop is eight processes reading one store on two cores. Each of our
reads is a round trip to the daemon, made fast by a short busy-poll on both ends; with more
waiters than cores, spinning clients take the core the daemon needs to answer them. The
spin gate (``asebytes_protocol::spin``: a waiter spins only while fewer waiters than cores
spin, machine-wide) is meant to fix that without slowing the lone reader. Measured, side by
side and interleaved:

* ``ours``: the daemon with the spin gate (the default);
* ``ours-ungated``: the same build with ``ASEBYTES_SPIN_GATE=0`` (everyone spins: before);
* ``ref``: asebytes 0.3.3 reading the same LMDB file in-process in every reader process.

Each reader walks the store in a random order for a fixed time and checks every frame it
reads against the data written (a wrong frame fails the benchmark).

Usage: ``python benches/python/bench_readers.py --ref-python .venv-ref/bin/python``
(part of ``just bench``). Results: ``benches/results/readers.{json,md}``.
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

sys.path.insert(0, str(Path(__file__).parent))

from bench_latency import N_FRAMES, make_frames

ROOT = Path(__file__).resolve().parents[2]
PEERS = ("ours", "ours-ungated", "ref")


def reader(path: str, seconds: float, seed: int, start_at: float) -> dict:
    """One reader process: random `db[i]` for `seconds`, every frame checked."""
    import numpy as np
    from asebytes import ASEIO

    frames = make_frames()
    db = ASEIO(path)
    n = len(db)
    assert n == N_FRAMES, f"expected {N_FRAMES} rows, found {n}"
    order = np.random.default_rng(seed).integers(0, n, size=1 << 16)
    _ = db[0]  # connect / open before the clock starts
    while time.time() < start_at:
        time.sleep(0.001)
    rows = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for i in order[:256]:
            atoms = db[int(i)]
            if atoms.info["step"] != frames[int(i)].info["step"]:
                raise AssertionError(f"row {i} read back wrong")
        rows += 256
        order = np.roll(order, 256)
        if time.perf_counter() >= deadline:
            break
    return {"rows": rows, "seconds": time.perf_counter() - t0}


def lone(path: str, repeats: int) -> dict:
    """One reader alone: `db[i]` in order, µs per frame (median of repeats)."""
    from asebytes import ASEIO

    db = ASEIO(path)
    n = len(db)
    [db[i] for i in range(n)]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            db[i]
        times.append((time.perf_counter() - t0) / n * 1e6)
    return {"us_per_frame": statistics.median(times)}


def seed_store(python: str, path: str, env: dict) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from bench_latency import make_frames; from asebytes import ASEIO;"
        "db = ASEIO(sys.argv[1]); db.extend(make_frames()) if len(db) == 0 else None"
    )
    subprocess.run(
        [python, "-c", code, path, str(Path(__file__).parent)],
        env=env,
        check=True,
        timeout=600,
    )


def run_readers(python: str, path: str, env: dict, n: int, seconds: float) -> dict:
    start_at = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [
                python,
                __file__,
                "--reader",
                path,
                "--seconds",
                str(seconds),
                "--seed",
                str(k),
                "--start-at",
                str(start_at),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(n)
    ]
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            raise SystemExit(f"a reader failed ({p.returncode})")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    rows = sum(o["rows"] for o in outs)
    wall = max(o["seconds"] for o in outs)
    return {"rows_per_s": rows / wall, "per_reader": [o["rows"] for o in outs]}


def run_lone(python: str, path: str, env: dict, repeats: int) -> dict:
    out = subprocess.run(
        [python, __file__, "--lone", path, "--repeats", str(repeats)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--reader", help=argparse.SUPPRESS)
    ap.add_argument("--lone", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.reader:
        print(json.dumps(reader(a.reader, a.seconds, a.seed, a.start_at)))
        return
    if a.lone:
        print(json.dumps(lone(a.lone, a.repeats)))
        return

    with (
        tempfile.TemporaryDirectory(prefix="asebytes-readers-") as tmp,
        private_daemon(tmp) as base,
        private_daemon(tmp, {**base, "ASEBYTES_SPIN_GATE": "0"}, "u") as ungated,
    ):
        peers = {
            "ours": (sys.executable, str(Path(tmp) / "ours.lmdb"), base),
            "ours-ungated": (sys.executable, str(Path(tmp) / "ungated.lmdb"), ungated),
            "ref": (a.ref_python, str(Path(tmp) / "ref.lmdb"), base),
        }
        results: dict[str, dict[str, list[float]]] = {
            k: {"rows_per_s": [], "lone_us": []} for k in peers
        }
        for python, path, env in peers.values():
            seed_store(python, path, env)
        for _ in range(a.rounds):
            for name, (python, path, env) in peers.items():
                got = run_readers(python, path, env, a.readers, a.seconds)
                results[name]["rows_per_s"].append(got["rows_per_s"])
                results[name]["lone_us"].append(
                    run_lone(python, path, env, a.repeats)["us_per_frame"]
                )

    med = {
        k: {m: statistics.median(v) for m, v in r.items()} for k, r in results.items()
    }
    res = {
        "machine": {"cpus": os.cpu_count()},
        "readers": a.readers,
        "seconds": a.seconds,
        "frames": N_FRAMES,
        "median": med,
        "rounds": results,
        "ratios": {
            "aggregate_ours_vs_ref": med["ours"]["rows_per_s"]
            / med["ref"]["rows_per_s"],
            "aggregate_ours_vs_ungated": med["ours"]["rows_per_s"]
            / med["ours-ungated"]["rows_per_s"],
            "lone_ours_vs_ungated": med["ours"]["lone_us"]
            / med["ours-ungated"]["lone_us"],
        },
    }
    out_dir = ROOT / "benches" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "readers.json").write_text(json.dumps(res, indent=2) + "\n")
    r = res["ratios"]
    lines = [
        (
            f"{a.readers} reader processes, random `db[i]` on {N_FRAMES} ethanol frames, "
            f"{os.cpu_count()} CPUs; medians of {a.rounds} interleaved rounds."
        ),
        "",
        "| peer | aggregate rows/s | lone reader, µs per `db[i]` |",
        "|---|---|---|",
    ]
    for k in PEERS:
        lines.append(f"| {k} | {med[k]['rows_per_s']:,.0f} | {med[k]['lone_us']:.1f} |")
    lines += [
        "",
        (
            f"- aggregate, ours vs asebytes 0.3.3 in-process: **{r['aggregate_ours_vs_ref']:.2f}×** "
            "(target ≥ 1.0)"
        ),
        f"- aggregate, spin gate vs everyone spinning: {r['aggregate_ours_vs_ungated']:.2f}×",
        (
            f"- lone reader, spin gate vs everyone spinning: {r['lone_ours_vs_ungated']:.2f}× "
            "(≈ 1: the gate costs a lone reader nothing)"
        ),
    ]
    text = "\n".join(lines) + "\n"
    (out_dir / "readers.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
