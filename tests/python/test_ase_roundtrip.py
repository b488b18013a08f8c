"""ASE Atoms through a store: everything the key convention covers comes back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _helpers import assert_same, make_atoms, rich_atoms
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from asebytes import ASEIO, ObjectIO, atoms_to_dict
from conftest import Backend


def assert_atoms_equal(got: Atoms, want: Atoms) -> None:
    assert got == want
    assert got.arrays.keys() == want.arrays.keys()
    for name in want.arrays:
        assert_same(got.arrays[name], want.arrays[name])
    assert_same(got.info, want.info)
    assert [c.todict() for c in got.constraints] == [
        c.todict() for c in want.constraints
    ]
    if want.calc is None:
        assert got.calc is None
    else:
        assert_same(got.calc.results, want.calc.results)


def test_rich_atoms_round_trip(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    want = rich_atoms()
    db.extend([want])
    got = db[0]
    assert_atoms_equal(got, want)
    assert got.get_potential_energy() == -12.5
    assert got.get_potential_energy(force_consistent=True) == -12.25
    assert_same(got.get_forces(), want.get_forces())
    assert_same(got.get_stress(), want.get_stress())


def test_variable_atom_counts_and_per_frame_pbc_and_cell(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    frames = [make_atoms(i, n=1 + 3 * i) for i in range(6)]
    db.extend(frames)
    for got, want in zip(db, frames, strict=True):
        assert_atoms_equal(got, want)
    assert [len(a) for a in db[:].to_list()] == [1, 4, 7, 10, 13, 16]
    assert [a.pbc.all() for a in db] == [f.pbc.all() for f in frames]
    lengths = [
        p.shape for p in any_backend.open(ObjectIO)["arrays.positions"].to_list()
    ]
    assert lengths == [(n, 3) for n in (1, 4, 7, 10, 13, 16)]


def test_stored_keys_follow_the_convention(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    atoms = rich_atoms()
    db.extend([atoms])
    assert sorted(db.keys(0)) == sorted(atoms_to_dict(atoms))


def test_calc_from_store_is_stale_after_moving_an_atom(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(2)])
    atoms = db[0]
    assert atoms.get_potential_energy() == -2.0
    atoms.positions[0] += 0.5
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_forces()
    assert db[0].get_potential_energy() == -2.0


def test_atoms_from_store_are_fully_writable(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0)])
    for atoms in (db[0], db[0:1].to_list()[0], next(iter(db)), db.get(0)):
        atoms[0].symbol = "C"
        atoms.cell[0, 0] = 2.0
        atoms.pbc[2] = True
        atoms.positions[:] = 0.0
        atoms.calc.results["forces"][:] = 0.0
    assert_atoms_equal(db[0], make_atoms(0))


def test_placeholders_and_reserve_read_as_none(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0), None])
    db.reserve(2)
    assert db[1] is None and db[-1] is None
    assert [a is None for a in db] == [False, True, True, True]


@pytest.mark.parametrize("constraint", ["FixAtoms", "FixBondLengths", "both"])
def test_constraints_round_trip(any_backend: Backend, constraint: str) -> None:
    from ase.constraints import FixAtoms, FixBondLengths

    atoms = Atoms("H4", positions=np.arange(12.0).reshape(4, 3))
    cons: dict[str, list[Any]] = {
        "FixAtoms": [FixAtoms([1, 3])],
        "FixBondLengths": [FixBondLengths([[0, 1]])],
    }
    atoms.set_constraint(
        cons.get(constraint, cons["FixAtoms"] + cons["FixBondLengths"])
    )
    db = any_backend.open(ASEIO)
    db.extend([atoms])
    got = db[0]
    assert [c.todict() for c in got.constraints] == [
        c.todict() for c in atoms.constraints
    ]
    new = np.random.default_rng(0).normal(size=(4, 3))
    want = atoms.copy()
    want.set_positions(new)
    got.set_positions(new)
    assert np.allclose(got.positions, want.positions)
    assert not np.allclose(got.positions, new)


def test_reads_from_the_store_take_the_fast_path(
    any_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asebytes import _convert

    def boom(*args: Any) -> Atoms:
        raise AssertionError("a store read fell back to ASE's public constructors")

    db = any_backend.open(ASEIO)
    db.extend([rich_atoms(), make_atoms(1), Atoms()])
    monkeypatch.setattr(_convert, "_public_dict_to_atoms", boom)
    assert db[0] == rich_atoms()
    assert [len(a) for a in db] == [5, 3, 0]
    assert len(db[0:2].to_list()) == 2
    assert db["calc.energy"][0:2].to_list()[1].get_potential_energy() == -1.0
