"""The daemon-served backend classes used directly, like any other backend."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import pytest
from asebytes import (
    BlobIO,
    LMDBBlobBackend,
    LMDBObjectBackend,
    LMDBObjectReadBackend,
    MemoryObjectBackend,
    ObjectIO,
    ReadBackend,
    ReadWriteBackend,
)


def test_memory_object_backend_is_usable_directly_and_shared_by_group() -> None:
    group = uuid.uuid4().hex
    a = ObjectIO(MemoryObjectBackend(group=group))
    a.extend([{"x": 1}])
    assert ObjectIO(MemoryObjectBackend(group)).get(0) == {"x": 1}
    assert ObjectIO(MemoryObjectBackend(group=uuid.uuid4().hex)).extend([]) == 0
    MemoryObjectBackend(group).remove()


def test_lmdb_classes_take_the_reference_constructor(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lmdb")
    rw = LMDBObjectBackend(path, "g", 1 << 24)
    assert isinstance(rw, ReadWriteBackend) and rw.group == "g"
    ObjectIO(rw).extend([{"x": 1.5}])
    ro = LMDBObjectReadBackend(path, group="g")
    assert isinstance(ro, ReadBackend) and not isinstance(ro, ReadWriteBackend)
    db = ObjectIO(ro)
    assert db[0] == {"x": 1.5}
    with pytest.raises(TypeError, match="Backend is read-only"):
        db.extend([{"x": 2}])
    blob = BlobIO(LMDBBlobBackend(str(tmp_path / "b.lmdb")))
    blob.extend([{b"k": b"v"}])
    assert blob[0] == {b"k": b"v"}


def test_backend_classes_pickle_as_themselves(tmp_path: Path) -> None:
    group = uuid.uuid4().hex
    for backend in (
        LMDBObjectBackend(str(tmp_path / "p.lmdb"), group="g"),
        LMDBObjectReadBackend(str(tmp_path / "p.lmdb")),
        MemoryObjectBackend(group),
    ):
        copy = pickle.loads(pickle.dumps(backend))
        assert type(copy) is type(backend)
        assert (copy.location, copy.group, copy.readonly) == (
            backend.location,
            backend.group,
            backend.readonly,
        )
    MemoryObjectBackend(group).remove()
