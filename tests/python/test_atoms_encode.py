"""The Rust write path for ``Atoms`` (``_native.encode_atoms``, and ``ASEIO`` writes to the
daemon's stores, which hand ``Atoms`` over as they are) stores exactly the bytes of the
Python path -- ``encode_row(atoms_to_dict(atoms))`` -- and of the reference asebytes 0.3.3,
for every kind of frame in ``_atoms_kinds``; anything it does not understand takes the
Python path for that frame, errors included."""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _atoms_kinds import KINDS, frames
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from asebytes import ASEIO, AsyncASEIO, BlobIO, _convert, _native, encode
from asebytes.exceptions import AsebytesTypeError, AsebytesValueError

HERE = Path(__file__).resolve().parent
REF_PYTHON = HERE.parents[1] / ".venv-ref" / "bin" / "python"
needs_ref = pytest.mark.skipif(
    not REF_PYTHON.exists() and not os.environ.get("CI"),
    reason="reference virtualenv .venv-ref not present (`just ref-venv`; required in CI)",
)


def python_path(atoms: Atoms) -> list[tuple[bytes, bytes]] | str:
    """What the dict path stores (ordered), or the error it raises."""
    try:
        row = _convert._atoms_to_dict(atoms, copy=False)
        return list(_native.encode_row(row).items())
    except Exception as e:  # noqa: BLE001 - the error is the expected answer
        return f"{type(e).__name__}: {e}"


def rust_path(atoms: Atoms) -> list[tuple[bytes, bytes]] | str:
    try:
        return list(_native.encode_atoms(atoms).items())
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_encode_atoms_is_byte_identical_to_the_python_path(kind: str) -> None:
    atoms = KINDS[kind]()
    assert rust_path(atoms) == python_path(atoms)
    assert not isinstance(rust_path(atoms), str), "every kind is storable"


@needs_ref
def test_encode_atoms_is_byte_identical_to_the_reference(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(REF_PYTHON), str(HERE / "_atoms_kinds.py")],
        check=True,
        capture_output=True,
        cwd=HERE,
    ).stdout
    reference = dict(pickle.loads(out))
    for kind, atoms in zip(KINDS, frames(), strict=True):
        ref = reference[kind]
        assert not isinstance(ref, str), f"{kind}: the reference refused it: {ref}"
        # Same keys, same bytes; the order of keys also matches the reference's.
        assert rust_path(atoms) == ref, kind


def stored_rows(path: Path) -> list[dict[bytes, bytes]]:
    with BlobIO(str(path)) as db:
        return [dict(db[i]) for i in range(len(db))]


def test_aseio_writes_store_the_python_paths_bytes(tmp_path: Path) -> None:
    atoms = frames()
    path = tmp_path / "w.lmdb"
    with ASEIO(str(path)) as db:
        db.extend(atoms[:4])
        db.append(atoms[4])
        db.insert(0, atoms[5])  # [5, 0, 1, 2, 3, 4]
        db[len(db)] = atoms[6]
        db[1] = atoms[7]  # replaces frame 0
        db.extend(atoms[8:])
    order = [5, 7, 1, 2, 3, 4, 6, *range(8, len(atoms))]
    want = [dict(_native.encode_row(_convert.atoms_to_dict(atoms[i]))) for i in order]
    assert stored_rows(path) == want


def test_async_extend_stores_the_python_paths_bytes(tmp_path: Path) -> None:
    atoms = frames()
    path = tmp_path / "a.lmdb"

    async def main() -> None:
        db = AsyncASEIO(str(path))
        await db.extend(atoms)
        await db.insert(0, atoms[2])

    asyncio.run(main())
    want = [encode(a) for a in [atoms[2], *atoms]]
    assert stored_rows(path) == want


@needs_ref
def test_files_written_here_and_by_the_reference_hold_the_same_bytes(
    tmp_path: Path,
) -> None:
    ref_file = tmp_path / "ref.lmdb"
    subprocess.run(
        [str(REF_PYTHON), str(HERE / "_atoms_kinds.py"), str(ref_file)],
        check=True,
        capture_output=True,
        cwd=HERE,
    )
    ours = tmp_path / "ours.lmdb"
    with ASEIO(str(ours)) as db:
        db.extend(frames())
    assert stored_rows(ours) == stored_rows(ref_file)


class MyAtoms(Atoms):
    """A subclass: its properties may differ, so it takes the Python path."""


def test_unusual_frames_take_the_python_path() -> None:
    sub = MyAtoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    moved = molecule("H2O")
    moved.calc = SinglePointCalculator(moved, energy=1.0)
    moved.calc.results = {
        "energy": 1.0,
        7: "int key",
    }  # a non-str key: dict path's error
    for atoms in (sub, moved):
        assert rust_path(atoms) == python_path(atoms)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: {"not": "atoms"}, AsebytesTypeError, "Input must be an ase.Atoms"),
        (lambda: _with_celldisp(), AsebytesValueError, "non-zero cell displacement"),
        (lambda: _with_object_info(), AsebytesTypeError, "info.obj"),
        (lambda: _with_bad_constraint(), AsebytesTypeError, "FixConstraint"),
    ],
)
def test_bad_frames_raise_what_the_python_path_raises_and_store_nothing(
    tmp_path: Path, make: Any, error: type[Exception], match: str
) -> None:
    bad = make()
    with pytest.raises(error, match=match):
        _native.encode_atoms(bad)
    with ASEIO(str(tmp_path / "bad.lmdb")) as db:
        db.extend([molecule("H2")])
        with pytest.raises(error, match=match):
            db.extend([molecule("H2"), bad])
        if isinstance(bad, Atoms):
            with pytest.raises(error, match=match):
                db[0] = bad
        assert len(db) == 1


def _with_celldisp() -> Atoms:
    atoms = molecule("H2")
    atoms.set_celldisp([0.5, 0.0, 0.0])
    return atoms


def _with_object_info() -> Atoms:
    atoms = molecule("H2")
    atoms.info["obj"] = object()
    return atoms


class _NotAConstraint:
    def todict(self) -> dict[str, Any]:
        return {}

    def adjust_positions(self, atoms: Atoms, new: Any) -> None:
        pass


def _with_bad_constraint() -> Atoms:
    atoms = molecule("H2")
    atoms._constraints = [_NotAConstraint()]
    return atoms


def test_mutating_atoms_after_extend_never_changes_the_store(tmp_path: Path) -> None:
    atoms = molecule("CH4")
    atoms.info["tag"] = "before"
    with ASEIO(str(tmp_path / "m.lmdb")) as db:
        db.extend([atoms])
        atoms.positions += 1.0
        atoms.info["tag"] = "after"
        back = db[0]
    assert back.info["tag"] == "before"
    np.testing.assert_array_equal(back.positions, molecule("CH4").positions)


def test_the_python_path_can_be_selected_for_comparisons(tmp_path: Path) -> None:
    script = (
        "import asebytes, sys; from ase.build import molecule;"
        "db = asebytes.ASEIO(sys.argv[1]); db.extend([molecule('H2O')]);"
        "print(db._writes_atoms)"
    )
    env = dict(os.environ, ASEBYTES_ATOMS_ENCODE="python")
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "p.lmdb")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert out.strip() == "False"
    with ASEIO(str(tmp_path / "p.lmdb")) as db:
        assert db._writes_atoms
        assert stored_rows(tmp_path / "p.lmdb") == [encode(molecule("H2O"))]
