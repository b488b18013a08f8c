"""No round trip while nothing changed: ``len()`` from the generation the daemon publishes
in shared memory, rows of a walk from the read-ahead cache, and neither ever older than an
acknowledged write of any process (CONTRACT.md "Many processes at once"). Every test runs
through the sync and the async facades (the asyncio client follows the same rules)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _published_workers
import numpy as np
import pytest
from _published_workers import value
from ase import Atoms
from asebytes import ASEIO, AsyncObjectIO, ObjectIO, _native
from conftest import Backend

#: Rows the store starts with in the two-process test.
START_ROWS = 8


def _lmdb(tmp_path: Path, name: str = "p.lmdb") -> str:
    return str(tmp_path / name)


def test_len_asks_the_daemon_once_then_never_while_nothing_changed(
    published_backend: Backend,
) -> None:
    db = published_backend.open(ObjectIO)
    db.extend([{"a": i} for i in range(5)])
    assert len(db) == 5
    before = _native.round_trips()
    assert [len(db) for _ in range(100)] == [5] * 100
    assert _native.round_trips() == before
    db.extend([{"a": 5}])
    assert len(db) == 6, "a write is seen at once"


def test_an_in_order_walk_is_fetched_in_batches(published_backend: Backend) -> None:
    db = published_backend.open(ObjectIO)
    n = 1000
    db.extend([{"a": i, "b": [i, i]} for i in range(n)])
    len(db)
    before = _native.round_trips()
    got = [db[i] for i in range(n)]
    assert got == [{"a": i, "b": [i, i]} for i in range(n)]
    walk = _native.round_trips() - before
    assert walk <= 12, f"{walk} requests for {n} rows"
    before = _native.round_trips()
    assert [db.get(i, keys=["a"]) for i in range(0, 300, 3)] == [
        {"a": i} for i in range(0, 300, 3)
    ]
    assert _native.round_trips() - before < 15
    before = _native.round_trips()
    assert len(db) == n
    assert _native.round_trips() == before, "len asks nothing"


def test_cached_rows_are_never_served_after_a_write(published_backend: Backend) -> None:
    db = published_backend.open(ObjectIO)
    other = published_backend.open(ObjectIO)  # another handle: its own cache
    db.extend([{"v": 0} for _ in range(50)])
    assert [db[i]["v"] for i in range(50)] == [0] * 50
    other[10] = {"v": 1}
    assert db[10] == {"v": 1}
    other.extend([{"v": 2}])
    assert db[-1] == {"v": 2}
    assert len(db) == 51


def test_returned_rows_and_atoms_are_the_callers_own(lmdb_backend: Backend) -> None:
    db = lmdb_backend.open(ASEIO)
    db.extend([Atoms("H2", positions=np.full((2, 3), float(i))) for i in range(40)])
    first = [db[i] for i in range(40)]
    first[5].positions[:] = 99.0
    again = [db[i] for i in range(40)]
    assert float(again[5].positions[0, 0]) == 5.0
    obj = lmdb_backend.open(ObjectIO)
    rows = [obj[i] for i in range(40)]
    rows[3]["arrays.positions"][:] = -1.0
    assert float(obj[3]["arrays.positions"][0, 0]) == 3.0


def test_missing_keys_and_placeholders_keep_their_answers_under_the_cache(
    lmdb_backend: Backend,
) -> None:
    db = lmdb_backend.open(ObjectIO)
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


@pytest.mark.parametrize("facade", [ObjectIO, ASEIO])
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_reader_in_a_tight_loop_never_sees_an_old_length_or_old_row(
    lmdb_backend: Backend, method: str, facade: type[Any]
) -> None:
    """Process A appends and overwrites row 0, acknowledging each round; process B (here)
    walks the rows in a tight loop: after A acknowledged round k, B's ``len`` is never
    below ``START_ROWS + k`` and row 0 never older than k. A writes through the facade B
    reads with (sync or async)."""
    location = lmdb_backend.location
    db = lmdb_backend.open(facade)
    name = facade.__name__
    db.extend([_published_workers.row(name, 0) for _ in range(START_ROWS)])
    ctx: Any = mp.get_context(method)
    acked, start = ctx.Value("q", 0), ctx.Event()
    rounds = 150
    writer = ctx.Process(
        target=_published_workers.append_and_overwrite,
        args=(location, rounds, acked, start, name, lmdb_backend.mode),
    )
    writer.start()
    start.set()
    keys = ["info.v"] if facade is ASEIO else ["v"]
    checks = 0
    while True:
        floor = acked.value
        n = len(db)
        assert n >= START_ROWS + floor, (n, floor)
        rows = [db[i] for i in range(min(n, START_ROWS + 4))]
        assert value(rows[0]) >= floor, (rows[0], floor)
        assert value(db.get(0, keys=keys)) >= floor
        checks += 1
        if floor == rounds:
            break
        if not writer.is_alive() and acked.value != rounds:
            pytest.fail(f"the writer died at round {acked.value}")
    writer.join(60)
    assert writer.exitcode == 0
    assert checks > 1
    assert len(db) == START_ROWS + rounds
    assert value(db[0]) == rounds
    assert [value(db[START_ROWS + k - 1]) for k in range(1, rounds + 1)] == list(
        range(1, rounds + 1)
    )


def test_a_read_ahead_batch_that_fails_is_sent_again_as_the_one_row(
    tmp_path: Path,
) -> None:
    """A batch planned from the published length meets a store that shrank before it was
    sent: the asyncio client asks for the one row instead, as the sync client does (the
    moment between planning and sending is made wide here by sending by hand)."""
    location = _lmdb(tmp_path)
    ObjectIO(location).extend([{"v": i} for i in range(100)])

    async def main() -> None:
        adb = AsyncObjectIO(location)
        assert await adb.len() == 100
        assert [(await adb[i])["v"] for i in range(2)] == [0, 1]
        backend = adb._backend
        call = backend._plan.get(2)
        assert call.name == "get_many", "a walk: row 2 and the next ones at once"
        _native.Store(location).delete_range(10, 100)
        assert await backend._call(call) == {"v": 2}
        assert not call.fall_back(), "once"
        assert await adb.len() == 10
        assert [(await adb[i])["v"] for i in range(10)] == list(range(10))

    asyncio.run(main())


def _stop_daemon() -> None:
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        env=os.environ.copy(),
        timeout=60,
        check=True,
        capture_output=True,
    )


def test_a_restarted_daemon_is_asked_again(lmdb_backend: Backend) -> None:
    location = lmdb_backend.location
    db = lmdb_backend.open(ObjectIO)
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


#: A walk of 40 rows between two ``len`` calls, printing the requests it took; run in a
#: fresh process so the environment's switches apply.
WALK = {
    "sync": """
import asebytes, sys
from asebytes import _native
db = asebytes.ObjectIO(sys.argv[1])
len(db)
b = _native.round_trips()
assert [db[i]['v'] for i in range(40)] == list(range(40))
len(db)
print(_native.round_trips() - b)
""",
    "async": """
import asyncio, asebytes, sys
from asebytes import _native
async def main():
    db = asebytes.AsyncObjectIO(sys.argv[1])
    await db.len()
    b = _native.round_trips()
    assert [(await db[i])['v'] for i in range(40)] == list(range(40))
    await db.len()
    print(_native.round_trips() - b)
asyncio.run(main())
""",
}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_cache_can_be_turned_off(tmp_path: Path, mode: str) -> None:
    location = _lmdb(tmp_path)
    ObjectIO(location).extend([{"v": i} for i in range(40)])

    def run(**env: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", WALK[mode], location],
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
