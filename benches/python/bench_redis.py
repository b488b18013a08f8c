"""The Redis peers: ours (through the daemon) and asebytes 0.3.3's Redis backend, on one
private ``redis-server`` that the suite starts (:func:`start_server`) and whose URL it
hands to every worker in ``$ASEBYTES_BENCH_REDIS_URL``.

A store is a group on that server: a peer's store path is ``<url>#<group>``, split again
before the facades see it (``group=``). Both peers are used the same way as the LMDB
peers (one ``extend`` per trajectory, ``ColumnView.set`` for bulk updates).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bench_peers import OursLMDB, RefLMDB

URL_ENV = "ASEBYTES_BENCH_REDIS_URL"


class _RedisStores:
    """A store is a group on the suite's server; no file size (it lives in memory)."""

    name = ""
    suffix = ""
    file_size: Any = None
    needs_redis = True

    def store_path(self, workdir: str, tag: str) -> str:
        group = f"{os.path.basename(workdir)}-{self.name}-{tag}"
        return f"{os.environ[URL_ENV]}#{group}"

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        url, _, group = path.partition("#")
        return url, group

    def write_trajectory(self, path: str, frames: list[Any]) -> None:
        from asebytes import ASEIO

        url, group = self._split(path)
        ASEIO(url, group=group).extend(frames)

    def write_single(self, path: str, frames: list[Any]) -> None:
        from asebytes import ASEIO

        url, group = self._split(path)
        db = ASEIO(url, group=group)
        for atoms in frames:
            db.extend([atoms])

    def _aseio(self, h: Any) -> Any:
        url, group = self._split(h[0])
        return h[1](url, group=group)

    def _objectio(self, h: Any) -> Any:
        url, group = self._split(h[0])
        return h[2](url, group=group)

    def open_len(self, path: str) -> int:
        from asebytes import ASEIO

        url, group = self._split(path)
        return len(ASEIO(url, group=group))

    def discard(self, path: str) -> None:
        from asebytes import ObjectIO

        url, group = self._split(path)
        ObjectIO(url, group=group).remove()


class OursRedis(_RedisStores, OursLMDB):
    name = "ours-redis"
    label = "asebytes-rs Redis (daemon)"


class RefRedis(_RedisStores, RefLMDB):
    name = "asebytes-redis"
    label = "asebytes 0.3.3 Redis"


REDIS_PEERS = {cls.name: cls for cls in (OursRedis, RefRedis)}

REDIS_NA = {
    ("ours-redis", "file_size"): "in the server's memory, not a file",
    ("asebytes-redis", "file_size"): "in the server's memory, not a file",
}

REDIS_NOTES = {
    "ours-redis": "as ours-lmdb, on the suite's private redis-server (no persistence); "
    "every write batch is one Lua script or one MULTI/EXEC",
    "asebytes-redis": "the reference's ObjectIO/ASEIO over its RedisBlobBackend, on the "
    "same server",
}


def start_server(peers: list[str], env: dict[str, str]) -> Any:
    """Starts the private server when a selected peer needs it and puts its URL in
    `env`; returns it (stop it with ``close()``) or ``None``."""
    if not any(getattr(_peer(p), "needs_redis", False) for p in peers):
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
    from _redis_server import RedisServer

    server = RedisServer()
    env[URL_ENV] = server.url()
    return server


def _peer(name: str) -> Any:
    from bench_peers import PEERS

    return PEERS[name]
