"""What only the async facades have: awaitable views, ``async for``/``async with``, many
coroutines on one connection without blocking the loop, a clean interpreter exit.

Every behaviour the sync facades share is checked through both facades by the other test
files (the ``mode`` parameter of the backend fixtures).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _custom_backends import ListObjectBackend
from _helpers import make_atoms
from asebytes import (
    AsyncASEIO,
    AsyncObjectIO,
    AsyncReadWriteBackend,
    AsyncRowView,
    AsyncSingleRowView,
    ObjectIO,
    SyncToAsyncReadWriteAdapter,
)
from asebytes._aconn import connection
from conftest import Backend


@pytest.fixture
def location(sync_backend: Backend) -> str:
    """A daemon-served location (these tests use the async facades themselves)."""
    return sync_backend.location


def test_issue_example_runs(location: str) -> None:
    frames = [make_atoms(i, 4) for i in range(200)]

    async def main() -> None:
        db = AsyncASEIO(location)
        assert await db.extend(frames) == 200
        atoms = await db[0]
        assert atoms.info["i"] == 0
        seen = [a.info["i"] async for a in db[5:100]]
        assert seen == list(range(5, 100))
        assert [a.info["i"] for a in await db[0:10].to_list()] == list(range(10))
        energies = await db["calc.energy"].to_list()
        assert [a.get_potential_energy() for a in energies] == [
            float(-i) for i in range(200)
        ]
        chunked = [a.info["i"] async for a in db[0:150].chunked(40)]
        assert chunked == list(range(150))
        await db[0:10].update({"info.tag": "train"})
        assert (await db[3]).info["tag"] == "train"
        await db.update(0, calc={"energy": -10.5})
        assert (await db[0]).get_potential_energy() == -10.5
        await db[0:10].delete()
        assert await db.len() == 190
        assert (await db[0]).info["i"] == 10

    asyncio.run(main())


def test_object_facade_to_dict_and_column_items(location: str) -> None:
    async def main() -> None:
        db = AsyncObjectIO(location)
        await db.extend([{"e": float(i), "f": np.full(2, i)} for i in range(5)])
        cols = await db[["e", "f"]][0:2].to_dict()
        assert cols["e"] == [0.0, 1.0] and np.array_equal(cols["f"][1], [1, 1])
        assert await db["e"][-1] == 4.0
        assert await db[2]["e"] == 2.0
        f, e = await db[2][["f", "e"]]
        assert np.array_equal(f, [2, 2]) and e == 2.0
        assert await db[1].keys() == ["e", "f"]
        assert (await db["e"].to_numpy()).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]

    asyncio.run(main())


def test_views_are_lazy_objects_not_results(location: str) -> None:
    async def main() -> None:
        db = AsyncObjectIO(location)
        await db.extend([{"i": i} for i in range(3)])
        assert isinstance(db[0], AsyncSingleRowView)
        assert isinstance(db[0:2], AsyncRowView)
        with pytest.raises(TypeError, match="await db.len"):
            len(db)
        with pytest.raises(TypeError, match="await view.len"):
            len(db[0:2])
        assert len(db[[0, 2]]) == 2
        assert await db[0:2].len() == 2
        with pytest.raises(IndexError, match=r"Index 3 out of range \[0, 3\)"):
            await db[3]
        assert (await db[-1])["i"] == 2

    asyncio.run(main())


def test_async_with_and_async_for(location: str) -> None:
    async def main() -> None:
        async with AsyncObjectIO(location) as db:
            await db.extend([{"i": i} for i in range(600)])
            assert [r["i"] async for r in db] == list(range(600))

    asyncio.run(main())


def test_100_concurrent_reads_share_one_connection_and_keep_the_loop_free(
    location: str,
) -> None:
    ObjectIO(location).extend([{"i": i, "x": np.zeros(1000)} for i in range(100)])

    async def main() -> None:
        db = AsyncObjectIO(location)
        await db.len()  # connect and open first
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.create_task(ticker())
        conn = await connection()
        rows = await asyncio.gather(*(db[i] for i in range(100)))
        stop = True
        await tick_task
        assert [r["i"] for r in rows] == list(range(100))
        assert await connection() is conn  # one connection for all of them
        # The loop ran another task while the 100 requests were in flight (a call that
        # blocked the thread would finish all of them before the ticker's first step).
        assert ticks >= 1

    asyncio.run(main())


def test_a_blocked_loop_is_not_what_waiting_looks_like(location: str) -> None:
    """While one large read is in flight, a timer on the same loop still fires on time."""
    ObjectIO(location).extend([{"x": np.zeros(20_000)} for _ in range(200)])

    async def main() -> None:
        db = AsyncObjectIO(location)
        await db.len()
        lags: list[float] = []

        async def probe() -> None:
            for _ in range(20):
                t = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - t)

        await asyncio.gather(db[0:200].to_list(), probe())
        assert min(lags) < 0.05

    asyncio.run(main())


def test_custom_async_backend_and_wrapped_sync_backend(tmp_path: Path) -> None:
    class MyAsyncBackend(SyncToAsyncReadWriteAdapter[str, Any]):
        """A user's async backend (built on the adapter here, to keep it short)."""

    async def main() -> None:
        sync_backend = ListObjectBackend(f"custom://{tmp_path}")
        for backend in (
            sync_backend,
            MyAsyncBackend(ListObjectBackend(f"c2://{tmp_path}")),
        ):
            db = AsyncObjectIO(backend)
            assert isinstance(db._backend, AsyncReadWriteBackend)
            await db.extend([{"i": i} for i in range(5)])
            assert (await db[-1])["i"] == 4
            await db[1:3].set([{"i": 10}, {"i": 11}])
            assert await db["i"].to_list() == [0, 10, 11, 3, 4]

    asyncio.run(main())


def test_loops_in_threads_get_their_own_connection(location: str) -> None:
    ObjectIO(location).extend([{"i": i} for i in range(10)])

    def worker(k: int) -> int:
        async def read() -> int:
            return int((await AsyncObjectIO(location)[k])["i"])

        return asyncio.run(read())

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(worker, range(10))) == list(range(10))


def test_daemon_restart_between_calls_reconnects(location: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, subprocess, sys
        from asebytes import AsyncObjectIO
        async def main():
            db = AsyncObjectIO({location!r})
            await db.extend([{{"i": 1}}])
            subprocess.run([sys.executable, "-m", "asebytes.daemon", "stop"], check=True, capture_output=True)
            assert (await db[0])["i"] == 1   # lost connection: a read retries on a new one
            print("ok")
        asyncio.run(main())
        """
    )
    sock = tmp_path / "s" / "d.sock"
    sock.parent.mkdir(mode=0o700)
    env = {**os.environ, "ASEBYTES_SOCKET": str(sock)}
    if location.startswith("memory://"):
        pytest.skip("a memory store does not survive a daemon restart")
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        check=False,
        env=env,
        capture_output=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


EXIT_SCRIPT = """
import asyncio
import numpy as np
from asebytes import AsyncASEIO, AsyncObjectIO
from ase import Atoms

async def main(location):
    db = AsyncObjectIO(location)
    await db.extend([{"x": np.arange(3.0)} for _ in range(5)])
    await asyncio.gather(*(db[i] for i in range(5)))
    adb = AsyncASEIO(location + "-ase.lmdb" if location.endswith(".lmdb") else location)
    await adb.extend([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])])
    await adb[0:1].to_list()

import sys
asyncio.run(main(sys.argv[1]))
"""


def test_interpreter_exits_cleanly_20_times(location: str, tmp_path: Path) -> None:
    """The known crash at exit of tokio-based bridges (pyo3-async-runtimes#40, with numpy
    imported) must not exist here: 20 runs, exit code 0 and no stderr every time."""
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    for _ in range(20):
        out = subprocess.run(
            [sys.executable, str(script), location],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert out.stderr == ""


class _Collect:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def _deliver(self, frame: bytes | bytearray) -> None:
        self.frames.append(bytes(frame))


@pytest.mark.parametrize("step", [1, 3, 4096, 300_000, 10**7])
def test_frames_are_cut_right_whatever_the_chunking(step: int) -> None:
    """Replies arrive in arbitrary pieces: small ones several per read, large ones read
    in place; every frame comes out whole, in order."""
    from asebytes._aconn import _Protocol

    sizes = [0, 1, 5, 70_000, 3, _Protocol.SCRATCH, 2 * _Protocol.SCRATCH + 7, 2, 0]
    bodies = [bytes([k % 251]) * n for k, n in enumerate(sizes)]
    stream = b"".join(len(b).to_bytes(4, "big") + b for b in bodies)
    sink = _Collect()
    proto = _Protocol(sink)  # type: ignore[arg-type]
    pos = 0
    while pos < len(stream):
        buf = proto.get_buffer(-1)
        n = min(step, len(buf), len(stream) - pos)
        buf[:n] = stream[pos : pos + n]
        proto.buffer_updated(n)
        pos += n
    assert sink.frames == bodies
