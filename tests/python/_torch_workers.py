"""Module-level pieces of test_torch.py that DataLoader workers unpickle (importable
under 'spawn' and 'forkserver')."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def energy_and_pid(atoms: Any) -> dict[str, Any]:
    """A transform: the row's energy and index, and the worker that read it."""
    return {
        "i": int(atoms.info["i"]),
        "energy": float(atoms.get_potential_energy()),
        "pos": np.asarray(atoms.positions, dtype=np.float64),
        "pid": os.getpid(),
    }
