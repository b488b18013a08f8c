"""The daemon in daily use: started from a virtualenv and from multiprocessing children,
and a full disk, seen from Python (issue 11)."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import _daemon_workers
import numpy as np
import pytest
from asebytes import ObjectIO, _native
from asebytes.exceptions import AsebytesError, DiskFullError


def _daemon_cli(socket: Path, *args: str, timeout: float = 60) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "--socket", str(socket), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextlib.contextmanager
def _own_daemon(tmp_path: Path) -> Iterator[Path]:
    """A socket for a daemon of the test's own; that daemon is stopped afterwards."""
    socket = tmp_path / "run" / "asebytesd.sock"
    try:
        yield socket
    finally:
        _daemon_cli(socket, "stop")


def _pid_of(socket: Path) -> int:
    match = re.search(r"pid:\s+(\d+)", _daemon_cli(socket, "status"))
    assert match
    return int(match.group(1))


@pytest.mark.skipif(
    sys.prefix == sys.base_prefix, reason="needs to run inside a virtualenv"
)
def test_start_in_a_virtualenv_runs_the_daemon_with_the_venv_interpreter(
    tmp_path: Path,
) -> None:
    with _own_daemon(tmp_path) as socket:
        begin = time.monotonic()
        out = _daemon_cli(socket, "start", "--idle-timeout", "60")
        assert "running on" in out, out
        assert time.monotonic() - begin < 20, "start waited for its timeout"
        pid = _pid_of(socket)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].decode() == sys.executable
        assert cmdline[1:3] == [b"-m", b"asebytes.daemon"]
    unit = _daemon_cli(tmp_path / "unused.sock", "install-service", "--print")
    assert f"ExecStart={sys.executable} -m asebytes.daemon run" in unit, unit


@pytest.mark.multiprocess
def test_a_daemon_started_by_a_spawned_child_holds_none_of_its_descriptors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _own_daemon(tmp_path) as socket:
        monkeypatch.setenv("ASEBYTES_SOCKET", str(socket))
        monkeypatch.setenv("ASEBYTES_IDLE_TIMEOUT", "60")
        child = mp.get_context("spawn").Process(
            target=_daemon_workers.first_client, args=(3,)
        )
        begin = time.monotonic()
        child.start()
        child.join(60)
        took = time.monotonic() - begin
        assert child.exitcode == 0
        # With the child's pipes held by the daemon, join() waited its full 60 s.
        assert took < 45, f"join() took {took:.1f} s"
        print(f"spawned child started the daemon and joined in {took:.1f} s")
        pid = _pid_of(socket)
        assert os.getsid(pid) != os.getsid(0), "the daemon shares our session"


@contextlib.contextmanager
def _small_fs(path: Path, mib: int = 8) -> Iterator[Path]:
    """An ``mib`` MiB tmpfs mounted on ``path`` (needs root), unmounted afterwards."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        why = f"cannot mount a small tmpfs: {mounted.stderr.strip()}"
        assert not os.environ.get("CI"), f"{why} (CI runs as root: see .ci/run)"
        pytest.skip(why)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(fs: Path) -> None:
    chunk = b"\xa5" * 4096
    with contextlib.suppress(OSError), open(fs / "filler", "wb", buffering=0) as f:
        while True:
            f.write(chunk)


def _daemon_log() -> str:
    return (Path(_native.socket_path()).parent / "asebytesd.log").read_text()


@pytest.mark.parametrize("ext", [".lmdb", ".zarr", ".zarrp", ".h5", ".h5p"])
def test_disk_full_is_an_os_error_naming_the_store_and_keeps_earlier_rows(
    tmp_path: Path, ext: str
) -> None:
    rng = np.random.default_rng(7)
    rows = [{"x": rng.random(2048)} for _ in range(4)]  # 64 KiB that do not compress
    with _small_fs(tmp_path / "fs") as fs:
        name = f"full{ext}"
        db = ObjectIO(str(fs / name))
        acked = 0
        with pytest.raises(DiskFullError) as caught:
            for _ in range(10_000):
                acked = db.extend(rows)
        err = caught.value
        assert isinstance(err, OSError) and isinstance(err, AsebytesError)
        assert err.errno == errno.ENOSPC
        assert name in str(err) and "full" in str(err)
        assert acked > 0
        assert len(db) == acked
        assert np.array_equal(db[acked - 1]["x"], rows[-1]["x"])
        assert np.array_equal(db[0]["x"], rows[0]["x"])
        assert name in _daemon_log()
        _native.ping()


def test_opening_a_store_on_a_full_disk_fails_and_the_daemon_lives_on(
    tmp_path: Path,
) -> None:
    survivor = ObjectIO(f"memory://survivor-{os.getpid()}")
    survivor.extend([{"a": 1}])
    with _small_fs(tmp_path / "fs") as fs:
        _fill(fs)
        with pytest.raises(DiskFullError, match="new.lmdb"):
            len(ObjectIO(str(fs / "new.lmdb")))
    assert survivor[0] == {"a": 1}
    _native.ping()
