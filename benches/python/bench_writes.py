"""The write path, before and after, in one run: ``extend`` of a trajectory, one append at
a time (durable and ``durability="os"``), and several processes appending one frame at a
time (group commit), against the reference asebytes 0.3.3 and extxyz appends.

Configurations that select the old path in the same build:

* ``extend``: ``ASEBYTES_ATOMS_ENCODE=python`` (every ``Atoms`` through ``atoms_to_dict``
  in Python) against the default (converted in Rust);
* group commit: a daemon started with ``ASEBYTES_GROUP_COMMIT_US=0`` (no window; queued
  writes still merge) against the default window.

Every configuration runs in its own processes, interleaved over ``--rounds`` rounds; the
median per frame is reported, and every store is read back and counted. Results:
``benches/results/writes.{json,md}``. The machine may be shared: compare ratios of one
run, not absolute numbers across runs.

``python benches/python/bench_writes.py [--quick] [--ref-python .venv-ref/bin/python]``
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
from typing import Any

from bench_daemon import private_daemon

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def frames(n: int, offset: int = 0) -> list[Any]:
    """Ethanol-sized frames with a calculator, seeded by index."""
    import numpy as np
    from ase.build import molecule
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    base = molecule("CH3CH2OH")
    for i in range(offset, offset + n):
        rng = np.random.default_rng(i)
        atoms = base.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.info["step"] = i
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(rng.normal()), forces=rng.normal(size=(len(atoms), 3))
        )
        out.append(atoms)
    return out


# ----------------------------------------------------------------------- worker side


def work(kind: str, path: str, n: int, offset: int, start_at: float) -> dict[str, Any]:
    """One timed measurement in this process; prints nothing else."""
    data = frames(n, offset)
    if kind == "extxyz":
        from ase.io import write

        while time.time() < start_at:
            time.sleep(0.001)
        t = time.perf_counter()
        for atoms in data:
            write(path, atoms, format="extxyz", append=True)
        return {"seconds": time.perf_counter() - t, "frames": n}
    from asebytes import ASEIO

    options = {"durability": "os"} if kind.endswith("-os") else {}
    db = ASEIO(path, **options)
    len(db)  # opened (daemon started) before the clock
    while time.time() < start_at:
        time.sleep(0.001)
    t = time.perf_counter()
    if kind.startswith("extend"):
        db.extend(data)
    else:
        for atoms in data:
            db.extend([atoms])  # the reference's append() goes through insert
    return {"seconds": time.perf_counter() - t, "frames": n}


# ----------------------------------------------------------------------- driver side


#: scenario -> list of (configuration label, kind, python, extra env).
def scenarios(ref: str) -> dict[str, list[tuple[str, str, str, dict[str, str]]]]:
    ours = sys.executable
    py_encode = {"ASEBYTES_ATOMS_ENCODE": "python"}
    no_window = {"ASEBYTES_GROUP_COMMIT_US": "0"}
    return {
        "extend": [
            ("ours, Atoms converted in Rust", "extend", ours, {}),
            ("ours, Atoms converted in Python (before)", "extend", ours, py_encode),
            ("asebytes 0.3.3", "extend", ref, {}),
        ],
        "append_1proc": [
            ("ours durable", "append", ours, {}),
            ("ours durable, Python conversion (before)", "append", ours, py_encode),
            ('ours durability="os"', "append-os", ours, {}),
            ("asebytes 0.3.3", "append", ref, {}),
            ("extxyz (never syncs)", "extxyz", ours, {}),
        ],
        "append_4proc": [
            ("ours durable, group-commit window", "append", ours, {}),
            ("ours durable, no window (before)", "append", ours, no_window),
            ('ours durability="os"', "append-os", ours, {}),
        ],
    }


def run_config(
    tmp: Path,
    key: str,
    kind: str,
    python: str,
    env_extra: dict[str, str],
    procs: int,
    n: int,
    timeout: float,
) -> dict[str, Any]:
    suffix = ".xyz" if kind == "extxyz" else ".lmdb"
    path = str(tmp / f"{key}{suffix}")
    # One daemon per configuration, so its environment is the configuration's.
    with private_daemon(tmp, dict(os.environ, **env_extra), key) as env:
        env["PYTHONPATH"] = str(HERE)
        results = run_workers(python, kind, path, env, procs, n, timeout, key)
        stored = count(python, kind, path, env)
    wall = max(r["seconds"] for r in results)
    total = sum(r["frames"] for r in results)
    if stored != total:
        raise SystemExit(f"{key}: {stored} frames stored, {total} written")
    return {"us_per_frame": wall / total * 1e6, "frames": total}


def run_workers(
    python: str,
    kind: str,
    path: str,
    env: dict[str, str],
    procs: int,
    n: int,
    timeout: float,
    key: str,
) -> list[dict[str, Any]]:
    """``procs`` worker processes appending ``n`` frames each, started at one instant."""
    start_at = time.time() + 2.0 + 0.5 * procs
    children = [
        subprocess.Popen(
            [
                python,
                str(Path(__file__)),
                "--worker",
                kind,
                path,
                str(n),
                str(i * n),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(procs)
    ]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=timeout)
        if child.returncode != 0:
            raise SystemExit(f"{key}: worker failed ({child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def count(python: str, kind: str, path: str, env: dict[str, str]) -> int:
    code = (
        "import sys; from ase.io import read; print(len(read(sys.argv[1], ':')))"
        if kind == "extxyz"
        else "import sys, asebytes; print(len(asebytes.ASEIO(sys.argv[1])))"
    )
    out = subprocess.run(
        [python, "-c", code, path], env=env, check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip())


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "# Write path (`bench_writes.py`)",
        "",
        (
            f"{res['meta']['when']}, {res['meta']['cpus']} CPUs shared with other jobs "
            "(ratios within one run are what counts). Median of "
            f"{res['meta']['rounds']} interleaved rounds, µs per frame (ethanol with energy "
            "and forces); for several processes: wall time / all frames."
        ),
        "",
    ]
    for scenario, rows in res["results"].items():
        best_peer = min(
            (r["median"] for r in rows if not r["label"].startswith("ours")),
            default=None,
        )
        lines += [
            f"## {scenario}",
            "",
            "| configuration | µs/frame | vs best peer |",
            "|---|---|---|",
        ]
        for r in rows:
            ratio = f"{r['median'] / best_peer:.2f}×" if best_peer else "—"
            lines.append(f"| {r['label']} | {r['median']:.1f} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small run for development")
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--out", help="results directory (default benches/results[/quick])")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, path, n, offset, start_at = args.worker
        print(json.dumps(work(kind, path, int(n), int(offset), float(start_at))))
        return
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = {
        "extend": 200 if args.quick else 1000,
        "append_1proc": 100 if args.quick else 300,
        "append_4proc": 50 if args.quick else 200,
    }
    procs = {"extend": 1, "append_1proc": 1, "append_4proc": 4}
    table = scenarios(args.ref_python)
    samples: dict[str, dict[str, list[float]]] = {s: {} for s in table}
    with tempfile.TemporaryDirectory(prefix="asebytes-writes-") as tmp:
        for rnd in range(rounds):
            for scenario, configs in table.items():
                for i, (label, kind, python, env_extra) in enumerate(configs):
                    key = f"{scenario}-{i}-{rnd}"
                    r = run_config(
                        Path(tmp),
                        key,
                        kind,
                        python,
                        env_extra,
                        procs[scenario],
                        sizes[scenario],
                        600.0,
                    )
                    samples[scenario].setdefault(label, []).append(r["us_per_frame"])
                    print(
                        f"{scenario:13s} {label:45s} {r['us_per_frame']:9.1f} µs/frame",
                        flush=True,
                    )
    results = {
        s: [
            {"label": label, "median": statistics.median(v), "samples": v}
            for label, v in by_label.items()
        ]
        for s, by_label in samples.items()
    }
    res = {
        "meta": {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpus": os.cpu_count(),
            "rounds": rounds,
            "frames": sizes,
            "processes": procs,
        },
        "results": results,
    }
    out = (
        Path(args.out)
        if args.out
        else ROOT / "benches" / "results" / ("quick" if args.quick else "")
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "writes.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "writes.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
