"""ASE files (``*.xyz``, ``*.extxyz``) served read-only by the daemon: every frame of files
written by ASE 3.29 reads back as the ``Atoms`` that ``ase.io.read(file, index=i)`` gives
(numbers, positions, cell, pbc, arrays with their dtypes, info with its types, calculator
results, constraints), plus hand-written files in the corners of ASE's dialect (quoting,
escapes, ``_JSON``, Properties in any order, ``I``/``L`` columns, ``VEC`` lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ase
import ase.io
import asebytes
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixCartesian


def _same(a: Any, b: Any, where: str) -> None:
    """``a`` (ours) equals ``b`` (ASE's) in value and in type."""
    if isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray), f"{where}: {type(a)} is not an ndarray"
        assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
        if b.dtype == object or b.dtype.kind == "U":
            # ASE keeps string columns as object arrays, which we never pickle: unicode.
            assert a.dtype.kind == "U", f"{where}: dtype {a.dtype}"
            assert a.tolist() == b.tolist(), where
            return
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=where)
        return
    if isinstance(b, dict):
        assert isinstance(a, dict), where
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in b:
            _same(a[k], b[k], f"{where}.{k}")
        return
    if isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
        return
    if isinstance(b, float) and type(b) is not float:
        # np.float64 is a float; every store serves it as the plain float msgpack holds.
        assert type(a) in (float, type(b)), f"{where}: {type(a)} != {type(b)}"
    else:
        assert type(a) is type(b), f"{where}: {type(a)} != {type(b)} ({a!r} vs {b!r})"
    if isinstance(b, float) and np.isnan(b):
        assert np.isnan(a), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_atoms(ours: ase.Atoms, ref: ase.Atoms, where: str) -> None:
    _same(ours.numbers, ref.numbers, f"{where} numbers")
    _same(ours.positions, ref.positions, f"{where} positions")
    _same(ours.cell.array, ref.cell.array, f"{where} cell")
    _same(ours.pbc, ref.pbc, f"{where} pbc")
    assert list(ours.arrays) == list(ref.arrays), f"{where} arrays"
    for k in ref.arrays:
        _same(ours.arrays[k], ref.arrays[k], f"{where} arrays.{k}")
    _same(ours.info, ref.info, f"{where} info")
    if ref.calc is None:
        assert ours.calc is None, where
    else:
        assert ours.calc is not None, f"{where}: no calculator"
        _same(dict(ours.calc.results), dict(ref.calc.results), f"{where} calc")
    _same(
        [c.todict() for c in ours.constraints],
        [c.todict() for c in ref.constraints],
        f"{where} constraints",
    )


def assert_every_frame(path: Path) -> int:
    ref = ase.io.read(path, index=":")
    db = asebytes.ASEIO(str(path))
    assert len(db) == len(ref)
    for i, want in enumerate(ref):
        assert_same_atoms(db[i], want, f"{path.name}[{i}]")
        # The golden rule of the issue: the same as reading that one frame with ASE.
        if i % 7 == 0:
            assert_same_atoms(db[i], ase.io.read(path, index=i), f"{path.name}[{i}]")
    assert_same_atoms(db[-1], ref[-1], f"{path.name}[-1]")
    return len(ref)


def _molecules() -> list[ase.Atoms]:
    rng = np.random.default_rng(7)
    out = []
    for j, name in enumerate(["H2O", "CH4", "C6H6", "NH3", "CH3CH2OH", "H2"]):
        a = molecule(name)
        a.positions += rng.normal(scale=0.01, size=a.positions.shape)
        a.info["step"] = j
        a.info["temperature"] = 300.0 + j
        a.info["label"] = f"mol {name}"
        a.info["converged"] = j % 2 == 0
        a.info["flags"] = np.array([True, False, j % 2 == 0])
        a.info["vector"] = np.array([1.5, -2.0, 3.25])
        a.info["ints"] = np.arange(4) * j
        a.info["meta"] = {"source": "test", "n": j, "nested": [1, 2, {"x": None}]}
        a.info["words"] = ["a b", "c"]
        a.calc = SinglePointCalculator(
            a,
            energy=-10.0 * j - 0.5,
            forces=rng.normal(size=(len(a), 3)),
            dipole=np.array([0.1, 0.2, 0.3 * j]),
        )
        out.append(a)
    return out


def _crystals() -> list[ase.Atoms]:
    rng = np.random.default_rng(11)
    out = []
    for j in range(8):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 1 + j % 3))
        if j % 4 == 3:
            a = bulk("NaCl", "rocksalt", a=5.6)
        a.rattle(0.05, seed=j)
        a.pbc = [True, j % 2 == 0, True]
        n = len(a)
        a.set_initial_charges(rng.normal(size=n))
        a.new_array("spin", rng.integers(-2, 3, size=n).astype(np.int64))
        a.new_array("selected", rng.random(n) > 0.5)
        a.new_array("vel2", rng.normal(size=(n, 2)))
        a.info["energy_ref"] = float(j)
        a.calc = SinglePointCalculator(
            a,
            energy=-3.5 * n + j,
            free_energy=-3.4 * n,
            forces=rng.normal(size=(n, 3)),
            stress=rng.normal(size=6),
            energies=rng.normal(size=n),
            magmoms=rng.normal(size=n),
        )
        if j % 3 == 1:
            a.set_constraint(FixAtoms(indices=[0, n - 1]))
        elif j % 3 == 2:
            a.set_constraint(
                [FixCartesian(i, mask=[True, False, i % 2 == 0]) for i in range(n)]
            )
        out.append(a)
    return out


@pytest.mark.parametrize("suffix", [".extxyz", ".xyz"])
def test_molecules_written_by_ase_read_as_ase_reads_them(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"molecules{suffix}"
    ase.io.write(path, _molecules(), format="extxyz")
    assert assert_every_frame(path) == 6


def test_periodic_cells_calculators_constraints_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "crystals.extxyz"
    ase.io.write(path, _crystals(), format="extxyz")
    assert assert_every_frame(path) == 8


def test_plain_xyz_without_comment_or_properties(tmp_path: Path) -> None:
    path = tmp_path / "plain.xyz"
    path.write_text(
        "3\n\nO 0 0 0\nh 0.96 0 0\nH -0.24 0.93 0\n2\nwater dimer? no\nC 0 0 0\nO 1.1 0 0\n"
    )
    assert assert_every_frame(path) == 2


DIALECT = """\
2
Properties=pos:R:3:Z:I:1:species:S:1:tag:I:1:ok:L:1:charge:R:1 Lattice='4 0 0 0 5 0 0 0 6' pbc="T T F" name="a \\"quoted\\" name" path={/tmp/x y} list=[1,2,3] empty="" flag uid=0012 big=99999999999999999999 nan=nan stress="1 2 3 2 4 5 3 5 6" j="_JSON {\\"a\\": [1, 2], \\"b\\": NaN}" arr="_JSON [[1, 2], [3, 4]]" mixed="_JSON [1, \\"x\\"]" t=True f=FALSE bools="T F T"
0 0 0 29 Cu 7 T 0.5 extra tokens
1 1 1 8 O -3 F -0.5
1
Properties=species:S:1:pos:R:3:move_mask:L:3:energies:R:1 energy=-5 virial="1 0 0 0 1 0 0 0 1" dipole="1 2 3" magmom=2
fe 0.1 0.2 0.3 T F T 1.25
1
Properties=species:S:1:pos:R:3:move_mask:I:1 free_energy=1.5 polarization="1 2 3"
Cl 0 0 0 0
1
comment that is not key value pairs
He 0 0 0
VEC1 2.0 0 0
VEC2 0 3.0 0
"""


def test_the_corners_of_the_dialect(tmp_path: Path) -> None:
    path = tmp_path / "dialect.extxyz"
    path.write_text(DIALECT)
    assert assert_every_frame(path) == 4
    db = asebytes.ASEIO(str(path))
    assert db[0].info["name"] == 'a "quoted" name'
    assert db[0].arrays["tag"].dtype == np.int32


def test_len_is_known_at_open_and_negative_indices_work(tmp_path: Path) -> None:
    path = tmp_path / "many.extxyz"
    frames = _molecules() * 20
    ase.io.write(path, frames, format="extxyz")
    db = asebytes.ASEIO(str(path))
    assert len(db) == 120
    assert_same_atoms(db[-3], ase.io.read(path, index=-3), "[-3]")
    with pytest.raises(IndexError):
        db[120]
    energies = db["calc.energy"].to_numpy()
    np.testing.assert_array_equal(energies, [f.calc.results["energy"] for f in frames])
    rows = db[10:14].to_list()
    assert [len(r) for r in rows] == [len(f) for f in frames[10:14]]


def test_a_file_that_grows_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "md.extxyz"
    frames = _crystals()
    ase.io.write(path, frames[:3], format="extxyz")
    db = asebytes.ASEIO(str(path))
    assert len(db) == 3
    ase.io.write(path, frames[3:5], format="extxyz", append=True)
    assert len(db) == 5
    assert_same_atoms(db[4], ase.io.read(path, index=4), "[4]")


def test_a_malformed_line_names_file_frame_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.extxyz"
    ase.io.write(path, _molecules()[:3], format="extxyz")
    lines = path.read_text().splitlines(keepends=True)
    second = 2 + len(_molecules()[0])  # the first line of frame 1
    lines[second + 3] = "C 0.0 zero 1.0 0.1 0.2 0.3\n"
    lines[second + 2 * 2 + len(_molecules()[1]) + 1] = "C 0.0 1.0\n"  # frame 2, line 2
    path.write_text("".join(lines))
    db = asebytes.ASEIO(str(path))
    assert len(db) == 3
    with pytest.raises(ValueError, match=r"broken\.extxyz: frame 1, line 4 .*float"):
        db[1]
    with pytest.raises(
        ValueError, match=r"frame 2, line 4 .*expected 7 columns .*found 3"
    ):
        db[2]
    assert_same_atoms(db[0], ase.io.read(path, index=0), "[0]")
    assert [a.info["step"] for a in db[0:1].to_list()] == [0]


def test_writes_are_refused_and_groups_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "ro.xyz"
    ase.io.write(path, _molecules()[:2], format="extxyz")
    db = asebytes.ASEIO(str(path))
    with pytest.raises(TypeError, match="Backend is read-only"):
        db.extend([molecule("H2O")])
    with pytest.raises(TypeError, match="Backend is read-only"):
        db[0] = molecule("H2O")
    assert len(db) == 2
    assert asebytes.ASEIO.list_groups(str(path)) == []
    obj = asebytes.ObjectIO(str(path))
    assert obj.keys(0)[:4] == ["cell", "pbc", "arrays.numbers", "arrays.positions"]


def test_compressed_files_get_a_clear_error(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "x.extxyz.gz"
    with gzip.open(path, "wt") as f:
        f.write("1\n\nH 0 0 0\n")
    with pytest.raises(NotImplementedError, match="decompress"):
        len(asebytes.ASEIO(str(path)))
