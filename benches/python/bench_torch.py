"""Training-loader throughput: samples/s through a ``torch.utils.data.DataLoader`` with 0,
2 and 4 workers, ``asebytes.torch.AtomsDataset`` (LMDB through the daemon, one request per
batch) against aselmdb read the way fairchem's ``AseDBDataset`` does it (an
``ase.db.connect(..., type="aselmdb", readonly=True)`` opened lazily in each worker, one
``_get_row_by_index(i).toatoms()`` per sample).

Both store the same ethanol-sized frames (9 atoms, energy, forces); both loaders use the
same sampler (shuffled, seeded), batch size, transform (``Atoms`` -> arrays, in the worker)
and collate (per-atom arrays concatenated into tensors, as graph models batch), so the
numbers compare reading and decoding, not model code. Each configuration runs one untimed
warm-up epoch (workers start, files open), then ``--epochs`` timed epochs; the best epoch
is reported. Results: ``benches/results/torch.{json,md}``.

``python benches/python/bench_torch.py [--frames N] [--batch-size B] [--epochs E]``
needs torch and ase-db-backends in the interpreter (``just bench-torch`` installs them
into .venv-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def frames(n: int) -> list[Any]:
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        atoms = Atoms("C2H6O", positions=rng.normal(size=(9, 3)), pbc=False)
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(-i), forces=rng.normal(size=(9, 3))
        )
        out.append(atoms)
    return out


class AseLmdbDataset:
    """fairchem's pattern: each process (a worker, or the main one without workers)
    connects once, on first use. py-lmdb refuses to open an environment a forked child
    inherited open, so the main process holds none while workers start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: Any = None
        with self._connect() as db:
            self._len = db.count()

    def _connect(self) -> Any:
        import ase.db

        return ase.db.connect(self.path, type="aselmdb", readonly=True)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> Any:
        if self._db is None:
            self._db = self._connect()
        return to_sample(self._db._get_row_by_index(i).toatoms())

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_db": None}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def to_sample(atoms: Any) -> dict[str, Any]:
    """What a training step needs of a frame (the same transform for both loaders). The
    calculator's results are read directly: ``get_potential_energy()`` would compare the
    atoms with the calculator's copy first, which costs more than the read itself."""
    results = atoms.calc.results
    return {
        "numbers": atoms.numbers,
        "positions": atoms.positions,
        "energy": results["energy"],
        "forces": results["forces"],
    }


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """A graph-style batch: per-atom arrays concatenated, one tensor per key (tensors
    leave a worker through shared memory, not pickled element by element)."""
    import torch

    return {
        "numbers": torch.from_numpy(np.concatenate([s["numbers"] for s in batch])),
        "positions": torch.from_numpy(np.concatenate([s["positions"] for s in batch])),
        "forces": torch.from_numpy(np.concatenate([s["forces"] for s in batch])),
        "energy": torch.tensor([s["energy"] for s in batch]),
        "n": len(batch),
    }


def measure(dataset: Any, workers: int, batch_size: int, epochs: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=collate,
    )
    n = 0
    for batch in loader:  # warm-up: workers start, stores open
        n += batch["n"]
    assert n == len(dataset)
    best = float("inf")
    for _ in range(epochs):
        t = time.perf_counter()
        seen = sum(batch["n"] for batch in loader)
        best = min(best, time.perf_counter() - t)
        assert seen == len(dataset)
    return len(dataset) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--out", type=Path, default=ROOT / "benches" / "results")
    a = ap.parse_args()

    import ase.db
    from asebytes import ASEIO
    from asebytes.torch import AtomsDataset

    data = frames(a.frames)
    results: dict[str, dict[str, float]] = {"asebytes-rs": {}, "aselmdb": {}}
    with tempfile.TemporaryDirectory(prefix="bench-torch-") as tmp:
        ours = os.path.join(tmp, "train.lmdb")
        ASEIO(ours).extend(data)
        theirs = os.path.join(tmp, "train.aselmdb")
        with ase.db.connect(theirs, type="aselmdb") as db:
            for atoms in data:
                db.write(atoms)
        make = {
            "asebytes-rs": lambda: AtomsDataset(ours, transform=to_sample),
            "aselmdb": lambda: AseLmdbDataset(theirs),
        }
        for workers in a.workers:
            for name, new in make.items():
                ds = new()
                rate = measure(ds, workers, a.batch_size, a.epochs)
                getattr(ds, "close", lambda: None)()
                results[name][str(workers)] = rate
                print(
                    f"{name:12s} workers={workers}: {rate:10.0f} samples/s", flush=True
                )

    a.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "frames": a.frames,
        "batch_size": a.batch_size,
        "epochs": a.epochs,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    (a.out / "torch.json").write_text(
        json.dumps({"meta": meta, "samples_per_s": results})
    )
    rows = [
        "| loader | " + " | ".join(f"{w} workers" for w in a.workers) + " |",
        "|---|" + "---:|" * len(a.workers),
    ]
    for name, by in results.items():
        cells = " | ".join(f"{by[str(w)]:,.0f}" for w in a.workers)
        rows.append(f"| {name} | {cells} |")
    (a.out / "torch.md").write_text(
        f"# DataLoader samples/s ({a.frames} ethanol frames, batch {a.batch_size}, "
        f"best of {a.epochs} epochs, {os.cpu_count()} CPUs)\n\n"
        + "\n".join(rows)
        + "\n"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
