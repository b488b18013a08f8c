"""The atompack peer (``atompack-db``, LeMaterial's Rust-backed append-only store), used the
way its README recommends: ``add_ase_batch`` to write, ``Database.open`` (read-only, mmap)
to read, ``to_ase`` / ``to_ase_batch`` for ``ase.Atoms``.

Two ways of reading are measured and labelled as such:

* the operations that return ``Atoms`` go through its ``to_ase`` path (with the
  ``SinglePointCalculator`` snapshot, as ours and the reference give);
* ``row_single`` reads its *lazy row* (``db[i]``, a view into the mmap) and then the row's
  positions, against our ``ObjectIO`` ``db[i]`` (a dict of every value, no ``Atoms``) and its
  positions.

atompack stores positions, forces and cells as float32, so what it reads back differs from
what was written by up to ~1e-6 relative; its reads are checked at that precision
(``precision``) instead of the 1e-7 every other binary peer meets.
"""

from __future__ import annotations

from typing import Any

from bench_peers import Peer, disk_bytes


class Atompack(Peer):
    name = "atompack"
    label = "atompack-db 0.4.1"
    suffix = ".atp"
    imports = ("atompack",)
    #: float32 storage: relative and absolute tolerance of its read checks.
    precision = 2e-6

    def write_trajectory(self, path: str, frames: list[Any]) -> None:
        import atompack

        db = atompack.Database(path, overwrite=True)
        atompack.add_ase_batch(db, frames)
        db.flush()

    def write_single(self, path: str, frames: list[Any]) -> None:
        import atompack

        db = atompack.Database(path, overwrite=True)
        for atoms in frames:
            atompack.add_ase_batch(db, [atoms])
            db.flush()  # each append on disk before the next, as an MD loop needs

    def open(self, path: str) -> Any:
        import atompack

        return atompack.Database.open(path)

    def read_trajectory(self, h: Any, n: int) -> list[Any]:
        import atompack

        return list(atompack.to_ase_batch(h, list(range(n))))

    def read_single(self, h: Any, idx: list[int]) -> list[Any]:
        from atompack import to_ase

        return [to_ase(h[i]) for i in idx]

    def random_view(self, h: Any, idx: list[int]) -> list[Any]:
        import atompack

        return list(atompack.to_ase_batch(h, idx))

    def positions_view(self, h: Any, n: int) -> list[Any]:
        return [m.positions for m in h.get_molecules(list(range(n)))]

    def positions_single(self, h: Any, idx: list[int]) -> list[Any]:
        return [h[i].positions for i in idx]

    def row_single(self, h: Any, idx: list[int]) -> list[Any]:
        return [h[i].positions for i in idx]

    def column_energy(self, h: Any, n: int) -> list[Any]:
        return [m.energy for m in h.get_molecules(list(range(n)))]

    def open_len(self, path: str) -> int:
        import atompack

        return len(atompack.Database.open(path))

    def file_size(self, path: str) -> int:
        return disk_bytes(path)


ATOMPACK_PEERS = {Atompack.name: Atompack}

ATOMPACK_NA = {
    ("atompack", "update_bulk"): "append-only format, no update",
    ("atompack", "update_single"): "append-only format, no update",
}

ATOMPACK_NOTES = {
    "atompack": "`add_ase_batch` writes, `Database.open` (mmap) reads; Atoms through "
    "`to_ase`/`to_ase_batch`; `row_single` is its lazy row; stores float32 (checked at 2e-6)",
}
