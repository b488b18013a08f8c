"""One Redis group shared by several daemons and plain asebytes 0.3.3 clients, and what a
Redis failure looks like from Python.

Two daemons stand in for two machines: the session's daemon and a second ``asebytesd``
that a worker process spawns on a socket of its own. The reference runs from
``.venv-ref``. Each test starts its own ``redis-server`` (``_redis_server``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _redis_server import RedisServer
from asebytes import ObjectIO, _native

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"

#: Appends BATCHES batches of ROWS rows tagged (writer, batch, j) to `url`/`group`.
WRITER = """
import sys
from asebytes import ObjectIO
url, group, name, batches, rows = sys.argv[1:6]
db = ObjectIO(url, group=group)
for b in range(int(batches)):
    db.extend([{"w": name, "b": b, "j": j} for j in range(int(rows))])
print(len(db))
"""

BATCHES, ROWS = 25, 16


@pytest.fixture
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    yield s
    s.close()


@pytest.fixture
def second_daemon(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a client of a second daemon (spawned on first use), which is
    stopped afterwards."""
    env = os.environ.copy()
    env["ASEBYTES_SOCKET"] = str(tmp_path / "second.sock")
    yield env
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        env=env,
        timeout=60,
        check=False,
        capture_output=True,
    )


def test_two_daemons_and_the_reference_append_to_one_group(
    server: RedisServer, second_daemon: dict[str, str]
) -> None:
    url, group = server.url(), "shared"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, group, "d1", str(BATCHES), str(ROWS)],
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, group, "d2", str(BATCHES), str(ROWS)],
            stdout=subprocess.DEVNULL,
            env=second_daemon,
        ),
    ]
    if REF_PYTHON.exists():
        writers.append(
            subprocess.Popen(
                [
                    str(REF_PYTHON),
                    "-c",
                    WRITER,
                    url,
                    group,
                    "ref",
                    str(BATCHES),
                    str(ROWS),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
    elif os.environ.get("CI"):
        pytest.fail("the reference virtualenv .venv-ref is required in CI")
    for w in writers:
        assert w.wait(timeout=600) == 0
    total = len(writers) * BATCHES * ROWS

    db = ObjectIO(url, group=group)
    rows = [(r["w"], r["b"], r["j"]) for r in db[:].to_list()]
    assert len(db) == total
    assert len(set(rows)) == total, "a row was lost or written twice"
    # Each batch is contiguous and in order.
    for at in range(0, total, ROWS):
        w, b, _ = rows[at]
        assert rows[at : at + ROWS] == [(w, b, j) for j in range(ROWS)], at
    # len() is current everywhere.
    other = subprocess.run(
        [sys.executable, "-c", WRITER, url, group, "late", "0", "0"],
        env=second_daemon,
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert int(other.stdout) == total
    if REF_PYTHON.exists():
        ref = subprocess.run(
            [str(REF_PYTHON), "-c", WRITER, url, group, "late", "0", "0"],
            capture_output=True,
            check=True,
            timeout=120,
        )
        assert int(ref.stdout) == total


def test_a_server_down_at_open_is_a_connection_error_naming_host_and_port() -> None:
    s = RedisServer()
    port = s.port
    s.close()
    db = ObjectIO(f"redis://:not-shown@127.0.0.1:{port}/0", group="g")
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}") as info:
        len(db)
    assert "not-shown" not in str(info.value)


def test_a_password_never_shows(tmp_path: Path) -> None:
    secret = "s3cr3t-Pa55"
    s = RedisServer(password=secret)
    try:
        db = ObjectIO(s.url(), group="g")
        db.extend([{"a": 1}])
        assert len(db) == 1
        assert secret not in repr(db)
        store = _native.Store(s.url(), group="g")
        assert secret not in repr(store) + store.canonical
        # Another database: the daemon keys stores by the redacted location, so the
        # right password's open store would answer for /0.
        wrong = f"redis://:wrong-{secret}@127.0.0.1:{s.port}/1"
        with pytest.raises(ConnectionError) as info:
            len(ObjectIO(wrong, group="g"))
        assert secret not in str(info.value)
        assert "credentials" in str(info.value)
        status = subprocess.run(
            [sys.executable, "-m", "asebytes.daemon", "status"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert secret not in status.stdout + status.stderr
        logs = list(Path(os.environ["ASEBYTES_SOCKET"]).parent.glob("*.log"))
        assert logs, "the daemon's log"
        for f in logs:
            assert secret not in f.read_text(errors="replace"), f
    finally:
        s.close()


def test_a_restart_fails_the_call_in_flight_whole_and_the_next_call_reconnects() -> (
    None
):
    s = RedisServer("--appendonly", "yes", "--appendfsync", "always")
    try:
        db = ObjectIO(s.url(), group="g")
        db.extend([{"i": i} for i in range(100)])
        big = [{"i": 100 + i, "pad": "x" * 200} for i in range(30_000)]
        errors: list[BaseException] = []

        def extend() -> None:
            try:
                db.extend(big)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                errors.append(e)

        t = threading.Thread(target=extend)
        t.start()
        time.sleep(0.3)
        s.stop()
        t.join(timeout=300)
        if errors:
            assert isinstance(errors[0], ConnectionError), errors[0]
            assert f"127.0.0.1:{s.port}" in str(errors[0])
        with pytest.raises(ConnectionError):
            len(db)
        s.start()
        # The daemon reconnects by itself; the batch is there entirely or not at all.
        n = len(db)
        assert n in (100, 100 + len(big))
        assert [r["i"] for r in db[:].to_list()] == list(range(n))
        db.extend([{"i": n}])
        assert len(db) == n + 1
    finally:
        s.close()
