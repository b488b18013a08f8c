"""MongoDB collections are compatible both ways with the reference ``asebytes`` 0.3.3
(``MongoObjectBackend``, spec §4.4), on the object and the ASE tier, and dotted keys
(``calc.energy``) are read and written as the literal fields both libraries store.

The reference (with pymongo) runs in its own virtualenv (``.venv-ref``) as a subprocess,
against the same private SecantusDB server as our daemon. The frames come from one seeded
generator (:data:`BUILD`, executed in both interpreters).
"""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import _mongo_server
import numpy as np
import pytest
from asebytes import ASEIO, ObjectIO

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    (not REF_PYTHON.exists() or _mongo_server.program() is None)
    and not os.environ.get("CI"),
    reason="needs .venv-ref with pymongo and secantusd-py (required in CI)",
)

#: Builds the rows and frames (run here and in the reference's interpreter).
BUILD = """
import numpy as np
import ase
from ase.calculators.singlepoint import SinglePointCalculator

def rows():
    rng = np.random.default_rng(11)
    out = []
    for i, n in enumerate([3, 1, 4, 2]):
        out.append({
            "arrays.numbers": np.full(n, 6 + i, dtype=np.int64),
            "arrays.positions": rng.random((n, 3)),
            "calc.energy": -1.25 * i,
            "calc.forces": rng.random((n, 3)).astype(np.float32),
            "info.label": f"row {i}",
            "info.count": i,
            "info.flag": i % 2 == 0,
            "info.nested": {"a": [1, 2, i], "b": {"c": "x"}},
            "info.tags": ["p", "q"],
            "info.none": None,
        })
    out.insert(2, None)
    return out

def atoms():
    rng = np.random.default_rng(5)
    out = []
    for i, n in enumerate([2, 5, 3]):
        a = ase.Atoms("H" * n, positions=rng.random((n, 3)), cell=np.eye(3) * (4 + i),
                      pbc=[True, i % 2 == 0, False])
        a.info["step"] = i
        a.info["note"] = f"frame {i}"
        a.calc = SinglePointCalculator(a, energy=-2.0 * i, forces=rng.random((n, 3)))
        out.append(a)
    return out
"""

ns: dict[str, Any] = {}
exec(BUILD, ns)  # noqa: S102 -- the same generator source runs in the reference's interpreter
ROWS: list[dict[str, Any] | None] = ns["rows"]()


def ref(script: str, *args: str) -> Any:
    """Runs ``script`` in the reference's interpreter; returns what it pickled to stdout."""
    out = subprocess.run(
        [str(REF_PYTHON), "-c", BUILD + script, *args],
        check=False,
        capture_output=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-3000:]
    return pickle.loads(out.stdout) if out.stdout else None


def same(a: Any, b: Any, where: str) -> None:
    """Equal as values, with types: arrays by dtype, shape and value."""
    if a is None or b is None:
        assert a is None and b is None, f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict), where
        assert set(a) == set(b), f"{where}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a!r} != {b!r}"
        assert np.array_equal(a, b), where
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture
def location() -> str:
    return _mongo_server.fresh_location()


def test_reference_rows_read_through_the_daemon(location: str) -> None:
    group = "refrows"
    ref(
        """
import sys
from asebytes import ObjectIO
db = ObjectIO(sys.argv[1], group=sys.argv[2])
db.extend(rows()[:3])
db.extend(rows()[3:])
""",
        location,
        group,
    )
    db = ObjectIO(location, group=group)
    assert len(db) == len(ROWS)
    for i, want in enumerate(ROWS):
        same(db[i], want, f"row {i}")
    assert db.get(0, keys=["calc.energy"]) == {"calc.energy": 0.0}
    assert db["calc.energy"].to_list() == [0.0, -1.25, None, -2.5, -3.75]


def test_our_rows_read_by_the_reference(location: str) -> None:
    group = "ourrows"
    db = ObjectIO(location, group=group)
    db.extend(ROWS[:2])
    db.extend(ROWS[2:])
    theirs = ref(
        """
import pickle, sys
from asebytes import ObjectIO
db = ObjectIO(sys.argv[1], group=sys.argv[2])
sys.stdout.buffer.write(pickle.dumps([db[i] for i in range(len(db))]))
""",
        location,
        group,
    )
    assert len(theirs) == len(ROWS)
    for i, want in enumerate(ROWS):
        same(theirs[i], want, f"row {i}")


def test_atoms_both_ways(location: str) -> None:
    want = ns["atoms"]()
    ref(
        """
import sys
from asebytes import ASEIO
ASEIO(sys.argv[1], group="theirs").extend(atoms())
""",
        location,
    )
    ASEIO(location, group="ours").extend(want)
    theirs = ref(
        """
import pickle, sys
from asebytes import ASEIO
db = ASEIO(sys.argv[1], group="ours")
out = [(a.numbers, a.positions, a.cell[:], a.pbc, a.info, a.get_potential_energy(),
        a.get_forces()) for a in (db[i] for i in range(len(db)))]
sys.stdout.buffer.write(pickle.dumps(out))
""",
        location,
    )
    ours = ASEIO(location, group="theirs")
    assert len(ours) == len(want) == len(theirs)
    for i, a in enumerate(want):
        b = ours[i]
        assert np.array_equal(b.numbers, a.numbers)
        assert np.allclose(b.positions, a.positions)
        assert np.allclose(b.cell[:], a.cell[:])
        assert list(b.pbc) == list(a.pbc)
        assert b.info == a.info
        assert b.get_potential_energy() == a.get_potential_energy()
        assert np.allclose(b.get_forces(), a.get_forces())
        numbers, positions, cell, pbc, info, energy, forces = theirs[i]
        assert np.array_equal(numbers, a.numbers)
        assert np.allclose(positions, a.positions)
        assert np.allclose(cell, a.cell[:])
        assert list(pbc) == list(a.pbc)
        assert info == a.info
        assert energy == a.get_potential_energy()
        assert np.allclose(forces, a.get_forces())


#: What the reference does with a dotted key: reads nothing, writes a nested field.
REF_DOTTED = """
import pickle, sys
from asebytes import ObjectIO
db = ObjectIO(sys.argv[1], group=sys.argv[2])
db.extend([{"calc.energy": 1.0, "info.tmp": 1}, {"calc.energy": 2.0, "info.tmp": 2}])
got = db.get(0, keys=["calc.energy"])
column = db["calc.energy"].to_list()
db.update(1, {"calc.energy": -1.0})
from pymongo import MongoClient
uri, _, name = sys.argv[1].rpartition("/")
doc = MongoClient(uri)[name][sys.argv[2]].find_one({"_id": 1})
sys.stdout.buffer.write(pickle.dumps((got, column, doc["data"])))
"""


def test_reference_dotted_keys_are_broken_ours_are_literal(location: str) -> None:
    got, column, stored = ref(REF_DOTTED, location, "ref")
    # asebytes 0.3.3: a projection on `data.calc.energy` finds nothing ...
    assert got == {}
    assert column == [None, None]
    # ... and its update writes a nested `calc: {energy}` beside the literal field.
    assert stored["calc.energy"] == 2.0
    assert stored["calc"] == {"energy": -1.0}

    db = ObjectIO(location, group="ours")
    db.extend(
        [{"calc.energy": 1.0, "info.tmp": 1}, {"calc.energy": 2.0, "info.tmp": 2}]
    )
    assert db.get(0, keys=["calc.energy"]) == {"calc.energy": 1.0}
    assert db["calc.energy"].to_list() == [1.0, 2.0]
    db.update(1, {"calc.energy": -1.0})
    db.drop(keys=["info.tmp"])
    assert db["calc.energy"].to_list() == [1.0, -1.0]
    theirs = ref(
        """
import pickle, sys
from asebytes import ObjectIO
from pymongo import MongoClient
db = ObjectIO(sys.argv[1], group=sys.argv[2])
uri, _, name = sys.argv[1].rpartition("/")
doc = MongoClient(uri)[name][sys.argv[2]].find_one({"_id": 1})
sys.stdout.buffer.write(pickle.dumps(([db[i] for i in range(len(db))], doc["data"])))
""",
        location,
        "ours",
    )
    rows, stored = theirs
    assert rows == [{"calc.energy": 1.0}, {"calc.energy": -1.0}]
    # One literal field, nothing nested.
    assert stored == {"calc.energy": -1.0}
