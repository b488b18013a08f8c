"""The native ``Store`` against a real daemon (started on demand on a private socket)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest
from asebytes import _native
from asebytes.exceptions import (
    AsebytesError,
    AsebytesTypeError,
    AsebytesValueError,
    IndexOutOfRangeError,
    KeyNotFoundError,
    ReadOnlyError,
)

pytestmark = pytest.mark.usefixtures("daemon")


def mem():
    """A fresh in-memory store (memory stores are shared by name, so names are unique)."""
    return _native.Store(f"memory://t-{uuid.uuid4().hex}")


def frame(i):
    return {
        "cell": np.eye(3) * (10.0 + i),
        "pbc": np.array([True, False, True]),
        "arrays.numbers": np.array([6, 6, 8], dtype=np.int64),
        "arrays.positions": np.arange(9.0).reshape(3, 3) + i,
        "calc.energy": -1.5 * i,
        "info.step": i,
        "info.label": f"f{i}",
        "info.meta": {"nested": [1, 2.5, "x"], "arr": np.arange(i + 1, dtype=np.int32)},
    }


def assert_rows_equal(a, b):
    assert sorted(a) == sorted(b), "field order is the backend's (LMDB sorts)"
    for k in b:
        if isinstance(b[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            np.testing.assert_array_equal(a[k], b[k])
        elif k == "info.meta":
            assert a[k]["nested"] == b[k]["nested"]
            np.testing.assert_array_equal(a[k]["arr"], b[k]["arr"])
        else:
            assert a[k] == b[k] and type(a[k]) is type(b[k])


def test_extend_get_round_trip_keeps_types():
    s = mem()
    assert len(s) == 0 and s.len() == 0
    assert s.extend([frame(i) for i in range(5)]) == 5
    assert len(s) == 5
    for i in range(5):
        assert_rows_equal(s.get(i), frame(i))
    got = s.get(2)
    got["arrays.positions"][0, 0] = 1e9  # the caller's own copy
    assert s.get(2)["arrays.positions"][0, 0] == 2.0


def test_indices_accept_numpy_ints_bools_and_negatives():
    s = mem()
    s.extend([{"i": i} for i in range(4)])
    assert s.get(-1) == {"i": 3}
    assert s.get(np.int64(2)) == {"i": 2}
    assert s.get(np.uint8(1)) == {"i": 1}
    assert s.get(True) == {"i": 1}
    with pytest.raises(AsebytesTypeError, match="indices must be integers"):
        s.get(1.0)
    with pytest.raises(IndexOutOfRangeError) as e:
        s.get(4)
    assert str(e.value) == "Index 4 out of range [0, 4)"
    assert isinstance(e.value, IndexError) and isinstance(e.value, AsebytesError)
    with pytest.raises(IndexError):
        s.get(-5)
    with pytest.raises(IndexError):
        s.get(2**70)


def test_get_with_keys_is_strict_and_placeholders_are_none():
    s = mem()
    s.extend([{"a": 1, "b": 2}, None, {}])
    assert s.get(0, keys=["b"]) == {"b": 2}
    assert s.get(1) is None and s.get(1, keys=["a"]) is None
    assert s.get(2) is None, "an empty row is a placeholder"
    with pytest.raises(KeyNotFoundError) as e:
        s.get(0, keys=["a", "zz"])
    assert "Invalid keys at index 0" in str(e.value) and isinstance(e.value, KeyError)
    with pytest.raises(AsebytesTypeError, match="not a single 'str'"):
        s.get(0, keys="a")
    with pytest.raises(AsebytesTypeError, match="keys must be str"):
        s.get(0, keys=[b"a"])


def test_get_many_in_order_with_duplicates_keys_and_missing_ok():
    s = mem()
    s.extend([{"i": i, "sq": i * i} if i % 3 else {"i": i} for i in range(1000)])
    idx = list(range(999, -1, -1))
    rows = s.get_many(idx)
    assert [r["i"] for r in rows] == idx
    assert s.get_many(np.array([5, 5, -1])) == [
        {"i": 5, "sq": 25},
        {"i": 5, "sq": 25},
        {"i": 999},
    ]
    assert s.get_many(range(3), keys=["sq"]) == [
        {},
        {"sq": 1},
        {"sq": 4},
    ], "missing_ok=True is the default, as reference backends return present keys"
    with pytest.raises(KeyNotFoundError, match="Invalid keys"):
        s.get_many([0], keys=["sq"], missing_ok=False)
    assert s.get_many([]) == []
    assert s.get_many(np.array([], dtype=np.int64)) == []
    with pytest.raises(AsebytesTypeError, match="integers"):
        s.get_many(np.array([0.5]))
    with pytest.raises(IndexError):
        s.get_many([0, 1000])


def test_get_column_and_keys():
    s = mem()
    s.extend([{"e": 1.0, "f": np.zeros(2)}, None, {"e": 3.0}])
    assert s.get_column("e") == [1.0, None, 3.0]
    col = s.get_column("f", [0, 2])
    assert col[1] is None and col[0].dtype == np.float64
    assert s.get_column("e", np.array([2, 0])) == [3.0, 1.0]
    with pytest.raises(KeyNotFoundError) as e:
        s.get_column("nope")
    assert e.value.args == ("nope",) and str(e.value) == "'nope'"
    assert s.keys(0) == ["e", "f"]
    assert s.keys(1) == []
    assert s.schema_keys() == ["e", "f"]


def test_writes():
    s = mem()
    assert s.extend([{"i": 0}, {"i": 1}, {"i": 2}]) == 3
    assert s.insert(0, {"i": -1}) == 4
    assert s.insert(100, {"i": 99}) == 5, "insert clamps like list.insert"
    s.set(-1, {"i": 3})
    s.set_many([0, 1], [{"i": "a"}, None])
    assert s.get_many([0, 1, 4]) == [{"i": "a"}, None, {"i": 3}]
    s.update(0, {"x": np.int16(5)})
    s.update_many(np.array([2, 3]), [{"x": 1}, {"x": 2}])
    assert s.get(0) == {"i": "a", "x": np.int16(5)} and type(s.get(0)["x"]) is np.int16
    assert s.get_column("x") == [np.int16(5), None, 1, 2, None]
    assert s.delete(1) == 4
    assert s.delete_range(0, 2) == 2
    assert s.get_column("i") == [2, 3]
    s.drop_keys(["x"])
    assert s.schema_keys() in (["i"], ["i", "x"])
    assert s.keys(0) == ["i"]
    assert s.reserve(2) == 4
    assert s.get(3) is None
    with pytest.raises(AsebytesValueError, match="2 indices but 1 rows"):
        s.set_many([0, 1], [{"i": 1}])
    with pytest.raises(IndexOutOfRangeError):
        s.set(5, {"i": 1})  # 4 == len appends; beyond is out of range
    with pytest.raises(IndexOutOfRangeError, match="non-negative"):
        s.delete_range(-1, 2)
    with pytest.raises(AsebytesValueError):
        s.reserve(-1)
    s.clear()
    assert len(s) == 0


def test_bad_values_fail_before_anything_is_written():
    s = mem()
    s.extend([{"a": 1}])
    with pytest.raises(AsebytesTypeError, match="for key 'info.obj'"):
        s.extend([{"a": 2}, {"info.obj": object()}])
    with pytest.raises(TypeError, match="object-dtype array for key 'x'"):
        s.update(0, {"x": np.array([None], dtype=object)})
    with pytest.raises(AsebytesTypeError, match="rows must be a sequence of dicts"):
        s.extend({"a": 1})
    with pytest.raises(AsebytesTypeError, match="a row must be a dict, got .list."):
        s.extend([[("a", 1)]])
    with pytest.raises(AsebytesTypeError, match="a row must be a dict, got 'NoneType'"):
        s.update(0, None)
    assert len(s) == 1 and s.get(0) == {"a": 1}


def test_blob_tier_stores_bytes_as_given():
    name = f"memory://b-{uuid.uuid4().hex}"
    b = _native.Store(name, tier="blob")
    assert b.tier == "blob"
    b.extend([{b"k": b"\x00\x01", "s": b"str key ok"}, None])
    assert b.get(0) == {b"k": b"\x00\x01", b"s": b"str key ok"}
    assert b.get(1) is None
    assert b.get(0, keys=[b"k"]) == {b"k": b"\x00\x01"}
    assert b.get_column(b"k") == [b"\x00\x01", None]
    assert b.keys(0) == [b"k", b"s"]
    with pytest.raises(AsebytesTypeError, match="must be bytes"):
        b.extend([{b"k": 1}])
    # The object tier reads what the blob tier wrote when it is msgpack-numpy.
    b.extend([{b"e": _native.encode_value(np.arange(3))}])
    np.testing.assert_array_equal(_native.Store(name).get(2)["e"], np.arange(3))


def test_properties_and_capabilities():
    s = mem()
    assert s.group is None and s.readonly is False and s.tier == "object"
    assert s.location.startswith("memory://")
    assert s.canonical.startswith("memory://") and s.canonical.endswith("#default")
    assert s.backend_name == "memory"
    caps = s.capabilities
    assert caps["read"] and caps["write"] and caps["write_can_insert"]
    assert all(isinstance(v, bool) for v in caps.values())
    g = _native.Store(s.location, group="g2")
    assert g.canonical.endswith("#g2")
    with pytest.raises(AsebytesValueError, match="tier"):
        _native.Store("memory://x", tier="rows")


def test_relative_paths_are_made_absolute_at_construction(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = _native.Store("sub/../data.lmdb")
    assert s.location == os.path.join(str(tmp_path), "data.lmdb")
    (tmp_path / "link").symlink_to(tmp_path)
    s = _native.Store("link/x.lmdb")
    assert s.location == os.path.join(str(tmp_path), "link", "x.lmdb"), (
        "symlinks are not resolved"
    )
    assert _native.Store("lmdb://rel.lmdb").location == "lmdb://rel.lmdb"


def test_lmdb_store_persists_pickles_and_reads_readonly(tmp_path):
    path = str(tmp_path / "p.lmdb")
    s = _native.Store(path, map_size=1 << 24)
    s.extend([frame(0), frame(1)])
    assert s.backend_name == "lmdb" and s.capabilities["persistent"]
    clone = pickle.loads(pickle.dumps(s))
    assert clone.location == path and clone.tier == "object"
    assert_rows_equal(clone.get(1), frame(1))
    ro = _native.Store(path, readonly=True)
    assert len(ro) == 2
    with pytest.raises(ReadOnlyError) as e:
        ro.extend([frame(2)])
    assert str(e.value) == "Backend is read-only" and isinstance(e.value, TypeError)
    assert len(s) == 2
    assert _native.list_groups(path) == ["default"]
    _native.Store(path, group="other").extend([{"a": 1}])
    assert _native.list_groups(path) == ["default", "other"]


def test_lmdb_field_name_limit_is_the_same_in_every_row(tmp_path):
    s = _native.Store(str(tmp_path / "k.lmdb"), map_size=1 << 24)
    longest, too_long = "k" * 490, "k" * 491
    s.extend([{longest: 1}])
    s.extend([{"a": 1}] * 10)
    s.extend([{longest: 2}])
    assert s.get(11) == {longest: 2}
    messages = set()
    for _ in range(2):  # row 12 (two-digit sort key), then row 12 again
        with pytest.raises(AsebytesValueError, match="at most 490 bytes") as e:
            s.extend([{too_long: 1}])
        messages.add(str(e.value))
    s2 = _native.Store(str(tmp_path / "k2.lmdb"), map_size=1 << 24)
    with pytest.raises(AsebytesValueError, match="at most 490 bytes") as e:
        s2.extend([{too_long: 1}])  # row 0 (one-digit sort key)
    messages.add(str(e.value))
    assert len(messages) == 1, messages
    assert len(s) == 12 and len(s2) == 0


def test_close_and_remove_reopen_lazily():
    s = mem()
    s.extend([{"a": 1}])
    s.close()
    s.close()
    assert len(s) == 1, "a closed handle re-opens on use"
    s.remove()
    assert len(s) == 0, "after remove the next use opens a fresh store"


def test_threads_share_the_pool():
    s = mem()
    s.extend([{"i": i} for i in range(50)])
    errors = []

    def work(t):
        try:
            for k in range(200):
                i = (k * 7 + t) % 50
                assert s.get(i) == {"i": i}
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_fork_child_uses_its_own_connections():
    s = mem()
    s.extend([{"i": 1}])
    assert s.get(0) == {"i": 1}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not read the parent's replies
        try:
            ok = (
                all(s.get(0) == {"i": 1} for _ in range(200))
                and s.extend([{"i": 2}]) == 2
            )
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    for _ in range(200):
        assert s.get(0) == {"i": 1}
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    os.close(r)
    assert len(s) == 2


def test_ping_status_and_socket(daemon):
    _native.ping()
    st = _native.daemon_status()
    assert st["socket"] == daemon and st["protocol"] >= 1 and st["pid"] > 0
    assert isinstance(st["stores"], list)
    assert _native.socket_path() == daemon


def test_daemon_restart_is_transparent(tmp_path, daemon):
    path = str(tmp_path / "r.lmdb")
    s = _native.Store(path)
    s.extend([{"a": 1}, {"a": 2}])
    old = _native.daemon_status()["pid"]
    assert _native.daemon_main(["asebytesd", "stop", "--socket", daemon]) == 0
    # Every pooled connection is dead and the store id is stale: one reconnect (spawning a
    # new daemon) and one re-open later the read succeeds.
    assert s.get(1) == {"a": 2}
    assert _native.daemon_status()["pid"] != old
    assert s.extend([{"a": 3}]) == 3


UNAVAILABLE = r"""
import os, sys
from asebytes import _native
from asebytes.exceptions import DaemonUnavailableError
_native.set_daemon_command(["/nonexistent/asebytesd-nope"])
try:
    _native.ping()
except DaemonUnavailableError as e:
    assert isinstance(e, ConnectionError)
    print(str(e))
    sys.exit(0)
sys.exit(1)
"""


def test_unreachable_daemon_names_socket_and_log(tmp_path):
    sock = str(tmp_path / "d" / "asebytesd.sock")
    env = dict(os.environ, ASEBYTES_SOCKET=sock, ASEBYTES_STARTUP_TIMEOUT="2")
    out = subprocess.run(
        [sys.executable, "-c", UNAVAILABLE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert sock in out.stdout and "asebytesd.log" in out.stdout


def test_store_with_unknown_backend_raises_from_the_daemon(tmp_path):
    s = _native.Store(str(tmp_path / "x.unknownext"))
    with pytest.raises(AsebytesError):
        len(s)


FRAME_CAP = r"""
import sys
import numpy as np
from asebytes import _native
from asebytes.exceptions import AsebytesValueError
s = _native.Store(sys.argv[1])
s.extend([{"a": 1}])
try:
    s.extend([{"big": np.zeros(1000)}])
except AsebytesValueError as e:
    assert "frame limit" in str(e), e
    assert len(s) == 1
    print("refused")
"""


def test_requests_over_the_frame_cap_are_refused_before_sending(daemon):
    env = dict(os.environ, ASEBYTES_MAX_FRAME="2000")
    name = f"memory://cap-{uuid.uuid4().hex}"
    out = subprocess.run(
        [sys.executable, "-c", FRAME_CAP, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0 and out.stdout.strip() == "refused", out.stderr
