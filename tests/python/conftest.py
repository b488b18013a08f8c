"""Session setup for the Python tests: a private daemon and the backend fixtures.

The environment is set at import time, before anything imports ``asebytes``, so every
connection of this session (and of the processes it starts) goes to a daemon on a socket in
a private temporary directory, never to the user's own daemon. It is stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_SOCKET_DIR = Path(tempfile.mkdtemp(prefix="abt-"))
os.environ["ASEBYTES_SOCKET"] = str(_SOCKET_DIR / "asebytesd.sock")
os.environ["ASEBYTES_IDLE_TIMEOUT"] = "0"

sys.path.insert(0, str(Path(__file__).parent))

# Imported only now: the environment above must be in place before the first connection.
import _fake_native
import asebytes
from asebytes import _native


def _stop_daemon() -> None:
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        env=os.environ.copy(),
        timeout=60,
        check=False,
        capture_output=True,
    )


@pytest.fixture(scope="session", autouse=True)
def private_daemon() -> Iterator[str]:
    """Start (by first use) and finally stop the session's own daemon."""
    assert _native.socket_path() == os.environ["ASEBYTES_SOCKET"]
    _native.ping()
    yield os.environ["ASEBYTES_SOCKET"]
    _stop_daemon()
    shutil.rmtree(_SOCKET_DIR, ignore_errors=True)


@dataclass
class Backend:
    """One store location for a test, and how to open facades on it."""

    name: str
    location: str

    def open(self, facade: type[Any] = asebytes.ObjectIO, **kwargs: Any) -> Any:
        if self.name == "inproc":
            tier = "blob" if facade is asebytes.BlobIO else "object"
            return facade(_fake_native.Store(self.location, tier=tier, **kwargs))
        return facade(self.location, **kwargs)


def _make_backend(name: str, tmp_path: Path) -> Backend:
    if name == "lmdb":
        return Backend(name, str(tmp_path / "x.lmdb"))
    if name == "memory":
        return Backend(name, f"memory://{uuid.uuid4().hex}")
    return Backend(name, f"inproc://{uuid.uuid4().hex}")


def _cleanup(backend: Backend) -> None:
    """Free a memory store in the daemon (best effort: a test may have removed it)."""
    if backend.name == "memory":
        with contextlib.suppress(asebytes.AsebytesError):
            _native.Store(backend.location).remove()


@pytest.fixture(params=["lmdb", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh daemon-backed store location: LMDB file or a unique memory store."""
    b = _make_backend(request.param, tmp_path)
    yield b
    _cleanup(b)


@pytest.fixture(params=["lmdb", "memory", "inproc"])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Like ``backend``, plus an in-process pure-Python Store-like (proves the facades
    only use the Store interface)."""
    b = _make_backend(request.param, tmp_path)
    yield b
    _cleanup(b)


class CountingStore:
    """Wraps a Store and records every method call (name, args) -- a spy for laziness."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __len__(self) -> int:
        self.calls.append(("len", ()))
        return len(self._inner)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args))
            return attr(*args, **kwargs)

        return spy

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def spy() -> Callable[[Any], Any]:
    """``spy(facade)`` swaps the facade's store for a counting wrapper and returns it."""

    def wrap(facade: Any) -> CountingStore:
        counting = CountingStore(facade._store)
        facade._store = counting
        return counting

    return wrap
