"""``AtomsEncoder`` / ``AtomsDecoder``: ``ase.Atoms`` inside JSON, in the reference's envelope.

An ``Atoms`` anywhere in a JSON tree becomes ``{"__asebytes__": 1, "data": "<base64>"}``,
where ``data`` is :func:`asebytes.encode`'s ``dict[bytes, bytes]`` packed as one MessagePack
map with bin keys and bin values (what ``msgpack.packb(encode(atoms))`` writes), so JSON
written by the reference ``asebytes`` 0.3.3 decodes here and the reverse. The outer map is
framed here in a few lines; every field inside it is the byte-compatible codec of the
extension. ``json.dumps(obj, cls=AtomsEncoder)`` / ``json.loads(s, cls=AtomsDecoder)``;
subclasses extend :meth:`AtomsEncoder.default` and call ``super().default(obj)``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

import ase

from ._convert import decode, encode
from .exceptions import AsebytesValueError

__all__ = ["ENVELOPE_KEY", "ENVELOPE_VERSION", "AtomsDecoder", "AtomsEncoder"]

#: The key that marks an envelope, and the only envelope version there is.
ENVELOPE_KEY = "__asebytes__"
ENVELOPE_VERSION = 1


def _pack_fields(fields: dict[bytes, bytes]) -> bytes:
    """``fields`` as one MessagePack map of bin keys to bin values (smallest headers, as
    msgpack-python writes them)."""
    n = len(fields)
    if n < 16:
        out = [bytes([0x80 | n])]
    elif n < 1 << 16:
        out = [b"\xde" + struct.pack(">H", n)]
    else:
        out = [b"\xdf" + struct.pack(">I", n)]
    for key, value in fields.items():
        out.append(_bin(key))
        out.append(_bin(value))
    return b"".join(out)


def _bin(data: bytes) -> bytes:
    n = len(data)
    if n < 1 << 8:
        return b"\xc4" + bytes([n]) + data
    if n < 1 << 16:
        return b"\xc5" + struct.pack(">H", n) + data
    return b"\xc6" + struct.pack(">I", n) + data


def _unpack_fields(packed: bytes) -> dict[bytes, bytes]:
    """Inverse of :func:`_pack_fields` (str keys are accepted too); ``ValueError`` for
    anything that is not such a map."""
    view = memoryview(packed)
    pos = 0

    def take(n: int) -> memoryview:
        nonlocal pos
        if pos + n > len(view):
            raise AsebytesValueError("asebytes envelope data is truncated")
        part = view[pos : pos + n]
        pos += n
        return part

    def blob() -> bytes:
        tag = take(1)[0]
        if tag in (0xC4, 0xD9):
            size = take(1)[0]
        elif tag in (0xC5, 0xDA):
            size = struct.unpack(">H", take(2))[0]
        elif tag in (0xC6, 0xDB):
            size = struct.unpack(">I", take(4))[0]
        elif 0xA0 <= tag <= 0xBF:  # fixstr
            size = tag & 0x1F
        else:
            raise AsebytesValueError(
                f"asebytes envelope data: expected bytes, found MessagePack tag {tag:#x}"
            )
        return bytes(take(size))

    tag = take(1)[0]
    if 0x80 <= tag <= 0x8F:
        count = tag & 0x0F
    elif tag == 0xDE:
        count = struct.unpack(">H", take(2))[0]
    elif tag == 0xDF:
        count = struct.unpack(">I", take(4))[0]
    else:
        raise AsebytesValueError(
            f"asebytes envelope data is not a MessagePack map (tag {tag:#x})"
        )
    fields = {}
    for _ in range(count):
        key = blob()
        fields[key] = blob()
    if pos != len(view):
        raise AsebytesValueError("asebytes envelope data has trailing bytes")
    return fields


def envelope(atoms: ase.Atoms) -> dict[str, Any]:
    """``atoms`` as the JSON envelope ``{"__asebytes__": 1, "data": "<base64>"}``."""
    packed = _pack_fields(encode(atoms))
    return {
        ENVELOPE_KEY: ENVELOPE_VERSION,
        "data": base64.b64encode(packed).decode("ascii"),
    }


def atoms_object_hook(obj: dict[str, Any]) -> Any:
    """``json`` object hook: an envelope becomes ``ase.Atoms``, any other object is
    returned unchanged; an envelope of another version is ``ValueError``."""
    version = obj.get(ENVELOPE_KEY)
    if version is None:
        return obj
    if version != ENVELOPE_VERSION:
        raise AsebytesValueError(
            f"Unsupported asebytes envelope version: {version!r} "
            f"(expected {ENVELOPE_VERSION})"
        )
    try:
        packed = base64.b64decode(obj["data"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise AsebytesValueError(
            f"asebytes envelope without valid base64 'data': {exc}"
        ) from exc
    return decode(_unpack_fields(packed))


class AtomsEncoder(json.JSONEncoder):
    """``json.JSONEncoder`` that writes every ``ase.Atoms`` as an asebytes envelope.

    ``json.dumps(obj, cls=AtomsEncoder)`` handles one Atoms, lists of them and Atoms nested
    anywhere. Subclasses may override :meth:`default` for more types and call
    ``super().default(obj)`` for the rest (unknown types raise ``TypeError``).
    """

    def default(self, o: Any) -> Any:
        """An envelope for ``ase.Atoms``; ``json.JSONEncoder.default`` for anything else."""
        if isinstance(o, ase.Atoms):
            return envelope(o)
        return super().default(o)


class AtomsDecoder(json.JSONDecoder):
    """``json.JSONDecoder`` that turns asebytes envelopes back into ``ase.Atoms``.

    ``json.loads(s, cls=AtomsDecoder)``: an envelope at the root gives one Atoms, a list of
    envelopes a list, and envelopes nested anywhere are decoded in place. An
    ``object_hook`` passed by the caller replaces the envelope hook.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("object_hook", atoms_object_hook)
        super().__init__(**kwargs)
