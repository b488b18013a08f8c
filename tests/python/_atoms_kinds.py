"""Many kinds of ``Atoms``, seeded, for the write-path golden tests.

Imports only numpy and ASE, so the reference virtualenv (``.venv-ref``) builds the very
same frames: ``python _atoms_kinds.py`` there prints the reference's ``encode`` of each
one (pickled) for ``test_atoms_encode.py`` to compare against.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixBondLengths, FixCartesian, FixedLine


def _ethanol() -> Atoms:
    atoms = molecule("CH3CH2OH")
    atoms.calc = SinglePointCalculator(
        atoms, energy=-12.5, forces=np.linspace(-1, 1, 27).reshape(9, 3)
    )
    return atoms


def _periodic() -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.pbc = [True, True, False]
    rng = np.random.default_rng(1)
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=-30.0,
        free_energy=-30.5,
        forces=rng.normal(size=(len(atoms), 3)),
        stress=rng.normal(size=6),
        energies=rng.normal(size=len(atoms)),
        magmoms=rng.normal(size=len(atoms)),
        magmom=0.5,
    )
    return atoms


def _info_of_every_type() -> Atoms:
    atoms = molecule("H2O")
    atoms.info.update(
        {
            "smiles": "O",
            "unicode": "Ångström ✓",
            "count": 7,
            "big": 2**63 + 5,
            "negative": -(2**40),
            "flag": True,
            "off": False,
            "ratio": 0.25,
            "none": None,
            "nested": {
                "a": {"b": [1, 2.5, {"c": "d", "e": None}]},
                "arr": np.arange(3),
            },
            "list": [1, "two", 3.0, [True, None]],
            "tuple": (1, 2),
            "vec": np.linspace(0, 1, 4),
            "matrix_f32": np.arange(6, dtype=np.float32).reshape(2, 3),
            "np_int32": np.int32(5),
            "np_int64": np.int64(-9),
            "np_uint8": np.uint8(200),
            "np_float32": np.float32(1.5),
            "np_float64": np.float64(2.25),
            "np_bool": np.bool_(True),
            "np_complex": np.complex128(1 + 2j),
            "bytes": b"\x00\xff",
            "a.b.c": "dotted",
            "empty_dict": {},
            "empty_list": [],
        }
    )
    return atoms


def _constraints() -> Atoms:
    atoms = molecule("CH4")
    atoms.set_constraint(
        [
            FixAtoms(indices=[0, 2]),
            FixCartesian(1, mask=(True, False, True)),
            FixBondLengths([[3, 4]]),
            FixedLine(3, direction=[0, 0, 1]),
        ]
    )
    return atoms


def _per_atom_arrays() -> Atoms:
    rng = np.random.default_rng(2)
    atoms = Atoms(
        "C2H2O",
        positions=rng.normal(size=(5, 3)),
        cell=[[4.0, 0.1, 0.0], [0.0, 5.0, 0.2], [0.3, 0.0, 6.0]],
        pbc=[True, False, True],
    )
    atoms.set_tags(np.arange(5))
    atoms.set_masses(rng.uniform(1, 20, size=5))
    atoms.set_momenta(rng.normal(size=(5, 3)))
    atoms.set_initial_charges(rng.normal(size=5))
    atoms.set_initial_magnetic_moments(rng.normal(size=5))
    atoms.new_array("custom_vec", rng.normal(size=(5, 2)).astype(np.float32))
    atoms.new_array("custom_int", np.arange(5, dtype=np.int16))
    atoms.new_array("custom_bool", np.array([True, False, True, True, False]))
    atoms.new_array("custom_str", np.array(["a", "bb", "c", "d", "e"]))
    return atoms


def _not_contiguous() -> Atoms:
    atoms = molecule("C6H6")
    # Arrays ASE keeps as given: a Fortran-ordered and a strided one.
    atoms.arrays["fortran"] = np.asfortranarray(np.arange(36.0).reshape(12, 3))
    atoms.arrays["strided"] = np.arange(24)[::2]
    atoms.info["strided"] = np.arange(10.0)[::3]
    return atoms


def _negative_zero_celldisp() -> Atoms:
    atoms = molecule("N2")
    atoms.set_celldisp([-0.0, 0.0, -0.0])
    return atoms


def _odd_keys() -> Atoms:
    atoms = molecule("CO")
    atoms.info[1] = "int key"
    atoms.info[("t", 2)] = "tuple key"
    return atoms


def _calc_without_results() -> Atoms:
    atoms = molecule("H2")
    atoms.calc = SinglePointCalculator(atoms)
    return atoms


def _only_numbers() -> Atoms:
    return Atoms(numbers=[1, 2, 3])


#: name -> builder, in a fixed order.
KINDS: dict[str, Callable[[], Atoms]] = {
    "empty": Atoms,
    "only_numbers": _only_numbers,
    "ethanol_with_calc": _ethanol,
    "periodic_stress_per_atom": _periodic,
    "info_of_every_type": _info_of_every_type,
    "constraints": _constraints,
    "per_atom_arrays": _per_atom_arrays,
    "not_contiguous": _not_contiguous,
    "negative_zero_celldisp": _negative_zero_celldisp,
    "odd_info_keys": _odd_keys,
    "calc_without_results": _calc_without_results,
}


def frames() -> list[Atoms]:
    """One frame of every kind, in :data:`KINDS` order."""
    return [build() for build in KINDS.values()]


if __name__ == "__main__":
    # In the reference virtualenv: pickle [(name, encode(atoms) items or error)] to stdout,
    # and with a path argument also write every frame to an LMDB file there.
    import pickle

    import asebytes

    out = []
    for name, build in KINDS.items():
        try:
            out.append((name, list(asebytes.encode(build()).items())))
        except Exception as e:  # noqa: BLE001 - the reference's refusal is the answer
            out.append((name, f"{type(e).__name__}: {e}"))
    if len(sys.argv) > 1:
        db = asebytes.ASEIO(sys.argv[1])
        for name, build in KINDS.items():
            try:
                db.extend([build()])
            except Exception:  # noqa: BLE001, S112 - frames the reference refuses
                continue
    sys.stdout.buffer.write(pickle.dumps(out))
