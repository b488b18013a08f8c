"""``cache_to=``: a read-through cache the daemon keeps (a location) or the facade keeps
in process (a ``ReadWriteBackend`` instance), through the sync and the async facades.

Any access order returns exactly the source's Atoms (the reference returns ``None`` for a
row read after a later one); several processes reading one source through one cache
fetch each row from the source once; the cache survives a daemon restart and a
``kill -9`` mid-fill; a rewritten source is never served from the cache; bad
``cache_to`` values are ``TypeError``."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ase
import ase.io
import asebytes
import numpy as np
import pytest
from _async_shim import ASYNC_TWIN, Loop, SyncFacade
from _cache_workers import read_shuffled
from _custom_backends import ListObjectBackend
from _helpers import assert_same
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from asebytes import _native

N = 24
WORKERS = Path(__file__).with_name("_cache_workers.py")


def frames(n: int = N, shift: float = 0.0) -> list[ase.Atoms]:
    out = []
    for j in range(n):
        a = molecule(["H2O", "CH4", "NH3", "C6H6"][j % 4])
        a.positions += 0.01 * j
        a.info["step"] = j
        a.calc = SinglePointCalculator(
            a, energy=-0.5 - j - shift, forces=np.full((len(a), 3), j * 0.25)
        )
        out.append(a)
    return out


def write_source(path: Path, n: int = N, shift: float = 0.0) -> str:
    ase.io.write(path, frames(n, shift), format="extxyz")
    return str(path)


@pytest.fixture(params=["sync", "async"])
def opener(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Opens ``ASEIO`` (or ``AsyncASEIO`` behind the sync shim) with the given args."""
    loop = Loop() if request.param == "async" else None

    def open_as(*args: Any, **kwargs: Any) -> Any:
        if loop is None:
            return asebytes.ASEIO(*args, **kwargs)
        return SyncFacade(ASYNC_TWIN[asebytes.ASEIO](*args, **kwargs), loop)

    yield open_as
    if loop is not None:
        loop.close()


def cache_line(source: str) -> dict[str, Any]:
    """The daemon's status line of ``source`` behind a cache."""
    lines = [
        s
        for s in _native.daemon_status()["stores"]
        if "?cache_to=" in s["canonical"] and os.path.realpath(source) in s["canonical"]
    ]
    assert len(lines) == 1, lines
    return lines[0]


def test_any_order_returns_exactly_the_source_atoms(
    tmp_path: Path, opener: Any
) -> None:
    src = write_source(tmp_path / "src.extxyz")
    plain = asebytes.ASEIO(src)
    want = [plain[i] for i in range(N)]
    db = opener(src, cache_to=str(tmp_path / "cache.lmdb"))
    assert len(db) == N
    # Out of order first: the reference's gap-filled placeholder would make db[0] None.
    assert_same(db[1], want[1])
    assert_same(db[0], want[0])
    for i in reversed(range(N)):
        assert_same(db[i], want[i])
    order = list(range(N))
    for seed in range(3):
        random.Random(seed).shuffle(order)
        for i in order:
            assert_same(db[i], want[i])
    assert_same(db[-1], want[-1])
    for got, w in zip(db[3:11].to_list(), want[3:11], strict=True):
        assert_same(got, w)
    for got, w in zip(
        db[[5, 2, 5]].to_list(), [want[5], want[2], want[5]], strict=True
    ):
        assert_same(got, w)
    energies = db["calc.energy"].to_list()
    assert [a.calc.results["energy"] for a in energies] == [
        a.calc.results["energy"] for a in want
    ]
    assert db.get(4, keys=["calc.energy"]) is not None
    with pytest.raises(KeyError):
        db.get(4, keys=["calc.no_such_key"])
    with pytest.raises(IndexError):
        db[N]
    for got, w in zip(db, want, strict=True):
        assert_same(got, w)


def test_later_epochs_read_only_the_cache(tmp_path: Path) -> None:
    src = write_source(tmp_path / "src.extxyz")
    db = asebytes.ASEIO(src, cache_to=str(tmp_path / "cache.lmdb"))
    order = list(range(N))
    random.Random(1).shuffle(order)
    for i in order[: N // 2]:
        db[i]
    assert cache_line(src)["cache_fills"] == N // 2
    for _ in range(2):
        for i in order:
            db[i]
    assert cache_line(src)["cache_fills"] == N
    assert "cache_to=" in repr(db)


def test_several_processes_fill_the_cache_once(tmp_path: Path) -> None:
    n = 300
    src = write_source(tmp_path / "src.extxyz", n)
    cache = str(tmp_path / "cache.lmdb")
    holder = asebytes.ASEIO(src, cache_to=cache)  # keeps the store open meanwhile
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=read_shuffled, args=(src, cache, s, out)) for s in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    want = {j: -0.5 - j for j in range(n)}
    assert all(r == want for r in results)
    assert len(holder) == n
    assert cache_line(src)["cache_fills"] == n


def test_a_rewritten_source_is_not_served_from_the_cache(
    tmp_path: Path, opener: Any
) -> None:
    src = write_source(tmp_path / "src.extxyz")
    db = opener(src, cache_to=str(tmp_path / "cache.lmdb"))
    assert [db[i].calc.results["energy"] for i in range(N)] == [
        -0.5 - j for j in range(N)
    ]
    write_source(tmp_path / "src.extxyz", 10, shift=100.0)
    assert len(db) == 10
    assert [db[i].calc.results["energy"] for i in range(10)] == [
        -100.5 - j for j in range(10)
    ]


def test_a_source_file_gone_after_epoch_1_fails_as_the_source_does(
    tmp_path: Path,
) -> None:
    """The source is the truth: once its file is gone nothing says the cache still
    matches it, so reads fail with the source's own error, naming the file, rather than
    serve what may be stale."""
    src = write_source(tmp_path / "src.extxyz")
    db = asebytes.ASEIO(src, cache_to=str(tmp_path / "cache.lmdb"))
    [db[i] for i in range(N)]
    os.remove(src)
    with pytest.raises(Exception) as plain:
        asebytes.ASEIO(src)[0]
    with pytest.raises(type(plain.value), match="src.extxyz"):
        db[0]
    with pytest.raises(type(plain.value), match="src.extxyz"):
        asebytes.ASEIO(src, cache_to=str(tmp_path / "cache.lmdb"))[0]
    # Back in place, the same content is served again (refilled from the source).
    write_source(tmp_path / "src.extxyz")
    assert [db[i].calc.results["energy"] for i in range(N)] == [
        -0.5 - j for j in range(N)
    ]


@pytest.mark.parametrize("bad", [123, 1.5, object(), ["c.lmdb"], b"c.lmdb"])
def test_bad_cache_to_is_type_error(tmp_path: Path, opener: Any, bad: Any) -> None:
    src = write_source(tmp_path / "src.extxyz", 2)
    with pytest.raises(TypeError, match="cache_to must be str or ReadWriteBackend"):
        opener(src, cache_to=bad)


REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"


@pytest.mark.skipif(
    not REF_PYTHON.exists(), reason="reference virtualenv .venv-ref absent"
)
def test_the_reference_agrees_where_it_has_no_bug(tmp_path: Path) -> None:
    """Same TypeError message, same warning, same rows read in order (the one order in
    which the reference's cache returns rows)."""
    src = write_source(tmp_path / "src.extxyz")
    proc = subprocess.run(
        [
            str(REF_PYTHON),
            str(WORKERS),
            "ref",
            src,
            str(tmp_path / "ref.lmdb"),
            str(tmp_path / "refcache.lmdb"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    ref = json.loads(proc.stdout.splitlines()[-1])
    with pytest.raises(TypeError) as e:
        asebytes.ASEIO(src, cache_to=123)
    assert str(e.value) == ref["bad_type"]
    lmdb = str(tmp_path / "ours.lmdb")
    asebytes.ASEIO(lmdb).extend(frames(2))
    with pytest.warns(UserWarning) as caught:
        asebytes.ASEIO(lmdb, cache_to=str(tmp_path / "ours-w.lmdb"))
    assert [str(w.message) for w in caught] == ref["warned"]
    db = asebytes.ASEIO(src, cache_to=str(tmp_path / "ourcache.lmdb"))
    assert [float(db[i].calc.results["energy"]) for i in range(N)] == ref["in_order"]


def test_a_read_only_cache_location_is_refused(tmp_path: Path) -> None:
    src = write_source(tmp_path / "src.extxyz", 2)
    other = write_source(tmp_path / "other.extxyz", 2)
    with pytest.raises(ValueError, match="cannot replace rows"):
        asebytes.ASEIO(src, cache_to=other)[0]
    with pytest.raises(ValueError, match="source itself"):
        asebytes.ASEIO(src, cache_to=src)[0]


def test_a_backend_instance_cache_never_serves_a_placeholder(
    tmp_path: Path, opener: Any
) -> None:
    src = write_source(tmp_path / "src.extxyz")
    want = asebytes.ASEIO(src)
    cache = ListObjectBackend(f"cache-{tmp_path.name}")
    db = opener(src, cache_to=cache)
    assert_same(db[3], want[3])
    assert len(cache) == 4 and cache.get(0) is None  # the gap is placeholders ...
    assert_same(db[0], want[0])  # ... which are misses, not rows
    for i in reversed(range(N)):
        assert_same(db[i], want[i])
    assert cache.get(7) is not None
    assert "cache_to=" in repr(db._backend)


def test_a_writable_source_warns_and_stays_coherent(tmp_path: Path) -> None:
    src = str(tmp_path / "src.lmdb")
    with asebytes.ASEIO(src) as w:
        w.extend(frames(6))
    with pytest.warns(UserWarning, match="writable source may serve stale data"):
        db = asebytes.ASEIO(src, cache_to=str(tmp_path / "cache.lmdb"))
    want = frames(6)
    for i in range(6):
        assert_same(db[i], want[i])
    new = molecule("CO")
    db[2] = new
    db.insert(0, molecule("N2"))
    del db[5]
    want[2] = new
    want.insert(0, molecule("N2"))
    del want[5]
    assert len(db) == len(want)
    for i in range(len(want)):
        assert_same(db[i], want[i])
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error"
        )  # read-only sources and readonly=True: no warning
        asebytes.ASEIO(
            write_source(tmp_path / "s.extxyz", 2), cache_to=str(tmp_path / "c2.lmdb")
        )
        ro = asebytes.ASEIO(src, readonly=True, cache_to=str(tmp_path / "cache.lmdb"))
        for i in range(len(want)):
            assert_same(ro[i], want[i])


def _worker(socket: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ASEBYTES_SOCKET": str(socket)}
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _stop(socket: Path) -> None:
    env = {**os.environ, "ASEBYTES_SOCKET": str(socket)}
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        env=env,
        timeout=60,
        check=False,
        capture_output=True,
    )


def test_the_cache_survives_a_restart_and_a_kill_9_mid_fill(tmp_path: Path) -> None:
    n = 400
    src = write_source(tmp_path / "src.extxyz", n)
    cache = str(tmp_path / "cache.lmdb")
    socket = tmp_path / "own" / "d.sock"
    socket.parent.mkdir()
    want = [-0.5 - j for j in range(n)]
    try:
        # Epoch 1 on a daemon killed with SIGKILL a third of the way through.
        p = _worker(socket, "fill", src, cache, str(n // 3))
        assert p.stdout is not None
        pid = int(p.stdout.readline())
        assert p.stdout.readline().strip() == "progress"
        os.kill(pid, signal.SIGKILL)
        p.kill()  # before it starts a daemon again and finishes the fill
        p.wait(timeout=60)
        p.stdout.close()
        # A fresh daemon: every row is right, and what was committed is not fetched.
        p = _worker(socket, "read", src, cache)
        out, _ = p.communicate(timeout=300)
        result = json.loads(out.splitlines()[-1])
        assert result["energies"] == want
        assert 0 < result["fills"] < n
        # A clean restart: everything comes from the cache.
        _stop(socket)
        p = _worker(socket, "read", src, cache)
        out, _ = p.communicate(timeout=300)
        result = json.loads(out.splitlines()[-1])
        assert result["energies"] == want
        assert result["fills"] == 0
    finally:
        _stop(socket)
