"""Many processes, one store: pickling, fork/spawn, concurrent appends, len, killed clients."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _workers
import numpy as np
import pytest
from asebytes import ASEIO, BlobIO, ObjectIO
from conftest import Backend


@pytest.mark.parametrize("facade", [ObjectIO, ASEIO, BlobIO])
def test_pickled_handle_reconnects_to_the_same_store(
    backend: Backend, facade: type[Any]
) -> None:
    db = backend.open(facade)
    db.reserve(2)
    handle = getattr(db, "_a", db)  # the async facade itself, not the test's shim
    copy = pickle.loads(pickle.dumps(handle))
    assert type(copy) is type(handle)
    clone = backend.rewrap(copy)
    assert len(clone) == 2
    clone.reserve(1)
    assert len(db) == 3


def test_reopening_a_path_in_one_process_shares_the_store(tmp_path: Path) -> None:
    path = str(tmp_path / "same.lmdb")
    a, b = ObjectIO(path), ObjectIO(path)
    c = ASEIO(path)
    a.extend([{"a": 1}])
    b.extend([{"b": 2}])
    assert a[:].to_list() == b[:].to_list() == [{"a": 1}, {"b": 2}]
    assert len(c) == 2
    del a
    assert len(b) == 2


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_handle_works_in_forked_and_spawned_children(
    sync_backend: Backend, method: str
) -> None:
    db = sync_backend.open(ObjectIO)
    db.extend([{"parent": 1}])
    assert len(db) == 1  # the parent has a live connection before forking
    ctx: Any = mp.get_context(method)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_workers.use_inherited, args=(db, queue)) for _ in range(3)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(r[0] == "ok" for r in results), results
    assert {r[4] for r in results} == {os.environ["ASEBYTES_SOCKET"]}, (
        "a child left the session"
    )
    assert sorted(r[2] for r in results) == sorted(r[3] for r in results)
    assert len(db) == 4
    assert db[0] == {"parent": 1}
    assert sorted(row["child"] for row in db[1:]) == sorted(r[3] for r in results)


def _run_all(
    ctx: Any, jobs: list[tuple[str, tuple[Any, ...]]], before_wait: Any = None
) -> list[Any]:
    """Start one process per job (``report``-wrapped), optionally call ``before_wait``,
    then collect every result within a deadline; a worker error fails the test."""
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_workers.report, args=(queue, name, *args))
        for name, args in jobs
    ]
    for p in procs:
        p.start()
    if before_wait is not None:
        before_wait()
    results = [queue.get(timeout=110) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    errors = [r[1] for r in results if r[0] != "ok"]
    assert not errors, errors
    return [r[1] for r in results]


@pytest.mark.multiprocess
def test_concurrent_appends_keep_every_batch_whole_and_contiguous(
    tmp_path: Path,
) -> None:
    location = str(tmp_path / "shared.lmdb")
    sizes = {0: 1, 1: 7, 2: 31, 3: 128}
    rounds = 12
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    jobs = [
        ("append_batches", (location, w, size, rounds, start))
        for w, size in sizes.items()
    ]
    assert sorted(_run_all(ctx, jobs, before_wait=start.set)) == sorted(sizes)
    db = ObjectIO(location)
    tags = [(info["w"], info["b"], info["k"]) for info in _info_tags(db)]
    assert len(tags) == sum(sizes.values()) * rounds
    assert Counter(tags).most_common(1)[0][1] == 1, "a row is duplicated"
    assert set(tags) == {
        (w, b, k) for w, s in sizes.items() for b in range(rounds) for k in range(s)
    }
    positions: dict[tuple[int, int], list[int]] = {}
    for pos, (w, b, k) in enumerate(tags):
        positions.setdefault((w, b), []).append(pos)
        assert positions[(w, b)][0] + k == pos, (
            f"batch {(w, b)} is interleaved at row {pos}"
        )
    for (w, b), rows in positions.items():
        assert rows == list(range(rows[0], rows[0] + sizes[w])), (w, b)
    starts = {w: [positions[(w, b)][0] for b in range(rounds)] for w in sizes}
    assert all(s == sorted(s) for s in starts.values()), (
        "a writer's batches are out of order"
    )


def _info_tags(db: ObjectIO) -> list[dict[str, int]]:
    columns = db[["info.w", "info.b", "info.k"]].to_list()
    return [{"w": w, "b": b, "k": k} for w, b, k in columns]


@pytest.mark.multiprocess
def test_len_seen_by_another_process_is_always_current(backend: Backend) -> None:
    ctx = mp.get_context("spawn")
    issued, acked = ctx.Value("q", 0, lock=False), ctx.Value("q", 0, lock=False)
    lock, watching, done = ctx.Lock(), ctx.Event(), ctx.Event()
    size, rounds = 5, 60
    queue = ctx.Queue()
    watcher = ctx.Process(
        target=_workers.report,
        args=(
            queue,
            "watch_len",
            *(backend.location, issued, acked, lock, watching, done, size),
        ),
    )
    watcher.start()
    assert watching.wait(timeout=110), "the watcher never polled"
    _run_all(
        ctx,
        [("write_and_ack", (backend.location, size, rounds, issued, acked, lock))] * 2,
    )
    done.set()
    status, report = queue.get(timeout=110)
    watcher.join(timeout=60)
    assert status == "ok", report
    assert report["problems"] == []
    assert report["polls"] > 1
    assert len(backend.open(ObjectIO)) == 2 * size * rounds


@pytest.mark.multiprocess
@pytest.mark.parametrize("kill_at", [0.0, 0.3, 0.7])
def test_client_killed_mid_extend_leaves_no_partial_batch(
    backend: Backend, kill_at: float
) -> None:
    """SIGKILL a client at a fraction of the time the same extend takes here: the batch is
    either wholly there or wholly absent, and the store stays usable."""
    rows, width = 1500, 1024  # ~12 MB of payload
    db = backend.open(ObjectIO)
    started = time.monotonic()
    db.extend([{"k": k, "x": np.full(width, float(k))} for k in range(rows)])
    duration = time.monotonic() - started
    db.clear()
    db.extend([{"k": -1}])
    before = len(db)
    ctx = mp.get_context("spawn")
    about_to_extend = ctx.Event()
    child = ctx.Process(
        target=_workers.extend_huge,
        args=(backend.location, rows, width, about_to_extend),
    )
    child.start()
    assert about_to_extend.wait(60), "child never got ready"
    kill_time = time.monotonic() + kill_at * duration
    while time.monotonic() < kill_time and child.is_alive():
        pass  # a timed kill point, not a wait for a condition
    assert child.pid is not None
    # A child that finished first was reaped by ``is_alive``: nothing left to kill.
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=60)
    assert child.exitcode in (-signal.SIGKILL, 0)
    observed = set()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        observed.add(len(db))
    assert observed <= {before, before + rows}, f"partial batch visible: {observed}"
    final = len(db)
    if final == before + rows:
        assert db["k"][[before, -1]].to_list() == [0, rows - 1]
    assert db.extend([{"k": "after"}]) == final + 1
    assert db[-1] == {"k": "after"}
