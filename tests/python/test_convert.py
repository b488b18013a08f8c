"""atoms_to_dict / dict_to_atoms (fast path == ASE's public constructors), encode/decode."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any

import ase.io
import numpy as np
import pytest
from _helpers import assert_same, make_atoms, rich_atoms, same
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import (
    FixAtoms,
    FixBondLengths,
    FixCartesian,
    Hookean,
    dict2constraint,
)
from asebytes import (
    _convert,
    atoms_to_dict,
    decode,
    dict_to_atoms,
    encode,
    get_metadata,
)
from asebytes.exceptions import AsebytesError


def _with_calc(atoms: Atoms, **results: Any) -> Atoms:
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def _variants() -> dict[str, Callable[[], Atoms]]:
    rng = np.random.default_rng(42)
    return {
        "empty": lambda: Atoms(),
        "empty_with_calc": lambda: _with_calc(Atoms(), energy=1.0),
        "molecule": lambda: Atoms("H2O", positions=rng.normal(size=(3, 3))),
        "pbc_cell": lambda: Atoms(
            "Cu4", positions=rng.normal(size=(4, 3)), cell=np.eye(3) * 3.6, pbc=True
        ),
        "partial_pbc_triclinic": lambda: Atoms(
            "NaCl",
            positions=rng.normal(size=(2, 3)),
            cell=[[3, 0.2, 0], [0.1, 4, 0], [0, 0.3, 5]],
            pbc=[True, True, False],
        ),
        "constraints": lambda: Atoms(
            "H4",
            positions=rng.normal(size=(4, 3)),
            constraint=[
                FixAtoms(indices=[0]),
                FixBondLengths([[1, 2], [2, 3]]),
                FixCartesian(3, mask=[True, False, True]),
            ],
        ),
        "nested_info": lambda: Atoms(
            "He",
            info={
                "a": {"b": {"c": [1, 2.5, "x", None]}},
                "arr": np.arange(4),
                "flag": False,
            },
        ),
        "custom_arrays": lambda: _custom_arrays(rng),
        "per_atom_properties": lambda: _per_atom(rng),
        "calc_all_results": lambda: _with_calc(
            Atoms("CO2", positions=rng.normal(size=(3, 3))),
            energy=-3.0,
            free_energy=-3.1,
            forces=rng.normal(size=(3, 3)),
            stress=rng.normal(size=6),
            magmoms=rng.normal(size=3),
            magmom=0.5,
            dipole=rng.normal(size=3),
        ),
        "calc_energy_only": lambda: _with_calc(Atoms("H"), energy=-0.5),
        "rich": lambda: rich_atoms(1),
        "seeded_frame": lambda: make_atoms(7),
    }


def _custom_arrays(rng: np.random.Generator) -> Atoms:
    atoms = Atoms("C3", positions=rng.normal(size=(3, 3)))
    atoms.new_array("f32", rng.normal(size=(3, 2)).astype(np.float32))
    atoms.new_array("ints", np.array([1, 2, 3], dtype=np.int16))
    atoms.new_array("flags", np.array([True, False, True]))
    atoms.new_array("matrix", rng.normal(size=(3, 3, 3)))
    return atoms


def _per_atom(rng: np.random.Generator) -> Atoms:
    atoms = Atoms("Fe2O3", positions=rng.normal(size=(5, 3)))
    atoms.set_tags([1, 0, 2, 0, 1])
    atoms.set_masses(rng.uniform(1, 60, size=5))
    atoms.set_momenta(rng.normal(size=(5, 3)))
    atoms.set_initial_charges(rng.normal(size=5))
    atoms.set_initial_magnetic_moments(rng.normal(size=5))
    return atoms


VARIANTS = _variants()


def public_build(data: dict[str, Any]) -> Atoms:
    """The flat dict rebuilt with ASE's public constructors only (the oracle)."""
    atoms = Atoms(
        numbers=data.get("arrays.numbers", []),
        positions=data.get("arrays.positions"),
        cell=data.get("cell"),
        pbc=data.get("pbc"),
    )
    results: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("arrays.") and key not in (
            "arrays.numbers",
            "arrays.positions",
        ):
            atoms.set_array(key[7:], np.asarray(value))
        elif key.startswith("info."):
            atoms.info[key[5:]] = value
        elif key.startswith("calc."):
            results[key[5:]] = value
    atoms.set_constraint([dict2constraint(d) for d in data.get("constraints", [])])
    if results:
        atoms.calc = SinglePointCalculator(atoms)
        atoms.calc.results.update(results)
    return atoms


def _extxyz(atoms: Atoms) -> str:
    """What ``ase.io.write`` makes of ``atoms`` (or the error it raises), warnings included."""
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ase.io.write(out, atoms, format="extxyz")
        except (TypeError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
    return out.getvalue() + "".join(str(w.message) for w in caught)


def assert_equivalent(fast: Atoms, ref: Atoms) -> None:
    assert type(fast) is Atoms
    assert fast == ref
    assert sorted(vars(fast)) == sorted(vars(ref))
    for name, value in vars(ref).items():
        assert type(getattr(fast, name)) is type(value), name
    assert fast._celldisp.shape == ref._celldisp.shape
    assert_same(fast.cell.array, ref.cell.array)
    assert_same(fast.pbc, ref.pbc)
    assert fast.arrays.keys() == ref.arrays.keys()
    for name in ref.arrays:
        assert_same(fast.arrays[name], ref.arrays[name])
        assert (
            fast.arrays[name].flags.writeable and fast.arrays[name].flags.c_contiguous
        )
    assert_same(fast.info, ref.info)
    assert [c.todict() for c in fast.constraints] == [
        c.todict() for c in ref.constraints
    ]
    if ref.calc is None:
        assert fast.calc is None
    else:
        assert type(fast.calc) is SinglePointCalculator
        assert sorted(vars(fast.calc)) == sorted(vars(ref.calc))
        assert_same(fast.calc.results, ref.calc.results)
        assert fast.calc.atoms is not fast
        assert fast.calc.atoms == ref.calc.atoms
        assert fast.calc.atoms.arrays.keys() == ref.calc.atoms.arrays.keys()
        for name, array in fast.calc.atoms.arrays.items():
            assert not np.shares_memory(array, fast.arrays[name]), name
        assert fast.calc.check_state(fast) == ref.calc.check_state(ref) == []
        for prop in ("energy", "free_energy", "forces", "stress", "magmoms"):
            if prop in ref.calc.results:
                assert_same(
                    fast.calc.get_property(prop, fast), ref.calc.get_property(prop, ref)
                )
    assert _extxyz(fast) == _extxyz(ref)
    copy = fast.copy()
    assert copy == ref and copy.arrays.keys() == ref.arrays.keys()


@pytest.fixture
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if dict_to_atoms falls back to the public path (the fast path must cover it)."""

    def boom(*args: Any) -> Atoms:
        raise AssertionError("fast path fell back to the public constructors")

    monkeypatch.setattr(_convert, "_public_dict_to_atoms", boom)


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("copy", [True, False])
def test_dict_to_atoms_fast_path_equals_public_constructors(
    name: str, copy: bool, no_fallback: None
) -> None:
    original = VARIANTS[name]()
    data = atoms_to_dict(original)
    ref = public_build(atoms_to_dict(original))
    fast = dict_to_atoms(data, copy=copy)
    assert_equivalent(fast, ref)
    assert fast == original


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_dict_to_atoms_public_path_equals_fast_path(name: str) -> None:
    data = atoms_to_dict(VARIANTS[name]())
    assert_equivalent(dict_to_atoms(data, fast=False), public_build(data))


@pytest.mark.parametrize(
    "name", ["calc_all_results", "rich", "seeded_frame", "calc_energy_only"]
)
@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 0.1),
        lambda a: a.set_cell(a.cell.array + 1.0),
        lambda a: a.pbc.__setitem__(0, not a.pbc[0]),
        lambda a: a.numbers.__setitem__(0, a.numbers[0] + 1),
    ],
    ids=["move_atom", "cell", "pbc", "numbers"],
)
def test_calc_results_are_stale_after_changes_exactly_as_in_ase(
    name: str, change: Any
) -> None:
    data = atoms_to_dict(VARIANTS[name]())
    fast, ref = dict_to_atoms(data), public_build(data)
    assert fast.get_potential_energy() == ref.get_potential_energy()
    change(fast)
    change(ref)
    for atoms in (fast, ref):
        with pytest.raises(PropertyNotImplementedError):
            atoms.get_potential_energy()
        if "forces" in atoms.calc.results:
            with pytest.raises(PropertyNotImplementedError):
                atoms.get_forces()


def test_dict_to_atoms_result_is_fully_writable() -> None:
    atoms = dict_to_atoms(atoms_to_dict(rich_atoms()), copy=False)
    atoms[0].symbol = "N"
    atoms.cell[0, 0] = 9.0
    atoms.pbc[1] = True
    atoms.positions += 1.0
    assert atoms.get_chemical_symbols()[0] == "N"
    assert atoms.cell[0, 0] == 9.0 and atoms.pbc.all()


def test_dict_to_atoms_copy_never_shares_memory_with_the_dict() -> None:
    data = atoms_to_dict(rich_atoms())
    atoms = dict_to_atoms(data)
    for key, value in data.items():
        if isinstance(value, np.ndarray):
            for array in [
                *atoms.arrays.values(),
                atoms.cell.array,
                atoms.pbc,
                *atoms.calc.results.values(),
            ]:
                if isinstance(array, np.ndarray):
                    assert not np.shares_memory(array, value), key


def test_dict_to_atoms_copy_false_is_zero_copy_and_keeps_read_only() -> None:
    data = atoms_to_dict(make_atoms(3))
    for value in data.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    atoms = dict_to_atoms(data, copy=False)
    assert np.shares_memory(atoms.positions, data["arrays.positions"])
    assert np.shares_memory(atoms.numbers, data["arrays.numbers"])
    assert np.shares_memory(atoms.cell.array, data["cell"])
    assert np.shares_memory(atoms.calc.results["forces"], data["calc.forces"])
    with pytest.raises(ValueError, match="read-only"):
        atoms.positions[0] = 0.0
    owned = dict_to_atoms(data)  # the default stays writable copies
    owned[0].symbol = "C"
    owned.positions[0] = 0.0
    owned.cell[0, 0] = 1.0
    assert not np.shares_memory(owned.positions, data["arrays.positions"])


def test_decode_copy_false_gives_read_only_views_of_the_bytes() -> None:
    atoms = rich_atoms()
    data = encode(atoms)
    shared = decode(data, copy=False)
    assert shared == atoms
    for name, array in [
        ("positions", shared.positions),
        ("numbers", shared.numbers),
        ("cell", shared.cell.array),
        ("forces", shared.calc.results["forces"]),
    ]:
        assert not array.flags.writeable, name
        assert not array.flags.owndata, name  # a view of the encoded bytes
    with pytest.raises(ValueError, match="read-only"):
        shared.positions[0] = 0.0
    owned = decode(data)
    assert owned == atoms
    owned.positions[0] = 0.0
    owned.numbers[0] = 1
    owned.cell[0, 0] = 2.0


def test_dict_to_atoms_defaults_for_missing_keys() -> None:
    atoms = dict_to_atoms({"arrays.numbers": np.array([1, 8])})
    assert_same(atoms.positions, np.zeros((2, 3)))
    assert_same(atoms.cell.array, np.zeros((3, 3)))
    assert_same(atoms.pbc, np.zeros(3, dtype=bool))
    empty = dict_to_atoms({"calc.energy": 1.5, "unknown": 3})
    assert len(empty) == 0 and empty.calc.results == {"energy": 1.5}


@pytest.mark.parametrize(
    "data",
    [
        {
            "arrays.numbers": [1, 8],
            "arrays.positions": [[0, 0, 0], [1, 1, 1]],
            "pbc": [1, 0, 1],
            "cell": [3, 4, 5],
        },
        {
            "arrays.numbers": np.array([1, 8], dtype=np.int32),
            "cell": np.eye(3, dtype=np.float32),
        },
        {
            "arrays.numbers": np.array([6]),
            "arrays.positions": np.zeros((1, 3), dtype=np.float32),
            "arrays.tags": [3],
        },
    ],
)
def test_dict_to_atoms_unusual_input_is_converted_like_ase(
    data: dict[str, Any],
) -> None:
    atoms = dict_to_atoms(data)
    assert_equivalent(atoms, public_build(data))
    assert atoms.numbers.dtype == np.int64 and atoms.positions.dtype == np.float64


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    "data",
    [
        {"arrays.positions": np.arange(9.0).reshape(3, 3)},
        {"arrays.forces": np.ones((3, 3)), "calc.energy": 1.5},
        {"arrays.positions": np.arange(9.0).reshape(3, 3), "arrays.tags": np.arange(3)},
    ],
    ids=["positions", "forces", "positions_and_tags"],
)
def test_dict_to_atoms_without_numbers_gives_atoms_of_unknown_element(
    data: dict[str, Any], fast: bool
) -> None:
    # A partial row (`ASEIO.get(i, keys=["arrays.positions"])`, a column view): asebytes
    # 0.3.3 builds it too (its numbers are left empty); ours says "X" for each atom.
    atoms = dict_to_atoms(data, fast=fast)
    assert len(atoms) == 3
    assert_same(atoms.numbers, np.zeros(3, dtype=np.int64))
    assert atoms.get_chemical_symbols() == ["X"] * 3
    if "arrays.positions" in data:
        assert_same(atoms.positions, data["arrays.positions"])
    if "arrays.tags" in data:
        assert_same(atoms.get_tags(), data["arrays.tags"])


def test_dict_to_atoms_inconsistent_lengths_raise_like_ase() -> None:
    data = {"arrays.numbers": np.array([1, 2]), "arrays.positions": np.zeros((3, 3))}
    with pytest.raises(ValueError):
        dict_to_atoms(data)


# ----------------------------------------------------------------------------- atoms_to_dict


def test_atoms_to_dict_keys_in_reference_order() -> None:
    data = atoms_to_dict(rich_atoms())
    keys = list(data)
    assert keys[:2] == ["cell", "pbc"]
    assert keys[2:4] == ["arrays.numbers", "arrays.positions"]
    assert keys[-1] == "constraints"
    prefixes = [k.split(".")[0] for k in keys[2:-1]]
    assert prefixes == sorted(prefixes, key=["arrays", "info", "calc"].index)
    assert data["constraints"] == [
        {"name": "FixAtoms", "kwargs": {"indices": [0, 2]}},
        {"name": "FixBondLengths", "kwargs": {"pairs": [[1, 3]], "tolerance": 1e-13}},
    ]
    assert data["info.a.b.c"] == "dotted"


def test_atoms_to_dict_does_not_alias_the_atoms() -> None:
    atoms = make_atoms(2)
    data = atoms_to_dict(atoms)
    data["arrays.positions"][:] = 99.0
    data["cell"][:] = 99.0
    data["calc.forces"][:] = 99.0
    assert not (atoms.positions == 99.0).any()
    assert not (atoms.cell.array == 99.0).any()
    assert not (atoms.calc.results["forces"] == 99.0).any()


def test_atoms_to_dict_omits_empty_calc_and_constraints() -> None:
    atoms = Atoms("H")
    atoms.calc = SinglePointCalculator(atoms)
    assert list(atoms_to_dict(atoms)) == [
        "cell",
        "pbc",
        "arrays.numbers",
        "arrays.positions",
    ]


@pytest.mark.parametrize("value", ["H2O", None, {"cell": 1}, [Atoms("H")]])
def test_atoms_to_dict_rejects_non_atoms(value: Any) -> None:
    with pytest.raises(
        TypeError, match=r"^Input must be an ase\.Atoms object\.$"
    ) as info:
        atoms_to_dict(value)
    assert isinstance(info.value, AsebytesError)


def test_atoms_to_dict_rejects_cell_displacement() -> None:
    atoms = Atoms("H", celldisp=[0.5, 0, 0])
    with pytest.raises(ValueError, match="non-zero cell displacement"):
        atoms_to_dict(atoms)
    with pytest.raises(ValueError, match="non-zero cell displacement"):
        encode(atoms)


def test_atoms_to_dict_rejects_constraints_outside_fixconstraint() -> None:
    atoms = Atoms("H2", positions=np.zeros((2, 3)))
    atoms.set_constraint(Hookean(0, 1, 1.0, 1.0))
    atoms.constraints.append(object())
    with pytest.raises(
        TypeError, match=r"does not inherit from ase\.constraints\.FixConstraint"
    ):
        atoms_to_dict(atoms)


def test_sep_keyword_round_trips() -> None:
    atoms = rich_atoms()
    data = atoms_to_dict(atoms, sep="_")
    assert "arrays_positions" in data and "calc_energy" in data and "info_a.b.c" in data
    back = dict_to_atoms(data, sep="_")
    assert back == atoms and back.info["a.b.c"] == "dotted"
    assert back.calc.results["energy"] == -12.5


@pytest.mark.parametrize("name", ["info.data", ".hidden", "a.b.c", ""])
def test_dotted_info_names_round_trip_verbatim(name: str) -> None:
    atoms = Atoms("H", info={name: 1})
    assert f"info.{name}" in atoms_to_dict(atoms)
    assert dict_to_atoms(atoms_to_dict(atoms)).info == {name: 1}


# ----------------------------------------------------------------------------- encode/decode


def test_encode_decode_round_trip_rich_atoms() -> None:
    atoms = rich_atoms(3)
    data = encode(atoms)
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in data.items())
    assert list(data) == [k.encode() for k in atoms_to_dict(atoms)]
    back = decode(data)
    assert_equivalent(back, public_build(atoms_to_dict(atoms)))
    back.positions[0] = 1.0
    back[0].symbol = "C"


def test_encode_is_byte_compatible_with_msgpack_numpy() -> None:
    msgpack = pytest.importorskip("msgpack", reason="the byte-compatibility oracle")
    m = pytest.importorskip("msgpack_numpy", reason="the byte-compatibility oracle")
    atoms = make_atoms(4)
    for key, value in encode(atoms).items():
        expected = atoms_to_dict(atoms)[key.decode()]
        assert (
            same(msgpack.unpackb(value, object_hook=m.decode), expected)
            or key == b"pbc"
        )
    assert encode(atoms)[b"arrays.positions"] == msgpack.packb(
        atoms.positions, default=m.encode
    )


def test_decode_unknown_key_is_value_error() -> None:
    data = encode(Atoms("H"))
    data[b"foo"] = data[b"pbc"]
    with pytest.raises(ValueError, match=r"Unknown key in data: b'foo'"):
        decode(data)


def test_decode_pbc_stored_as_plain_list_becomes_bool_array() -> None:
    from asebytes import _native

    data = encode(Atoms("H", pbc=True))
    data[b"pbc"] = _native.encode_value([True, False, True])
    atoms = decode(data)
    assert_same(atoms.pbc, np.array([True, False, True]))


def test_decode_missing_numbers_gives_empty_atoms() -> None:
    atoms = decode({})
    assert len(atoms) == 0 and atoms.calc is None


def test_get_metadata_describes_each_field() -> None:
    from asebytes import _native

    data = encode(make_atoms(0))
    data[b"info.s"] = _native.encode_value("x")
    data[b"info.n"] = _native.encode_value(None)
    data[b"info.b"] = _native.encode_value(True)
    data[b"info.l"] = _native.encode_value((1, 2))
    data[b"info.d"] = _native.encode_value({"a": 1})
    data[b"info.np"] = _native.encode_value(np.float32(1.5))
    meta = get_metadata(data)
    assert meta["arrays.positions"] == {
        "type": "ndarray",
        "dtype": "float64",
        "shape": (2, 3),
    }
    assert meta["calc.energy"] == {"type": "float"}
    assert meta["info.i"] == {"type": "int"}
    assert meta["info.s"] == {"type": "str"}
    assert meta["info.n"] == {"type": "NoneType"}
    assert meta["info.b"] == {"type": "bool"}
    assert meta["info.l"] == {"type": "list"}
    assert meta["info.d"] == {"type": "dict"}
    assert meta["info.np"] == {"type": "numpy_scalar", "dtype": "float32"}


@pytest.mark.parametrize(
    "name",
    [
        "seeded_frame",
        "calc_all_results",
        "per_atom_properties",
        "pbc_cell",
        "constraints",
    ],
)
def test_extxyz_write_and_read_back_of_rebuilt_atoms(name: str, tmp_path: Any) -> None:
    original = VARIANTS[name]()
    atoms = dict_to_atoms(atoms_to_dict(original))
    path = tmp_path / "out.extxyz"
    ase.io.write(path, atoms, format="extxyz")
    back = ase.io.read(path, format="extxyz")
    assert isinstance(back, Atoms)
    assert np.allclose(back.positions, original.positions)
    assert (back.numbers == original.numbers).all()
    if original.calc is not None and "energy" in original.calc.results:
        assert back.get_potential_energy() == pytest.approx(
            original.get_potential_energy()
        )
