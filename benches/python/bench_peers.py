"""The benchmarked peers: one class each, implementing the operations it can do.

A peer runs inside its own worker process (``bench_worker.py``) and virtualenv: ``bench``
(our package, aselmdb, znh5md, ase, py-lmdb) or ``ref`` (``asebytes==0.3.3``, which shares
our import name). Each peer is used the way its documentation recommends for speed: one
``extend`` per trajectory, one transaction for ase.db bulk writes and updates, h5py
file handles for znh5md reads.

An operation a peer cannot do is ``None`` on the class and listed in ``NA`` with the
reason; the report shows it as ``n/a``. Nothing is emulated behind a peer's back, except
where noted in ``NOTES`` (what a user of that peer would have to do).

Operations (``frames`` are ``ase.Atoms``; ``idx`` row indices; reads return what they
read so the worker can check it):

* ``write_trajectory(path, frames)``, ``write_single(path, frames)``: open, write, close;
* ``open(path)`` -> handle, then ``read_trajectory(h, n)``, ``read_single(h, idx)``,
  ``random_view(h, idx)``, ``positions_view(h, n)``, ``positions_single(h, idx)``,
  ``row_single(h, idx)`` (one row as plain values, no ``Atoms``, then its positions),
  ``column_energy(h, n)``;
* ``update_bulk(h, values)``, ``update_single(h, values)``, ``updated_values(h, n)``
  on a handle from ``open_update(path, frames)`` (a fresh store, written untimed);
* ``open_len(path)``: open an existing store in a fresh process and ask its length.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------- helpers


def remove_path(path: str) -> None:
    """Delete a file or directory peer store (and ase.db's lock file) if it exists."""
    for p in (path, path + "-lock"):
        if os.path.isdir(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.exists(p):
            os.unlink(p)


def disk_bytes(path: str) -> int:
    """Bytes allocated on disk (not the apparent size: LMDB maps are sparse files)."""
    total = 0
    paths = [Path(path)]
    if os.path.exists(path + "-lock"):
        paths.append(Path(path + "-lock"))
    for p in paths:
        files = [p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]
        total += sum(q.stat().st_blocks * 512 for q in files)
    return total


class Peer:
    """Base: every operation absent (``None``) until a subclass defines it."""

    name = ""
    label = ""
    venv = "bench"  # or "ref"
    suffix = ""
    kind = "peer"  # "ours", "peer" or "floor"
    imports: tuple[str, ...] = ()  # imported before anything is timed
    #: relative and absolute tolerance of its read checks (exact binary round trip; a
    #: peer that stores float32 says so with a larger one)
    precision = 1e-7

    write_trajectory: Any = None
    write_single: Any = None
    read_trajectory: Any = None
    read_single: Any = None
    random_view: Any = None
    positions_view: Any = None
    positions_single: Any = None
    row_single: Any = None
    column_energy: Any = None
    update_bulk: Any = None
    update_single: Any = None
    open_len: Any = None
    file_size: Any = None

    def store_path(self, workdir: str, tag: str) -> str:
        return os.path.join(workdir, f"{self.name}-{tag}{self.suffix}")

    def prepare(self, path: str, frames: list[Any]) -> None:
        """Write the store that the read benchmarks read (untimed)."""
        self.write_trajectory(path, frames)

    def open(self, path: str) -> Any:
        return path

    def discard(self, path: str) -> None:
        remove_path(path)

    def supports(self, op: str) -> bool:
        return getattr(self, op, None) is not None


# ---------------------------------------------------------------------- asebytes (ours and 0.3.3)


class _AsebytesPeer(Peer):
    """Our package or the reference: the same Python API."""

    imports = ("asebytes",)

    def write_trajectory(self, path: str, frames: list[Any]) -> None:
        from asebytes import ASEIO

        ASEIO(path).extend(frames)

    def write_single(self, path: str, frames: list[Any]) -> None:
        from asebytes import ASEIO

        db = ASEIO(path)
        for atoms in frames:
            db.extend([atoms])  # the reference's columnar append() goes through insert

    def open(self, path: str) -> Any:
        from asebytes import ASEIO, ObjectIO

        # py-lmdb 3.0 (the reference's LMDB) opens one environment per path per process,
        # so a worker opens exactly one facade: ObjectIO for plain values, else ASEIO.
        return (path, ASEIO, ObjectIO)

    def _aseio(self, h: Any) -> Any:
        return h[1](h[0])

    def _objectio(self, h: Any) -> Any:
        return h[2](h[0])

    def read_trajectory(self, h: Any, n: int) -> list[Any]:
        return list(self._db(h)[0:n])

    def read_single(self, h: Any, idx: list[int]) -> list[Any]:
        db = self._db(h)
        return [db[i] for i in idx]

    def random_view(self, h: Any, idx: list[int]) -> list[Any]:
        return list(self._db(h)[idx].to_list())

    def positions_view(self, h: Any, n: int) -> list[Any]:
        return list(self._obj(h)["arrays.positions"][0:n].to_list())

    def positions_single(self, h: Any, idx: list[int]) -> list[Any]:
        db = self._obj(h)
        return [db.get(i, keys=["arrays.positions"])["arrays.positions"] for i in idx]

    def row_single(self, h: Any, idx: list[int]) -> list[Any]:
        # One row as plain values (a dict, no Atoms), then its positions.
        db = self._obj(h)
        return [db[i]["arrays.positions"] for i in idx]

    def column_energy(self, h: Any, n: int) -> list[Any]:
        return list(self._obj(h)["calc.energy"][0:n].to_list())

    # One facade per worker process, made on first use and kept (handles are cheap to
    # reuse, and the reference cannot open a second one on the same path).
    def _db(self, h: Any) -> Any:
        if not hasattr(self, "_aseio_handle"):
            self._aseio_handle = self._aseio(h)
        return self._aseio_handle

    def _obj(self, h: Any) -> Any:
        if not hasattr(self, "_objectio_handle"):
            self._objectio_handle = self._objectio(h)
        return self._objectio_handle

    def open_update(self, path: str, frames: list[Any], bulk: bool) -> Any:
        from asebytes import atoms_to_dict

        h = self.open(path)
        if bulk:
            self._obj(h).extend([atoms_to_dict(a) for a in frames])
        else:
            self._db(h).extend(frames)
        return h

    def update_single(self, h: Any, values: list[float]) -> None:
        db = self._db(h)
        for i, e in enumerate(values):
            db.update(i, calc={"energy": e})

    def updated_values(self, h: Any, n: int, bulk: bool) -> list[float]:
        if bulk:
            return list(self._obj(h)["calc.energy"][0:n].to_list())
        db = self._db(h)
        return [db[i].get_potential_energy() for i in range(n)]

    def open_len(self, path: str) -> int:
        from asebytes import ASEIO

        return len(ASEIO(path))

    def file_size(self, path: str) -> int:
        return disk_bytes(path)


class OursLMDB(_AsebytesPeer):
    name = "ours-lmdb"
    label = "asebytes-rs LMDB (daemon)"
    suffix = ".lmdb"
    kind = "ours"

    def update_bulk(self, h: Any, values: list[float]) -> None:
        column = self._obj(h)["calc.energy"][0 : len(values)]
        if hasattr(column, "set"):  # ColumnView.set, as the reference
            column.set(list(values))
            return
        # Builds without ColumnView.set: the native Store's update_many is the one
        # request the facade sends.
        self._obj(h)._store.update_many(
            list(range(len(values))), [{"calc.energy": e} for e in values]
        )

    def discard(self, path: str) -> None:
        from asebytes import ObjectIO

        with contextlib.suppress(Exception):  # a store that was never created
            ObjectIO(path).remove()  # also closes it in the daemon
        remove_path(path)

    def column_energy(self, h: Any, n: int) -> list[Any]:
        # One packed array (straight from a columnar store's array, or packed in Rust
        # from per-row values), then a list as the other peers return.
        values: list[Any] = self._obj(h)["calc.energy"][0:n].to_numpy().tolist()
        return values


class OursZarr(OursLMDB):
    name = "ours-zarr"
    label = "asebytes-rs Zarr (daemon)"
    suffix = ".zarr"


class OursH5(OursLMDB):
    name = "ours-h5"
    label = "asebytes-rs HDF5 (daemon)"
    suffix = ".h5"


class OursH5MD(OursLMDB):
    name = "ours-h5md"
    label = "asebytes-rs H5MD (daemon)"
    suffix = ".h5md"


class OursMemory(OursLMDB):
    name = "ours-memory"
    label = "asebytes-rs memory:// (daemon)"
    suffix = ""
    file_size = None

    def store_path(self, workdir: str, tag: str) -> str:
        return f"memory://{os.path.basename(workdir)}-{self.name}-{tag}"

    def discard(self, path: str) -> None:
        from asebytes import ObjectIO

        ObjectIO(path).remove()


class RefLMDB(_AsebytesPeer):
    name = "asebytes-lmdb"
    label = "asebytes 0.3.3 LMDB"
    venv = "ref"
    suffix = ".lmdb"

    def update_bulk(self, h: Any, values: list[float]) -> None:
        self._obj(h)["calc.energy"][0 : len(values)].set(list(values))


class RefZarr(RefLMDB):
    name = "asebytes-zarr"
    label = "asebytes 0.3.3 Zarr"
    suffix = ".zarr"


class RefH5(RefLMDB):
    name = "asebytes-h5"
    label = "asebytes 0.3.3 HDF5"
    suffix = ".h5"


class RefH5MD(RefLMDB):
    name = "asebytes-h5md"
    label = "asebytes 0.3.3 H5MD"
    suffix = ".h5md"


def _mongo_location(workdir: str, tag: str, peer: str) -> str:
    """A database of its own on the run's server (``bench_mongo``) for one store."""
    import hashlib

    key = hashlib.sha1(f"{workdir}|{peer}|{tag}".encode()).hexdigest()[:24]
    return f"{os.environ['ASEBYTES_BENCH_MONGODB']}/b{key}"


class OursMongo(OursLMDB):
    name = "ours-mongodb"
    label = "asebytes-rs MongoDB (daemon)"
    suffix = ""
    file_size = None

    def store_path(self, workdir: str, tag: str) -> str:
        return _mongo_location(workdir, tag, self.name)

    def discard(self, path: str) -> None:
        from asebytes import ObjectIO

        with contextlib.suppress(Exception):
            ObjectIO(path).remove()


class RefMongo(RefLMDB):
    name = "asebytes-mongodb"
    label = "asebytes 0.3.3 MongoDB"
    suffix = ""
    file_size = None
    # asebytes 0.3.3 addresses `calc.energy` as a nested path (spec §4.4): its column
    # reads and keyed gets return nothing and its updates write a nested field, so those
    # operations read wrong data and are not counted.
    positions_view = None
    positions_single = None
    column_energy = None
    update_bulk = None
    update_single = None

    def store_path(self, workdir: str, tag: str) -> str:
        return _mongo_location(workdir, tag, self.name)

    def discard(self, path: str) -> None:
        from pymongo import MongoClient

        uri, _, database = path.rpartition("/")
        with MongoClient(uri) as client:
            client.drop_database(database)


# ---------------------------------------------------------------------- ase.db (aselmdb, SQLite)


class _AseDbPeer(Peer):
    db_type = ""
    imports = ("ase.db", "ase.db.core", "ase.db.row")

    def _connect(self, path: str) -> Any:
        import ase.db

        return ase.db.connect(path, type=self.db_type)

    def write_trajectory(self, path: str, frames: list[Any]) -> None:
        with self._connect(path) as db:  # one transaction, as ASE documents for bulk
            for atoms in frames:
                db.write(atoms, key_value_pairs=atoms.info)

    def write_single(self, path: str, frames: list[Any]) -> None:
        db = self._connect(path)
        for atoms in frames:
            db.write(atoms, key_value_pairs=atoms.info)

    def open(self, path: str) -> Any:
        return self._connect(path)

    def read_trajectory(self, db: Any, n: int) -> list[Any]:
        return [row.toatoms() for row in db.select()]

    def read_single(self, db: Any, idx: list[int]) -> list[Any]:
        return [db.get(id=i + 1).toatoms() for i in idx]

    def positions_single(self, db: Any, idx: list[int]) -> list[Any]:
        return [db.get(id=i + 1).positions for i in idx]

    def positions_view(self, db: Any, n: int) -> list[Any]:
        return [row.positions for row in db.select()]

    def column_energy(self, db: Any, n: int) -> list[Any]:
        return [row.energy for row in db.select(columns=["id", "energy"])]

    def open_update(self, path: str, frames: list[Any], bulk: bool) -> Any:
        self.write_trajectory(path, frames)
        return path

    # ase.db cannot change a stored calculator result in place (energy is a reserved
    # key); updating one property means a key-value pair.
    def update_bulk(self, path: str, values: list[float]) -> None:
        with self._connect(path) as db:
            for i, v in enumerate(values):
                db.update(i + 1, score=v)

    def update_single(self, path: str, values: list[float]) -> None:
        db = self._connect(path)
        for i, v in enumerate(values):
            db.update(i + 1, score=v)

    def updated_values(self, path: str, n: int, bulk: bool) -> list[float]:
        db = self._connect(path)
        return [db.get(id=i + 1).key_value_pairs["score"] for i in range(n)]

    def open_len(self, path: str) -> int:
        return len(self._connect(path))

    def file_size(self, path: str) -> int:
        return disk_bytes(path)


class AseLMDB(_AseDbPeer):
    name = "aselmdb"
    label = "aselmdb (ase-db-backends)"
    suffix = ".aselmdb"
    db_type = "aselmdb"
    imports = (*_AseDbPeer.imports, "ase_db_backends.aselmdb")


class AseSQLite(_AseDbPeer):
    name = "sqlite"
    label = "ASE SQLite (ase.db)"
    suffix = ".db"
    db_type = "db"
    imports = (*_AseDbPeer.imports, "ase.db.sqlite")


# ---------------------------------------------------------------------- znh5md, extxyz


class ZnH5MD(Peer):
    name = "znh5md"
    label = "znh5md (H5MD)"
    suffix = ".h5"
    imports = ("znh5md", "h5py")

    def write_trajectory(self, path: str, frames: list[Any]) -> None:
        import znh5md

        znh5md.IO(filename=path).extend(list(frames))

    def write_single(self, path: str, frames: list[Any]) -> None:
        import znh5md

        io = znh5md.IO(filename=path)
        for atoms in frames:
            io.append(atoms)

    def open(self, path: str) -> Any:
        import h5py
        import znh5md

        f = h5py.File(path, "r")  # kept open: znh5md's documented fast read path
        return f, znh5md.IO(file_handle=f)

    def read_trajectory(self, h: Any, n: int) -> list[Any]:
        return list(h[1][0:n])

    def read_single(self, h: Any, idx: list[int]) -> list[Any]:
        io = h[1]
        return [io[i] for i in idx]

    def random_view(self, h: Any, idx: list[int]) -> list[Any]:
        import numpy as np

        # h5py needs increasing indices: read sorted, hand back in the asked order.
        order = np.argsort(idx)
        got = h[1][np.asarray(idx)[order]]
        out: list[Any] = [None] * len(idx)
        for k, j in enumerate(order):
            out[j] = got[k]
        return out

    @staticmethod
    def _unpad(pos: Any) -> Any:
        import numpy as np

        # variable atom counts are NaN-padded to the largest frame
        return pos[~np.isnan(pos[:, 0])]

    def positions_view(self, h: Any, n: int) -> list[Any]:
        pos = h[0]["particles/atoms/position/value"][0:n]
        return [self._unpad(p) for p in pos]

    def positions_single(self, h: Any, idx: list[int]) -> list[Any]:
        ds = h[0]["particles/atoms/position/value"]
        return [self._unpad(ds[i]) for i in idx]

    def column_energy(self, h: Any, n: int) -> list[Any]:
        return h[0]["observables/atoms/potential_energy/value"][0:n].tolist()

    def open_len(self, path: str) -> int:
        import znh5md

        return len(znh5md.IO(filename=path))

    def file_size(self, path: str) -> int:
        return disk_bytes(path)


class ExtXYZ(Peer):
    name = "extxyz"
    label = "extxyz (ase.io)"
    suffix = ".extxyz"
    imports = ("ase.io", "ase.io.extxyz")

    def write_trajectory(self, path: str, frames: list[Any]) -> None:
        import ase.io

        ase.io.write(path, list(frames), format="extxyz")

    def write_single(self, path: str, frames: list[Any]) -> None:
        import ase.io

        for atoms in frames:
            ase.io.write(path, atoms, format="extxyz", append=True)

    def read_trajectory(self, path: str, n: int) -> list[Any]:
        import ase.io

        return list(ase.io.iread(path, index=":", format="extxyz"))

    # A text file has no index and no columns: every column read parses every frame.
    def positions_view(self, path: str, n: int) -> list[Any]:
        return [a.positions for a in self.read_trajectory(path, n)]

    def column_energy(self, path: str, n: int) -> list[Any]:
        return [a.get_potential_energy() for a in self.read_trajectory(path, n)]

    def file_size(self, path: str) -> int:
        return disk_bytes(path)


PEERS: dict[str, type[Peer]] = {
    cls.name: cls
    for cls in (
        OursLMDB,
        OursZarr,
        OursH5,
        OursH5MD,
        OursMemory,
        OursMongo,
        RefLMDB,
        RefZarr,
        RefH5,
        RefH5MD,
        RefMongo,
        AseLMDB,
        ZnH5MD,
        ExtXYZ,
        AseSQLite,
    )
}

NA_REASONS = {
    ("znh5md", "update_bulk"): "append-only format, no update",
    ("znh5md", "update_single"): "append-only format, no update",
    ("extxyz", "update_bulk"): "text file, no update",
    ("extxyz", "update_single"): "text file, no update",
    ("extxyz", "read_single"): "no index: each read re-parses the file",
    ("extxyz", "random_view"): "no index",
    ("extxyz", "random_single"): "no index",
    ("extxyz", "positions_single"): "no index",
    ("extxyz", "open_len"): "no length without parsing every frame",
    ("aselmdb", "random_view"): "no multi-row read by index",
    ("sqlite", "random_view"): "no multi-row read by index",
    (
        "asebytes-mongodb",
        "positions_view",
    ): "dotted-key bug of asebytes 0.3.3: reads nothing / writes a nested field (spec §4.4)",
    (
        "asebytes-mongodb",
        "positions_single",
    ): "dotted-key bug of asebytes 0.3.3: reads nothing / writes a nested field (spec §4.4)",
    (
        "asebytes-mongodb",
        "column_energy",
    ): "dotted-key bug of asebytes 0.3.3: reads nothing / writes a nested field (spec §4.4)",
    (
        "asebytes-mongodb",
        "update_bulk",
    ): "dotted-key bug of asebytes 0.3.3: reads nothing / writes a nested field (spec §4.4)",
    (
        "asebytes-mongodb",
        "update_single",
    ): "dotted-key bug of asebytes 0.3.3: reads nothing / writes a nested field (spec §4.4)",
}

NOTES = {
    "aselmdb": "update = key-value pair `score` (ase.db cannot change a stored energy); "
    "bulk writes and bulk updates in one transaction (`with db:`)",
    "sqlite": "as aselmdb",
    "znh5md": "random view reads sorted indices and reorders (h5py needs increasing "
    "indices); positions and energies read straight from the h5py datasets, NaN padding "
    "stripped",
    "extxyz": "column reads parse every frame",
    "ours-lmdb": "bulk update with `ColumnView.set` (builds without it: the native "
    "`Store.update_many`, the same single request)",
    "ours-memory": "as ours-lmdb; not persistent",
    "ours-zarr": "as ours-lmdb; energies column read packed (one array from the daemon)",
    "ours-h5": "as ours-zarr",
    "ours-h5md": "as ours-zarr; the file is the one znh5md reads",
    "ours-mongodb": "as ours-lmdb, on the run's private SecantusDB server",
    "asebytes-mongodb": "pymongo, same server as ours-mongodb",
}

# Peers on a server the suite starts live in their own modules and join the table here.
from bench_redis import REDIS_NA, REDIS_NOTES, REDIS_PEERS
from bench_redis import start_server as start_redis  # noqa: F401

PEERS.update(REDIS_PEERS)
NA_REASONS.update(REDIS_NA)
NOTES.update(REDIS_NOTES)

from bench_atompack import ATOMPACK_NA, ATOMPACK_NOTES, ATOMPACK_PEERS

PEERS.update(ATOMPACK_PEERS)
NA_REASONS.update(ATOMPACK_NA)
NOTES.update(ATOMPACK_NOTES)

from bench_floor import FLOOR_PEERS

PEERS.update(FLOOR_PEERS)
