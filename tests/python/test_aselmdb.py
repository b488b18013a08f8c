"""fairchem's ``*.aselmdb`` shards (ase-db-backends 0.11) served read-only by the daemon: a
shard, or a folder of shards as one dataset with a global index; every row reads back as
``row.toatoms()`` of ``ase.db.connect(path, type="aselmdb")`` with the row's
``key_value_pairs`` and ``data`` in ``info`` (as fairchem's ``AseDBDataset`` puts them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import ase
import ase.db
import asebytes
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from test_ase_files import assert_same_atoms

pytest.importorskip("ase_db_backends.aselmdb")


def _atoms(seed: int) -> tuple[ase.Atoms, dict, dict]:
    rng = np.random.default_rng(seed)
    if seed % 3 == 0:
        a = molecule("CH3CH2OH")
    else:
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 1 + seed % 2))
        a.rattle(0.05, seed=seed)
    n = len(a)
    if seed % 2:
        a.set_tags(rng.integers(0, 3, size=n))
        a.set_initial_magnetic_moments(rng.normal(size=n))
    if seed % 4 == 1:
        a.set_momenta(rng.normal(size=(n, 3)))
        a.set_initial_charges(rng.normal(size=n))
        a.set_masses(rng.random(n) + 1)
    if seed % 5 == 2:
        a.set_constraint(FixAtoms(indices=[0]))
    if seed % 6 != 5:
        a.calc = SinglePointCalculator(
            a,
            energy=float(-seed),
            forces=rng.normal(size=(n, 3)),
            stress=rng.normal(size=6),
        )
    kvp = {
        "split": "train" if seed % 2 else "val",
        "sid": seed,
        "relaxed": seed % 3 == 0,
    }
    data = {"ref_energy": float(seed) / 3, "fmax": rng.random(3), "tag": {"a": [1, 2]}}
    return a, kvp, data


def _write_shard(path: Path, seeds: range, delete: list[int] | None = None) -> None:
    db = ase.db.connect(str(path), type="aselmdb")
    for s in seeds:
        a, kvp, data = _atoms(s)
        db.write(a, key_value_pairs=kvp, data=data)
    if delete:
        db.delete(delete)
    db.close()


def _expected(paths: list[Path]) -> list[ase.Atoms]:
    out = []
    for p in paths:
        db = ase.db.connect(str(p), type="aselmdb", readonly=True)
        for row in db.select():
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            atoms.info.update(row.data)
            out.append(atoms)
        db.close()
    return out


def test_one_shard_reads_as_ase_db_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "one.aselmdb"
    _write_shard(path, range(12))
    want = _expected([path])
    db = asebytes.ASEIO(str(path))
    assert len(db) == 12
    for i, w in enumerate(want):
        assert_same_atoms(db[i], w, f"one[{i}]")


def test_a_folder_of_shards_is_one_dataset_with_a_global_index(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    paths = [folder / f"data.{k:04d}.aselmdb" for k in range(3)]
    _write_shard(paths[0], range(5))
    _write_shard(paths[1], range(5, 13), delete=[2, 5])
    _write_shard(paths[2], range(13, 17))
    (folder / "README.txt").write_text("not a shard")
    want = _expected(paths)
    assert len(want) == 15
    for location in (str(folder), str(folder) + "/"):
        db = asebytes.ASEIO(location)
        assert len(db) == 15
        for i, w in enumerate(want):
            assert_same_atoms(db[i], w, f"folder[{i}]")
        assert_same_atoms(db[-1], want[-1], "folder[-1]")
    energies = asebytes.ASEIO(str(folder))["calc.energy"].to_list()
    assert len(energies) == 15


def test_a_list_of_shards_is_one_dataset_in_the_order_given(tmp_path: Path) -> None:
    paths = [tmp_path / "b.aselmdb", tmp_path / "a.aselmdb"]
    _write_shard(paths[0], range(3))
    _write_shard(paths[1], range(3, 8), delete=[1])
    want = _expected(paths)
    db = asebytes.ASEIO([str(p) for p in paths])
    assert len(db) == 7
    for i, w in enumerate(want):
        assert_same_atoms(db[i], w, f"list[{i}]")

    async def last() -> tuple[int, ase.Atoms]:
        adb = asebytes.AsyncASEIO(paths)
        return await adb.len(), await adb[-1]

    n, atoms = asyncio.run(last())
    assert n == 7
    assert_same_atoms(atoms, want[-1], "async list[-1]")
    with pytest.raises(TypeError, match="shard of the same format"):
        asebytes.ASEIO([str(paths[0]), str(tmp_path / "x.lmdb")])


def test_writes_are_refused_and_groups_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "ro.aselmdb"
    _write_shard(path, range(2))
    db = asebytes.ASEIO(str(path))
    with pytest.raises(TypeError, match="Backend is read-only"):
        db.extend([molecule("H2O")])
    with pytest.raises(TypeError, match="Backend is read-only"):
        del db[0]
    assert len(db) == 2
    assert asebytes.ASEIO.list_groups(str(path)) == []


def test_a_folder_without_shards_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeyError, match="No backend"):
        asebytes.ASEIO(str(tmp_path / "empty"))
