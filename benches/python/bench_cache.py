"""``cache_to`` benchmark: epoch 1 vs later epochs of random ``db[i]`` over a 10,000-frame
extxyz, ours (the daemon's read-through cache) against asebytes 0.3.3's ``cache_to``,
side by side in one run (issue 9, part 4).

* ours: ``ASEIO(path, cache_to="cache.lmdb")``; epoch 1 reads every frame in a seeded
  random order (each a miss: the row is fetched from the extxyz and committed to the
  cache), epochs 2 and 3 read every frame in fresh random orders (hits only). The same
  reads without ``cache_to`` are the baseline.
* asebytes 0.3.3 (``.venv-ref``, a subprocess): its epoch 1 re-parses the extxyz from the
  start for every miss (O(i) per frame, ~0.5 s at this size), so it gets a random sample
  (``--slow-reads``) instead of a full epoch; and read out of order its cache gap-fills
  placeholders that it then serves as ``None`` (spec §1.8), so a random epoch 1 cannot
  fill it. Its later epochs are therefore measured on a cache holding every frame,
  written through its own LMDB backend (what a complete in-order epoch 1 would leave,
  without the hours that takes); every frame it returns is checked.

Every read is checked against the frames written. Times are per frame.
Usage: ``python benches/python/bench_cache.py --ref-python .venv-ref/bin/python``
(``just bench-cache``). Results: ``benches/results/cache.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench_daemon import private_daemon

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))

from bench_readonly import make_frames

SEED = 11

REF_CODE = """
import json, random, sys, time
from asebytes import ASEIO
path, cache, filled, n, slow = sys.argv[1:6]
n, slow = int(n), int(slow)
rng = random.Random(int(sys.argv[6]))
out = {}
db = ASEIO(path, cache_to=cache)
sample = rng.sample(range(n), slow)
nones = 0
t0 = time.perf_counter()
for i in sample:
    a = db[i]
    if a is None:  # its gap-filled placeholder served as a hit (spec 1.8)
        nones += 1
    else:
        assert a.get_potential_energy() == -i
out["epoch1"] = (time.perf_counter() - t0) / slow
out["epoch1_none"] = nones
# Later epochs: a cache holding every frame, written through its own LMDB backend.
import gc
import ase.io
full = ASEIO(filled)
full.extend(ase.io.read(path, index=":"))
del full, db  # it opens one LMDB environment once per process
gc.collect()
db = ASEIO(path, cache_to=filled)
for e in (2, 3):
    order = list(range(n))
    rng.shuffle(order)
    t0 = time.perf_counter()
    for i in order:
        assert db[i].get_potential_energy() == -i
    out[f"epoch{e}"] = (time.perf_counter() - t0) / len(order)
print(json.dumps(out))
"""


def ref_epochs(ref_python: str, path: str, work: Path, n: int, slow: int) -> dict:
    proc = subprocess.run(
        [
            ref_python,
            "-c",
            textwrap.dedent(REF_CODE),
            path,
            str(work / "ref-cache.lmdb"),
            str(work / "ref-filled.lmdb"),
            str(n),
            str(slow),
            str(SEED),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=7200,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"asebytes 0.3.3 run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def epoch(db, order: list[int]) -> float:
    t0 = time.perf_counter()
    for i in order:
        assert db[i].get_potential_energy() == -i
    return (time.perf_counter() - t0) / len(order)


def ours(path: str, cache: str, n: int) -> dict:
    import asebytes

    rng = random.Random(SEED)
    orders = []
    for _ in range(3):
        order = list(range(n))
        rng.shuffle(order)
        orders.append(order)
    plain = asebytes.ASEIO(path)
    db = asebytes.ASEIO(path, cache_to=cache)
    out = {"no cache": epoch(plain, orders[0])}
    for e, order in enumerate(orders, start=1):
        out[f"epoch{e}"] = epoch(db, order)
    return out


def report(res: dict, n: int, slow: int) -> str:
    ref = res.get("asebytes 0.3.3") or {}
    lines = [
        f"# cache_to: random db[i] over a {n}-frame extxyz (16 atoms; µs per frame)",
        "",
        "| epoch | ours µs | asebytes 0.3.3 µs | ratio ours / ref |",
        "|---|---|---|---|",
    ]
    for e in ("epoch1", "epoch2", "epoch3"):
        o = res["ours"][e] * 1e6
        r = ref.get(e)
        cell = f"{r * 1e6:.1f}" if r else "n/a"
        ratio = f"{o / (r * 1e6):.4f}" if r else "n/a"
        lines.append(f"| {e[-1]} | {o:.1f} | {cell} | {ratio} |")
    if ref:
        lines.append(
            f"\nasebytes 0.3.3 returned None for {ref['epoch1_none']} of its {slow} random "
            "epoch-1 reads (a placeholder it gap-filled, served as a cache hit); ours: 0."
        )
    no_cache = res["ours"]["no cache"]
    lines += [
        "",
        (
            f"Ours without cache_to (same random reads): {no_cache * 1e6:.1f} µs; "
            f"epoch 2 / no cache = {res['ours']['epoch2'] / no_cache:.3f}."
        ),
        (
            f"The reference's epoch 1 is a random sample of {slow} reads (each a re-parse "
            "from the file's start); its epochs 2-3 read every frame from a cache written "
            "whole through its own LMDB backend (a random epoch 1 cannot fill it: §1.8)."
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--slow-reads", type=int, default=10)
    ap.add_argument("--ref-python", default=None)
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "cache"))
    args = ap.parse_args()
    import ase.io

    with (
        tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp,
        private_daemon(tmp) as env,
    ):
        os.environ.update(env)  # ours runs in this process
        work = Path(tmp)
        path = str(work / "bench.extxyz")
        ase.io.write(path, make_frames(args.frames), format="extxyz")
        res = {"ours": ours(path, str(work / "cache.lmdb"), args.frames)}
        if args.ref_python:
            res["asebytes 0.3.3"] = ref_epochs(
                args.ref_python, path, work, args.frames, args.slow_reads
            )
    md = report(res, args.frames, args.slow_reads)
    Path(args.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    Path(args.out + ".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
