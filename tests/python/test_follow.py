"""Live follow (``db.follow()``): rows pushed by the daemon as other processes commit them.

The multi-process test is the issue's acceptance: one process appends at irregular
intervals, two followers (the sync and the async facade) receive every frame once, in
order; the latency from the writer's acknowledged commit to each follower is printed
(``-s``) and held only to a generous bound.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _follow_workers as workers
import pytest
from _custom_backends import object_backend
from asebytes import (
    ASEIO,
    AsyncASEIO,
    AsyncBlobIO,
    AsyncObjectIO,
    BlobIO,
    ObjectIO,
    ReadBackend,
)
from asebytes.exceptions import UnsupportedOperationError
from conftest import Backend

#: Where a follow can be pushed: every backend the daemon serves.
FOLLOWABLE = ("lmdb", "memory", "zarr", "h5")


@pytest.fixture(params=FOLLOWABLE)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    name = request.param
    if name == "memory":
        return f"memory://follow-{tmp_path.name}"
    return str(tmp_path / f"f.{name}")


def _stop_daemon() -> None:
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        check=True,
        capture_output=True,
    )


@pytest.mark.multiprocess
def test_two_followers_get_every_frame_once_in_order_as_it_commits(
    location: str,
) -> None:
    ctx: Any = mp.get_context("spawn")
    batches = [1, 3, 1, 1, 5, 2, 1, 1, 4, 1, 1, 2, 1, 1, 1]
    total = sum(batches)
    out = ctx.Queue()
    ready = [ctx.Event(), ctx.Event()]
    start = ctx.Event()
    procs = [
        ctx.Process(target=workers.follow_sync, args=(location, total, ready[0], out)),
        ctx.Process(target=workers.follow_async, args=(location, total, ready[1], out)),
        ctx.Process(
            target=workers.append_irregularly, args=(location, batches, 7, start, out)
        ),
    ]
    for p in procs:
        p.start()
    assert all(r.wait(60) for r in ready)
    time.sleep(0.2)  # let both followers reach their first wait
    start.set()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    acked = {}
    for first, size, t in results["writer"]:
        for seq in range(first, first + size):
            acked[seq] = t
    for name in ("sync", "async"):
        seqs = [seq for seq, _ in results[name]]
        assert seqs == list(range(total)), name
        lat = [(t - acked[seq]) * 1000 for seq, t in results[name]]
        print(
            f"\n{location.rsplit('.', 1)[-1][:6]} {name} follower: commit ack -> row "
            f"received, ms: median {statistics.median(lat):.2f}, max {max(lat):.2f}"
        )
        # Generous: a loaded CI machine must not fail this; the printed numbers matter.
        assert max(lat) < 2000, lat


def test_follow_yields_existing_rows_then_new_ones_and_ends_after_timeout(
    location: str,
) -> None:
    db = ObjectIO(location)
    db.extend([{"i": 0}, {"i": 1}])
    got: list[int] = []

    def append_later() -> None:
        time.sleep(0.1)
        ObjectIO(location).extend([{"i": 2}, {"i": 3}])

    t = threading.Thread(target=append_later)
    t.start()
    t0 = time.monotonic()
    # A read-only open follows too: the store grows through other handles.
    for row in ObjectIO(location, readonly=True).follow(timeout=0.6):
        got.append(row["i"])
    t.join()
    assert got == [0, 1, 2, 3]
    assert time.monotonic() - t0 < 10


def test_follow_start_len_yields_only_new_rows_and_negative_start_counts_from_the_end(
    location: str,
) -> None:
    db = BlobIO(location)
    db.extend([{b"k": b"0"}, {b"k": b"1"}, {b"k": b"2"}])
    assert [r[b"k"] for r in db.follow(start=len(db), timeout=0.1)] == []
    assert [r[b"k"] for r in db.follow(start=-1, timeout=0.1)] == [b"2"]
    db.extend([{b"k": b"3"}])
    assert [r[b"k"] for r in db.follow(start=2, timeout=0.1, batch=1)] == [b"2", b"3"]


def test_follow_stops_when_the_stop_event_is_set(location: str) -> None:
    db = ASEIO(location)
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    t0 = time.monotonic()
    assert list(db.follow(start=0, stop=stop)) == []
    timer.join()
    assert time.monotonic() - t0 < 10
    assert list(db.follow(stop=lambda: True)) == []


def test_async_follow_on_every_tier(location: str) -> None:
    async def main() -> None:
        db = AsyncObjectIO(location)
        await db.extend([{"i": 0}])
        blob = AsyncBlobIO(location)
        aseio = AsyncASEIO(location)

        async def append() -> None:
            await asyncio.sleep(0.05)
            await db.extend([{"i": 1}])

        task = asyncio.create_task(append())
        rows = [r["i"] async for r in db.follow(timeout=0.5)]
        await task
        assert rows == [0, 1]
        assert len([r async for r in blob.follow(timeout=0.05)]) == 2
        assert len([a async for a in aseio.follow(start=-1, timeout=0.05)]) == 1
        # Other requests of the loop do not queue behind a waiting follower.
        follower = asyncio.create_task(anext(db.follow(start=2, timeout=2)))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        assert await db.len() == 2
        assert time.monotonic() - t0 < 0.3
        await db.extend([{"i": 2}])
        assert (await follower)["i"] == 2

    asyncio.run(main())


@pytest.mark.multiprocess
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_follow_goes_on_across_a_daemon_restart(tmp_path: Path, mode: str) -> None:
    location = str(tmp_path / "restart.lmdb")
    db = ObjectIO(location)
    db.extend([{"i": 0}])
    got: list[int] = []
    done = threading.Event()

    async def afollow() -> None:
        async for row in AsyncObjectIO(location).follow(timeout=10):
            got.append(row["i"])
            if row["i"] == 3:
                break

    def follow() -> None:
        if mode == "async":
            asyncio.run(afollow())
        else:
            for row in ObjectIO(location).follow(timeout=10):
                got.append(row["i"])
                if row["i"] == 3:
                    break
        done.set()

    t = threading.Thread(target=follow)
    t.start()
    db.extend([{"i": 1}])
    time.sleep(0.2)
    _stop_daemon()
    # The next call starts a daemon again; the follower reconnects by itself.
    db.extend([{"i": 2}])
    time.sleep(0.2)
    db.extend([{"i": 3}])
    assert done.wait(30)
    t.join()
    assert got == [0, 1, 2, 3]


def test_follow_refuses_a_source_that_cannot_grow_or_is_not_served(
    tmp_path: Path,
) -> None:
    class Frozen(ReadBackend[str, Any]):
        @staticmethod
        def list_groups(path: str, **kwargs: Any) -> list[str]:
            return []

        def __len__(self) -> int:
            return 0

        def get(self, index: int, keys: Any = None) -> Any:
            raise IndexError(index)

    with pytest.raises(UnsupportedOperationError, match="read-only and cannot grow"):
        ObjectIO(Frozen()).follow()
    with pytest.raises(UnsupportedOperationError, match="read-only and cannot grow"):
        AsyncObjectIO(Frozen()).follow()
    with pytest.raises(UnsupportedOperationError, match="cannot be followed"):
        ObjectIO(object_backend("custom", str(tmp_path / "c"))).follow()


def test_follow_checks_its_arguments(backend: Backend) -> None:
    if backend.mode != "sync":
        pytest.skip("argument checks are shared")
    db = backend.open(ObjectIO)
    with pytest.raises(ValueError, match="timeout"):
        db.follow(timeout=-1)
    with pytest.raises(ValueError, match="batch"):
        db.follow(batch=0)
    with pytest.raises(TypeError, match="stop"):
        db.follow(stop=3)


def test_follow_is_never_sent_to_a_daemon_older_than_protocol_3() -> None:
    from asebytes import _native

    call = _native.AsyncStore("memory://old-daemon").follow_wait(0, 0.1)
    call.check_protocol(3)
    with pytest.raises(UnsupportedOperationError, match="asebytesd stop"):
        call.check_protocol(2)
    with pytest.raises(ValueError, match="timeout"):
        _native.AsyncStore("memory://old-daemon").follow_wait(0, -1.0)
