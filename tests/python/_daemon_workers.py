"""Functions run in child processes by test_daemon_ops.py (importable under 'spawn')."""

from __future__ import annotations

import uuid

from asebytes import ObjectIO


def first_client(rows: int) -> int:
    """Be the first client of a daemon (so this process starts it) and write ``rows``."""
    return ObjectIO(f"memory://first-{uuid.uuid4().hex}").extend(
        [{"i": i} for i in range(rows)]
    )
