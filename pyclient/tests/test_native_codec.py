"""The native msgpack-numpy codec: byte-compatible with the reference, never pickles.

Golden bytes come from ``msgpack.packb(v, default=msgpack_numpy.encode)`` (what the reference
``asebytes`` stores in LMDB) and, for whole Atoms rows, from the reference package itself run
in its own virtualenv (``.venv-ref``).
"""

from __future__ import annotations

import enum
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import msgpack
import msgpack_numpy
import numpy as np
import pytest
from asebytes import _native
from asebytes.exceptions import AsebytesError, AsebytesTypeError, AsebytesValueError

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"


def ref_pack(v):
    return msgpack.packb(v, default=msgpack_numpy.encode)


def ref_unpack(b):
    return msgpack.unpackb(b, object_hook=msgpack_numpy.decode)


class Color(enum.IntEnum):
    RED = 3


INTS = [
    0,
    1,
    127,
    128,
    255,
    256,
    65535,
    65536,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 1,
    -1,
    -32,
    -33,
    -128,
    -129,
    -32768,
    -32769,
    -(2**31),
    -(2**31) - 1,
    -(2**63),
]

a23 = np.arange(6, dtype=np.float64).reshape(2, 3)

GOLDEN = {
    "none": None,
    "true": True,
    "false": False,
    **{f"int{v}": v for v in INTS},
    "intenum": Color.RED,
    "float": 1.5,
    "negfloat": -2.25,
    "inf": float("inf"),
    "np.float64 is a float": np.float64(2.5),
    "str0": "",
    "str31": "a" * 31,
    "str32": "a" * 32,
    "str255": "a" * 255,
    "str256": "a" * 256,
    "str70000": "b" * 70000,
    "unicode": "ünïcødé ✓",
    "np.str_": np.str_("abc"),
    "bytes0": b"",
    "bytes": b"\x00\xff\x01",
    "bytes300": b"x" * 300,
    "bytes70000": b"y" * 70000,
    "bytearray": bytearray(b"ab"),
    "memoryview": memoryview(b"mv"),
    "memoryview of floats": memoryview(np.arange(2.0)),
    "list0": [],
    "list": [1, "a", None, 2.5],
    "tuple": (1, 2),
    "list20": list(range(20)),
    "dict0": {},
    "dict": {"a": 1, "b": [1, 2]},
    "dict20": {f"k{i}": i for i in range(20)},
    "f8": np.zeros(3),
    "f8 2d": a23,
    "f4": np.linspace(0, 1, 5, dtype=np.float32),
    "f2": np.array([0.5, 1.5], dtype=np.float16),
    "i8": np.arange(9, dtype=np.int64),
    "i4": np.array([-1, 2], dtype=np.int32),
    "i1": np.array([-1, 2], dtype=np.int8),
    "u1": np.array([1, 255], dtype=np.uint8),
    "u8": np.array([2**64 - 1], dtype=np.uint64),
    "b1": np.array([True, False, True]),
    "c16": np.array([1 + 2j, -3j]),
    "c8": np.array([1 + 2j], dtype=np.complex64),
    ">f8": np.arange(3, dtype=">f8"),
    ">i4": np.arange(3, dtype=">i4"),
    "0-d": np.array(5.0),
    "0-d int": np.array(7, dtype=np.int16),
    "empty": np.zeros(0),
    "(0,3)": np.zeros((0, 3)),
    "non-contiguous": a23[:, ::2],
    "fortran": np.asfortranarray(a23),
    "transposed": a23.T,
    "U5": np.array(["ab", "cdefg"]),
    "S3": np.array([b"ab", b"xyz"]),
    "np.int64": np.int64(3),
    "np.int32": np.int32(-2),
    "np.uint8": np.uint8(7),
    "np.float32": np.float32(1.5),
    "np.float16": np.float16(0.25),
    "np.complex128": np.complex128(1 + 2j),
    "np.complex64": np.complex64(1 - 2j),
    "np.bool_": np.bool_(True),
    "np.longdouble": np.longdouble(1.25),
    "complex": complex(1, 2),
    "imag": 2j,
    "nested": {
        "info": {
            "arr": np.ones((2, 2)),
            "list": [np.int8(1), {"x": np.zeros(1)}],
            "s": "t",
        }
    },
    "list of arrays": [np.zeros(2), np.ones(3, dtype=np.int32)],
}


# msgpack_numpy cannot pack these (numpy refuses their buffer); we store them in the same
# layout, with `dtype.str` as the type.
BEYOND_REFERENCE = {
    "M8": np.array(["2024-01-02T03:04:05"], dtype="datetime64[ns]"),
    "m8": np.array([5, -1], dtype="timedelta64[s]"),
}


@pytest.mark.parametrize("name", list(BEYOND_REFERENCE))
def test_datetime_arrays_use_the_same_layout_and_round_trip(name):
    v = BEYOND_REFERENCE[name]
    raw = _native.encode_value(v)
    layout = {
        b"nd": True,
        b"type": v.dtype.str,
        b"kind": b"",
        b"shape": list(v.shape),
        b"data": v.tobytes(),
    }
    assert raw == msgpack.packb(layout)
    got = _native.decode_value(raw)
    assert got.dtype == v.dtype and (got == v).all()
    same(ref_unpack(raw), v)


@pytest.mark.parametrize("name", list(GOLDEN))
def test_bytes_equal_the_reference(name):
    v = GOLDEN[name]
    assert _native.encode_value(v) == ref_pack(v)


def same(a, b):
    """Deep equality that also checks types, dtypes and shapes."""
    if type(b) in (np.float64, np.str_):
        b = b.item()
    if isinstance(b, memoryview):
        b = b.tobytes()
    if isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray), (a, b)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == np.ascontiguousarray(b).tobytes()
        return
    if isinstance(b, np.generic):
        assert type(a) is type(b) and a.dtype == b.dtype, (a, b)
        assert a.tobytes() == b.tobytes()
        return
    if isinstance(b, (list, tuple)):
        assert type(a) is list and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            same(x, y)
        return
    if isinstance(b, dict):
        assert type(a) is dict and list(a) == list(b), (a, b)
        for k in b:
            same(a[k], b[k])
        return
    if isinstance(b, float) and math.isnan(b):
        assert math.isnan(a)
        return
    expected_type = {bytearray: bytes, Color: int}.get(type(b), type(b))
    assert type(a) is expected_type, (a, b)
    assert a == b


@pytest.mark.parametrize("name", list(GOLDEN))
def test_round_trip_keeps_type_dtype_and_shape(name):
    v = GOLDEN[name]
    got = _native.decode_value(_native.encode_value(v))
    same(got, v)
    # And it equals what the reference decodes from the same bytes.
    same(got, ref_unpack(ref_pack(v)))


def test_nan_round_trips():
    got = _native.decode_value(_native.encode_value(float("nan")))
    assert isinstance(got, float) and math.isnan(got)


def test_decoded_arrays_are_writable_and_owned():
    for v in (
        np.arange(12.0).reshape(3, 4),
        np.array(1.0),
        np.zeros((0, 3)),
        np.arange(3, dtype=">i4"),
    ):
        data = _native.encode_value(v)
        a = _native.decode_value(data)
        assert a.flags.writeable and a.flags.owndata and a.flags.c_contiguous
        if a.size:
            a.flat[0] = 42
            assert _native.decode_value(data).flat[0] != 42


def test_decoding_reads_the_reference_layout_with_other_map_orders():
    # A map whose nd fields come in another order (or after other keys) is still an array.
    raw = msgpack.packb(
        {
            b"data": np.arange(3.0).tobytes(),
            b"shape": [3],
            b"kind": b"",
            b"type": "<f8",
            b"nd": True,
        }
    )
    np.testing.assert_array_equal(_native.decode_value(raw), np.arange(3.0))
    # A map that has nd but lacks a field is a plain dict, as msgpack_numpy decides.
    raw = msgpack.packb({b"nd": True, b"type": "<f8"})
    assert _native.decode_value(raw) == ref_unpack(raw) == {b"nd": True, b"type": "<f8"}
    # str keys "nd" are not the marker.
    raw = msgpack.packb({"nd": True, "type": "x"})
    assert _native.decode_value(raw) == {"nd": True, "type": "x"}
    # float32 on the wire decodes to a Python float.
    assert _native.decode_value(msgpack.packb(1.5, use_single_float=True)) == 1.5


def test_object_arrays_are_refused_naming_the_key():
    with pytest.raises(
        AsebytesTypeError, match=r"cannot store object-dtype array for key 'info.x'"
    ) as e:
        _native.encode_value(np.array([object()], dtype=object), "info.x")
    assert isinstance(e.value, TypeError) and isinstance(e.value, AsebytesError)
    with pytest.raises(TypeError, match=r"object-dtype array for key 'info.d.a\[1\]'"):
        _native.encode_value({"a": [1, np.array([None], dtype=object)]}, "info.d")


def test_structured_arrays_are_refused():
    s = np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")])
    with pytest.raises(
        AsebytesTypeError, match=r"structured-dtype array.*for key 'arrays.s'"
    ):
        _native.encode_value(s, "arrays.s")


def test_arbitrary_objects_are_refused_never_pickled():
    class Foo:
        pass

    with pytest.raises(AsebytesTypeError) as e:
        _native.encode_value(Foo(), "info.obj")
    assert (
        str(e.value)
        == "cannot store value of type 'Foo' for key 'info.obj'; nothing is pickled"
    )
    for bad in ({1, 2}, object(), np.datetime64("2020-01-01"), Path("/x")):
        with pytest.raises(TypeError, match="nothing is pickled"):
            _native.encode_value(bad)


def test_non_str_dict_keys_are_refused_with_the_path():
    with pytest.raises(
        AsebytesTypeError, match=r"non-str key 1 \(type 'int'\) for key 'info.d.a'"
    ):
        _native.encode_value({"a": {1: 2}}, "info.d")
    with pytest.raises(TypeError, match="non-str key b'x'"):
        _native.encode_value({b"x": 1})


def test_ints_beyond_64_bits_are_refused():
    for v in (2**64, -(2**63) - 1, 10**30):
        with pytest.raises(AsebytesTypeError, match="does not fit in 64 bits"):
            _native.encode_value(v, "info.big")


def test_self_containing_values_fail_cleanly():
    a = []
    a.append(a)
    with pytest.raises(AsebytesValueError, match="nested deeper"):
        _native.encode_value(a)


class _Marker:
    """Unpickling this would create a file: proof that nothing is unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_pickled_object_arrays_are_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    arr = np.array([_Marker(str(marker))], dtype=object)
    raw = msgpack.packb(
        {
            b"nd": True,
            b"type": "|O",
            b"kind": b"O",
            b"shape": [1],
            b"data": pickle.dumps(arr),
        }
    )
    with pytest.raises(AsebytesValueError, match="never unpickles") as e:
        _native.decode_value(raw)
    assert isinstance(e.value, ValueError)
    assert not marker.exists()


@pytest.mark.parametrize("type_str", ["|O", "O", "T", "V8", "<f8,<i4"])
def test_pointer_dtypes_are_never_filled_from_bytes(type_str):
    raw = msgpack.packb(
        {
            b"nd": True,
            b"type": type_str,
            b"kind": b"",
            b"shape": [1],
            b"data": b"\x01" * 16,
        }
    )
    with pytest.raises(AsebytesValueError):
        _native.decode_value(raw)
    raw = msgpack.packb({b"nd": False, b"type": type_str, b"data": b"\x01" * 16})
    with pytest.raises(AsebytesValueError):
        _native.decode_value(raw)


def test_corrupt_input_raises_value_errors():
    good = _native.encode_value({"a": np.arange(10.0)})
    for bad in (
        good[:-1],
        good[:5],
        b"",
        b"\xc1",
        good + b"\x00",
        b"\xdd\xff\xff\xff\xff",
    ):
        with pytest.raises(ValueError):
            _native.decode_value(bad)
    short = msgpack.packb(
        {
            b"nd": True,
            b"type": "<f8",
            b"kind": b"",
            b"shape": [100],
            b"data": b"\x00" * 8,
        }
    )
    with pytest.raises(AsebytesValueError, match="needs more"):
        _native.decode_value(short)
    with pytest.raises(AsebytesValueError, match="extension"):
        _native.decode_value(msgpack.packb(msgpack.ExtType(1, b"x")))
    deep = b"\x91" * 10000 + b"\xc0"
    with pytest.raises(AsebytesValueError, match="nested deeper"):
        _native.decode_value(deep)


def test_lying_list_lengths_do_not_allocate_what_they_announce():
    import tracemalloc

    # 400 nested array32 headers, each announcing as many items as bytes remain.
    tail = 1 << 16
    raw = b"".join(
        b"\xdd" + (((400 - level) * 5 + tail) // 2).to_bytes(4, "big")
        for level in range(400)
    )
    raw += b"\xc0" * tail
    tracemalloc.start()
    try:
        with pytest.raises(AsebytesValueError):
            _native.decode_value(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * len(raw), peak


def test_rows_encode_per_field_and_decode_back():
    row = {"calc.energy": -1.5, "arrays.positions": np.ones((2, 3)), "info.label": "x"}
    enc = _native.encode_row(row)
    assert enc == {k.encode(): ref_pack(v) for k, v in row.items()}
    dec = _native.decode_row(enc)
    same(dec, row)
    with pytest.raises(AsebytesTypeError, match="keys must be str"):
        _native.encode_row({b"k": 1})
    with pytest.raises(AsebytesTypeError, match="for key 'info.o'"):
        _native.encode_row({"info.o": object()})
    with pytest.raises(AsebytesValueError, match="info.bad"):
        _native.decode_row({b"info.bad": b"\xc1"})


REF_SCRIPT = r"""
import pickle, sys
import numpy as np
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
import asebytes
atoms = molecule("CH3CH2OH")
atoms.cell = np.eye(3) * 10
atoms.pbc = [True, False, True]
atoms.info.update({"step": 3, "label": "ethanol", "nested": {"a": [1, 2]}, "arr": np.arange(3)})
atoms.set_constraint(FixAtoms(indices=[0, 2]))
atoms.set_initial_charges(np.linspace(-1, 1, len(atoms)))
atoms.calc = SinglePointCalculator(atoms, energy=-1.25, forces=np.ones((len(atoms), 3)), stress=np.arange(6.0))
sys.stdout.buffer.write(pickle.dumps(asebytes.encode(atoms)))
"""


@pytest.mark.skipif(
    not REF_PYTHON.exists() and not os.environ.get("CI"),
    reason="reference virtualenv .venv-ref not present (`just ref-venv`; required in CI)",
)
def test_reference_rows_decode_and_re_encode_byte_identically():
    out = subprocess.run(
        [str(REF_PYTHON), "-c", REF_SCRIPT], check=True, capture_output=True
    ).stdout
    ref_row = pickle.loads(
        out
    )  # a dict[bytes, bytes] made by our own test process's sibling
    decoded = _native.decode_row(ref_row)
    assert set(decoded) == {k.decode() for k in ref_row}
    for k, v in ref_row.items():
        same(decoded[k.decode()], ref_unpack(v))
    assert _native.encode_row(decoded) == ref_row
    assert decoded["arrays.positions"].dtype == np.float64 and decoded[
        "arrays.positions"
    ].shape == (9, 3)
    assert decoded["calc.energy"] == -1.25 and type(decoded["info.step"]) is int


def test_invalid_utf8_str_is_a_value_error():
    with pytest.raises(ValueError):
        _native.decode_value(b"\xa2\xff\xfe")


def test_surrogate_strings_are_refused_at_write_time():
    with pytest.raises(AsebytesValueError, match="not valid Unicode"):
        _native.encode_value("\ud800")


def test_surrogate_keys_raise_the_package_value_error():
    for call in (
        lambda: _native.encode_row({"\ud800": 1}),
        lambda: _native.encode_row({"ok": {"\udcff": 1}}),
        lambda: _native.encode_value({"\ud800": 1}),
        lambda: _native.decode_row({"\ud800": _native.encode_value(1)}),
    ):
        with pytest.raises(AsebytesValueError, match="not valid Unicode") as e:
            call()
        assert isinstance(e.value, ValueError)
        assert not isinstance(e.value, UnicodeError)


def test_complex_numbers_are_written_as_the_reference_writes_them():
    rng = np.random.default_rng(8)
    special = [0.0, -0.0, 1.0, 1e16, 1e-5, 1e-4, 1e15, math.inf, -math.inf, math.nan]
    values = [complex(a, b) for a in special for b in special]
    values += [
        complex(*(rng.uniform(-1, 1, 2) * 10.0 ** rng.integers(-30, 30, 2)))
        for _ in range(500)
    ]
    for z in values:
        raw = _native.encode_value(z)
        assert raw == ref_pack(z), z
        back = _native.decode_value(raw)
        assert type(back) is complex and repr(back) == repr(ref_unpack(raw))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
