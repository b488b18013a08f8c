"""The benchmark's MongoDB server: one private SecantusDB (``secantusd-py``) on a free
loopback port in the run's temporary directory, started only when a MongoDB peer runs and
stopped at the end. Both MongoDB peers (ours through the daemon, asebytes 0.3.3 through
pymongo) use it, so they are measured on the same server in the same run.

The peers find it through ``ASEBYTES_BENCH_MONGODB`` (``mongodb://127.0.0.1:<port>``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ENV = "ASEBYTES_BENCH_MONGODB"


def _program() -> str:
    beside = Path(sys.executable).parent / "secantusd-py"
    found = str(beside) if beside.exists() else shutil.which("secantusd-py")
    if found is None:
        raise RuntimeError(
            "secantusd-py not found: pip install secantusdb (requirements-bench.txt)"
        )
    return found


def start_if_needed(
    peers: list[str], tmp: str, env: dict[str, str]
) -> subprocess.Popen[bytes] | None:
    """Starts the server when a MongoDB peer is in ``peers``; sets ``env[ENV]``."""
    if not any("mongodb" in p for p in peers):
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tmp) / "mongodb"
    data.mkdir()
    log = open(data / "server.log", "wb")  # noqa: SIM115 (kept by the process)
    proc = subprocess.Popen(
        [
            _program(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(data / "db"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    log.close()
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((data / "server.log").read_text())
        time.sleep(0.05)
    env[ENV] = f"mongodb://127.0.0.1:{port}"
    os.environ[ENV] = env[ENV]
    return proc


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.kill()
        proc.wait(timeout=60)
