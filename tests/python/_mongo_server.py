"""A private MongoDB-wire server for the Python tests: SecantusDB (``secantusd-py`` from
requirements-dev.txt) on a free loopback port, storing in its own temporary directory.

One session server serves the contract tests (each test gets its own database); tests that
restart or stop a server start their own. ``ASEBYTES_SECANTUSD`` names the program when it
is not in this interpreter's virtualenv. The URIs are plain ``mongodb://127.0.0.1:<port>``,
so a real ``mongod`` serves the same tests.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

#: How long a server may take to accept connections.
START_TIMEOUT = 30.0


def program() -> str | None:
    """The server program, or ``None`` when it is not installed."""
    given = os.environ.get("ASEBYTES_SECANTUSD")
    if given:
        return given
    beside = Path(sys.executable).parent / "secantusd-py"
    if beside.exists():
        return str(beside)
    return shutil.which("secantusd-py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class MongoServer:
    """One server process; :meth:`stop` and :meth:`start` again keep port and data."""

    def __init__(self, port: int | None = None) -> None:
        exe = program()
        if exe is None:
            raise RuntimeError("secantusd-py not found: install requirements-dev.txt")
        self.exe = exe
        self.port = port if port is not None else free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="abt-mongo-"))
        (self.dir / "data").mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MongoServer:
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 (kept by the process)
        self.proc = subprocess.Popen(
            [self.exe, "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--storage-path", str(self.dir / "data")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "server.log").read_text())
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"secantusd-py did not listen on {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stops the server as an operator restarting it does (SIGTERM: it checkpoints
        what it committed; SecantusDB without ``--sync-on-commit`` loses it on SIGKILL)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def uri(self, database: str | None = None) -> str:
        base = f"mongodb://127.0.0.1:{self.port}"
        return f"{base}/{database}" if database else base


_SHARED: MongoServer | None = None


def shared() -> MongoServer:
    """The session's server (started on first use, stopped at exit)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = MongoServer().start()
        atexit.register(stop_shared)
    return _SHARED


def stop_shared() -> None:
    global _SHARED
    if _SHARED is not None:
        with contextlib.suppress(Exception):
            _SHARED.close()
        _SHARED = None


def fresh_location() -> str:
    """A location on the session server in a database no other test uses."""
    return shared().uri(f"t{uuid.uuid4().hex}")
