"""Retry policy of the native client, against a scripted fake daemon.

A fake daemon speaks the real wire protocol (length-prefixed MessagePack envelopes) and
misbehaves on purpose: it drops the connection after a request, answers ``UnknownStore``
or ``ShuttingDown``, or sends a wrong request id. It counts what it received, so the tests
can tell a transparent retry from a duplicated write. The client runs in a subprocess,
because a process binds its connection pool to one socket.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import msgpack
import pytest

CAPS = {"read": True, "write": True}


class FakeDaemon:
    """Serves the handshake and ``Open``; every other request goes to ``script``."""

    def __init__(self, path: Path, script):
        self.path = str(path)
        self.script = script
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv(conn):
        head = b""
        while len(head) < 4:
            chunk = conn.recv(4 - len(head))
            if not chunk:
                return None
            head += chunk
        (n,) = struct.unpack(">I", head)
        body = b""
        while len(body) < n:
            chunk = conn.recv(n - len(body))
            if not chunk:
                return None
            body += chunk
        return msgpack.unpackb(body, raw=False)

    @staticmethod
    def _send(conn, rid, body):
        data = msgpack.packb({"id": rid, "body": body})
        conn.sendall(struct.pack(">I", len(data)) + data)

    def _serve(self, conn):
        with conn:
            hello = self._recv(conn)
            if hello is None:
                return
            welcome = {
                "protocol": 1,
                "daemon_version": "fake",
                "build_id": "fake",
                "pid": 4242,
                "started_at": 1,
            }
            self._send(conn, hello["id"], {"Welcome": welcome})
            while True:
                env = self._recv(conn)
                if env is None:
                    return
                body = env["body"]
                name = body if isinstance(body, str) else next(iter(body))
                with self.lock:
                    self.seen[name] += 1
                    count = self.seen[name]
                if name == "Open":
                    opened = {
                        "store": 7,
                        "canonical": "memory://fake#default",
                        "backend": "memory",
                        "caps": CAPS,
                        "len": 0,
                    }
                    self._send(conn, env["id"], {"Opened": opened})
                    continue
                reply = self.script(name, count)
                if reply is None:
                    return  # drop the connection without answering
                rid, body = reply if isinstance(reply, tuple) else (env["id"], reply)
                self._send(conn, rid, body)

    def close(self):
        self.srv.close()


CLIENT = r"""
import sys
from asebytes import _native
from asebytes.exceptions import AsebytesError, DaemonUnavailableError
_native.set_daemon_command(["/nonexistent/asebytesd"])
s = _native.Store("memory://fake")
op = sys.argv[1]
try:
    if op == "len":
        print("result", len(s))
    elif op == "extend":
        print("result", s.extend([{"a": 1}]))
    elif op == "ping":
        _native.ping()
        print("result ok")
except DaemonUnavailableError as e:
    print("unavailable", e)
except AsebytesError as e:
    print("error", type(e).__name__, e)
"""


ASYNC_CLIENT = r"""
import asyncio, sys
from asebytes import _native
from asebytes._stores import AsyncDaemonBackend
from asebytes.exceptions import AsebytesError, DaemonUnavailableError
_native.set_daemon_command(["/nonexistent/asebytesd"])
s = AsyncDaemonBackend("memory://fake")
op = sys.argv[1]
async def main():
    if op == "len":
        print("result", await s.len())
    elif op == "extend":
        print("result", await s.extend([{"a": 1}]))
    elif op == "ping":
        _native.ping()
        print("result ok")
try:
    asyncio.run(main())
except DaemonUnavailableError as e:
    print("unavailable", e)
except AsebytesError as e:
    print("error", type(e).__name__, e)
"""


@pytest.fixture(params=["sync", "async"])
def run(tmp_path, request):
    """Runs one operation in a client process against a fake daemon: the sync ``Store``
    and the asyncio transport follow one retry policy (``Call.may_reopen`` /
    ``Call.may_resend`` ask the sync client's), so every test runs on both."""
    daemons = []
    client = CLIENT if request.param == "sync" else ASYNC_CLIENT

    def go(script, op):
        sock = tmp_path / f"fake{len(daemons)}.sock"
        fake = FakeDaemon(sock, script)
        daemons.append(fake)
        env = dict(os.environ, ASEBYTES_SOCKET=str(sock), ASEBYTES_STARTUP_TIMEOUT="1")
        out = subprocess.run(
            [sys.executable, "-c", client, op],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip(), fake.seen

    yield go
    for d in daemons:
        d.close()


def test_a_read_whose_reply_was_lost_is_retried_once(run):
    out, seen = run(lambda name, n: None, "len")
    assert out.startswith("unavailable") and "fake0.sock" in out
    assert seen["Len"] == 2


def test_a_read_succeeds_transparently_after_one_lost_reply(run):
    out, seen = run(lambda name, n: None if n == 1 else {"Len": 5}, "len")
    assert out == "result 5"
    assert seen["Len"] == 2


def test_a_write_whose_reply_was_lost_is_never_repeated(run):
    out, seen = run(lambda name, n: None, "extend")
    assert out.startswith("unavailable") and "may or may not have been applied" in out
    assert seen["Extend"] == 1


def test_unknown_store_reopens_and_retries_once(run):
    def script(name, n):
        if n == 1:
            return {"Error": {"code": "UnknownStore", "message": "store 7 is not open"}}
        return {"Len": 3}

    out, seen = run(script, "extend")
    assert out == "result 3"
    assert seen["Open"] == 2 and seen["Extend"] == 2


def test_unknown_store_twice_is_an_error_not_a_loop(run):
    out, seen = run(
        lambda name, n: {"Error": {"code": "UnknownStore", "message": "gone"}}, "len"
    )
    assert out == "error AsebytesError gone"
    assert seen["Len"] == 2


def test_shutting_down_is_retried_even_for_writes(run):
    def script(name, n):
        if n == 1:
            return {
                "Error": {"code": "ShuttingDown", "message": "daemon is shutting down"}
            }
        return {"Len": 1}

    out, seen = run(script, "extend")
    assert out == "result 1"
    assert seen["Extend"] == 2


def test_a_reply_with_the_wrong_id_is_refused(run):
    out, seen = run(lambda name, n: (99999, "Pong"), "ping")
    assert out.startswith("error AsebytesError") and "does not match" in out
    assert seen["Ping"] == 1


def test_typed_errors_become_their_exceptions(run):
    err = {
        "code": "IndexOutOfRange",
        "message": "Index 9 out of range [0, 3)",
        "index": 9,
        "len": 3,
    }
    out, _ = run(lambda name, n: {"Error": err}, "len")
    assert out == "error IndexOutOfRangeError Index 9 out of range [0, 3)"
    out, _ = run(
        lambda name, n: {
            "Error": {"code": "SomethingNewer", "message": "from the future"}
        },
        "len",
    )
    assert out == "error AsebytesError from the future"
