"""``AsyncStore`` and ``Call`` against a real daemon, driven by a tiny blocking transport.

The asyncio transport of the package does its I/O in Python; here a plain blocking
socket plays its part (handshake with ``hello_frame``/``finish_hello``, frames from
``Call.frame``, replies routed with ``reply_header`` and decoded by ``Call.finish``), so
every ``Call`` can be checked against what the sync ``Store`` returns on the same store.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import uuid

import ase
import msgpack
import numpy as np
import pytest
from asebytes import _native
from asebytes.exceptions import (
    AsebytesError,
    AsebytesTypeError,
    AsebytesValueError,
    DaemonUnavailableError,
    IndexOutOfRangeError,
    ProtocolVersionError,
    ReadOnlyError,
)

pytestmark = pytest.mark.usefixtures("daemon")


class Wire:
    """One handshaken connection, framed by hand: the asyncio transport's job, blocking."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(_native.ensure_daemon())
        self.sock.sendall(_native.hello_frame())
        self.hello = _native.finish_hello(self.recv())
        self.last_id = 0

    def close(self):
        self.sock.close()

    def recv(self) -> bytes:
        """One reply body (the frame without its 4-byte length prefix)."""
        (n,) = struct.unpack(">I", self._exactly(4))
        return self._exactly(n)

    def _exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "the daemon closed the connection"
            buf += chunk
        return bytes(buf)

    def send(self, call, store: int) -> int:
        self.last_id += 1
        self.sock.sendall(call.frame(self.last_id, store, self.hello["max_frame"]))
        return self.last_id

    def run(self, call, store: int = 0):
        sent = self.send(call, store)
        body = self.recv()
        got, unknown = _native.reply_header(body)
        assert got == sent and not unknown
        return call.finish(body)

    def open(self, astore) -> int:
        return self.run(astore.open())["store"]


@pytest.fixture
def wire():
    w = Wire()
    yield w
    w.close()


def name():
    """Memory stores are shared by name: the sync and async handles meet on one."""
    return f"memory://a-{uuid.uuid4().hex}"


def frame(i):
    return {
        "cell": np.eye(3) * (10.0 + i),
        "pbc": np.array([True, False, True]),
        "arrays.numbers": np.array([6, 6, 8], dtype=np.int64),
        "arrays.positions": np.arange(9.0).reshape(3, 3) + i,
        "calc.energy": -1.5 * i,
        "info.step": i,
        "info.label": f"f{i}",
    }


def same(a, b):
    """Equal values of equal types, through dicts, lists, arrays and Atoms."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, ase.Atoms):
        assert a == b and a.info == b.info
        assert a.get_potential_energy() == b.get_potential_energy()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    else:
        assert a == b


def contents(store):
    return store.get_many(range(len(store)))


READS = [
    ("len", ()),
    ("get", (1,)),
    ("get", (-1, ["calc.energy", "cell"])),
    ("get", (3,)),
    ("get_many", ([2, 0, 2, 3],)),
    ("get_many", ([0, 1], ["info.step"])),
    ("get_many", (np.array([1, 0]), ["info.step", "nope"])),
    ("get_atoms", (0,)),
    ("get_atoms", (3,)),
    ("get_atoms_many", ([1, 0, 3],)),
    ("get_column", ("calc.energy",)),
    ("get_column", ("info.step", [1, 0])),
    ("get_column_numpy", ("arrays.positions", range(3))),
    ("get_column_numpy", ("calc.energy", [2, 0])),
    ("keys", (0,)),
    ("keys", (3,)),
    ("schema_keys", ()),
]


@pytest.mark.parametrize(("op", "args"), READS, ids=[f"{o}{a}" for o, a in READS])
def test_read_calls_return_what_the_sync_store_returns(wire, op, args):
    loc = name()
    sync = _native.Store(loc)
    sync.extend([frame(0), frame(1), frame(2), None])
    astore = _native.AsyncStore(loc)
    store = wire.open(astore)
    same(wire.run(getattr(astore, op)(*args), store), getattr(sync, op)(*args))


WRITES = [
    ("extend", ([frame(7), None],)),
    ("insert", (1, {"a": 1})),
    ("set", (0, {"x": 2})),
    ("set", (1, None)),
    ("set_many", (1, [{"y": 1}, None])),
    ("set_many", (np.int64(0), [{"y": 1}])),
    ("set_many", ([2, 0], [{"y": 1}, {"y": 2}])),
    ("update", (0, {"z": np.float32(3)})),
    ("update_many", (1, [{"z": 1}, {"z": 2}])),
    ("update_many", ([2, 1], [{"z": 1}, {"w": "s"}])),
    ("set_column", ("calc.energy", 1, [1.0, 2.0])),
    ("set_column", ("calc.energy", [2, 0], np.array([5.0, 6.0]))),
    ("delete", (0,)),
    ("delete_range", (0, 2)),
    ("delete_many", (1, 3)),
    ("drop_keys", (["info.step"],)),
    ("drop_keys", (["info.step"], [0])),
    ("reserve", (2,)),
    ("clear", ()),
]


@pytest.mark.parametrize(("op", "args"), WRITES, ids=[f"{o}{a}" for o, a in WRITES])
def test_write_calls_do_what_the_sync_store_does(wire, op, args):
    sync, other = _native.Store(name()), name()
    for loc in (sync.location, other):
        _native.Store(loc).extend([frame(0), frame(1), frame(2)])
    astore = _native.AsyncStore(other)
    store = wire.open(astore)
    same(wire.run(getattr(astore, op)(*args), store), getattr(sync, op)(*args))
    same(contents(_native.Store(other)), contents(sync))


def test_close_and_remove_calls(wire):
    loc = name()
    _native.Store(loc).extend([{"a": 1}])
    astore = _native.AsyncStore(loc)
    store = wire.open(astore)
    assert wire.run(astore.close(), store) is None
    store = wire.open(astore)
    assert wire.run(astore.remove(), store) is None
    # The id is closed with the store: the transport sees UnknownStore and re-opens.
    wire.send(astore.len(), store)
    assert _native.reply_header(wire.recv())[1] is True
    assert wire.run(astore.len(), wire.open(astore)) == 0


def test_open_resolves_to_the_store_id_name_backend_and_capabilities(wire):
    loc = name()
    opened = wire.run(_native.AsyncStore(loc, group="g").open())
    assert set(opened) == {"store", "canonical", "backend", "capabilities", "published"}
    assert opened["canonical"] == f"{loc}#g" and opened["backend"] == "memory"
    assert opened["capabilities"] == _native.Store(loc, group="g").capabilities
    _index, tag, epoch = opened["published"]  # a memory store's generation is published
    assert tag and epoch


def test_pipelined_calls_are_matched_by_id(wire):
    loc = name()
    _native.Store(loc).extend([{"i": i} for i in range(50)])
    astore = _native.AsyncStore(loc)
    store = wire.open(astore)
    calls = {1000 + i: astore.get(i) for i in range(50)}
    wire.sock.sendall(b"".join(c.frame(i, store) for i, c in calls.items()))
    got = {}
    for _ in calls:
        body = wire.recv()
        rid, unknown = _native.reply_header(body)
        assert not unknown
        got[rid] = calls[rid].finish(body)
    assert got == {1000 + i: {"i": i} for i in range(50)}


def test_unknown_store_is_seen_in_the_header_and_raised_by_finish(wire):
    loc = name()
    _native.Store(loc).extend([{"a": 1}])
    astore = _native.AsyncStore(loc)
    call = astore.get(0)
    wire.sock.sendall(call.frame(7, 987654321))
    body = wire.recv()
    assert _native.reply_header(body) == (7, True)
    with pytest.raises(AsebytesError, match="not open"):
        call.finish(body)
    # Other errors are not UnknownStore.
    store = wire.open(astore)
    wire.sock.sendall(astore.get(5).frame(8, store))
    assert _native.reply_header(wire.recv()) == (8, False)


def raised(fn):
    with pytest.raises(AsebytesError) as e:
        fn()
    return e.value


ERRORS = [
    ("get", (5,)),
    ("get", (-9,)),
    ("get", (0, ["nope"])),
    ("get_many", ([0, 7],)),
    ("get_many", ([0], ["nope"], False)),
    ("get_column", ("nope",)),
    ("get_column_numpy", ("nope",)),
    ("get_column_numpy", ("ragged",)),
    ("get_column_numpy", ("a",)),
    ("set", (4, {"a": 1})),  # 3 == len appends
    ("set_many", ([0, 9], [{"a": 1}, {"a": 2}])),
    ("set_column", ("a", 2, [1, 2])),
    ("delete_range", (1, 9)),
]


@pytest.mark.parametrize(("op", "args"), ERRORS, ids=[f"{o}{a}" for o, a in ERRORS])
def test_errors_are_the_sync_stores(wire, op, args):
    loc = name()
    sync = _native.Store(loc)
    sync.extend([{"a": 1, "ragged": np.zeros(2)}, {"ragged": np.zeros(3)}, {"a": 3}])
    before = contents(sync)
    astore = _native.AsyncStore(loc)
    store = wire.open(astore)
    want = raised(lambda: getattr(sync, op)(*args))
    got = raised(lambda: wire.run(getattr(astore, op)(*args), store))
    assert type(got) is type(want) and got.args == want.args
    same(contents(sync), before)


def test_read_only_store_refuses_writes_like_the_sync_store(wire, tmp_path):
    path = str(tmp_path / "ro.lmdb")
    _native.Store(path).extend([{"a": 1}])
    ro = _native.AsyncStore(path, readonly=True)
    store = wire.open(ro)
    with pytest.raises(ReadOnlyError) as e:
        wire.run(ro.extend([{"a": 2}]), store)
    assert str(e.value) == "Backend is read-only" and isinstance(e.value, TypeError)
    assert wire.run(ro.len(), store) == 1


def test_bad_arguments_raise_when_the_call_is_made_not_when_it_is_sent():
    a = _native.AsyncStore(name())
    with pytest.raises(AsebytesTypeError, match="for key 'info.obj'"):
        a.extend([{"a": 2}, {"info.obj": object()}])
    with pytest.raises(AsebytesTypeError, match="indices must be integers"):
        a.get(1.0)
    with pytest.raises(IndexOutOfRangeError):
        a.get(2**70)
    with pytest.raises(AsebytesTypeError, match="not a single 'str'"):
        a.get(0, keys="a")
    with pytest.raises(AsebytesValueError, match="2 indices but 1 rows"):
        a.set_many([0, 1], [{"a": 1}])
    with pytest.raises(AsebytesValueError, match="must be >= 0"):
        a.reserve(-1)
    blob = _native.AsyncStore(name(), tier="blob")
    with pytest.raises(AsebytesTypeError, match="object-tier"):
        blob.get_atoms(0)
    with pytest.raises(AsebytesTypeError, match="object-tier"):
        blob.get_column_numpy(b"k")
    with pytest.raises(AsebytesTypeError, match="must be bytes"):
        blob.extend([{b"k": 1}])


def test_call_frames_are_length_prefixed_and_capped():
    a = _native.AsyncStore(name())
    call = a.get(3, ["x"])
    f = call.frame(5, 9)
    assert struct.unpack(">I", f[:4])[0] == len(f) - 4
    assert msgpack.unpackb(f[4:]) == {
        "id": 5,
        "body": {"Get": {"store": 9, "index": 3, "keys": [b"x"]}},
    }
    assert msgpack.unpackb(call.frame(6, 10)[4:])["body"]["Get"]["store"] == 10
    opener = a.open()
    assert opener.frame(1, 5) == opener.frame(1, 0), "open names no store"
    big = a.extend([{"big": np.zeros(1000)}])
    with pytest.raises(AsebytesValueError, match="split it into smaller batches"):
        big.frame(1, 1, 2000)
    assert len(big.frame(1, 1)) > 8000


def test_blob_calls_wrap_values_as_bins_only_for_typed_value_stores():
    def sent_rows(call, typed_values=False):
        body = msgpack.unpackb(call.frame(1, 2, None, typed_values)[4:])["body"]
        return body["Extend"]["rows"]

    call = _native.AsyncStore(name(), tier="blob").extend([{b"k": b"\x00\xff"}])
    assert sent_rows(call) == [[[b"k", b"\x00\xff"]]], "as given by default"
    for _ in range(2):  # framed again (a reconnect): wrapped once
        assert sent_rows(call, True) == [[[b"k", b"\xc4\x02\x00\xff"]]]
    objects = _native.AsyncStore(name()).extend([{"k": 1}])
    assert sent_rows(objects, True) == [[[b"k", b"\x01"]]], "object values as encoded"


def test_call_properties():
    a = _native.AsyncStore(name())
    assert a.get(0).is_read and a.get(0).name == "get"
    assert a.open().is_read and a.get_column_numpy("k").is_read
    assert not a.extend([]).is_read and a.extend([]).name == "extend"
    assert a.set_column("k", 0, [1]).name == "update_many"
    assert repr(a.len()) == "<Call len>"
    with pytest.raises(TypeError):
        _native.Call()


def test_finish_reads_bytes_bytearray_and_memoryview(wire):
    loc = name()
    _native.Store(loc).extend([{"a": np.arange(3)}])
    astore = _native.AsyncStore(loc)
    store = wire.open(astore)
    call = astore.get(0)
    wire.send(call, store)
    body = wire.recv()
    framed = bytearray(b"\0\0\0\0" + body)
    for form in (body, bytearray(body), memoryview(framed)[4:]):
        np.testing.assert_array_equal(call.finish(form)["a"], np.arange(3))
        assert _native.reply_header(form) == (wire.last_id, False)
    with pytest.raises(TypeError):
        call.finish("not bytes")
    with pytest.raises(AsebytesError, match="unexpected reply"):
        call.finish(b"\x81\xa2id\x01")
    with pytest.raises(AsebytesError, match="unexpected reply"):
        _native.reply_header(b"")


def test_finish_of_an_unexpected_reply_type_is_a_protocol_error(wire):
    loc = name()
    astore = _native.AsyncStore(loc)
    store = wire.open(astore)
    wire.send(astore.len(), store)
    body = wire.recv()
    with pytest.raises(AsebytesError, match="unexpected reply Len"):
        astore.get(0).finish(body)


def test_hello_round_trip(daemon):
    w = Wire()
    try:
        h = w.hello
        st = _native.daemon_status()
        assert h["pid"] == st["pid"] and h["protocol"] == st["protocol"]
        assert h["epoch"] == (h["pid"], h["started_at"])
        assert h["max_frame"] == int(os.environ.get("ASEBYTES_MAX_FRAME", str(1 << 30)))
        assert isinstance(h["daemon_version"], str) and isinstance(h["build_id"], str)
    finally:
        w.close()
    assert _native.ensure_daemon() == daemon
    hello = msgpack.unpackb(_native.hello_frame()[4:])
    assert hello["id"] == 0 and hello["body"]["protocol"] >= 1


def test_refused_and_broken_handshakes_raise_like_the_sync_client():
    refused = msgpack.packb(
        {
            "id": 0,
            "body": {
                "Refused": {
                    "code": "VersionMismatch",
                    "message": "protocol version mismatch",
                }
            },
        }
    )
    with pytest.raises(ProtocolVersionError, match="asebytesd stop"):
        _native.finish_hello(refused)
    with pytest.raises(DaemonUnavailableError, match="broke the protocol"):
        _native.finish_hello(b"\x93garbage")


def test_async_store_constructor_properties_pickle_and_repr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = _native.AsyncStore("sub/../x.lmdb", group="g", readonly=True, map_size=1 << 20)
    assert a.location == os.path.join(str(tmp_path), "x.lmdb")
    assert (a.group, a.readonly, a.tier) == ("g", True, "object")
    assert (
        repr(a)
        == f'AsyncStore("{a.location}", group="g", tier="object", readonly=True)'
    )
    b = pickle.loads(pickle.dumps(a))
    assert type(b) is _native.AsyncStore
    assert (b.location, b.group, b.readonly, b.tier) == (
        a.location,
        "g",
        True,
        "object",
    )
    with pytest.raises(AsebytesValueError, match="tier"):
        _native.AsyncStore("memory://x", tier="rows")
    assert _native.AsyncStore("memory://x", tier="blob").tier == "blob"


class Sub(_native.AsyncStore):
    """A Python subclass pickles as itself."""


def test_async_store_subclasses_pickle_as_themselves():
    s = pickle.loads(pickle.dumps(Sub("memory://sub", tier="blob")))
    assert type(s) is Sub and s.tier == "blob"
