"""A PyTorch map-style dataset over any location asebytes reads.

    from torch.utils.data import DataLoader
    from asebytes.torch import AtomsDataset

    ds = AtomsDataset("train.lmdb", transform=to_graph)
    loader = DataLoader(ds, batch_size=32, num_workers=4, collate_fn=collate)

PyTorch is imported here only, so ``import asebytes`` never needs it.

- A batch is one request: ``DataLoader`` hands a worker the batch's indices at once
  (``__getitems__``), and they are read in one round trip from one snapshot.
- The dataset pickles as its arguments (location, group, keys, transform): no connection
  is pickled. Each worker opens the store on first use, whatever its start method (fork,
  spawn, forkserver; Python 3.14's default on Linux is forkserver), and a forked worker
  never talks on its parent's connections.
- A worker that loses the daemon (stopped, restarted, killed) reconnects on its next read,
  starting a daemon if none answers, as every asebytes call does.
- The length is the store's length when the dataset was made: a sampler needs a fixed
  length, and rows appended later are simply not part of this dataset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

try:
    import torch.utils.data as _torch_data  # type: ignore[import-not-found, unused-ignore]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "asebytes.torch needs PyTorch, which asebytes does not install: "
        "pip install torch"
    ) from exc

from ._io import ASEIO, ObjectIO
from .exceptions import AsebytesTypeError

__all__ = ["AtomsDataset"]


class AtomsDataset(_torch_data.Dataset[Any]):  # type: ignore[misc, unused-ignore]
    """Rows of ``location`` as a map-style dataset: ``ase.Atoms`` (or, with
    ``as_dict=True``, ``dict[str, Any]`` of numpy arrays and scalars), passed through
    ``transform`` when given.

    ``keys`` reads only those keys (``"calc.energy"``, ``"arrays.forces"``, ...): less to
    send and decode per sample. ``group`` and further keyword arguments (backend
    options) are what the facades take. The store is opened read-only.
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        keys: Sequence[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        *,
        group: str | None = None,
        as_dict: bool = False,
        **options: Any,
    ) -> None:
        if isinstance(keys, str):
            raise AsebytesTypeError("keys= must be a list of keys, not a single key")
        if transform is not None and not callable(transform):
            raise AsebytesTypeError(
                f"transform must be callable, got {type(transform).__name__}"
            )
        self.location = os.fspath(location)
        self.keys = list(keys) if keys is not None else None
        self.transform = transform
        self.group = group
        self.as_dict = as_dict
        self._options = options
        self._db: Any = None
        self._pid = -1
        self._len = len(self._open())

    # ------------------------------------------------------------------ the store

    def _open(self) -> Any:
        """The facade of this process, opened on first use (and again after a fork)."""
        if self._db is None or self._pid != os.getpid():
            facade = ObjectIO if self.as_dict else ASEIO
            self._db = facade(
                self.location, group=self.group, readonly=True, **self._options
            )
            self._pid = os.getpid()
        return self._db

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_db"] = None
        state["_pid"] = -1
        return state

    # ------------------------------------------------------------------ the dataset

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The samples at ``indices``, read in one request."""
        n = self._len
        picked: list[int] = []
        for i in indices:
            i = int(i)
            if not -n <= i < n:
                raise IndexError(f"Index {i} out of range [0, {n})")
            picked.append(i % n)
        view = self._open()[picked]
        if self.keys is not None:
            view = view[self.keys]
        rows = view.to_list()
        if self.keys is not None and self.as_dict:
            # ObjectIO column views give one list of values per row, in `keys` order.
            keys = self.keys
            rows = [
                None if values is None else dict(zip(keys, values, strict=True))
                for values in rows
            ]
        if self.transform is None:
            return list(rows)
        return [self.transform(row) for row in rows]

    def __repr__(self) -> str:
        group = f", group={self.group!r}" if self.group is not None else ""
        keys = f", keys={self.keys!r}" if self.keys is not None else ""
        return f"AtomsDataset({self.location!r}{group}{keys}, len={self._len})"
