"""Atoms built natively (``Store.get_atoms``/``get_atoms_many``, ``_native.decode_atoms``)
equal what the Python ``dict_to_atoms`` builds from the same stored rows."""

from __future__ import annotations

import copy
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _helpers import assert_same, make_atoms, rich_atoms
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.constraints import FixAtoms
from asebytes import ASEIO, ObjectIO, _convert, _native, dict_to_atoms, encode
from asebytes.exceptions import AsebytesTypeError
from conftest import Backend
from test_convert import VARIANTS, assert_equivalent

# Rows the native fast path must not take (the Python path converts them like ASE does).
UNUSUAL_ROWS: dict[str, dict[str, Any]] = {
    "lists": {
        "arrays.numbers": [1, 8],
        "arrays.positions": [[0, 0, 0], [1, 1, 1]],
        "pbc": [True, False, True],
        "cell": [3.0, 4.0, 5.0],
        "calc.energy": -1.5,
    },
    "int32_numbers_float32_cell": {
        "arrays.numbers": np.array([1, 8], dtype=np.int32),
        "cell": np.eye(3, dtype=np.float32),
        "calc.forces": np.ones((2, 3)),
    },
    "float32_positions_list_tags": {
        "arrays.numbers": np.array([6]),
        "arrays.positions": np.zeros((1, 3), dtype=np.float32),
        "arrays.tags": [3],
        "info.x": 1,
    },
    "big_endian_positions": {
        "arrays.numbers": np.array([6, 1]),
        "arrays.positions": np.arange(6, dtype=">f8").reshape(2, 3),
    },
}

# Partial rows (a positions-only `get`, a column view): atoms of element 0, as many as the
# per-atom arrays have, the same on the native and the Python path.
PARTIAL_ROWS: dict[str, dict[str, Any]] = {
    "positions_without_numbers": {"arrays.positions": np.arange(6.0).reshape(2, 3)},
    "forces_without_numbers": {"calc.forces": np.ones((2, 3)), "arrays.tags": [1, 2]},
}


def _stored_and_read(backend: Backend, row: dict[str, Any]) -> tuple[Any, Any]:
    """Store ``row`` as row 0 through ``ObjectIO``; the ASE store and its native read."""
    ObjectIO(backend.location).extend([row])
    store = ASEIO(backend.location)._backend
    return store, store.get_atoms(0)


@pytest.mark.parametrize("name", sorted(PARTIAL_ROWS))
def test_partial_rows_are_atoms_of_unknown_element_on_both_paths(
    backend: Backend, name: str
) -> None:
    store, got = _stored_and_read(backend, PARTIAL_ROWS[name])
    assert len(got) == 2 and got.numbers.tolist() == [0, 0]
    assert_equivalent(got, _python_path(store, 0, fast=False))
    assert_equivalent(store.get_atoms_many([0])[0], _python_path(store, 0))


# Rows the Python path refuses; the native read must raise the same error.
BAD_ROWS: dict[str, dict[str, Any]] = {
    "inconsistent_lengths": {
        "arrays.numbers": np.array([1, 2]),
        "arrays.positions": np.zeros((3, 3)),
    },
    "scalar_custom_array": {
        "arrays.numbers": np.array([6]),
        "arrays.flag": np.array(1.0),
    },
    "pbc_of_two": {"arrays.numbers": np.array([6]), "pbc": np.array([True, False])},
    "custom_array_wrong_length": {
        "arrays.numbers": np.array([1, 2]),
        "arrays.charges_x": np.zeros(3),
    },
}


@pytest.fixture
def backend(sync_backend: Backend) -> Backend:
    """These tests exercise the native store itself: one (sync) run per location."""
    return sync_backend


def _frames() -> list[Atoms | None]:
    frames: list[Atoms | None] = [VARIANTS[name]() for name in sorted(VARIANTS)]
    frames += [make_atoms(i, n) for i, n in enumerate([1, 4, 9, 2, 0])]
    frames.insert(3, None)
    frames.append(None)
    return frames


@pytest.fixture
def stored(backend: Backend) -> Iterator[tuple[ASEIO, Any, list[Atoms | None]]]:
    """An ASEIO over a daemon-backed store holding every variant, its native Store, and
    the frames as written (``None`` for placeholders)."""
    db = ASEIO(backend.location)
    frames = _frames()
    db.extend(frames)
    store = db._backend
    assert hasattr(store, "get_atoms")
    yield db, store, frames


def _python_path(store: Any, i: int, **kwargs: Any) -> Atoms:
    """What the Python ``dict_to_atoms`` builds from row ``i`` (not a placeholder)."""
    row = store.get(i)
    assert row is not None
    return dict_to_atoms(row, **kwargs)


def _assert_fully_writable(atoms: Atoms) -> None:
    arrays = [*atoms.arrays.values(), atoms.cell.array, atoms.pbc, atoms._celldisp]
    if atoms.calc is not None:
        arrays += [v for v in atoms.calc.results.values() if isinstance(v, np.ndarray)]
        snap = atoms.calc.atoms
        for own, frozen in [
            (atoms.cell.array, snap.cell.array),
            (atoms.pbc, snap.pbc),
            (atoms._celldisp, snap._celldisp),
        ]:
            assert not np.shares_memory(own, frozen)
    arrays += [v for v in atoms.info.values() if isinstance(v, np.ndarray)]
    for a in arrays:
        assert a.flags.writeable and a.flags.c_contiguous


def test_get_atoms_equals_python_path_for_every_variant(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    _, store, frames = stored
    many = store.get_atoms_many(list(range(len(frames))))
    assert len(many) == len(frames)
    for i, original in enumerate(frames):
        got = store.get_atoms(i)
        if original is None:
            assert got is None and many[i] is None
            continue
        public = _python_path(store, i, fast=False)
        python_fast = _python_path(store, i, copy=False)
        assert_equivalent(got, public)
        assert_equivalent(got, python_fast)
        assert_equivalent(many[i], public)
        assert got == original
        assert list(vars(got)) == list(vars(python_fast))
        if got.calc is not None:
            assert list(vars(got.calc)) == list(vars(python_fast.calc))
            method = vars(got.calc)["get_spin_polarized"]
            assert method is vars(python_fast.calc)["get_spin_polarized"]
            with pytest.warns(FutureWarning):
                assert got.calc.get_spin_polarized() is False
        _assert_fully_writable(got)


def test_a_dropped_atoms_is_freed_without_the_cycle_collector(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    # No reference cycle in what a read returns (ASE's own calculators bind
    # `get_spin_polarized` to themselves): dropping the last reference frees the Atoms,
    # its calculator and the calculator's snapshot at once, with the collector off.
    db, store, frames = stored
    i = next(i for i, f in enumerate(frames) if f is not None and f.calc is not None)
    reads = [
        lambda: store.get_atoms(i),
        lambda: db[i],
        lambda: db[0:][i],
        lambda: db[0:].to_list()[i],
    ]
    gc.collect()
    gc.disable()
    try:
        for read in reads:
            got = read()
            refs = [weakref.ref(o) for o in (got, got.calc, got.calc.atoms)]
            del got
            assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()


def _with_calc(frames: list[Atoms | None]) -> int:
    return next(i for i, f in enumerate(frames) if f is not None and f.calc is not None)


def test_the_cycle_free_parts_are_left_out_of_the_cycle_collector(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    # The Atoms, its constraints list and its calculator stay tracked (programs build
    # cycles through them); both Cells, the calculator's Parameters and its snapshot (with
    # the snapshot's constraints list) are never part of one, so they cost the GC nothing.
    db, store, frames = stored
    i = _with_calc(frames)
    for got in (store.get_atoms(i), db[i], db[0:].to_list()[i]):
        snap = got.calc.atoms
        assert [gc.is_tracked(o) for o in (got, got.constraints, got.calc)] == [
            True
        ] * 3
        untracked = (got.cell, got.calc.parameters, snap, snap.cell, snap.constraints)
        assert not any(gc.is_tracked(o) for o in untracked)
        # The snapshot still does its job: results stay valid until an atom moves.
        assert got.get_potential_energy() == frames[i].get_potential_energy()
        got.positions[0] += 1.0
        with pytest.raises(PropertyNotImplementedError):
            got.get_potential_energy()


def test_cycles_programs_build_through_an_atoms_are_still_collected(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    db, _, frames = stored
    i = _with_calc(frames)
    got = db[i]
    got.calc.atoms = got  # a calculator holding its own Atoms, as some calculators do
    got.set_constraint(FixAtoms(indices=[0]))
    got.constraints[0].owner = got  # and a constraint holding it
    got.info["self"] = got
    refs = [weakref.ref(o) for o in (got, got.calc, got.constraints[0])]
    del got
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_untracking_can_be_turned_off() -> None:
    code = """
import gc, tempfile, numpy as np
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from asebytes import ASEIO
with tempfile.TemporaryDirectory() as d:
    db = ASEIO(d + "/x.lmdb")
    a = molecule("H2O")
    a.calc = SinglePointCalculator(a, energy=-1.0)
    db.extend([a])
    got = db[0]
    print(gc.is_tracked(got.cell), gc.is_tracked(got.calc.atoms))
"""
    import os
    import subprocess
    import sys

    for value, want in (("0", "True True"), ("1", "False False")):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "ASEBYTES_GC_UNTRACK": value},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert out.stdout.split("\n")[0] == want, out.stdout + out.stderr


def test_native_reads_never_fall_back_to_python(
    stored: tuple[ASEIO, Any, list[Atoms | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, store, frames = stored

    def boom(*args: Any) -> Atoms:
        raise AssertionError("the native read fell back to the Python dict_to_atoms")

    monkeypatch.setattr(_convert, "_fast_dict_to_atoms", boom)
    monkeypatch.setattr(_convert, "_public_dict_to_atoms", boom)
    assert [store.get_atoms(i) for i in range(len(frames))] == frames
    assert db[0:].to_list() == frames
    assert list(db) == frames
    assert [db[i] for i in range(len(frames))] == frames


@pytest.mark.parametrize("name", sorted(UNUSUAL_ROWS))
def test_rows_outside_the_fast_path_are_built_by_the_python_path(
    backend: Backend, name: str
) -> None:
    store, got = _stored_and_read(backend, UNUSUAL_ROWS[name])
    assert_equivalent(got, _python_path(store, 0, fast=False))
    assert_equivalent(got, _python_path(store, 0, copy=False))
    assert_equivalent(store.get_atoms_many([0])[0], _python_path(store, 0, fast=False))
    assert got.numbers.dtype == np.int64 and got.positions.dtype == np.float64
    _assert_fully_writable(got)


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_rows_the_python_path_refuses_raise_the_same_error(
    backend: Backend, name: str
) -> None:
    ObjectIO(backend.location).extend([BAD_ROWS[name]])
    db = ASEIO(backend.location)
    with pytest.raises(Exception) as expected:
        _python_path(db._backend, 0, copy=False)
    for read in (
        lambda: db._backend.get_atoms(0),
        lambda: db._backend.get_atoms_many([0]),
        lambda: db[0],
    ):
        with pytest.raises(type(expected.value)) as got:
            read()
        assert str(got.value) == str(expected.value)


def test_mutating_returned_atoms_never_changes_the_next_read(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    _, store, frames = stored
    for i, original in enumerate(frames):
        if original is None:
            continue
        first = store.get_atoms(i)
        expected = _python_path(store, i, fast=False)
        first.positions += 1.0
        first.numbers[:] = 1
        first.cell.array[:] = 7.0
        first.pbc[:] = True
        first.info["added"] = 1
        for value in first.info.values():
            if isinstance(value, np.ndarray):
                value[...] = 0
            elif isinstance(value, dict):
                value.clear()
        for name in list(first.arrays):
            if name not in ("numbers", "positions"):
                first.arrays[name][...] = 0
        if first.calc is not None:
            for value in first.calc.results.values():
                if isinstance(value, np.ndarray):
                    value[...] = 0
            first.calc.results["energy"] = 99.0
        first.set_constraint(FixAtoms(indices=[0]) if len(first) else [])
        assert_equivalent(store.get_atoms(i), expected)


def test_moving_an_atom_makes_the_results_stale_as_in_ase(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    db, store, frames = stored
    checked = 0
    for i, original in enumerate(frames):
        if original is None or original.calc is None or len(original) == 0:
            continue
        if "energy" not in original.calc.results:
            continue
        for atoms in (store.get_atoms(i), db[i], db[i : i + 1].to_list()[0]):
            assert atoms.get_potential_energy() == original.get_potential_energy()
            atoms.positions[0, 0] += 0.1
            with pytest.raises(PropertyNotImplementedError):
                atoms.get_potential_energy()
            checked += 1
    assert checked >= 9


def test_copies_of_native_atoms_are_independent(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    _, store, frames = stored
    for i, original in enumerate(frames):
        if original is None:
            continue
        atoms = store.get_atoms(i)
        for dup in (atoms.copy(), copy.deepcopy(atoms)):
            assert dup == original
            dup.positions += 1.0
            assert atoms == original


def test_aseio_reads_use_the_native_builder(
    stored: tuple[ASEIO, Any, list[Atoms | None]],
) -> None:
    db, store, frames = stored
    n = len(frames)
    expected = [
        None if frame is None else _python_path(store, i, fast=False)
        for i, frame in enumerate(frames)
    ]
    for got in (
        [db[i] for i in range(n)],
        [db.get(i) for i in range(n)],
        list(db),
        list(reversed(list(reversed(db)))),
        db[0:n].to_list(),
        list(db[0:n]),
        list(db[0:n].chunked(3)),
        [db[0:n][i] for i in range(n)],
    ):
        assert len(got) == n
        for a, b in zip(got, expected, strict=True):
            if b is None:
                assert a is None
            else:
                assert_equivalent(a, b)


def test_aseio_get_with_keys_matches_the_python_path(backend: Backend) -> None:
    db = ASEIO(backend.location)
    db.extend([rich_atoms(), None])
    keys = ["calc.energy", "arrays.positions", "arrays.numbers", "info.nested"]
    got = db.get(0, keys)
    assert_equivalent(got, dict_to_atoms(db._backend.get(0, keys), fast=False))
    assert db.get(1, keys) is None
    with pytest.raises(KeyError, match=r"Invalid keys at index 0: \['calc.nope'\]"):
        db.get(0, ["calc.energy", "calc.nope"])


@pytest.mark.parametrize(
    ("rows", "keys", "outcome"),
    [
        ([0, 1, 2], ["calc.energy"], "ok"),
        ([0, 1], ["calc.energy", "info.i"], "ok"),
        ([0, 1, 3], ["calc.energy"], TypeError),
        ([3], ["calc.energy"], TypeError),
        ([0, 1], ["calc.nope"], KeyError),
        ([0, 3], ["calc.energy", "calc.nope"], KeyError),
    ],
)
def test_ase_column_views_follow_the_same_rules_on_every_backend(
    any_backend: Backend, rows: list[int], keys: list[str], outcome: Any
) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(0), make_atoms(1, calc=False), make_atoms(2), None])
    view = db[rows][keys]
    if outcome != "ok":
        with pytest.raises(outcome):
            view.to_list()
        return
    got = view.to_list()
    plain = any_backend.open(ObjectIO)
    for i, atoms in zip(rows, got, strict=True):
        row = {k: v for k, v in plain[i].items() if k in keys}
        if not row:
            assert atoms is None
        else:
            assert_equivalent(atoms, dict_to_atoms(row, fast=False))


def test_get_atoms_many_column_rules_name_the_missing_key(backend: Backend) -> None:
    db = ASEIO(backend.location)
    db.extend([make_atoms(0), None])
    with pytest.raises(KeyError) as info:
        db._backend.get_atoms_many(
            [0, 1], ["calc.energy", "calc.nope"], missing_ok=True
        )
    assert info.value.args == ("calc.nope",)
    assert db._backend.get_atoms_many([0, 1], ["calc.energy"]) == [
        dict_to_atoms({"calc.energy": -0.0}),
        None,
    ]


def test_blob_stores_have_no_atoms(backend: Backend) -> None:
    store = _native.Store(backend.location, tier="blob")
    with pytest.raises(AsebytesTypeError, match="object-tier"):
        store.get_atoms(0)
    with pytest.raises(AsebytesTypeError, match="object-tier"):
        store.get_atoms_many([0])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_decode_atoms_equals_the_python_path(name: str) -> None:
    data = encode(VARIANTS[name]())
    row = _native.decode_row(data)
    got = _native.decode_atoms(data)
    assert_equivalent(got, dict_to_atoms(row, fast=False))
    assert_same(got.info, dict_to_atoms(_native.decode_row(data)).info)
