"""MongoDB failures as a user meets them: a server that is down at open or restarts
mid-session gives ``ConnectionError`` naming host and port, no batch is left half
written, the daemon reconnects by itself, and a password in the location never shows in
errors, ``repr``, ``asebytes ls`` or the daemon log.

Each test starts its own server (it stops and restarts it), on a free loopback port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import _mongo_server
import pytest
from asebytes import ObjectIO

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"
SCRIPT = Path(sys.executable).parent / "asebytes"

pytestmark = pytest.mark.skipif(
    _mongo_server.program() is None and not os.environ.get("CI"),
    reason="needs secantusd-py (requirements-dev.txt; required in CI)",
)

#: Short enough for a test, long enough for a loaded machine.
FAST = "serverSelectionTimeoutMS=1500&connectTimeoutMS=1500"


@pytest.fixture
def server() -> Iterator[_mongo_server.MongoServer]:
    s = _mongo_server.MongoServer().start()
    yield s
    s.close()


def _until(check: object, timeout: float = 60.0) -> object:
    """Calls ``check`` until it returns without raising; re-raises the last failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()  # type: ignore[operator]
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_open_with_the_server_down_names_host_and_port() -> None:
    port = _mongo_server.free_port()
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        len(ObjectIO(f"mongodb://127.0.0.1:{port}/db?serverSelectionTimeoutMS=500"))
    assert time.monotonic() - started < 30


def test_a_restarted_server_fails_calls_then_the_daemon_reconnects(
    server: _mongo_server.MongoServer,
) -> None:
    db = ObjectIO(f"{server.uri('restart')}?{FAST}")
    db.extend([{"i": i} for i in range(10)])
    big = [{"i": i, "pad": "x" * 200} for i in range(3000)]
    errors: list[BaseException] = []

    def append() -> None:
        try:
            db.extend(big)
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    writer = threading.Thread(target=append)
    writer.start()
    server.stop()
    writer.join(timeout=120)
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{server.port}"):
        len(db)
    server.start()
    n = _until(lambda: len(db))
    # The batch in flight landed whole or not at all.
    assert n in (10, 10 + len(big)), n
    if errors:
        assert isinstance(errors[0], ConnectionError), errors[0]
    assert db[9] == {"i": 9}
    assert db.extend([{"i": -1}]) == n + 1
    assert db[-1] == {"i": -1}


#: Creates a root user (run in the reference's interpreter, which has pymongo).
CREATE_USER = """
import sys
from pymongo import MongoClient
MongoClient(sys.argv[1]).admin.command(
    "createUser", sys.argv[2], pwd=sys.argv[3], roles=["root"]
)
"""


def _create_user(server: _mongo_server.MongoServer, user: str, password: str) -> None:
    if not REF_PYTHON.exists():
        pytest.skip("needs .venv-ref with pymongo to create a user")
    subprocess.run(
        [
            str(REF_PYTHON),
            "-c",
            CREATE_USER,
            server.uri(),
            user,
            password,
        ],
        check=True,
        timeout=120,
    )


def test_passwords_never_show(server: _mongo_server.MongoServer) -> None:
    secret = "hunter2-s3cret"
    _create_user(server, "lab", secret)
    location = f"mongodb://lab:{secret}@127.0.0.1:{server.port}/secure?authSource=admin"
    db = ObjectIO(location, group="g")
    db.extend([{"a": 1}])
    assert db[0] == {"a": 1}
    assert secret not in repr(db)
    with pytest.raises(KeyError) as missing:
        db.get(0, keys=["nope"])
    assert secret not in str(missing.value)
    wrong = f"mongodb://lab:wrong-{secret}@127.0.0.1:{server.port}/secure?{FAST}"
    with pytest.raises(ConnectionError) as refused:
        len(ObjectIO(wrong, group="g"))
    assert f"127.0.0.1:{server.port}" in str(refused.value)
    assert secret not in str(refused.value)
    listed = subprocess.run(
        [str(SCRIPT), "ls", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    stores = json.loads(listed)["stores"]
    assert any(f"127.0.0.1:{server.port}/secure" in s["canonical"] for s in stores)
    assert secret not in listed
    log = Path(os.environ["ASEBYTES_SOCKET"]).parent / "asebytesd.log"
    if log.exists():
        assert secret not in log.read_text(errors="replace")
