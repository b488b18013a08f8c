"""Benchmark datasets: generated with a fixed seed, nothing downloaded.

* ``ethanol``: 9 atoms (C2H6O), not periodic, like one molecular-dynamics trajectory;
* ``periodic``: bulk cells with 8 to 128 atoms (Cu/Ni/Al), periodic, varying atom counts.

Every frame has energy, forces and stress (a ``SinglePointCalculator``) and a few ``info``
keys. The driver generates a dataset once and pickles it as plain numpy arrays (no
``Atoms``), so every virtualenv loads exactly the same numbers; workers build the ``Atoms``
outside the timed region. ``check_*`` verify what a timed read returned against it: a
benchmark that reads wrong data fails loudly.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20261125
DATASETS = ("ethanol", "periodic")


def generate(name: str, n_frames: int, seed: int = SEED) -> dict[str, Any]:
    """The dataset ``name`` with ``n_frames`` frames, a fixed read permutation and the new
    energies of the update benchmarks."""
    rng = np.random.default_rng([seed, DATASETS.index(name), n_frames])
    frames = [_frame(name, i, rng) for i in range(n_frames)]
    return {
        "name": name,
        "frames": frames,
        "perm": rng.permutation(n_frames).tolist(),
        "new_energy": rng.normal(-100.0, 10.0, size=n_frames).tolist(),
    }


def _frame(name: str, i: int, rng: np.random.Generator) -> dict[str, Any]:
    if name == "ethanol":
        numbers = np.array([6, 6, 1, 1, 1, 1, 1, 1, 8])
        base = np.array(
            [
                [0.0, 0.0, 0.0],
                [1.5, 0.0, 0.0],
                [-0.4, 1.0, 0.0],
                [-0.4, -0.5, 0.9],
                [-0.4, -0.5, -0.9],
                [1.9, -1.0, 0.0],
                [1.9, 0.5, 0.9],
                [2.3, 1.2, -1.1],
                [2.0, 0.7, -0.9],
            ]
        )
        positions = base + 0.05 * rng.standard_normal((9, 3))
        cell = np.zeros((3, 3))
        pbc = np.zeros(3, dtype=bool)
    else:
        reps = int(rng.integers(2, 5))  # 2..4 fcc cells along each axis
        shape = (reps, int(rng.integers(1, reps + 1)), int(rng.integers(1, 3)))
        n_cells = shape[0] * shape[1] * shape[2]
        a = 3.6 + 0.05 * rng.standard_normal()
        frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        grid = np.array(
            [
                (x, y, z)
                for x in range(shape[0])
                for y in range(shape[1])
                for z in range(shape[2])
            ]
        )
        positions = (grid[:, None, :] + frac[None, :, :]).reshape(-1, 3) * a
        positions += 0.02 * rng.standard_normal(positions.shape)
        numbers = rng.choice([13, 28, 29], size=4 * n_cells)
        cell = np.diag(np.array(shape, dtype=float) * a)
        pbc = np.ones(3, dtype=bool)
    n = len(numbers)
    return {
        "numbers": numbers.astype(np.int64),
        "positions": positions,
        "cell": cell,
        "pbc": pbc,
        "energy": float(-3.5 * n + rng.standard_normal()),
        "forces": 0.1 * rng.standard_normal((n, 3)),
        "stress": 0.01 * rng.standard_normal(6),
        "info": {
            "step": i,
            "temperature": float(300.0 + rng.standard_normal()),
            "label": f"{name}_{i}",
        },
    }


def save(data: dict[str, Any], path: Path) -> None:
    path.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))


def load(path: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = pickle.loads(Path(path).read_bytes())
    return data


def to_atoms(frame: dict[str, Any]) -> Any:
    """One frame as ``ase.Atoms`` with a ``SinglePointCalculator``."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = Atoms(
        numbers=frame["numbers"],
        positions=frame["positions"],
        cell=frame["cell"],
        pbc=frame["pbc"],
    )
    atoms.info.update(frame["info"])
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=frame["energy"],
        forces=frame["forces"],
        stress=frame["stress"],
    )
    return atoms


# ---------------------------------------------------------------------- verification


class WrongData(AssertionError):
    """A timed read returned something other than what was written."""


def _close(a: Any, b: Any, tol: float = 1e-7) -> bool:
    # extxyz stores text with 8 decimals; every binary peer round-trips exactly, except
    # those that store float32 (their peer says so with a larger ``tol``).
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=tol, atol=tol))


def check_count(what: str, got: Any, expected: int) -> None:
    if len(got) != expected:
        raise WrongData(f"{what}: read {len(got)} items, expected {expected}")


def check_atoms(
    what: str,
    got: list[Any],
    frames: list[dict[str, Any]],
    indices: list[int],
    energy: bool = True,
    tol: float = 1e-7,
) -> None:
    """``got[k]`` must be frame ``indices[k]``: atom count, numbers, positions, energy."""
    check_count(what, got, len(indices))
    for atoms, i in zip(got, indices):
        f = frames[i]
        if atoms is None or len(atoms) != len(f["numbers"]):
            raise WrongData(f"{what}: frame {i} has the wrong atom count")
        if not np.array_equal(atoms.numbers, f["numbers"]):
            raise WrongData(f"{what}: frame {i} has the wrong atomic numbers")
        if not _close(atoms.positions, f["positions"], tol):
            raise WrongData(f"{what}: frame {i} has the wrong positions")
        if energy and not _close(atoms.get_potential_energy(), f["energy"], tol):
            raise WrongData(f"{what}: frame {i} has the wrong energy")


def check_positions(
    what: str,
    got: list[Any],
    frames: list[dict[str, Any]],
    indices: list[int],
    tol: float = 1e-7,
) -> None:
    check_count(what, got, len(indices))
    for pos, i in zip(got, indices):
        if not _close(pos, frames[i]["positions"], tol):
            raise WrongData(f"{what}: frame {i} has the wrong positions")


def check_values(
    what: str, got: list[Any], expected: list[float], tol: float = 1e-7
) -> None:
    check_count(what, got, len(expected))
    if not _close(got, expected, tol):
        raise WrongData(f"{what}: values differ from the written data")
