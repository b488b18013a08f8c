"""The floors: what any reader of a frame must at least spend, measured beside the peers.

``floor-lmdb-raw`` reads the bytes our LMDB layout stores for each frame with py-lmdb and
decodes nothing; ``floor-atoms`` builds bare ``Atoms`` from arrays already in memory. A
peer can only approach them; they join the suite's table in ``bench_peers``.
"""

from __future__ import annotations

from typing import Any

from bench_peers import Peer


class FloorLMDB(Peer):
    """Raw LMDB reads (py-lmdb) of the bytes our layout stores for each frame: what any
    LMDB-based reader must at least spend, before decoding and building ``Atoms``."""

    name = "floor-lmdb-raw"
    label = "floor: raw LMDB bytes (py-lmdb)"
    suffix = ".lmdb"
    kind = "floor"
    imports = ("lmdb", "asebytes")
    fields = (
        "arrays.numbers",
        "arrays.positions",
        "calc.energy",
        "calc.forces",
        "calc.stress",
        "cell",
        "info.label",
        "info.step",
        "info.temperature",
        "pbc",
    )

    def prepare(self, path: str, frames: list[Any]) -> None:
        import lmdb
        from asebytes import _native, atoms_to_dict

        env = lmdb.open(path, subdir=True, map_size=1 << 32)
        with env.begin(write=True) as txn:
            for i, atoms in enumerate(frames):
                for key, value in _native.encode_row(atoms_to_dict(atoms)).items():
                    txn.put(f"{i}-".encode() + key, value)
        env.close()

    def open(self, path: str) -> Any:
        import lmdb

        return lmdb.open(path, subdir=True, readonly=True, lock=False)

    def _rows(self, env: Any, idx: Any, fields: tuple[str, ...], per_txn: bool) -> Any:
        keys = [f.encode() for f in fields]
        if not per_txn:
            with env.begin(buffers=False) as txn:
                get = txn.get
                return [{k: get(b"%d-%s" % (i, k)) for k in keys} for i in idx]
        out = []
        for i in idx:
            with env.begin(buffers=False) as txn:
                out.append({k: txn.get(b"%d-%s" % (i, k)) for k in keys})
        return out

    def read_trajectory(self, env: Any, n: int) -> Any:
        return self._rows(env, range(n), self.fields, False)

    def read_single(self, env: Any, idx: list[int]) -> Any:
        return self._rows(env, idx, self.fields, True)

    def random_view(self, env: Any, idx: list[int]) -> Any:
        return self._rows(env, idx, self.fields, False)

    def positions_view(self, env: Any, n: int) -> Any:
        return self._rows(env, range(n), ("arrays.positions",), False)

    def positions_single(self, env: Any, idx: list[int]) -> Any:
        return self._rows(env, idx, ("arrays.positions",), True)

    def column_energy(self, env: Any, n: int) -> Any:
        return self._rows(env, range(n), ("calc.energy",), False)


class FloorAtoms(Peer):
    """Bare ``Atoms(numbers, positions, cell, pbc)`` from arrays already in memory (no
    calculator, no info): ASE's own constructor, the Python-object cost of a frame."""

    name = "floor-atoms"
    label = "floor: bare Atoms(numbers, positions, cell, pbc)"
    kind = "floor"
    imports = ("ase",)

    def prepare(self, path: str, frames: list[Any]) -> None:
        pass

    def open(self, path: str) -> Any:
        return path

    def discard(self, path: str) -> None:
        pass

    def _build(self, idx: Any) -> list[Any]:
        from ase import Atoms

        frames = self.dataset["frames"]
        return [
            Atoms(
                numbers=(f := frames[i])["numbers"],
                positions=f["positions"],
                cell=f["cell"],
                pbc=f["pbc"],
            )
            for i in idx
        ]

    def read_trajectory(self, h: Any, n: int) -> list[Any]:
        return self._build(range(n))

    def read_single(self, h: Any, idx: list[int]) -> list[Any]:
        return self._build(idx)

    def random_view(self, h: Any, idx: list[int]) -> list[Any]:
        return self._build(idx)


FLOOR_PEERS: dict[str, type[Peer]] = {cls.name: cls for cls in (FloorLMDB, FloorAtoms)}
