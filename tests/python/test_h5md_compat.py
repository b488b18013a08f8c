"""H5MD files interchange with znh5md 0.4.8 and the reference ``asebytes`` 0.3.3, both
ways: what the daemon writes, they read as equal Atoms; what they write, the daemon
reads as equal Atoms.

znh5md runs in this virtualenv, the reference in ``.venv-ref``; both as subprocesses
(another process, as a user's other program would be). The frames come from one builder
(:data:`BUILD`, executed in every interpreter): ASE's s22 molecules (variable atom
counts) with SinglePointCalculator energy, forces, stress and other results, info and
custom per-atom arrays, velocities, mixed pbc and cell, properties present in only some
frames; connectivity and constraints for the reference (znh5md 0.4.8 stores neither).
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asebytes import ASEIO, H5MDBackend, ObjectIO

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"

needs_ref = pytest.mark.skipif(
    not REF_PYTHON.exists() and not os.environ.get("CI"),
    reason="reference virtualenv .venv-ref not present (`just ref-venv`; required in CI)",
)
znh5md = pytest.importorskip("znh5md", reason="znh5md is a dev requirement")

#: Builds the frames and describes Atoms as plain values (run in every interpreter).
BUILD = """
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.collections import s22
from ase.constraints import FixAtoms, FixBondLengths

def frames(case):
    rng = np.random.default_rng(11)
    out = []
    for i, name in enumerate(list(s22.names)[:6]):
        a = s22[name].copy()
        n = len(a)
        results = {"energy": -1.5 * i, "stress": rng.random(6), "free_energy": -1.6 * i,
                   "dipole": rng.random(3)}
        if case != "sparse" or i < 3:
            results["forces"] = rng.random((n, 3))
        a.calc = SinglePointCalculator(a, **results)
        if case in ("rich", "sparse"):
            a.info["label"] = f"mol {i}"
            a.info["step"] = i
            a.info["weight"] = 0.25 * i
            a.arrays["charge_model"] = rng.random(n)
            a.set_velocities(rng.random((n, 3)))
            a.pbc = [i % 2 == 0, True, i % 3 == 0]
            a.cell = np.diag([10.0 + i, 11.0, 12.0 + 0.5 * i])
        if case == "sparse" and i % 2:
            a.info["only_odd"] = 1.5 * i
        if case == "reference":
            a.info["connectivity"] = [(0, 1), (1, 2, 2.0)] if i % 2 else [(0, 1)]
            a.set_constraint([FixAtoms(indices=[0]), FixBondLengths([[1, 2]])])
        out.append(a)
    return out

def describe(a):
    d = {"numbers": np.asarray(a.numbers, dtype=int), "positions": a.positions,
         "cell": a.cell.array, "pbc": np.asarray(a.pbc, dtype=bool),
         "info": {k: (v if not isinstance(v, tuple) else list(v)) for k, v in a.info.items()},
         "arrays": {k: v for k, v in a.arrays.items() if k not in ("numbers", "positions")},
         "calc": dict(a.calc.results) if a.calc is not None else {},
         "constraints": [c.todict() for c in a.constraints]}
    if "connectivity" in d["info"]:
        # The reference reads a bond without an order as order NaN once any bond has one.
        d["info"]["connectivity"] = [
            list(t[:2]) if len(t) == 3 and t[2] != t[2] else list(t)
            for t in d["info"]["connectivity"]
        ]
    return d
"""

ns: dict[str, Any] = {}
exec(BUILD, ns)  # noqa: S102 -- the same builder source runs in the other interpreters
frames = ns["frames"]
describe = ns["describe"]


def run(python: Path | str, script: str, *args: str, locking: bool = False) -> Any:
    """Runs ``script`` in another interpreter; returns what it pickled to stdout. HDF5
    file locking is off there unless ``locking``: the daemon may still hold the file open
    for a moment after this process let go (every commit is flushed, so committed data
    is read)."""
    env = None if locking else dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE")
    out = subprocess.run(
        [str(python), "-c", BUILD + script, *args],
        check=False,
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-3000:]
    return pickle.loads(out.stdout) if out.stdout else None


def same(a: Any, b: Any, where: str) -> None:
    """Equal as values: numbers by value (znh5md and the reference read ints as floats),
    arrays by value and shape."""
    if isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict), f"{where}: {a!r} vs {b!r}"
        assert set(a) == set(b), f"{where}: keys differ: {sorted(set(a) ^ set(b))}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{where}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, str) or isinstance(b, str):
        assert a == b, f"{where}: {a!r} != {b!r}"
    else:
        x, y = np.asarray(a), np.asarray(b)
        assert x.shape == y.shape, f"{where}: shape {x.shape} != {y.shape}"
        assert np.allclose(x, y, rtol=0, atol=1e-12, equal_nan=True), (
            f"{where}: {x} != {y}"
        )


def same_frames(got: list[Any], want: list[Any], who: str) -> None:
    assert len(got) == len(want), who
    for i, (g, w) in enumerate(zip(got, want)):
        same(g, w, f"{who} frame {i}")


def release() -> None:
    """Drops this process's handles so the daemon closes the file."""
    gc.collect()


ZNH5MD_READ = """
import pickle, sys, znh5md
io = znh5md.IO(sys.argv[1], **({"particles_group": sys.argv[2]} if len(sys.argv) > 2 else {}))
sys.stdout.buffer.write(pickle.dumps([describe(a) for a in io[:]]))
"""

ZNH5MD_WRITE = """
import sys, znh5md
io = znh5md.IO(sys.argv[1], **({"particles_group": sys.argv[3]} if len(sys.argv) > 3 else {}))
io.extend(frames(sys.argv[2]))
"""

REF_READ = """
import pickle, sys
from asebytes import ASEIO
db = ASEIO(sys.argv[1], readonly=True)
sys.stdout.buffer.write(pickle.dumps([describe(db[i]) for i in range(len(db))]))
"""

REF_WRITE = """
import sys
from asebytes import ASEIO
db = ASEIO(sys.argv[1])
db.extend(frames(sys.argv[2]))
"""


def expected(case: str, *, velocities: bool = False) -> list[Any]:
    """What each frame reads back as. ``velocities``: as from a file znh5md wrote, which
    keeps velocities (not momenta) in ``/particles/<g>/velocity``: they come back as
    ``arrays["velocities"]``, as with the reference (docs/backends/h5md.md)."""
    out = []
    for a in frames(case):
        d = describe(a)
        if velocities and "momenta" in d["arrays"]:
            del d["arrays"]["momenta"]
            d["arrays"]["velocities"] = a.get_velocities()
        out.append(d)
    return out


@pytest.mark.parametrize("case", ["s22", "rich", "sparse"])
def test_our_files_read_by_znh5md(tmp_path: Path, case: str) -> None:
    path = str(tmp_path / "ours.h5md")
    db = ASEIO(path, author_name="tester")
    db.extend(frames(case))
    del db
    release()
    same_frames(run(sys.executable, ZNH5MD_READ, path), expected(case), "znh5md")


@pytest.mark.parametrize("case", ["s22", "rich", "sparse"])
def test_znh5md_files_read_through_the_daemon(tmp_path: Path, case: str) -> None:
    path = str(tmp_path / "theirs.h5md")
    run(sys.executable, ZNH5MD_WRITE, path, case)
    db = ASEIO(path)
    want = expected(case, velocities=True)
    same_frames([describe(db[i]) for i in range(len(db))], want, "ours")
    # Bulk reads give the same Atoms.
    same_frames([describe(a) for a in db[:].to_list()], want, "ours (bulk)")


@needs_ref
@pytest.mark.parametrize("case", ["s22", "rich", "sparse", "reference"])
def test_our_files_read_by_the_reference(tmp_path: Path, case: str) -> None:
    path = str(tmp_path / "ours.h5md")
    db = ASEIO(path)
    db.extend(frames(case))
    del db
    release()
    same_frames(run(REF_PYTHON, REF_READ, path), expected(case), "reference")


@needs_ref
@pytest.mark.parametrize("case", ["s22", "rich", "sparse", "reference"])
def test_reference_files_read_through_the_daemon(tmp_path: Path, case: str) -> None:
    path = str(tmp_path / "theirs.h5md")
    run(REF_PYTHON, REF_WRITE, path, case)
    db = ASEIO(path)
    same_frames([describe(db[i]) for i in range(len(db))], expected(case), "ours")
    same_frames([describe(a) for a in db[:].to_list()], expected(case), "ours (bulk)")


def test_an_h5_file_with_an_h5md_group_is_served_as_h5md(tmp_path: Path) -> None:
    theirs = str(tmp_path / "written_by_znh5md.h5")
    run(sys.executable, ZNH5MD_WRITE, theirs, "rich")
    db = ASEIO(theirs)
    want = expected("rich", velocities=True)
    same_frames([describe(db[i]) for i in range(len(db))], want, "sniffed")
    assert H5MDBackend.list_groups(theirs) == ["atoms"]
    # A new .h5 stays the columnar HDF5 store.
    plain = str(tmp_path / "plain.h5")
    ObjectIO(plain).extend([{"calc.energy": 1.0}])
    release()
    seen = run(
        sys.executable,
        "import h5py, pickle, sys\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "sys.stdout.buffer.write(pickle.dumps(sorted(f)))\n",
        plain,
    )
    assert seen == ["default"]


def test_groups_are_particles_groups_both_ways(tmp_path: Path) -> None:
    path = str(tmp_path / "multi.h5md")
    ASEIO(path, group="solvent").extend(frames("s22")[:2])
    ASEIO(path, group="solute").extend(frames("rich")[:3])
    assert H5MDBackend.list_groups(path) == ["solute", "solvent"]
    release()
    got = run(sys.executable, ZNH5MD_READ, path, "solute")
    same_frames(got, expected("rich")[:3], "znh5md solute")
    theirs = str(tmp_path / "theirs.h5md")
    run(sys.executable, ZNH5MD_WRITE, theirs, "s22", "water")
    # No group given: the first particles group of the file.
    db = ASEIO(theirs)
    same_frames(
        [describe(db[i]) for i in range(len(db))], expected("s22"), "default group"
    )


RETRY_READ = """
import pickle, sys, time, znh5md
deadline = time.monotonic() + 30
while True:
    try:
        frames_read = znh5md.IO(sys.argv[1])[:]
        break
    except Exception:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
sys.stdout.buffer.write(pickle.dumps([describe(a) for a in frames_read]))
"""

HOLD = """
import sys, h5py
f = h5py.File(sys.argv[1], "a")
print("holding", flush=True)
sys.stdin.readline()
f.close()
"""


def test_the_daemon_lets_go_of_a_file_no_client_uses(tmp_path: Path) -> None:
    """With HDF5's file locking on, znh5md in another process opens the file once our
    last handle is gone (the daemon closed it), and our handle's next use reopens it."""
    path = str(tmp_path / "shared.h5md")
    db = ASEIO(path)
    db.extend(frames("s22"))
    del db
    release()
    got = run(sys.executable, RETRY_READ, path, locking=True)
    same_frames(got, expected("s22"), "znh5md with locking")
    again = ASEIO(path)
    assert len(again) == len(expected("s22"))


def test_a_file_another_program_holds_gives_an_error_naming_file_and_holder(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "held.h5md")
    run(sys.executable, ZNH5MD_WRITE, path, "s22")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert (
            holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        )
        with pytest.raises(OSError) as err:
            len(ASEIO(path))
        msg = str(err.value)
        assert path in msg, msg
        assert f"pid {holder.pid}" in msg, msg
        assert "errno" not in msg and "H5F" not in msg, msg
    finally:
        holder.communicate(input="\n", timeout=60)
    # Once the other program is done, the same path opens.
    assert len(ASEIO(path)) == len(expected("s22"))


APPEND = """
import sys
from asebytes import ASEIO
db = ASEIO(sys.argv[1])
rows = frames("rich")
for k in range(int(sys.argv[2])):
    batch = [a.copy() for a in rows]
    for a, b in zip(batch, rows):
        a.calc = b.calc
        a.info["batch"] = k
        if k >= 3:
            a.info["late_key"] = float(k)  # a key that appears mid-run
    db.extend(batch)
"""


def test_appends_through_the_daemon_while_other_processes_read(tmp_path: Path) -> None:
    """A running simulation appends (another process, through the daemon) while this
    process reads: len() is always current and every frame it sees is whole, keys that
    appear mid-run included."""
    path = str(tmp_path / "live.h5md")
    batches, per = 8, len(frames("rich"))
    ASEIO(path).extend(frames("rich")[:1])
    writer = subprocess.Popen(
        [sys.executable, "-c", BUILD + APPEND, path, str(batches)],
        stderr=subprocess.PIPE,
    )
    db = ASEIO(path)
    last = 0
    while True:
        done = writer.poll() is not None
        n = len(db)
        assert n >= last, "len() went back"
        last = n
        if n > 1:
            a = db[n - 1]
            assert len(a) == len(a.positions) and a.calc is not None
            assert a.info["batch"] == (n - 2) // per
        if done:
            break
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err.decode(errors="replace")[-3000:]
    assert len(db) == 1 + batches * per
    assert db[-1].info["late_key"] == float(batches - 1)
    assert "late_key" not in db[1].info


# ---------------------------------------------------------------- the reference's bugs, fixed


def test_constraints_survive_bulk_reads_and_never_leak_into_info(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "c.h5md")
    db = ASEIO(path)
    db.extend(frames("reference"))
    want = expected("reference")
    for how, got in (
        ("db[i]", [db[i] for i in range(len(db))]),
        ("to_list", db[:].to_list()),
        ("iteration", list(db)),
        ("view", db[[2, 0]].to_list()),
    ):
        idx = [2, 0] if how == "view" else range(len(want))
        for a, i in zip(got, idx):
            assert "constraints_json" not in a.info, how
            same(describe(a)["constraints"], want[i]["constraints"], f"{how} {i}")
    assert "info.constraints_json" not in ObjectIO(path).keys(0)
    assert "constraints" in ObjectIO(path).keys(0)


def test_info_and_calc_of_one_name_both_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "clash.h5md")
    db = ObjectIO(path)
    db.extend(
        [{"info.stress": 1.0, "calc.stress": np.arange(6.0), "calc.dipole": [1, 2]}]
    )
    row = db[0]
    assert row["info.stress"] == 1.0
    assert np.array_equal(row["calc.stress"], np.arange(6.0))


def test_extend_leaves_the_callers_rows_untouched(tmp_path: Path) -> None:
    path = str(tmp_path / "m.h5md")
    numbers = np.array([1, 8, 1])
    row = {
        "arrays.numbers": numbers,
        "arrays.positions": np.zeros((3, 3)),
        "constraints": [{"name": "FixAtoms", "kwargs": {"indices": [0]}}],
        "info.connectivity": [(0, 1), (1, 2)],
    }
    before = dict(row)
    ObjectIO(path).extend([row])
    assert row.keys() == before.keys()
    assert row["arrays.numbers"] is numbers and numbers.dtype == np.int64
    assert row["info.connectivity"] == [(0, 1), (1, 2)]


def test_numbers_ints_and_bools_keep_their_types(tmp_path: Path) -> None:
    path = str(tmp_path / "t.h5md")
    db = ObjectIO(path)
    db.extend(
        [
            {
                "arrays.numbers": np.array([1, 8]),
                "arrays.positions": np.zeros((2, 3)),
                "arrays.tags": np.array([3, 4], dtype=np.int32),
                "info.n": 3,
                "info.flag": True,
            },
            {
                "arrays.numbers": np.array([6]),
                "arrays.positions": np.zeros((1, 3)),
                "info.n": 4,
            },
        ]
    )
    a, b = db[0], db[1]
    assert a["arrays.numbers"].dtype == np.int64
    assert a["arrays.tags"].dtype == np.int32 and list(a["arrays.tags"]) == [3, 4]
    assert type(a["info.n"]) is int and type(a["info.flag"]) is bool
    assert "info.flag" not in b and "arrays.tags" not in b
    release()
    # znh5md reads the same values (as numbers), padding stripped.
    seen = run(
        sys.executable,
        "import pickle, sys, znh5md\n"
        "io = znh5md.IO(sys.argv[1])\n"
        "sys.stdout.buffer.write(pickle.dumps([dict(a.arrays) for a in io[:]]))\n",
        path,
    )
    assert list(seen[1]["numbers"]) == [6]
    assert list(seen[0]["tags"]) == [3, 4]


def test_the_registry_follows_the_tables_content_sniff(tmp_path: Path) -> None:
    from asebytes._registry import backend_table, resolve

    table = {e.scheme: e for e in backend_table()}
    assert table["h5md"].patterns == ("*.h5md",)
    assert table["h5md"].sniffed_patterns == ("*.h5",)
    assert "author_name" in table["h5md"].options
    new = str(tmp_path / "new.h5")
    assert resolve(new).backend == "hdf5"  # a new .h5 stays columnar HDF5
    assert resolve(str(tmp_path / "new.h5md")).backend == "h5md"
    h5md_in_h5 = str(tmp_path / "md.h5")
    run(sys.executable, ZNH5MD_WRITE, h5md_in_h5, "s22")
    assert resolve(h5md_in_h5).backend == "h5md"
    with pytest.raises(TypeError, match="author_name"):
        ObjectIO(new, author_name="x")  # the HDF5 backend takes no author
    ObjectIO(h5md_in_h5, author_name="x")  # the sniffed H5MD backend does


def test_appending_to_a_znh5md_file_keeps_every_frame_readable(tmp_path: Path) -> None:
    """The reference records ``_n_atoms`` of the appended frames only; we keep the old
    frames' counts too, and znh5md reads the whole file."""
    path = str(tmp_path / "theirs.h5md")
    run(sys.executable, ZNH5MD_WRITE, path, "s22")
    db = ASEIO(path)
    db.extend(frames("s22")[:2])
    want = expected("s22") + expected("s22")[:2]
    same_frames([describe(db[i]) for i in range(len(db))], want, "ours")
    del db
    release()
    same_frames(run(sys.executable, ZNH5MD_READ, path), want, "znh5md")


def test_h5md_backend_with_the_references_keywords(tmp_path: Path) -> None:
    path = str(tmp_path / "k.h5md")
    backend = H5MDBackend(
        path, author_name="Ada", author_email="ada@example.org", compression=None
    )
    db = ASEIO(backend)
    db.extend(frames("s22")[:2])
    assert len(db) == 2
    del db, backend
    release()
    seen = run(
        sys.executable,
        "import h5py, pickle, sys\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "a, c = f['h5md/author'].attrs, f['h5md/creator'].attrs\n"
        "v = f['particles/atoms/position/value']\n"
        "out = (str(a['name']), str(a['email']), str(c['name']), list(f['h5md'].attrs['version']),\n"
        "       v.compression, str(v.attrs['unit']),\n"
        "       str(f['observables/atoms/potential_energy'].attrs['ASE_ENTRY_ORIGIN']))\n"
        "sys.stdout.buffer.write(pickle.dumps(out))\n",
        path,
    )
    assert seen == (
        "Ada",
        "ada@example.org",
        "asebytes-rs",
        [1, 1],
        None,
        "Angstrom",
        "calc",
    )
