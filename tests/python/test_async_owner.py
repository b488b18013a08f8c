"""The asyncio client talks only to a daemon of its own user, as the sync client does
(issue 11.12): a socket served by another uid is refused before anything is sent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from asebytes import _native
from asebytes._aconn import Connection, peer_uid
from asebytes.exceptions import DaemonUnavailableError

#: A uid nobody in the test runs as.
_FOREIGN_UID = 65534


def _open() -> Connection:
    async def go() -> Connection:
        conn = await Connection.open()
        conn.close()
        return conn

    return asyncio.run(go())


class ForeignListener:
    """A Unix socket served by a forked child running as another uid (needs root): it
    accepts one connection and reports how many bytes arrived on it."""

    def __init__(self, home: Path) -> None:
        self.path = str(home / "asebytesd.sock")
        self._r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: only system calls, then _exit
            try:
                os.close(self._r)
                os.setgroups([])
                os.setgid(_FOREIGN_UID)
                os.setuid(_FOREIGN_UID)
                srv = socket.socket(socket.AF_UNIX)
                srv.bind(self.path)
                srv.listen(1)
                os.write(w, b"L")
                conn, _ = srv.accept()
                conn.settimeout(2.0)
                got = 0
                with contextlib.suppress(TimeoutError):
                    while chunk := conn.recv(4096):
                        got += len(chunk)
                os.write(w, str(got).encode())
            finally:
                os._exit(0)
        os.close(w)
        assert os.read(self._r, 1) == b"L", "the foreign listener did not start"

    def bytes_received(self) -> int:
        return int(os.read(self._r, 64))

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self._r)


@pytest.fixture
def foreign() -> Iterator[ForeignListener]:
    if os.geteuid() != 0:
        why = "serving a socket as another uid needs root"
        assert not os.environ.get("CI"), why
        pytest.skip(why)
    # In /tmp itself: pytest's own temporary directories are private to us.
    home = Path(tempfile.mkdtemp(prefix="abt-foreign-"))
    os.chown(home, _FOREIGN_UID, _FOREIGN_UID)
    try:
        listener = ForeignListener(home)
        yield listener
        listener.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_socket_served_by_another_uid_is_refused_before_the_handshake(
    foreign: ForeignListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_native, "socket_path", lambda: foreign.path)
    with pytest.raises(DaemonUnavailableError, match=f"served by uid {_FOREIGN_UID}"):
        _open()
    assert foreign.bytes_received() == 0, "the client sent bytes to a stranger"


def test_the_own_daemon_is_accepted_and_another_euid_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = os.geteuid()
    _open()  # the session's daemon runs as us
    monkeypatch.setattr(os, "geteuid", lambda: ours + 1)
    with pytest.raises(
        DaemonUnavailableError, match=f"served by uid {ours}, not by you"
    ):
        _open()


def test_peer_uid_reads_the_credentials_of_the_other_end() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)

    async def go() -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        try:
            return peer_uid(transport)
        finally:
            transport.close()

    try:
        assert asyncio.run(go()) == os.geteuid()
    finally:
        b.close()
