"""Frames shared by the Zarr compatibility tests: imported here and by the reference
asebytes 0.3.3 in its own virtualenv (a subprocess), so both sides write the same data."""

from __future__ import annotations

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator


def frames() -> list[ase.Atoms]:
    """Variable atom counts, strings, nested info, a numpy int32, a key from frame 2 on."""
    out = []
    for i, n in enumerate([3, 5, 2, 9]):
        a = ase.Atoms(
            "H" * n,
            positions=np.arange(n * 3, dtype=float).reshape(n, 3) + i,
            cell=np.eye(3) * (i + 1),
            pbc=[True, False, i % 2 == 0],
        )
        a.info["label"] = f"frame{i}"
        a.info["nested"] = {"a": [1, 2], "b": {"c": "x"}}
        a.info["count"] = np.int32(i)
        if i >= 2:
            a.info["late"] = float(i) / 3
        a.calc = SinglePointCalculator(
            a,
            energy=-1.5 * i,
            forces=np.full((n, 3), float(i)),
            stress=np.arange(6, dtype=float) * i,
        )
        out.append(a)
    return out
