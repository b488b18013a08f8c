"""How much of the machine other programs took while a worker ran (Linux ``/proc``).

A worker whose measurement overlapped foreign load is run again (``bench_suite.py``):
our reads are request/response between two busy-polling processes and need two free
cores, so a compiler or test suite running beside them inflates them several-fold, while
an in-process peer barely notices. Foreign CPU = every busy CPU second of the machine
(``/proc/stat``, steal included) minus the worker's (child rusage), our daemon's and that
of the servers the suite runs for its peers (Redis, SecantusDB: its live children), which a
Redis or MongoDB worker keeps busy by design.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / HZ


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _daemon_cpu(socket: str) -> float:
    """CPU seconds of the daemon serving ``socket`` (0 if none runs)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if socket.encode() not in (proc / "cmdline").read_bytes():
                continue
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(stat[11]) + int(stat[12])) / HZ
        except OSError:
            continue
    return 0.0


def _live_children_cpu() -> float:
    """CPU seconds of this process's children still running (the suite's servers)."""
    me = str(os.getpid())
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[1] == me:
            total += (int(stat[11]) + int(stat[12])) / HZ
    return total


class LoadMeter:
    """``start()`` before a worker, ``foreign()`` after it: the share of the machine's
    CPU capacity that other programs used meanwhile (0 to 1)."""

    def __init__(self, socket: str) -> None:
        self.socket = socket
        self._t = self._busy = self._own = 0.0

    def _own_cpu(self) -> float:
        return _children_cpu() + _live_children_cpu() + _daemon_cpu(self.socket)

    def start(self) -> None:
        self._t = time.monotonic()
        self._busy = _machine_busy()
        self._own = self._own_cpu()

    def foreign(self) -> float:
        wall = time.monotonic() - self._t
        busy = _machine_busy() - self._busy
        own = self._own_cpu() - self._own
        cpus = os.cpu_count() or 1
        return max(0.0, (busy - own) / (wall * cpus)) if wall > 0 else 0.0
