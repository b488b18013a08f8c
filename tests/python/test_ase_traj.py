"""ASE trajectories (``*.traj``, the ULM container) served read-only by the daemon: every
frame reads back as ``ase.io.read(file, index=i)`` gives it -- constraints, momenta,
magnetic moments and charges, tags and masses, info, calculator results, and atom counts
that change within the file (items that repeat the header)."""

from __future__ import annotations

from pathlib import Path

import ase
import ase.io
import asebytes
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixBondLengths, FixCartesian
from ase.io.trajectory import Trajectory
from test_ase_files import assert_same_atoms


def _frames() -> list[ase.Atoms]:
    rng = np.random.default_rng(3)
    out = []
    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    for j in range(6):
        a = base.copy()
        a.rattle(0.02, seed=j)
        a.set_momenta(rng.normal(size=(len(a), 3)))
        a.set_constraint(FixAtoms(indices=[0]))
        a.info["step"] = j
        a.info["note"] = f"relax {j}"
        a.info["vec"] = np.arange(3.0) * j
        a.calc = SinglePointCalculator(
            a,
            energy=-1.0 * j,
            forces=rng.normal(size=(len(a), 3)),
            stress=rng.normal(size=6),
        )
        out.append(a)
    # The atoms change: new header items, other arrays, other constraints.
    for j in range(4):
        m = molecule("CH3CH2OH" if j % 2 else "H2O")
        m.center(vacuum=3.0)
        m.pbc = [True, False, True]
        m.set_tags(np.arange(len(m)) % 2)
        m.set_masses(rng.random(len(m)) + 1.0)
        m.set_initial_magnetic_moments(rng.normal(size=len(m)))
        m.set_initial_charges(rng.normal(size=len(m)))
        if j % 2:
            m.set_constraint(
                [FixCartesian(1, mask=[True, False, True]), FixBondLengths([[0, 1]])]
            )
        if j != 2:
            m.calc = SinglePointCalculator(
                m,
                energy=float(j),
                free_energy=float(j) + 0.5,
                forces=rng.normal(size=(len(m), 3)),
                energies=rng.normal(size=len(m)),
                magmoms=rng.normal(size=len(m)),
                dipole=np.array([0.0, 1.0, 2.0]),
            )
        out.append(m)
    return out


def test_every_frame_reads_as_ase_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "relax.traj"
    with Trajectory(str(path), "w") as t:
        for a in _frames():
            t.write(a)
    ref = ase.io.read(path, index=":")
    db = asebytes.ASEIO(str(path))
    assert len(db) == len(ref) == 10
    for i, want in enumerate(ref):
        assert_same_atoms(db[i], want, f"relax.traj[{i}]")
        assert_same_atoms(db[i], ase.io.read(path, index=i), f"relax.traj[{i}]")
    assert [len(a) for a in db[5:10].to_list()] == [len(a) for a in ref[5:10]]


def test_a_trajectory_being_written_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "md.traj"
    frames = _frames()
    t = Trajectory(str(path), "w")
    t.write(frames[0])
    db = asebytes.ASEIO(str(path))
    assert len(db) == 1
    for a in frames[1:4]:
        t.write(a)
    assert len(db) == 4
    assert_same_atoms(db[3], ase.io.read(path, index=3), "md.traj[3]")
    t.close()


def test_writes_are_refused_and_groups_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "ro.traj"
    ase.io.write(path, _frames()[:2])
    db = asebytes.ASEIO(str(path))
    with pytest.raises(TypeError, match="Backend is read-only"):
        db.extend([molecule("H2O")])
    assert asebytes.ASEIO.list_groups(str(path)) == []


def test_a_file_that_is_not_a_trajectory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.traj"
    path.write_bytes(b"definitely not ULM" * 4)
    with pytest.raises(ValueError, match="not an ASE trajectory"):
        len(asebytes.ASEIO(str(path)))
