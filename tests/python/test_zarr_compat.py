"""Zarr files both ways with the reference asebytes 0.3.3 (and zarr-python 3) in .venv-ref.

The reference runs in a subprocess (its own virtualenv) on the frames of
``_zarr_frames.py``; what it reads comes back as JSON. Scenarios: variable atom counts, keys that appear in later batches,
strings, nested info, placeholders, every numeric dtype.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import asebytes
import numpy as np
import pytest

REF_PY = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not REF_PY.exists(), reason="needs .venv-ref (./dev ref-venv)"
)

HERE = Path(__file__).resolve().parent

#: Run first in the reference's interpreter: makes ``frames()`` importable there.
PRELUDE = (
    f"import sys; sys.path.insert(0, {str(HERE)!r}); from _zarr_frames import frames\n"
)


def run_ref(code: str) -> str:
    out = subprocess.run(
        [str(REF_PY), "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def ref_frames() -> list:
    from _zarr_frames import frames

    return frames()


def same_atoms(a, b) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(a.positions, b.positions)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_allclose(a.cell.array, b.cell.array)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    assert a.info["label"] == b.info["label"]
    assert a.info["nested"] == b.info["nested"]
    assert int(a.info["count"]) == int(b.info["count"])
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy())
    np.testing.assert_allclose(a.get_forces(), b.get_forces())
    np.testing.assert_allclose(a.calc.results["stress"], b.calc.results["stress"])


@pytest.mark.parametrize("ext", ["zarr", "zarrp"])
def test_reference_files_open_in_ours(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"ref.{ext}"
    run_ref(
        f"""
        import asebytes
        db = asebytes.ASEIO({str(path)!r})
        f = frames()
        # 0.3.3 fails a padded batch that widens the store after a first batch.
        for batch in ([f] if {ext!r} == "zarrp" else [f[:2], f[2:]]):
            db.extend(batch)
        db.reserve(1)
        """
    )
    db = asebytes.ASEIO(str(path))
    want = ref_frames()
    assert len(db) == 5
    for i, a in enumerate(want):
        same_atoms(db[i], a)
    rows = asebytes.ObjectIO(str(path))
    assert "info.late" not in rows[0]
    assert rows[3]["info.late"] == pytest.approx(1.0)


@pytest.mark.parametrize("ext", ["zarr", "zarrp"])
def test_our_files_open_in_the_reference_and_zarr_python(
    tmp_path: Path, ext: str
) -> None:
    path = tmp_path / f"ours.{ext}"
    db = asebytes.ASEIO(str(path))
    frames = ref_frames()
    db.extend(frames[:2])
    db.extend(frames[2:])
    out = run_ref(
        f"""
        import asebytes, json, zarr
        db = asebytes.ASEIO({str(path)!r})
        res = []
        for i in range(len(db)):
            a = db[i]
            res.append(dict(n=len(a), e=a.get_potential_energy(), f=a.get_forces().tolist(),
                            stress=a.calc.results["stress"].tolist(), label=a.info["label"],
                            nested=a.info["nested"], pos=a.positions.tolist(),
                            late=a.info.get("late")))
        g = zarr.open_group({str(path)!r} + "/default", mode="r")
        res.append(dict(zarr_n=int(g.attrs["n_frames"]), energy=g["calc.energy"][:].tolist()))
        print(json.dumps(res))
        """
    )
    got = json.loads(out)
    for i, a in enumerate(frames):
        r = got[i]
        assert r["n"] == len(a)
        assert r["e"] == pytest.approx(a.get_potential_energy())
        np.testing.assert_allclose(r["f"], a.get_forces())
        np.testing.assert_allclose(r["stress"], a.calc.results["stress"])
        np.testing.assert_allclose(r["pos"], a.positions)
        assert r["label"] == a.info["label"]
        assert r["nested"] == a.info["nested"]
        assert r["late"] == a.info.get("late")
    assert got[-1]["zarr_n"] == 4
    np.testing.assert_allclose(
        got[-1]["energy"], [a.get_potential_energy() for a in frames]
    )


def test_every_dtype_round_trips_through_ours(tmp_path: Path) -> None:
    db = asebytes.ObjectIO(str(tmp_path / "dtypes.zarr"))
    row = {
        f"info.arr_{np.dtype(t).name}": np.array([0, 1, 2]).astype(t)
        for t in [
            "i1",
            "i2",
            "i4",
            "i8",
            "u1",
            "u2",
            "u4",
            "u8",
            "f4",
            "f8",
            "c8",
            "c16",
            "?",
        ]
    }
    row.update(
        {
            "info.int": 3,
            "info.float": 2.5,
            "info.bool": True,
            "info.str": "s",
            "info.none": None,
            "info.list": [1, "a"],
            "info.np": np.float32(1.5),
        }
    )
    db.extend([row, {"info.int": 4}, None])
    back = db[0]
    for k, v in row.items():
        if isinstance(v, np.ndarray):
            assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
        else:
            assert back[k] == v and type(back[k]) is type(v), k
    assert db[1] == {"info.int": 4}
    assert db[2] is None


@pytest.mark.parametrize("ext", ["zarr", "zarrp"])
def test_a_column_that_became_json_opens_in_the_reference_and_zarr_python(
    tmp_path: Path, ext: str
) -> None:
    """A key whose type changes becomes a JSON column: ours reads every value back with
    its type; the reference and zarr-python read it as the JSON string column it is."""
    path = tmp_path / f"widened.{ext}"
    db = asebytes.ObjectIO(str(path))
    db.extend([{"info.v": 1.5}, {"info.v": 2.5}])
    db.extend([{"info.v": "text"}, {"info.v": np.arange(3, dtype=np.int16)}])
    got = [db[i]["info.v"] for i in range(4)]
    assert got[:3] == [1.5, 2.5, "text"]
    assert got[3].dtype == np.int16 and got[3].tolist() == [0, 1, 2]
    out = run_ref(
        f"""
        import asebytes, json, zarr
        db = asebytes.ObjectIO({str(path)!r})
        vals = [db[i]["info.v"] for i in range(len(db))]
        g = zarr.open_group({str(path)!r} + "/default", mode="r")
        print(json.dumps(dict(vals=vals, raw=[str(x) for x in g["info.v"][:]])))
        """
    )
    ref = json.loads(out)
    assert ref["vals"][:3] == [1.5, 2.5, "text"]
    assert ref["vals"][3] == {"__ndarray__": [[3], "<i2", [0, 1, 2]]}
    assert ref["raw"][2] == '"text"'
