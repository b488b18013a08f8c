"""Functions run in child processes by test_published.py (importable under 'spawn')."""

from __future__ import annotations

from typing import Any

from asebytes import ObjectIO


def append_and_overwrite(location: str, rounds: int, acked: Any, start: Any) -> None:
    """Per round ``k``: append ``{"v": k}``, then overwrite row 0 with ``{"v": k}``; only
    after both are acknowledged publish ``k`` in ``acked``."""
    db = ObjectIO(location)
    if not start.wait(60):
        raise TimeoutError("start signal never came")
    for k in range(1, rounds + 1):
        db.extend([{"v": k}])
        db[0] = {"v": k}
        acked.value = k
