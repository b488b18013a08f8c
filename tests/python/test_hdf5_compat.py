"""HDF5 columnar stores (``*.h5`` ragged, ``*.h5p`` padded) are compatible both ways
with the reference ``asebytes`` 0.3.3 and readable by h5py.

The reference and h5py run in their own virtualenv (``.venv-ref``) as subprocesses. The
frames come from one seeded generator (:data:`BUILD`, executed in both interpreters):
variable atom counts, keys that appear in a later batch, strings, nested info, and a
per-frame and a per-atom column of every numeric dtype.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asebytes import ObjectIO

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not REF_PYTHON.exists() and not os.environ.get("CI"),
    reason="reference virtualenv .venv-ref not present (`just ref-venv`; required in CI)",
)

#: Builds the frames (run here and in the reference's interpreter).
BUILD = """
import numpy as np

DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64", "bool"]

def frames():
    rng = np.random.default_rng(7)
    out = []
    # The first batch holds the largest frame: the reference's padded layout cannot
    # widen inside one batch.
    for i, n in enumerate([5, 2, 3, 4, 1, 5]):
        row = {
            "arrays.numbers": np.full(n, 1 + i, dtype=np.int64),
            "arrays.positions": rng.random((n, 3)),
            "cell": np.eye(3) * (5.0 + i),
            "pbc": np.array([True, False, i % 2 == 0]),
            "calc.energy": -1.5 * i,
            "calc.forces": rng.random((n, 3)),
            "info.label": f"frame {i}",
            "info.nested": {"a": [1, 2, i], "b": {"c": "x"}},
        }
        for dt in DTYPES:
            row[f"info.v_{dt}"] = (np.arange(3) + i).astype(dt)
            row[f"arrays.a_{dt}"] = (np.arange(n) + i).astype(dt)
        if i >= 3:
            row["calc.stress"] = np.arange(6.0) + i
            row["info.late"] = 0.5 * i
            row["info.late_label"] = f"late {i}"
        out.append(row)
    return out

BATCHES = (slice(0, 3), slice(3, 6))
"""

#: Opens the file with retries: the daemon releases it shortly after the last handle
#: closes, and HDF5's file lock refuses a second opener meanwhile.
OPEN_RETRY = """
import time
def retry(fn, what):
    deadline = time.monotonic() + 30
    while True:
        try:
            return fn()
        except Exception as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {e}")
            time.sleep(0.05)
"""

ns: dict[str, Any] = {}
exec(BUILD, ns)  # noqa: S102 -- the same generator source runs in the reference's interpreter
FRAMES: list[dict[str, Any]] = ns["frames"]()
BATCHES: tuple[slice, ...] = ns["BATCHES"]
DTYPES: list[str] = ns["DTYPES"]


def ref(script: str, *args: str, shared: bool = False) -> Any:
    """Runs ``script`` in the reference's interpreter; returns what it pickled to stdout.

    ``shared``: the daemon still has the file open (this process keeps its connection, and
    the daemon closes a store's file only when no connection holds it), so the reader
    skips HDF5's file lock; every commit is flushed, so it reads committed data.
    """
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE") if shared else None
    out = subprocess.run(
        [str(REF_PYTHON), "-c", BUILD + OPEN_RETRY + script, *args],
        check=False,
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-3000:]
    return pickle.loads(out.stdout) if out.stdout else None


def release() -> None:
    """Drops this process's handles so the daemon closes the file."""
    gc.collect()


def same(a: Any, b: Any, where: str) -> None:
    """Equal as values: numbers by value (the reference reads Python ints as floats),
    arrays by value and shape, NaN equal to NaN."""
    if isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict), where
        assert set(a) == set(b), f"{where}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, str) or isinstance(b, str):
        assert a == b, f"{where}: {a!r} != {b!r}"
    else:
        x, y = np.asarray(a), np.asarray(b)
        assert x.shape == y.shape, f"{where}: shape {x.shape} != {y.shape}"
        assert np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), (
            f"{where}: {x} != {y}"
        )


@pytest.mark.parametrize("ext", ["h5", "h5p"])
def test_reference_files_read_through_the_daemon(tmp_path: Path, ext: str) -> None:
    path = str(tmp_path / f"ref.{ext}")
    theirs = ref(
        """
import pickle, sys
from asebytes import ObjectIO
rows = frames()
db = ObjectIO(sys.argv[1])
for b in BATCHES:
    db.extend(rows[b])
sys.stdout.buffer.write(pickle.dumps([db[i] for i in range(len(db))]))
""",
        path,
    )
    db = ObjectIO(path)
    assert len(db) == len(FRAMES)
    ours = [db[i] for i in range(len(db))]
    for i, (mine, want) in enumerate(zip(ours, theirs)):
        same(mine, want, f"frame {i}")
    energies = db["calc.energy"].to_numpy()
    assert np.allclose(energies, [-1.5 * i for i in range(len(FRAMES))])


@pytest.mark.parametrize("ext", ["h5", "h5p"])
def test_our_files_read_by_the_reference(tmp_path: Path, ext: str) -> None:
    path = str(tmp_path / f"ours.{ext}")
    db = ObjectIO(path)
    for b in BATCHES:
        db.extend(FRAMES[b])
    del db
    release()
    theirs = ref(
        """
import pickle, sys
from asebytes import ObjectIO
db = retry(lambda: ObjectIO(sys.argv[1], readonly=True), "open")
sys.stdout.buffer.write(pickle.dumps([db[i] for i in range(len(db))]))
""",
        path,
        shared=True,
    )
    assert len(theirs) == len(FRAMES)
    for i, (got, want) in enumerate(zip(theirs, FRAMES)):
        same(got, want, f"frame {i}")


@pytest.mark.parametrize("ext", ["h5", "h5p"])
def test_h5py_reads_our_files(tmp_path: Path, ext: str) -> None:
    path = str(tmp_path / f"ours.{ext}")
    db = ObjectIO(path)
    for b in BATCHES:
        db.extend(FRAMES[b])
    db.extend([None])
    del db
    release()
    seen = ref(
        """
import pickle, sys
import h5py
f = retry(lambda: h5py.File(sys.argv[1], "r"), "open")
g = f["default"]
out = {"attrs": {k: g.attrs[k] for k in ("n_frames", "columns", "per_atom_columns")},
       "data": {k: g[k][()] for k in g}, "dtypes": {k: g[k].dtype.str for k in g}}
sys.stdout.buffer.write(pickle.dumps(out))
""",
        path,
        shared=True,
    )
    n = len(FRAMES) + 1
    attrs, data = seen["attrs"], seen["data"]
    assert int(attrs["n_frames"]) == n
    columns = [str(c) for c in attrs["columns"]]
    assert set(columns) >= set().union(*FRAMES)
    for dt in DTYPES:
        want = np.dtype(dt).str
        assert seen["dtypes"][f"info.v_{dt}"] == want
        assert seen["dtypes"][f"arrays.a_{dt}"] == want
    # h5py maps its FALSE/TRUE int8 enum (what we write for bool) to numpy bool.
    assert seen["dtypes"]["pbc"] == "|b1"
    assert np.allclose(
        data["calc.energy"][: len(FRAMES)], [f["calc.energy"] for f in FRAMES]
    )
    label = data["info.label"]
    assert [s.decode() for s in label[: len(FRAMES)]] == [
        f'"{f["info.label"]}"' for f in FRAMES
    ]
    if ext == "h5":
        lengths = data["_lengths"][: len(FRAMES)]
        assert list(lengths) == [len(f["arrays.numbers"]) for f in FRAMES]
        flat = np.concatenate([f["arrays.positions"] for f in FRAMES])
        offsets = data["_offsets"]
        got = np.concatenate(
            [data["arrays.positions"][o : o + k] for o, k in zip(offsets, lengths)]
        )
        assert np.array_equal(got, flat)
    else:
        n_atoms = data["_n_atoms"][: len(FRAMES)]
        assert list(n_atoms) == [len(f["arrays.numbers"]) for f in FRAMES]
        for i, f in enumerate(FRAMES):
            k = len(f["arrays.numbers"])
            assert np.array_equal(
                data["arrays.positions"][i, :k], f["arrays.positions"]
            )


def test_our_files_round_trip_with_placeholders_and_every_dtype(tmp_path: Path) -> None:
    for ext in ("h5", "h5p"):
        path = str(tmp_path / f"rt.{ext}")
        db = ObjectIO(path)
        db.extend(FRAMES[:2])
        db.extend([None])
        db.extend(FRAMES[2:])
        assert db[2] is None
        rows = [db[i] for i in range(len(db)) if i != 2]
        for i, (got, want) in enumerate(zip(rows, FRAMES)):
            same(got, want, f"{ext} frame {i}")
            for dt in DTYPES:
                assert got[f"arrays.a_{dt}"].dtype == np.dtype(dt)


@pytest.mark.parametrize("ext", ["h5", "h5p"])
def test_a_column_that_became_json_is_read_by_the_reference(
    tmp_path: Path, ext: str
) -> None:
    """A key whose type changes becomes a JSON column: ours reads every value back with
    its type; the reference reads it as the JSON string column it is."""
    path = str(tmp_path / f"widened.{ext}")
    db = ObjectIO(path)
    db.extend([{"info.v": 1.5}, {"info.v": 2.5}])
    db.extend([{"info.v": "text"}, {"info.v": np.arange(3, dtype=np.int16)}])
    got = [db[i]["info.v"] for i in range(4)]
    assert got[:3] == [1.5, 2.5, "text"]
    assert got[3].dtype == np.int16 and got[3].tolist() == [0, 1, 2]
    del db
    release()
    theirs = ref(
        """
import pickle, sys
from asebytes import ObjectIO
db = retry(lambda: ObjectIO(sys.argv[1], readonly=True), "open")
sys.stdout.buffer.write(pickle.dumps([db[i]["info.v"] for i in range(len(db))]))
""",
        path,
        shared=True,
    )
    assert theirs[:3] == [1.5, 2.5, "text"]
    assert theirs[3] == {"__ndarray__": [[3], "<i2", [0, 1, 2]]}
