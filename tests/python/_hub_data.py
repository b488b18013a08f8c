"""Generated Hub dataset repos for the hub backend's tests and bench, in the shapes the real
ones have (``readonly-sources.md`` "Hub datasets"):

* ColabFit: card ``configs: [{config_name: default, data_files: "main/*.parquet"}]``,
  several Spark-style part files with several row groups each; ``positions``,
  ``atomic_numbers``, ``cell``, ``pbc``, ``energy`` (sometimes null), ``atomic_forces``,
  ``cauchy_stress`` 3x3, plus unmapped columns (formula, ids, a JSON metadata string).
* LeMaterial (OPTIMADE): configs ``compatible_pbe`` and ``non_compatible``, split ``train``;
  ``cartesian_site_positions``, ``species_at_sites`` (symbols), ``lattice_vectors``,
  ``dimension_types`` (0/1), ``energy``, ``forces``, ``stress_tensor``, ``elements``,
  ``nsites``, ``immutable_id``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _hub_server import Repo

SYMBOLS = ["H", "C", "N", "O", "Cu", "Si", "Fe"]
NUMBERS = {"H": 1, "C": 6, "N": 7, "O": 8, "Cu": 29, "Si": 14, "Fe": 26}


def _frame(rng: np.random.Generator, i: int) -> dict:
    n = 1 + (i * 7) % 9
    symbols = [SYMBOLS[int(k)] for k in rng.integers(0, len(SYMBOLS), size=n)]
    periodic = i % 3 != 0
    return {
        "n": n,
        "symbols": symbols,
        "positions": (rng.random((n, 3)) * 5).tolist(),
        "cell": (np.eye(3) * (5 + i % 4)).tolist() if periodic else None,
        "pbc": [periodic, periodic, i % 2 == 0 and periodic],
        "energy": None if i % 11 == 5 else float(-i * 0.25),
        "forces": rng.normal(size=(n, 3)).tolist(),
        "stress": rng.normal(size=(3, 3)).tolist(),
    }


def colabfit_table(start: int, count: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed + start)
    frames = [_frame(rng, i) for i in range(start, start + count)]
    f64_2d = pa.list_(pa.list_(pa.float64()))
    return pa.table(
        {
            "configuration_id": pa.array(
                [f"CO_{i:06d}" for i in range(start, start + count)]
            ),
            "positions": pa.array([f["positions"] for f in frames], f64_2d),
            "atomic_numbers": pa.array(
                [[NUMBERS[s] for s in f["symbols"]] for f in frames],
                pa.list_(pa.int32()),
            ),
            "cell": pa.array([f["cell"] for f in frames], f64_2d),
            "pbc": pa.array([f["pbc"] for f in frames], pa.list_(pa.bool_())),
            "energy": pa.array([f["energy"] for f in frames], pa.float64()),
            "atomic_forces": pa.array([f["forces"] for f in frames], f64_2d),
            "cauchy_stress": pa.array([f["stress"] for f in frames], f64_2d),
            "chemical_formula_hill": pa.array(
                ["".join(sorted(f["symbols"])) for f in frames]
            ),
            "nsites": pa.array([f["n"] for f in frames], pa.int32()),
            "metadata": pa.array(
                [json.dumps({"step": i}) for i in range(start, start + count)]
            ),
        }
    )


def lemat_table(start: int, count: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed + 1000 + start)
    frames = [_frame(rng, i) for i in range(start, start + count)]
    f64_2d = pa.list_(pa.list_(pa.float64()))
    return pa.table(
        {
            "immutable_id": pa.array(
                [f"agm{i:09d}" for i in range(start, start + count)]
            ),
            "elements": pa.array(
                [sorted(set(f["symbols"])) for f in frames], pa.list_(pa.string())
            ),
            "nsites": pa.array([f["n"] for f in frames], pa.int64()),
            "cartesian_site_positions": pa.array(
                [f["positions"] for f in frames], f64_2d
            ),
            "species_at_sites": pa.array(
                [f["symbols"] for f in frames], pa.list_(pa.string())
            ),
            "lattice_vectors": pa.array(
                [f["cell"] or np.eye(3).tolist() for f in frames], f64_2d
            ),
            "dimension_types": pa.array(
                [[int(p) for p in f["pbc"]] for f in frames], pa.list_(pa.int8())
            ),
            "energy": pa.array([f["energy"] for f in frames], pa.float64()),
            "forces": pa.array([f["forces"] for f in frames], f64_2d),
            "stress_tensor": pa.array([f["stress"] for f in frames], f64_2d),
        }
    )


def parquet_bytes(table: pa.Table, row_group_size: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size, compression="zstd")
    return buf.getvalue()


def colabfit_repo(
    sizes: tuple[int, ...] = (25, 40, 15),
    row_group_size: int = 10,
    token: str | None = None,
) -> Repo:
    """A ColabFit-shaped repo whose part files hold ``sizes`` rows (listed out of order:
    rows follow sorted paths)."""
    files: dict[str, bytes] = {
        "README.md": (
            b"---\nlicense: cc-by-4.0\nconfigs:\n- config_name: default\n"
            b'  data_files: "main/*.parquet"\n---\n# A ColabFit dataset\n'
        ),
        "dataset_info.txt": b"not data",
    }
    start = 0
    for k, n in enumerate(sizes):
        name = f"main/part-{k:05d}-4f1d.zstd.parquet"
        files[name] = parquet_bytes(colabfit_table(start, n), row_group_size)
        start += n
    return Repo(files, token=token)


LEMAT_CARD = b"""---
license: cc-by-4.0
configs:
  - config_name: compatible_pbe
    data_files:
      - split: train
        path: "compatible_pbe/train/*"
  - config_name: non_compatible
    data_files:
      - split: train
        path: "non_compatible/train/*"
---
# LeMat-Traj (mock)
"""


def lemat_repo(sizes: tuple[int, ...] = (30, 20), row_group_size: int = 8) -> Repo:
    files: dict[str, bytes] = {"README.md": LEMAT_CARD}
    start = 0
    for k, n in enumerate(sizes):
        files[f"compatible_pbe/train/{k:04d}.parquet"] = parquet_bytes(
            lemat_table(start, n), row_group_size
        )
        start += n
    files["non_compatible/train/0000.parquet"] = parquet_bytes(lemat_table(500, 7), 4)
    return Repo(files)
