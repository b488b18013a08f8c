"""The read-only part of the contract on every read-only source the daemon serves (extxyz,
traj, aselmdb), through the sync and the async facades: length, indices of any sign,
bounds, slices and lists, column views, ``get`` with keys (strict), ``keys``, and every
write refused with ``TypeError("Backend is read-only")`` leaving the source unchanged."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ase
import ase.db
import ase.io
import asebytes
import numpy as np
import pytest
from _async_shim import ASYNC_TWIN, Loop, SyncFacade
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

SOURCES = ("extxyz", "traj", "aselmdb")
N = 7


def _frames() -> list[ase.Atoms]:
    out = []
    for j in range(N):
        a = molecule(["H2O", "CH4", "NH3"][j % 3])
        a.info["step"] = j
        a.calc = SinglePointCalculator(
            a, energy=-0.5 - j, forces=np.full((len(a), 3), j * 0.25)
        )
        out.append(a)
    return out


def _write(kind: str, tmp: Path) -> str:
    frames = _frames()
    if kind == "extxyz":
        path = tmp / "src.extxyz"
        ase.io.write(path, frames, format="extxyz")
    elif kind == "traj":
        path = tmp / "src.traj"
        ase.io.write(path, frames)
    else:
        pytest.importorskip("ase_db_backends.aselmdb")
        path = tmp / "src.aselmdb"
        db = ase.db.connect(str(path), type="aselmdb")
        for a in frames:
            db.write(a, key_value_pairs={"step": a.info["step"]})
        db.close()
    return str(path)


@pytest.fixture(
    params=[(k, m) for k in SOURCES for m in ("sync", "async")], ids="-".join
)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    kind, mode = request.param
    path = _write(kind, tmp_path)
    loop = Loop() if mode == "async" else None

    def open_as(facade: type[Any]) -> Any:
        if loop is None:
            return facade(path)
        return SyncFacade(ASYNC_TWIN[facade](path), loop)

    yield open_as(asebytes.ASEIO), path, open_as
    if loop is not None:
        loop.close()


def test_len_and_indices_of_any_sign(source: Any) -> None:
    db, *_ = source
    assert len(db) == N
    for i in (0, 3, N - 1, -1, -N, np.int64(2)):
        assert db[i].info["step"] == range(N)[int(i)]
        assert db[i].get_potential_energy() == -0.5 - range(N)[int(i)]


def test_out_of_range_is_index_error_naming_index_and_length(source: Any) -> None:
    db, *_ = source
    for i in (N, -N - 1):
        with pytest.raises(IndexError, match=rf"Index {i} out of range \[0, {N}\)"):
            db[i]


def test_slices_lists_and_masks_read_the_right_frames(source: Any) -> None:
    db, *_ = source
    assert [a.info["step"] for a in db[1:6:2].to_list()] == [1, 3, 5]
    assert [a.info["step"] for a in db[[4, -1, 4]].to_list()] == [4, N - 1, 4]
    mask = [i % 3 == 0 for i in range(N)]
    assert [a.info["step"] for a in db[mask].to_list()] == [0, 3, 6]


def test_column_views_read_one_key_of_every_frame(source: Any) -> None:
    db, *_ = source
    np.testing.assert_array_equal(
        db["calc.energy"].to_numpy(), [-0.5 - j for j in range(N)]
    )
    with pytest.raises(KeyError):
        db["calc.nope"].to_list()


def test_get_with_keys_is_strict_and_keys_list_the_frame(source: Any) -> None:
    _, _, open_as = source
    db = open_as(asebytes.ObjectIO)
    row = db.get(2, keys=["calc.energy", "arrays.numbers"])
    assert list(row) == ["calc.energy", "arrays.numbers"]
    with pytest.raises(KeyError, match="Invalid keys"):
        db.get(2, keys=["calc.energy", "info.missing"])
    keys = db.keys(-1)
    assert keys[:4] == ["cell", "pbc", "arrays.numbers", "arrays.positions"]
    assert "calc.energy" in keys and "info.step" in keys


def test_every_write_is_refused_and_changes_nothing(source: Any) -> None:
    db, path, _ = source
    before = Path(path).stat().st_mtime_ns if Path(path).is_file() else None
    writes = [
        lambda: db.extend([molecule("H2")]),
        lambda: db.__setitem__(0, molecule("H2")),
        lambda: db.__delitem__(0),
        lambda: db.insert(0, molecule("H2")),
        lambda: db.update(0, {"info.x": 1}),
        lambda: db.drop(keys=["calc.energy"]),
        lambda: db.clear(),
    ]
    for write in writes:
        with pytest.raises(TypeError, match="Backend is read-only"):
            write()
    assert len(db) == N
    assert db[0].info["step"] == 0
    if before is not None:
        assert Path(path).stat().st_mtime_ns == before


@pytest.mark.parametrize("kind", SOURCES)
def test_a_missing_source_is_file_not_found(kind: str, tmp_path: Path) -> None:
    if kind == "aselmdb":
        pytest.importorskip("ase_db_backends.aselmdb")
    missing = tmp_path / {"extxyz": "no.extxyz", "traj": "no.traj"}.get(
        kind, "no.aselmdb"
    )
    with pytest.raises(FileNotFoundError) as got:
        len(asebytes.ASEIO(str(missing)))
    assert isinstance(got.value, asebytes.exceptions.SourceNotFoundError)
    assert got.value.errno == errno.ENOENT
    assert str(missing) in str(got.value)


def test_a_source_deleted_while_open_is_file_not_found(tmp_path: Path) -> None:
    """extxyz is followed while it grows: once the file is gone, the next call that
    looks at it says so (it does not serve a length or rows of a file no longer there as
    if nothing happened, and it does not say ``KeyError``)."""
    path = _write("extxyz", tmp_path)
    db = asebytes.ASEIO(path)
    assert len(db) == N
    Path(path).unlink()
    with pytest.raises(FileNotFoundError, match="src.extxyz"):
        len(db)
