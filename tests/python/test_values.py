"""Value type fidelity and copy semantics: what you store is what you get, and it is yours."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _helpers import assert_same, make_atoms
from asebytes import ASEIO, ObjectIO
from conftest import Backend

VALUES: dict[str, Any] = {
    "int": 3,
    "big_int": 2**62,
    "neg_int": -7,
    "bool_true": True,
    "bool_false": False,
    "float": 1.5,
    "nan": float("nan"),
    "str": "héllo",
    "empty_str": "",
    "none": None,
    "list": [1, 2.0, "three", None, True],
    "nested_list": [[1, 2], [3, [4]]],
    "dict": {"a": 1, "b": {"c": [1, {"d": False}]}},
    "empty_dict": {},
    "empty_list": [],
    "bytes": b"\x00\x01",
    "f64_array": np.arange(6, dtype=np.float64).reshape(2, 3),
    "f32_array": np.ones(4, dtype=np.float32),
    "i8_array": np.array([-1, 2], dtype=np.int8),
    "u16_array": np.array([1, 65535], dtype=np.uint16),
    "bool_array": np.array([True, False]),
    "c128_array": np.array([1 + 2j]),
    "empty_array": np.zeros((0, 3)),
    "scalar_array": np.array(5.0),
    "np_int64": np.int64(5),
    "np_int32": np.int32(-5),
    "np_uint8": np.uint8(200),
    "np_float32": np.float32(0.25),
    "np_bool": np.bool_(True),
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_value_round_trips_with_its_type(any_backend: Backend, name: str) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"v": VALUES[name]}])
    assert_same(db[0]["v"], VALUES[name])
    assert_same(db["v"].to_list()[0], VALUES[name])
    assert_same(db.get(0, keys=["v"])["v"], VALUES[name])


def test_all_values_in_one_row_round_trip(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([VALUES])
    assert_same(db[0], VALUES)


def test_np_float64_scalar_comes_back_as_float(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"v": np.float64(2.5)}])
    value = db[0]["v"]
    assert value == 2.5 and isinstance(value, float)


def test_tuples_become_lists(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"t": (1, (2, 3)), "d": {"t": ("a",)}}])
    assert_same(db[0], {"t": [1, [2, 3]], "d": {"t": ["a"]}})


@pytest.mark.parametrize(
    "value",
    [
        np.array([1, "a"], dtype=object),
        {1: "int key"},
        {"ok": {(1, 2): 3}},
        object(),
        {"s": {1, 2}},
    ],
    ids=["object_array", "int_key", "nested_tuple_key", "object", "set"],
)
def test_unstorable_values_are_type_error_naming_the_key(
    any_backend: Backend, value: Any
) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"keep": 1}])
    with pytest.raises(TypeError, match="bad_key"):
        db.extend([{"fine": 1}, {"bad_key": value}])
    with pytest.raises(TypeError, match="bad_key"):
        db.update(0, {"bad_key": value})
    assert db[:].to_list() == [{"keep": 1}]


def test_ase_info_values_keep_their_types(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    atoms = make_atoms(0)
    info = {k: v for k, v in VALUES.items() if k not in ("bytes",)}
    atoms.info.update(info)
    db.extend([atoms])
    got = db[0].info
    for key, value in info.items():
        assert_same(got[key], value)


# ----------------------------------------------------------------------------- copy semantics


def test_mutating_a_returned_row_does_not_change_the_store(
    any_backend: Backend,
) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"a": np.zeros(3), "l": [1], "d": {"x": 1}}])
    reads: list[dict[str, Any]] = [
        db[0],
        db.get(0),
        db[0:1].to_list()[0],
        next(iter(db)),
    ]
    for row in reads:
        row["a"][:] = 9.0
        row["l"].append(2)
        row["d"]["x"] = 2
        row["new"] = 1
    column = db["a"].to_list()
    column[0][:] = 7.0
    assert_same(db[0], {"a": np.zeros(3), "l": [1], "d": {"x": 1}})


def test_every_read_returns_a_fresh_object(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"a": np.zeros(3)}])
    first, second = db[0], db[0]
    assert first is not second
    assert not np.shares_memory(first["a"], second["a"])
    assert first["a"].flags.writeable


def test_mutating_caller_data_after_write_does_not_change_the_store(
    any_backend: Backend,
) -> None:
    db = any_backend.open(ObjectIO)
    row: dict[str, Any] = {"a": np.zeros(3), "l": [1]}
    db.extend([row])
    row["a"][:] = 5.0
    row["l"].append(2)
    assert_same(db[0], {"a": np.zeros(3), "l": [1]})


def test_mutating_atoms_after_extend_does_not_change_the_store(
    any_backend: Backend,
) -> None:
    db = any_backend.open(ASEIO)
    atoms = make_atoms(1)
    want = atoms.copy()
    db.extend([atoms])
    atoms.positions[:] = 0.0
    atoms.numbers[:] = 1
    atoms.info["i"] = 99
    atoms.calc.results["energy"] = 123.0
    got = db[0]
    assert got == want
    assert got.info["i"] == 1 and got.get_potential_energy() == -1.0


def test_mutating_returned_atoms_does_not_change_the_store(
    any_backend: Backend,
) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(1)])
    atoms = db[0]
    atoms.positions[:] = 0.0
    atoms.info["i"] = 99
    atoms.calc.results["forces"][:] = 0.0
    again = db[0]
    assert again == make_atoms(1) and again.info["i"] == 1
    assert not (again.calc.results["forces"] == 0.0).all()
