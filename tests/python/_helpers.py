"""Shared test helpers: deep equality that respects numpy dtypes, seeded Atoms generators."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixBondLengths


def same(a: Any, b: Any) -> bool:
    """Deep equality where types matter: arrays by dtype, shape and values; ``1 != True``."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and np.isnan(a):
        return bool(np.isnan(b))
    return bool(a == b)


def assert_same(a: Any, b: Any) -> None:
    assert same(a, b), f"{a!r} != {b!r}"


def make_atoms(
    i: int, n: int | None = None, *, calc: bool = True, pbc: bool | None = None
) -> Atoms:
    """A seeded, recognisable frame: ``info["i"] == i``; ``n`` atoms (default 2 + i % 5)."""
    rng = np.random.default_rng(i)
    n = 2 + i % 5 if n is None else n
    atoms = Atoms(
        numbers=rng.integers(1, 30, size=n),
        positions=rng.normal(size=(n, 3)),
        cell=np.diag(rng.uniform(3, 6, size=3))
        if (pbc if pbc is not None else i % 2 == 0)
        else None,
        pbc=(pbc if pbc is not None else i % 2 == 0),
    )
    atoms.info["i"] = i
    if calc:
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(-i), forces=rng.normal(size=(n, 3))
        )
    return atoms


def rich_atoms(seed: int = 0) -> Atoms:
    """Everything the key convention covers in one frame."""
    rng = np.random.default_rng(seed)
    n = 5
    atoms = Atoms(
        "C2H2O",
        positions=rng.normal(size=(n, 3)),
        cell=[[4.0, 0.1, 0.0], [0.0, 5.0, 0.2], [0.3, 0.0, 6.0]],
        pbc=[True, False, True],
    )
    atoms.set_tags(np.arange(n))
    atoms.set_masses(rng.uniform(1, 20, size=n))
    atoms.set_momenta(rng.normal(size=(n, 3)))
    atoms.set_initial_charges(rng.normal(size=n))
    atoms.set_initial_magnetic_moments(rng.normal(size=n))
    atoms.new_array("custom_vec", rng.normal(size=(n, 2)).astype(np.float32))
    atoms.new_array("custom_int", np.arange(n, dtype=np.int16))
    atoms.set_constraint([FixAtoms(indices=[0, 2]), FixBondLengths([[1, 3]])])
    atoms.info.update(
        {
            "smiles": "C=CO",
            "count": 7,
            "flag": True,
            "ratio": 0.25,
            "nested": {"a": {"b": [1, 2, {"c": "d"}]}, "arr": np.arange(3)},
            "vec": np.linspace(0, 1, 4),
            "np_int": np.int32(5),
            "a.b.c": "dotted",
        }
    )
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=-12.5,
        free_energy=-12.25,
        forces=rng.normal(size=(n, 3)),
        stress=rng.normal(size=6),
        magmoms=rng.normal(size=n),
    )
    return atoms
