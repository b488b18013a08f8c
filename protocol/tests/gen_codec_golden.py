"""Regenerates golden/codec_cases.rs: msgpack-numpy bytes made by the reference libraries.

Run from the repository root with a Python that has msgpack and msgpack-numpy (the
project's .venv after ``./dev venv``)::

    .venv/bin/python protocol/tests/gen_codec_golden.py > protocol/tests/golden/codec_cases.rs

Every case is ``msgpack.packb(v, default=msgpack_numpy.encode)`` of a Python value, with
the Rust ``Value`` the codec must decode it to (and encode back to the same bytes).
"""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import msgpack
import msgpack_numpy
import numpy as np


def pack(v: Any) -> bytes:
    return msgpack.packb(v, default=msgpack_numpy.encode)


def unpack(b: bytes) -> Any:
    return msgpack.unpackb(b, object_hook=msgpack_numpy.decode)


def f64(x: float) -> str:
    if x == 0.0 and math.copysign(1.0, x) > 0:
        return "0.0"
    (bits,) = struct.unpack("<Q", struct.pack("<d", x))
    return f"f64::from_bits(0x{bits:016x})"


def rstr(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'


def rust(v: Any) -> str:
    """The Rust expression of the ``Value`` the codec must produce for ``v``."""
    if v is None:
        return "Nil"
    if isinstance(v, bool):
        return f"Bool({'true' if v else 'false'})"
    if isinstance(v, str):  # np.str_ too: msgpack packs str subclasses as str
        return f"Str({rstr(v)}.into())"
    if isinstance(v, np.ndarray):
        shape = ", ".join(str(d) for d in v.shape)
        data = np.ascontiguousarray(v).tobytes().hex()
        return f'arr({rstr(v.dtype.str)}, &[{shape}], "{data}")'
    if isinstance(v, np.generic) and not isinstance(v, np.float64):
        return f'sc({rstr(v.dtype.str)}, "{v.tobytes().hex()}")'
    if isinstance(v, int):
        return f"Int({v})" if -(2**63) <= v < 2**63 else f"UInt({v})"
    if isinstance(v, float):
        return f"Float({f64(v)})"
    if isinstance(v, complex):
        return f"Complex({f64(v.real)}, {f64(v.imag)})"
    if isinstance(v, bytes):
        return f'Bin(h("{v.hex()}"))'
    if isinstance(v, (list, tuple)):
        return "List(vec![" + ", ".join(rust(x) for x in v) + "])"
    if isinstance(v, dict):
        items = ", ".join(f"({rstr(k)}.into(), {rust(x)})" for k, x in v.items())
        return f"Map(vec![{items}])"
    raise TypeError(type(v))


def roundtrip_cases() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = [
        ("nil", None),
        ("true", True),
        ("false", False),
    ]
    for i in [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1]:
        cases.append((f"int_{i}", i))
    for i in [
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
    ]:
        cases.append((f"int_minus_{-i}", i))
    cases += [("uint_2_63", 2**63), ("uint_max", 2**64 - 1)]
    floats = [0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, math.inf, -math.inf, math.nan]
    cases += [(f"float_{i}", x) for i, x in enumerate(floats)]
    cases += [("float64_scalar", np.float64(2.5))]
    cases += [
        ("str_empty", ""),
        ("str_key", "calc.energy"),
        ("str_unicode", "Å€😀"),
        ("str8", "x" * 40),
        ("str16", "y" * 300),
        ("bin_empty", b""),
        ("bin_small", b"\x00\x01\xff"),
        ("bin16", bytes(range(256)) + bytes(44)),
        ("list_empty", []),
        ("list_mixed", [1, 2.5, "x", None, True, b"b"]),
        ("tuple", (1, 2)),
        ("list_nested", [[[]], [[1]]]),
        ("list16", list(range(20))),
        ("dict_empty", {}),
        ("dict_nested", {"a": 1, "b": {"c": [1, 2]}, "d": None}),
        ("dict16", {f"k{i}": i for i in range(20)}),
    ]
    dtypes = ["|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8"]
    dtypes += ["<f2", "<f4", "<f8", "<c8", "<c16", ">f8", ">i4", ">c16"]
    rng = np.random.default_rng(8)
    for dt in dtypes:
        name = dt.strip("<>|")
        order = {"<": "le", ">": "be", "|": ""}[dt[0]]
        tag = f"{name}{'_' + order if order == 'be' else ''}"
        for shape in [(), (3,), (2, 3, 2), (0,), (2, 0, 3)]:
            raw = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dt).itemsize)
            a = np.frombuffer(raw.astype(np.uint8).tobytes(), dtype=dt).reshape(shape)
            if dt == "|b1":
                a = a.astype(bool) if a.size else a
            dims = "x".join(str(d) for d in shape) or "0d"
            cases.append((f"array_{tag}_{dims}", a.copy()))
    cases += [
        ("array_f8_positions", np.arange(27, dtype=np.float64).reshape(9, 3) / 7),
        ("array_transposed", np.arange(6, dtype="<i8").reshape(2, 3).T),
        ("array_U5", np.array(["ab", "Å€😀"], dtype="<U5")),
        ("array_S3", np.array([b"ab", b"xyz"], dtype="|S3")),
        ("array_big", np.zeros((300,), dtype="<f8")),
    ]
    scalars = [
        np.bool_(True),
        np.bool_(False),
        np.int8(-5),
        np.int16(-300),
        np.int32(70000),
        np.int64(3),
        np.uint8(200),
        np.uint16(60000),
        np.uint32(4_000_000_000),
        np.uint64(2**64 - 1),
        np.float16(1.5),
        np.float32(-0.1),
        np.complex64(1 - 2j),
        np.complex128(1.5 + 2.5j),
        np.str_("hi"),
    ]
    cases += [(f"scalar_{type(s).__name__}_{i}", s) for i, s in enumerate(scalars)]
    complexes = [
        1 + 2j,
        2j,
        complex(-0.0, 2.0),
        0j,
        complex(0.0, -0.0),
        complex(math.nan, math.inf),
        complex(-math.inf, -math.nan),
        complex(1e16, 1e-5),
        complex(1e15, 1e-4),
        complex(0.1, 1 / 3),
        complex(5e-324, 1e308),
    ]
    r = random.Random(8)
    for _ in range(40):
        re = r.uniform(-1, 1) * 10 ** r.randint(-25, 25)
        im = r.uniform(-1, 1) * 10 ** r.randint(-25, 25)
        complexes.append(complex(re, im))
    cases += [(f"complex_{i}", z) for i, z in enumerate(complexes)]
    cases += [
        (
            "info_dict",
            {
                "config": {
                    "step": np.int64(7),
                    "tags": ["a", "b"],
                    "ok": np.bool_(True),
                },
                "spin": np.array([0.5, -0.5], dtype="<f4"),
                "z": 1 + 1j,
            },
        ),
        ("list_of_arrays", [np.zeros(2, "<i4"), np.ones((1, 1), "<f8")]),
    ]
    return cases


def decode_only_cases() -> list[tuple[str, bytes]]:
    """Bytes other writers produce that the reference decodes; we must decode them alike."""
    arr = np.arange(4, dtype="<f8")
    enc = msgpack_numpy.encode(arr)
    shuffled = {k: enc[k] for k in [b"data", b"shape", b"kind", b"type", b"nd"]}
    no_kind = {k: v for k, v in enc.items() if k != b"kind"}
    type_bin = {**enc, b"type": b"<f8"}
    shape_int = {**enc, b"shape": 4}
    sc = msgpack_numpy.encode(np.int32(9))
    scalar_long = {**sc, b"data": sc[b"data"].tobytes() + bytes(4)}
    return [
        ("reordered_array", msgpack.packb(shuffled)),
        ("array_without_kind", msgpack.packb(no_kind)),
        ("type_as_bin", msgpack.packb(type_bin)),
        ("shape_as_int", msgpack.packb(shape_int)),
        ("scalar_two_items", msgpack.packb(scalar_long)),
        ("extra_key_array", msgpack.packb({**enc, b"extra": 1})),
        ("complex_bin_text", msgpack.packb({b"complex": True, b"data": b"(1-2j)"})),
        ("float32_marker", msgpack.packb(1.5, use_single_float=True)),
        ("int_wide_marker", b"\xd3" + (5).to_bytes(8, "big")),
        ("duplicate_key", b"\x82\xa1a\x01\xa1a\x02"),
        ("nd_str_key_is_dict", msgpack.packb({"nd": True, "type": "<f8"})),
    ]


def refused_cases() -> list[tuple[str, bytes]]:
    """Bytes we must refuse with an error (the reference would unpickle or fail)."""
    obj = np.array([1, "a"], dtype=object)
    structured = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    return [
        ("object_array", pack(obj)),
        ("structured_array", pack(structured)),
        ("int_key", msgpack.packb({1: 2})),
        ("bin_key_dict", msgpack.packb({b"k": 1})),
        ("ext_type", msgpack.packb(msgpack.ExtType(5, b"xy"))),
        (
            "array_short_data",
            msgpack.packb({**msgpack_numpy.encode(np.zeros(2)), b"data": bytes(8)}),
        ),
        (
            "array_long_data",
            msgpack.packb({**msgpack_numpy.encode(np.zeros(2)), b"data": bytes(24)}),
        ),
        (
            "scalar_short_data",
            msgpack.packb({**msgpack_numpy.encode(np.int64(1)), b"data": bytes(4)}),
        ),
        (
            "bad_dtype",
            msgpack.packb({**msgpack_numpy.encode(np.zeros(2)), b"type": "<q9"}),
        ),
        (
            "object_dtype_str",
            msgpack.packb({**msgpack_numpy.encode(np.zeros(1)), b"type": "|O"}),
        ),
        ("bad_complex", msgpack.packb({b"complex": True, b"data": "(1+"})),
        ("trailing_bytes", pack(1) + b"\xc0"),
        ("empty", b""),
        ("reserved_marker", b"\xc1"),
        ("bad_utf8", b"\xa2\xff\xfe"),
    ]


def main() -> None:
    print("// @generated by protocol/tests/gen_codec_golden.py from msgpack", end=" ")
    print(
        f"{'.'.join(map(str, msgpack.version))}, msgpack-numpy and numpy {np.__version__}."
    )
    print("// Do not edit; regenerate (see the script's docstring).")
    print()
    print("use super::*;")
    print()
    print(
        "/// `(name, msgpack.packb(v, default=msgpack_numpy.encode) as hex, v as a Value)`."
    )
    print("pub fn roundtrip() -> Vec<(&'static str, &'static str, Value)> {")
    print("    vec![")
    for name, v in roundtrip_cases():
        b = pack(v)
        unpack(b)  # the reference reads its own bytes
        print(f'        ("{name}", "{b.hex()}", {rust(v)}),')
    print("    ]")
    print("}")
    print()
    print(
        "/// `(name, hex, what msgpack_numpy.decode makes of it)`: decoded alike, not re-encoded."
    )
    print("pub fn decode_only() -> Vec<(&'static str, &'static str, Value)> {")
    print("    vec![")
    for name, b in decode_only_cases():
        print(f'        ("{name}", "{b.hex()}", {rust(unpack(b))}),')
    print("    ]")
    print("}")
    print()
    print("/// `(name, hex)` the codec must refuse with an error.")
    print("pub fn refused() -> Vec<(&'static str, &'static str)> {")
    print("    vec![")
    for name, b in refused_cases():
        print(f'        ("{name}", "{b.hex()}"),')
    print("    ]")
    print("}")


if __name__ == "__main__":
    main()
