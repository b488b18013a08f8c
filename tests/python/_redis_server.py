"""A private ``redis-server`` for the Python tests.

Started on a free loopback port with its working directory in a temporary directory,
without persistence unless asked, and stopped by the test that started it (or by the
kernel when that process dies: ``setpriv --pdeathsig``). The session
server (:func:`shared`) has many logical databases, so every test gets a database of
its own (``redis://127.0.0.1:PORT/<n>``) and sees no other test's groups. Never touches a
server it did not start.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: Logical databases of the session server: one per test that asks.
SESSION_DATABASES = 100_000


def _die_with_parent() -> list[str]:
    """A command prefix that makes the server get SIGTERM when its parent dies
    (util-linux ``setpriv``), or nothing where that tool is missing."""
    if shutil.which("setpriv") is None:
        return []
    return ["setpriv", "--pdeathsig", "TERM"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` child."""

    def __init__(self, *args: str, password: str | None = None) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.password = password
        self._args = list(args)
        if password is not None:
            self._args += ["--requirepass", password]
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Starts the server (again, on the same port) and waits until it answers."""
        if shutil.which("redis-server") is None:
            raise RuntimeError(
                "redis-server is not installed (apt install redis-server)"
            )
        self._proc = subprocess.Popen(
            [
                *_die_with_parent(),
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                *self._args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self._answers():
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return bool(s.recv(64))
        except OSError:
            return False

    def stop(self) -> None:
        """Stops the server (SIGKILL: without persistence there is nothing to save)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=30)
            self._proc = None

    def close(self) -> None:
        """Stops the server and removes its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: int = 0) -> str:
        """``redis://[:password@]127.0.0.1:PORT/db``."""
        auth = f":{self.password}@" if self.password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"


_shared: RedisServer | None = None
_next_db = 0


def shared() -> RedisServer:
    """The session's server, started on first use."""
    global _shared
    if _shared is None:
        _shared = RedisServer("--databases", str(SESSION_DATABASES))
    return _shared


def fresh_url() -> str:
    """A location on the session server whose database no other test uses."""
    global _next_db
    server = shared()
    _next_db += 1
    if _next_db >= SESSION_DATABASES:
        raise RuntimeError("the session redis-server ran out of databases")
    return server.url(_next_db)


def stop_shared() -> None:
    """Stops the session server if one was started."""
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None
