"""A private daemon for one benchmark run.

Every benchmark measures a daemon of its own: a socket in the run's temporary directory (so a
daemon the user already runs, possibly of another build or started with another
environment, is never measured), no idle timeout (a pause between rounds must not restart
it), stopped when the run ends, also when it fails. The first client that connects starts
it with the environment ``private_daemon`` yields, so settings meant for the daemon
(``HF_ENDPOINT``, ``ASEBYTES_*``) go into that environment.

    with tempfile.TemporaryDirectory() as tmp, private_daemon(tmp) as env:
        subprocess.run([python, "worker.py"], env=env)   # workers in other processes
        os.environ.update(env)                           # or ours in this process
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path


@contextlib.contextmanager
def private_daemon(
    tmp: str | Path, base: Mapping[str, str] | None = None, name: str = "d"
) -> Iterator[dict[str, str]]:
    """Yield a copy of ``base`` (default: this process's environment) whose clients use a
    daemon on ``<tmp>/<name>.sock``; stop that daemon on exit."""
    env = dict(os.environ if base is None else base)
    env["ASEBYTES_SOCKET"] = str(Path(tmp) / f"{name}.sock")
    env["ASEBYTES_IDLE_TIMEOUT"] = "0"
    try:
        yield env
    finally:
        stop_daemon(env)


def stop_daemon(env: Mapping[str, str]) -> None:
    """Stop the daemon on ``env``'s socket if one runs there (never raises)."""
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        check=False,
        env=dict(env),
        capture_output=True,
        timeout=60,
    )
