"""No round trip while nothing changed: ``len()`` from the generation the daemon publishes
in shared memory, rows of a walk from the read-ahead cache, and neither ever older than an
acknowledged write of any process (CONTRACT.md "Many processes at once")."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _published_workers
import numpy as np
import pytest
from ase import Atoms
from asebytes import ASEIO, ObjectIO, _native
from conftest import Backend

#: Rows the store starts with in the two-process test.
START_ROWS = 8


def _lmdb(tmp_path: Path, name: str = "p.lmdb") -> str:
    return str(tmp_path / name)


def test_len_asks_the_daemon_once_then_never_while_nothing_changed(
    sync_backend: Backend,
) -> None:
    db = sync_backend.open(ObjectIO)
    db.extend([{"a": i} for i in range(5)])
    assert len(db) == 5
    before = _native.round_trips()
    assert [len(db) for _ in range(100)] == [5] * 100
    assert _native.round_trips() == before
    db.extend([{"a": 5}])
    assert len(db) == 6, "a write is seen at once"


def test_an_in_order_walk_is_fetched_in_batches(sync_backend: Backend) -> None:
    db = sync_backend.open(ObjectIO)
    db.extend([{"a": i, "b": [i, i]} for i in range(300)])
    len(db)
    before = _native.round_trips()
    got = [db[i] for i in range(300)]
    assert got == [{"a": i, "b": [i, i]} for i in range(300)]
    walk = _native.round_trips() - before
    assert walk < 30, f"{walk} requests for 300 rows"
    before = _native.round_trips()
    assert [db.get(i, keys=["a"]) for i in range(0, 300, 3)] == [
        {"a": i} for i in range(0, 300, 3)
    ]
    assert _native.round_trips() - before < 15


def test_cached_rows_are_never_served_after_a_write(sync_backend: Backend) -> None:
    db = sync_backend.open(ObjectIO)
    other = sync_backend.open(ObjectIO)  # another handle: its own cache
    db.extend([{"v": 0} for _ in range(50)])
    assert [db[i]["v"] for i in range(50)] == [0] * 50
    other[10] = {"v": 1}
    assert db[10] == {"v": 1}
    other.extend([{"v": 2}])
    assert db[-1] == {"v": 2}
    assert len(db) == 51


def test_returned_rows_and_atoms_are_the_callers_own(tmp_path: Path) -> None:
    db = ASEIO(_lmdb(tmp_path))
    db.extend([Atoms("H2", positions=np.full((2, 3), float(i))) for i in range(40)])
    first = [db[i] for i in range(40)]
    first[5].positions[:] = 99.0
    again = [db[i] for i in range(40)]
    assert float(again[5].positions[0, 0]) == 5.0
    obj = ObjectIO(_lmdb(tmp_path))
    rows = [obj[i] for i in range(40)]
    rows[3]["arrays.positions"][:] = -1.0
    assert float(obj[3]["arrays.positions"][0, 0]) == 3.0


def test_missing_keys_and_placeholders_keep_their_answers_under_the_cache(
    tmp_path: Path,
) -> None:
    db = ObjectIO(_lmdb(tmp_path))
    db.extend([{"a": i} if i % 5 else {"b": i} for i in range(30)])
    db.extend([None])
    for i in range(30):
        if i % 5:
            assert db.get(i, keys=["a"]) == {"a": i}
        else:
            with pytest.raises(KeyError, match="Invalid keys"):
                db.get(i, keys=["a"])
    assert db[30] is None
    assert db.get(30, keys=["a"]) is None
    with pytest.raises(IndexError):
        db[31]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_reader_in_a_tight_loop_never_sees_an_old_length_or_old_row(
    tmp_path: Path, method: str
) -> None:
    """Process A appends and overwrites row 0, acknowledging each round; process B (here)
    walks the rows in a tight loop: after A acknowledged round k, B's ``len`` is never
    below ``START_ROWS + k`` and row 0 never older than k."""
    location = _lmdb(tmp_path)
    db = ObjectIO(location)
    db.extend([{"v": 0} for _ in range(START_ROWS)])
    ctx: Any = mp.get_context(method)
    acked, start = ctx.Value("q", 0), ctx.Event()
    rounds = 150
    writer = ctx.Process(
        target=_published_workers.append_and_overwrite,
        args=(location, rounds, acked, start),
    )
    writer.start()
    start.set()
    checks = 0
    while True:
        floor = acked.value
        n = len(db)
        assert n >= START_ROWS + floor, (n, floor)
        rows = [db[i] for i in range(min(n, START_ROWS + 4))]
        assert rows[0]["v"] >= floor, (rows[0], floor)
        assert db.get(0, keys=["v"])["v"] >= floor
        checks += 1
        if floor == rounds:
            break
        if not writer.is_alive() and acked.value != rounds:
            pytest.fail(f"the writer died at round {acked.value}")
    writer.join(60)
    assert writer.exitcode == 0
    assert checks > 1
    assert len(db) == START_ROWS + rounds
    assert db[0] == {"v": rounds}
    assert [db[START_ROWS + k - 1]["v"] for k in range(1, rounds + 1)] == list(
        range(1, rounds + 1)
    )


def _stop_daemon() -> None:
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        env=os.environ.copy(),
        timeout=60,
        check=True,
        capture_output=True,
    )


def test_a_restarted_daemon_is_asked_again(tmp_path: Path) -> None:
    location = _lmdb(tmp_path)
    db = ObjectIO(location)
    db.extend([{"v": i} for i in range(20)])  # generation 2 here: opened, one write
    assert [db[i]["v"] for i in range(20)] == list(range(20))
    assert len(db) == 20
    _stop_daemon()
    # A new daemon counts generations afresh: one write takes this store to generation 2
    # again. Rows cached from the old daemon must not pass for it.
    other = ObjectIO(location)
    other[3] = {"v": -3}
    want = [-3 if i == 3 else i for i in range(20)]
    for _ in range(2):
        assert len(db) == 20
        assert db[3] == {"v": -3}
        assert [db[i]["v"] for i in range(20)] == want


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    location = _lmdb(tmp_path)
    ObjectIO(location).extend([{"v": i} for i in range(40)])
    code = (
        "import asebytes, sys\n"
        "from asebytes import _native\n"
        f"db = asebytes.ObjectIO({location!r})\n"
        "len(db)\n"
        "b = _native.round_trips()\n"
        "assert [db[i]['v'] for i in range(40)] == list(range(40))\n"
        "len(db)\n"
        "print(_native.round_trips() - b)\n"
    )

    def run(**env: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return int(out.stdout.split()[-1])

    assert run(ASEBYTES_READAHEAD_ROWS="0") == 40, "one request per row, len free"
    assert run(ASEBYTES_SHARED_GEN="0") == 41, "every read and len asks"
    assert run() < 10
