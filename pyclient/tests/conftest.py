"""Fixtures of the native-layer tests: a private daemon socket, never the user's.

The socket is chosen at import, before anything could touch the connection pool (which
fixes its socket at first use), and the daemon started on demand there is stopped at the
end of the session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

_SOCKET_DIR = tempfile.mkdtemp(prefix="asb-native-")
atexit.register(shutil.rmtree, _SOCKET_DIR, ignore_errors=True)
SOCKET = os.path.join(_SOCKET_DIR, "asebytesd.sock")
os.environ["ASEBYTES_SOCKET"] = SOCKET
# A daemon left behind by a crashed run exits by itself soon.
os.environ["ASEBYTES_IDLE_TIMEOUT"] = "30"
# Stores idle for a second are released (and re-opened by the next request) all through
# the suite, which so runs the re-open path often; test_native_release relies on it.
os.environ["ASEBYTES_STORE_IDLE_SECS"] = "1"


@pytest.fixture(scope="session")
def daemon():
    """The socket of a daemon private to this test session (started on first use)."""
    from asebytes import _native

    # Run together with tests/python, whose conftest picks its own private socket after
    # ours: the pool binds to whichever was set last, and both are temporary.
    socket = _native.socket_path()
    assert socket == os.environ["ASEBYTES_SOCKET"], (
        "the pool is bound to a socket no conftest chose"
    )
    _native.ping()
    yield socket
    _native.daemon_main(["asebytesd", "stop", "--socket", socket])
