"""``asebytes.torch.AtomsDataset`` with a real ``torch.utils.data.DataLoader``.

PyTorch is large (several GB from PyPI with its CUDA libraries), so these tests run in
``just test-torch`` (which installs it) and are skipped where torch is missing, as in CI.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _torch_workers
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from asebytes import ASEIO

torch = pytest.importorskip("torch")
from asebytes.torch import AtomsDataset
from torch.utils.data import DataLoader

pytestmark = pytest.mark.torch

N = 40


def _frame(i: int) -> Atoms:
    atoms = Atoms("H2O", positions=np.full((3, 3), float(i)))
    atoms.info["i"] = i
    atoms.calc = SinglePointCalculator(atoms, energy=-float(i), forces=np.zeros((3, 3)))
    return atoms


@pytest.fixture(params=["lmdb", "h5"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    loc = str(tmp_path / f"train.{request.param}")
    ASEIO(loc).extend([_frame(i) for i in range(N)])
    return loc


def test_the_dataset_reads_a_batch_in_one_request_and_applies_the_transform(
    location: str, spy: Callable[[Any], Any]
) -> None:
    ds = AtomsDataset(location, transform=_torch_workers.energy_and_pid)
    assert len(ds) == N
    assert ds[3]["energy"] == -3.0
    assert ds[-1]["i"] == N - 1
    with pytest.raises(IndexError):
        ds[N]
    counting = spy(ds._open())
    rows = ds.__getitems__([5, 1, 7])
    assert [r["i"] for r in rows] == [5, 1, 7]
    assert counting.names() == ["get_atoms_many"]


def test_keys_and_dicts(location: str) -> None:
    ds = AtomsDataset(location, keys=["calc.energy"], as_dict=True)
    assert ds.__getitems__([2, 4]) == [{"calc.energy": -2.0}, {"calc.energy": -4.0}]
    atoms = AtomsDataset(location, keys=["calc.energy"])[2]
    assert atoms.get_potential_energy() == -2.0
    assert len(atoms) == 0


def test_the_dataset_pickles_without_its_connection(location: str) -> None:
    ds = AtomsDataset(location, transform=_torch_workers.energy_and_pid)
    ds[0]
    blob = pickle.dumps(ds)
    back = pickle.loads(blob)
    assert back._db is None
    assert len(back) == N and back[1]["i"] == 1


@pytest.mark.multiprocess
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_dataloader_with_workers_reads_every_row_once(
    location: str, method: str
) -> None:
    ds = AtomsDataset(location, transform=_torch_workers.energy_and_pid)
    loader = DataLoader(
        ds,
        batch_size=8,
        shuffle=True,
        num_workers=2,
        multiprocessing_context=method,
        collate_fn=list,
    )
    seen = [s for batch in loader for s in batch]
    assert sorted(s["i"] for s in seen) == list(range(N))
    assert all(s["energy"] == -s["i"] for s in seen)
    assert all(s["pos"].shape == (3, 3) for s in seen)
    pids = {s["pid"] for s in seen}
    assert os.getpid() not in pids and len(pids) == 2


def test_default_collate_stacks_numpy_samples(location: str) -> None:
    ds = AtomsDataset(location, transform=_torch_workers.energy_and_pid)
    loader = DataLoader(ds, batch_size=10, num_workers=0)
    batch = next(iter(loader))
    assert batch["pos"].shape == (10, 3, 3)
    assert torch.equal(batch["i"], torch.arange(10))


@pytest.mark.multiprocess
def test_a_worker_that_loses_the_daemon_reconnects(location: str) -> None:
    ds = AtomsDataset(location, transform=_torch_workers.energy_and_pid)
    loader = DataLoader(
        ds,
        batch_size=8,
        num_workers=2,
        persistent_workers=True,
        multiprocessing_context="spawn",
        collate_fn=list,
    )
    first = [s for batch in loader for s in batch]
    subprocess.run(
        [sys.executable, "-m", "asebytes.daemon", "stop"],
        check=True,
        capture_output=True,
    )
    # The same worker processes read the next epoch: each reconnects (a daemon starts).
    second = [s for batch in loader for s in batch]
    assert [s["i"] for s in first] == [s["i"] for s in second] == list(range(N))
    assert {s["pid"] for s in first} == {s["pid"] for s in second}
