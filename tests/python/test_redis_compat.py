"""Redis groups are shared both ways with the reference ``asebytes`` 0.3.3's Redis backend
(``RedisBlobBackend``, and ``ObjectIO``/``ASEIO`` over it through its blob-to-object
adapter): same keys (``<g>:sort_keys``, ``<g>:next_sk``, ``<g>:row:<sk>``), same values.

The reference runs in its own virtualenv (``.venv-ref``) as a subprocess against the same
private ``redis-server``; rows come from one seeded generator (:data:`BUILD`, executed in
both interpreters) and travel back pickled.
"""

from __future__ import annotations

import os
import pickle
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ase
import numpy as np
import pytest
from _redis_server import RedisServer
from asebytes import ASEIO, BlobIO, ObjectIO

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not REF_PYTHON.exists() and not os.environ.get("CI"),
    reason="reference virtualenv .venv-ref not present (`just ref-venv`; required in CI)",
)

#: Builds the rows (run here and in the reference's interpreter).
BUILD = """
import numpy as np
import ase
from ase.calculators.singlepoint import SinglePointCalculator

def object_rows():
    rng = np.random.default_rng(11)
    out = []
    for i, n in enumerate([3, 1, 4, 2]):
        out.append({
            "arrays.positions": rng.random((n, 3)),
            "arrays.numbers": np.arange(1, n + 1, dtype=np.int64),
            "calc.energy": -1.25 * i,
            "calc.count": np.int32(i),
            "info.label": f"row {i}",
            "info.flag": i % 2 == 0,
            "info.nested": {"a": [1, 2, i], "b": {"c": None}},
            "info.f32": np.arange(i + 1, dtype=np.float32),
            "info.u8": np.arange(i + 2, dtype=np.uint8),
        })
    out.insert(2, None)
    return out

def blob_rows():
    return [
        {b"k": b"v", b"bin": bytes(range(256))},
        None,
        {b"only": b"\\x00\\xff" * 100},
    ]

def atoms_rows():
    rng = np.random.default_rng(5)
    out = []
    for i, n in enumerate([2, 5, 3]):
        a = ase.Atoms(numbers=[1 + i] * n, positions=rng.random((n, 3)),
                      cell=np.eye(3) * (4.0 + i), pbc=[True, i % 2 == 0, False])
        a.info["step"] = i
        a.info["tag"] = f"t{i}"
        a.calc = SinglePointCalculator(a, energy=-3.5 * i, forces=rng.random((n, 3)))
        out.append(a)
    return out
"""

#: The reference side: `op` is `read` or `write`, `tier` one of object, blob, ase.
REF_MAIN = """
import pickle, sys
from asebytes import ASEIO, BlobIO, ObjectIO

url, group, tier, op = sys.argv[1:5]
facade = {"object": ObjectIO, "blob": BlobIO, "ase": ASEIO}[tier]
db = facade(url, group=group)
if op == "write":
    rows = {"object": object_rows, "blob": blob_rows, "ase": atoms_rows}[tier]()
    db.extend(rows)
    result = len(db)
else:
    rows = [db[i] for i in range(len(db))]
    if tier == "ase":
        rows = [
            {
                "numbers": a.numbers, "positions": a.positions, "cell": a.cell.array,
                "pbc": a.pbc, "info": dict(a.info),
                "energy": a.get_potential_energy(), "forces": a.get_forces(),
            }
            for a in rows
        ]
    result = rows
sys.stdout.buffer.write(pickle.dumps(result))
"""

_ns: dict[str, Any] = {}
exec(BUILD, _ns)  # noqa: S102 - the shared generator, run in both interpreters


def reference(url: str, group: str, tier: str, op: str) -> Any:
    """Runs the reference against `url`/`group` and returns what it pickled."""
    out = subprocess.run(
        [str(REF_PYTHON), "-c", BUILD + REF_MAIN, url, group, tier, op],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    return pickle.loads(out.stdout)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    yield s
    s.close()


def assert_same(got: Any, want: Any, where: str = "row") -> None:
    """Equal values with equal types: arrays by dtype, shape and content."""
    if isinstance(want, (np.ndarray, np.generic)):
        assert isinstance(got, type(want)), f"{where}: {type(got)} != {type(want)}"
        assert np.asarray(got).dtype == np.asarray(want).dtype, where
        np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, dict):
        assert isinstance(got, dict), where
        assert set(got) == set(want), f"{where}: {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


def atoms_summary(a: ase.Atoms) -> dict[str, Any]:
    return {
        "numbers": a.numbers,
        "positions": a.positions,
        "cell": a.cell.array,
        "pbc": a.pbc,
        "info": dict(a.info),
        "energy": a.get_potential_energy(),
        "forces": a.get_forces(),
    }


def test_object_rows_written_here_are_read_by_the_reference(
    server: RedisServer,
) -> None:
    rows = _ns["object_rows"]()
    ObjectIO(server.url(), group="ours-object").extend(rows)
    assert_same(reference(server.url(), "ours-object", "object", "read"), rows)


def test_object_rows_written_by_the_reference_are_read_and_extended_here(
    server: RedisServer,
) -> None:
    rows = _ns["object_rows"]()
    assert reference(server.url(), "ref-object", "object", "write") == len(rows)
    db = ObjectIO(server.url(), group="ref-object")
    assert_same([db[i] for i in range(len(db))], rows)
    assert db.get(0, keys=["calc.energy"]) == {"calc.energy": 0.0}
    # Our writes continue the reference's sort keys; it reads them in order.
    db.extend([{"info.late": 1}])
    db.insert(1, {"info.inserted": "yes"})
    db.update(0, {"calc.energy": 9.5})
    del db[3]
    expected = [
        dict(rows[0], **{"calc.energy": 9.5}),
        {"info.inserted": "yes"},
        rows[1],
    ]
    expected += [*rows[3:], {"info.late": 1}]
    assert_same(reference(server.url(), "ref-object", "object", "read"), expected)


def test_blob_rows_go_both_ways(server: RedisServer) -> None:
    rows = _ns["blob_rows"]()
    BlobIO(server.url(), group="ours-blob").extend(rows)
    assert reference(server.url(), "ours-blob", "blob", "read") == rows
    assert reference(server.url(), "ref-blob", "blob", "write") == len(rows)
    db = BlobIO(server.url(), group="ref-blob")
    assert [db[i] for i in range(len(db))] == rows


def test_atoms_go_both_ways(server: RedisServer) -> None:
    frames = _ns["atoms_rows"]()
    want = [atoms_summary(a) for a in frames]
    ASEIO(server.url(), group="ours-ase").extend(frames)
    assert_same(reference(server.url(), "ours-ase", "ase", "read"), want)
    assert reference(server.url(), "ref-ase", "ase", "write") == len(frames)
    db = ASEIO(server.url(), group="ref-ase")
    assert_same([atoms_summary(db[i]) for i in range(len(db))], want)


def test_groups_are_listed_as_the_reference_lists_them(server: RedisServer) -> None:
    ObjectIO(server.url(), group="listed-a").extend([{"x": 1}])
    ObjectIO(server.url(), group="listed-b").extend([{"x": 1}])
    groups = ObjectIO.list_groups(server.url())
    assert {"listed-a", "listed-b"} <= set(groups)
    assert groups == sorted(groups)
