"""Read-only sources benchmark: ASE files and aselmdb shards through the daemon against the
tools that own the formats, side by side in one run (issue 9).

On one 10,000-frame dataset (16-atom periodic cells with energy, forces, stress), written
once per format:

* extxyz and traj: ours (``ASEIO(path)``) vs ``ase.io.read(path, index=i)`` and vs
  asebytes 0.3.3's ``ASEReadOnlyBackend`` (``ASEIO(path)`` in ``.venv-ref``, a subprocess);
  ``random_single`` (one frame at a random index, fresh indices) and ``read_trajectory``
  (every frame in order; ASE's peer is ``ase.io.iread``);
* aselmdb: ours vs ``ase.db.connect(path, type="aselmdb")`` (ase-db-backends 0.11),
  ``row.toatoms()`` with ``key_value_pairs``/``data`` in ``info`` as fairchem does.

The reference asebytes and ``ase.io.read(index=i)`` re-parse a text file from its start
for every random read (O(i)), so they get fewer random reads (``--slow-reads``); every
number is a time per frame. Every read is checked against the frames written.

Usage: ``python benches/python/bench_readonly.py --ref-python .venv-ref/bin/python``
(``just bench-readonly``). Results: ``benches/results/readonly.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench_daemon import private_daemon

ROOT = Path(__file__).resolve().parents[2]
SEED = 9


def make_frames(n: int) -> list:
    import numpy as np
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(SEED)
    base = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 4))
    frames = []
    for i in range(n):
        a = base.copy()
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        a.calc = SinglePointCalculator(
            a,
            energy=float(-i),
            forces=rng.normal(size=(len(a), 3)),
            stress=rng.normal(size=6),
        )
        frames.append(a)
    return frames


def per_frame(fn, count: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / count


def check(atoms, i: int) -> None:
    assert atoms.get_potential_energy() == -i, (i, atoms.get_potential_energy())


REF_CODE = """
import json, sys, time
import numpy as np
from asebytes import ASEIO
path, idx = sys.argv[1], json.loads(sys.argv[2])
db = ASEIO(path)
t0 = time.perf_counter()
for i in idx:
    assert db[i].get_potential_energy() == -i
print(json.dumps((time.perf_counter() - t0) / len(idx)))
"""


def ref_random(ref_python: str, path: str, idx: list[int]) -> float:
    out = subprocess.run(
        [ref_python, "-c", textwrap.dedent(REF_CODE), path, json.dumps(idx)],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return float(out.stdout.strip())


def bench_ase_file(
    kind: str, path: str, n: int, fast: list[int], slow: list[int], ref: str | None
) -> dict:
    import ase.io
    import asebytes

    res: dict[str, dict[str, float | None]] = {
        "random_single": {},
        "read_trajectory": {},
    }
    t0 = time.perf_counter()
    db = asebytes.ASEIO(path)
    assert len(db) == n
    res["open_first"] = {"ours": time.perf_counter() - t0}

    def ours_random() -> None:
        for i in fast:
            check(db[i], i)

    def ours_traj() -> None:
        for i, a in enumerate(db):
            check(a, i)

    def ase_random() -> None:
        for i in slow:
            check(ase.io.read(path, index=i), i)

    def ase_traj() -> None:
        for i, a in enumerate(ase.io.iread(path)):
            check(a, i)

    res["random_single"]["ours"] = per_frame(ours_random, len(fast))
    res["random_single"]["ase.io.read"] = per_frame(ase_random, len(slow))
    res["random_single"]["asebytes 0.3.3"] = (
        ref_random(ref, path, slow) if ref else None
    )
    res["read_trajectory"]["ours"] = per_frame(ours_traj, n)
    res["read_trajectory"]["ase.io.iread"] = per_frame(ase_traj, n)
    return res


def bench_aselmdb(path: str, n: int, fast: list[int]) -> dict:
    import ase.db
    import asebytes

    db = asebytes.ASEIO(path)
    assert len(db) == n
    peer = ase.db.connect(path, type="aselmdb", readonly=True)

    def peer_atoms(row):
        a = row.toatoms()
        a.info.update(row.key_value_pairs)
        a.info.update(row.data)
        return a

    def ours_random() -> None:
        for i in fast:
            check(db[i], i)

    def peer_random() -> None:
        for i in fast:
            check(peer_atoms(peer._get_row_by_index(i)), i)

    def ours_traj() -> None:
        for i, a in enumerate(db):
            check(a, i)

    def peer_traj() -> None:
        for i, row in enumerate(peer.select()):
            check(peer_atoms(row), i)

    return {
        "random_single": {
            "ours": per_frame(ours_random, len(fast)),
            "ase.db (aselmdb)": per_frame(peer_random, len(fast)),
        },
        "read_trajectory": {
            "ours": per_frame(ours_traj, n),
            "ase.db (aselmdb)": per_frame(peer_traj, n),
        },
    }


def write_sources(workdir: Path, frames: list) -> dict[str, str]:
    import ase.db
    import ase.io

    paths = {
        "extxyz": str(workdir / "bench.extxyz"),
        "traj": str(workdir / "bench.traj"),
        "aselmdb": str(workdir / "bench.aselmdb"),
    }
    ase.io.write(paths["extxyz"], frames, format="extxyz")
    ase.io.write(paths["traj"], frames)
    db = ase.db.connect(paths["aselmdb"], type="aselmdb")
    with db:
        for a in frames:
            db.write(a)
    return paths


def report(results: dict, n: int) -> str:
    lines = [
        f"# Read-only sources ({n} frames of 16 atoms; time per frame; ratio = ours / peer)",
        "",
        "| format | operation | peer | peer µs/frame | ours µs/frame | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for fmt, ops in results.items():
        for op in ("random_single", "read_trajectory"):
            ours = ops[op]["ours"]
            for peer, t in ops[op].items():
                if peer == "ours":
                    continue
                if t is None:
                    lines.append(
                        f"| {fmt} | {op} | {peer} | n/a | {ours * 1e6:.1f} | n/a |"
                    )
                else:
                    lines.append(
                        f"| {fmt} | {op} | {peer} | {t * 1e6:.1f} | {ours * 1e6:.1f} | {ours / t:.4f} |"
                    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--fast-reads", type=int, default=2000)
    ap.add_argument("--slow-reads", type=int, default=40)
    ap.add_argument("--ref-python", default=None)
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "readonly"))
    args = ap.parse_args()
    import numpy as np

    rng = np.random.default_rng(SEED + 1)
    fast = [int(i) for i in rng.integers(0, args.frames, size=args.fast_reads)]
    slow = [int(i) for i in rng.integers(0, args.frames, size=args.slow_reads)]
    frames = make_frames(args.frames)
    with (
        tempfile.TemporaryDirectory(prefix="abench-ro-") as tmp,
        private_daemon(tmp) as env,
    ):
        os.environ.update(env)  # ours runs in this process
        paths = write_sources(Path(tmp), frames)
        results = {
            "extxyz": bench_ase_file(
                "extxyz", paths["extxyz"], args.frames, fast, slow, args.ref_python
            ),
            "traj": bench_ase_file(
                "traj", paths["traj"], args.frames, fast, slow, args.ref_python
            ),
            "aselmdb": bench_aselmdb(paths["aselmdb"], args.frames, fast),
        }
    text = report(results, args.frames)
    Path(args.out + ".json").write_text(json.dumps(results, indent=2) + "\n")
    Path(args.out + ".md").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
