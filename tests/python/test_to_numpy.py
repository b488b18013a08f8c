"""``ColumnView.to_numpy()``: one packed array when every value has the same shape and
dtype, a clear ``ValueError`` otherwise; sync and async, every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _helpers import make_atoms
from asebytes import ASEIO, ObjectIO
from conftest import Backend


@pytest.fixture
def frames(any_backend: Backend) -> Any:
    """ObjectIO over 20 frames of 9 atoms (ASE key convention), then 2 of 12 atoms."""
    ase_db = any_backend.open(ASEIO)
    ase_db.extend([make_atoms(i, 9) for i in range(20)])
    ase_db.extend([make_atoms(i, 12) for i in range(20, 22)])
    return any_backend.open(ObjectIO)


def test_energies_pack_into_float64(frames: Any) -> None:
    e = frames["calc.energy"][0:20].to_numpy()
    assert e.dtype == np.float64 and e.shape == (20,)
    assert e.tolist() == [float(-i) for i in range(20)]


def test_positions_pack_into_n_atoms_3(frames: Any) -> None:
    expected = np.stack(frames["arrays.positions"][0:20].to_list())
    for pos in (
        frames[0:20]["arrays.positions"].to_numpy(),
        frames["arrays.positions"][0:20].to_numpy(),
    ):
        assert pos.shape == (20, 9, 3) and pos.dtype == np.float64
        assert np.array_equal(pos, expected)


def test_result_is_writable_and_the_callers_own(frames: Any) -> None:
    pos = frames["arrays.positions"][0:2].to_numpy()
    pos[:] = 0.0
    assert np.any(frames["arrays.positions"][0:2].to_numpy() != 0.0)


def test_ragged_column_is_value_error_pointing_to_to_list(frames: Any) -> None:
    with pytest.raises(ValueError, match=r"ragged.*\(9, 3\).*\(12, 3\).*to_list"):
        frames["arrays.positions"].to_numpy()


def test_missing_value_is_value_error(frames: Any) -> None:
    frames.reserve(1)
    with pytest.raises(ValueError, match="no value at row 22.*to_list"):
        frames["calc.energy"].to_numpy()


def test_scalar_kinds_and_dtypes_are_kept(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend(
        [
            {
                "n": k,
                "b": k % 2 == 0,
                "f32": np.float32(k),
                "v": np.arange(3, dtype=np.int16),
            }
            for k in range(4)
        ]
    )
    assert db["n"].to_numpy().dtype == np.int64
    assert db["b"].to_numpy().tolist() == [True, False, True, False]
    assert db["f32"].to_numpy().dtype == np.float32
    v = db["v"].to_numpy()
    assert v.dtype == np.int16 and v.shape == (4, 3)


def test_mixed_dtypes_are_value_error(any_backend: Backend) -> None:
    db = any_backend.open(ObjectIO)
    db.extend([{"x": 1}, {"x": 1.5}])
    with pytest.raises(ValueError, match="dtype|int64.*float64|float64.*int64"):
        db["x"].to_numpy()


def test_empty_selection_and_multi_key_and_unknown_key(frames: Any) -> None:
    assert frames["calc.energy"][5:5].to_numpy().shape == (0,)
    with pytest.raises(ValueError, match="single-key"):
        frames[["calc.energy", "info.i"]].to_numpy()
    with pytest.raises(KeyError):
        frames["nope"].to_numpy()


def test_aseio_column_views_pack_values_but_list_atoms(any_backend: Backend) -> None:
    db = any_backend.open(ASEIO)
    db.extend([make_atoms(i, 9) for i in range(4)])
    e = db["calc.energy"].to_numpy()
    assert e.dtype == np.float64 and e.tolist() == [0.0, -1.0, -2.0, -3.0]
    pos = db[1:3]["arrays.positions"].to_numpy()
    assert pos.shape == (2, 9, 3)
    assert np.array_equal(pos[0], db[1].positions)
    items = db["calc.energy"].to_list()
    assert all(type(a).__name__ == "Atoms" for a in items)
    with pytest.raises(TypeError, match="ObjectIO"):
        db["calc.energy"].to_dict()
