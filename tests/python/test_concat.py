"""ConcatView: ``db_a + db_b`` (and row views) read as one lazy, read-only sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _custom_backends import object_backend
from _helpers import assert_same, make_atoms
from asebytes import ASEIO, AsyncObjectIO, BlobIO, ConcatView, ObjectIO, RowView
from conftest import Backend


def _two(b: Backend, tmp_path: Path) -> tuple[ObjectIO, ObjectIO]:
    a = b.open(ObjectIO)
    other = ObjectIO(str(tmp_path / "other.lmdb"))
    a.extend([{"i": i, "e": -float(i)} for i in range(3)])
    other.extend([{"i": 10 + i, "e": -float(10 + i)} for i in range(2)])
    return a, other


def test_facades_add_to_a_concat_view_with_global_indices(
    sync_backend: Backend, tmp_path: Path
) -> None:
    a, b = _two(sync_backend, tmp_path)
    cv = a + b
    assert isinstance(cv, ConcatView)
    assert len(cv) == 5
    assert repr(cv) == "ConcatView(ObjectIO, n_sources=2, len=5)"
    assert [r["i"] for r in cv] == [0, 1, 2, 10, 11]
    assert cv[3]["i"] == 10 and cv[-1]["i"] == 11 and cv[np.int64(0)]["i"] == 0
    with pytest.raises(IndexError, match=r"Index 5 out of range \[0, 5\)"):
        cv[5]


def test_views_columns_and_to_numpy_span_sources(
    sync_backend: Backend, tmp_path: Path
) -> None:
    a, b = _two(sync_backend, tmp_path)
    cv = a + b
    view = cv[2:5]
    assert isinstance(view, RowView) and len(view) == 3
    assert [r["i"] for r in view.to_list()] == [2, 10, 11]
    assert cv["i"].to_list() == [0, 1, 2, 10, 11]
    assert cv[[4, 0, 3]]["i"].to_list() == [11, 0, 10]
    assert cv[["i", "e"]][3] == [10, -10.0]
    assert_same(cv["e"].to_numpy(), np.array([-0.0, -1.0, -2.0, -10.0, -11.0]))
    assert cv["e"][1:4].to_list() == cv[1:4]["e"].to_list() == [-1.0, -2.0, -10.0]
    assert cv.schema(3)["i"].dtype == np.dtype("int64")


def test_lengths_are_read_live(sync_backend: Backend, tmp_path: Path) -> None:
    a, b = _two(sync_backend, tmp_path)
    cv = a + b
    a.extend([{"i": 3, "e": -3.0}])
    assert len(cv) == 6 and cv[3]["i"] == 3 and cv[4]["i"] == 10


def test_sum_flattening_and_three_sources(
    sync_backend: Backend, tmp_path: Path
) -> None:
    a, b = _two(sync_backend, tmp_path)
    c = ObjectIO(object_backend("custom", str(tmp_path / "c")))
    c.extend([{"i": 20, "e": -20.0}])
    cv = sum([a, b, c], [])  # noqa: RUF017 - the reference's documented idiom
    assert isinstance(cv, ConcatView)
    assert [r["i"] for r in cv] == [0, 1, 2, 10, 11, 20]
    assert len((a + b) + c) == len(a + (b + c)) == 6
    assert len((a + b).sources) == 2 and len(((a + b) + c).sources) == 3


def test_row_views_concatenate_too(sync_backend: Backend, tmp_path: Path) -> None:
    a, b = _two(sync_backend, tmp_path)
    cv = a[1:] + b[[-1]]
    assert [r["i"] for r in cv] == [1, 2, 11]
    assert (a[:1] + b)["i"].to_list() == [0, 10, 11]


def test_aseio_concat_yields_atoms_and_partial_column_atoms(
    sync_backend: Backend, tmp_path: Path
) -> None:
    a = sync_backend.open(ASEIO)
    b = ASEIO(str(tmp_path / "other.lmdb"))
    a.extend([make_atoms(i) for i in range(2)])
    b.extend([make_atoms(i) for i in range(2, 4)])
    cv = a + b
    frames = cv[:].to_list()
    assert [f.info["i"] for f in frames] == [0, 1, 2, 3]
    assert cv[2] == make_atoms(2)
    energies = cv["calc.energy"]
    assert [x.get_potential_energy() for x in energies.to_list()] == [0, -1, -2, -3]
    assert_same(energies.to_numpy(), np.array([0.0, -1.0, -2.0, -3.0]))


def test_writes_are_refused_as_read_only(sync_backend: Backend, tmp_path: Path) -> None:
    a, b = _two(sync_backend, tmp_path)
    cv = a + b
    for write in (
        lambda: cv[0:2].set([{"i": 0}, {"i": 1}]),
        lambda: cv[0:2].update({"x": 1}),
        lambda: cv[0:2].delete(),
        lambda: cv["i"][0:2].set([5, 6]),
        lambda: cv[0:2].drop(["i"]),
    ):
        with pytest.raises(TypeError, match="ConcatView is read-only"):
            write()
    assert [r["i"] for r in cv] == [0, 1, 2, 10, 11]


def test_mixed_facade_classes_are_type_error(
    sync_backend: Backend, tmp_path: Path
) -> None:
    a = sync_backend.open(ObjectIO)
    blob = BlobIO(str(tmp_path / "blob.lmdb"))
    with pytest.raises(TypeError, match="Cannot concat ObjectIO with BlobIO"):
        a + blob  # type: ignore[operator]
    with pytest.raises(TypeError, match="Cannot concat ObjectIO with int"):
        a + 1  # type: ignore[operator]
    with pytest.raises(TypeError, match="Cannot concat ObjectIO with BlobIO"):
        (a + a) + blob  # type: ignore[operator]
    with pytest.raises(ValueError, match="at least one source"):
        ConcatView([])
    with pytest.raises(TypeError, match="sync facades or their row views"):
        ConcatView([AsyncObjectIO(a._backend)])
