"""Quick start: several processes share one local LMDB store through the asebytes daemon.

Run with ``./dev demo`` (or ``python examples/quickstart.py`` inside the project venv).
The daemon starts by itself on first use; data goes to ``demo-data/quickstart.lmdb``.

What it does:
1. writes 200 ethanol-like frames (energy, forces, stress, info) from this process;
2. starts 4 worker processes that append their own batches at the same time;
3. reads everything back: every row exactly once, every batch contiguous;
4. reads a column, a lazy view, and updates a frame in place.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from asebytes import ASEIO, ObjectIO

DATA = Path(__file__).resolve().parent.parent / "demo-data" / "quickstart.lmdb"


def ethanol(rng: np.random.Generator, tag: str, step: int) -> Atoms:
    """A 9-atom ethanol-like frame with single-point results attached."""
    atoms = Atoms("C2H6O", positions=rng.normal(size=(9, 3)))
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=float(rng.normal()),
        forces=rng.normal(size=(9, 3)),
        stress=rng.normal(size=6),
    )
    atoms.info.update({"writer": tag, "step": step})
    return atoms


def worker(tag: str, batch: int, batches: int) -> None:
    """Appends `batches` batches of `batch` frames, concurrently with the other workers."""
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    db = ASEIO(str(DATA))
    for b in range(batches):
        db.extend([ethanol(rng, tag, b * batch + i) for i in range(batch)])


def main() -> None:
    if DATA.exists():
        shutil.rmtree(DATA)
    DATA.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    t0 = time.perf_counter()
    db = ASEIO(str(DATA))
    n = db.extend([ethanol(rng, "main", i) for i in range(200)])
    print(f"wrote {n} frames to {DATA} in {time.perf_counter() - t0:.3f} s")

    plan = {"w1": (1, 40), "w2": (7, 10), "w3": (31, 4), "w4": (128, 2)}
    t0 = time.perf_counter()
    procs = [
        mp.Process(target=worker, args=(tag, b, k)) for tag, (b, k) in plan.items()
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"worker failed with exit code {p.exitcode}"
    expected = 200 + sum(b * k for b, k in plan.values())
    print(
        f"4 processes appended concurrently in {time.perf_counter() - t0:.3f} s; len = {len(db)}"
    )
    assert len(db) == expected, f"expected {expected} rows, found {len(db)}"

    writers = ObjectIO(str(DATA))["info.writer"].to_list()
    steps = ObjectIO(str(DATA))["info.step"].to_list()
    for tag, (batch, batches) in plan.items():
        seen = sorted(s for w, s in zip(writers, steps) if w == tag)
        assert seen == list(range(batch * batches)), f"{tag}: rows lost or duplicated"
        positions = [i for i, w in enumerate(writers) if w == tag]
        for b in range(batches):
            chunk = positions[b * batch : (b + 1) * batch]
            assert chunk == list(range(chunk[0], chunk[0] + batch)), (
                f"{tag}: batch interleaved"
            )
    print("every row present exactly once, every batch contiguous")

    t0 = time.perf_counter()
    energies = db["calc.energy"].to_list()
    frames = db[0:500].to_list()
    dt = time.perf_counter() - t0
    print(
        f"read {len(energies)} energies and {len(frames)} frames in {dt * 1e3:.1f} ms"
    )

    db.update(0, calc={"energy": -10.5}, info={"tag": "done"})
    atoms = db[0]
    print(
        f"db[0]: {atoms.get_chemical_formula()}, energy {atoms.get_potential_energy()}, info {atoms.info}"
    )


if __name__ == "__main__":
    main()
