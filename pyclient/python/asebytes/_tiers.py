"""The three row tiers -- blob, object, ASE -- shared by the sync and the async facades.

A tier says what a row looks like to the user and how it is checked and converted on its
way to and from the backend: ``dict[bytes, bytes]`` stored as given (blob),
``dict[str, Any]`` (object), ``ase.Atoms`` in the key convention of
:func:`asebytes.atoms_to_dict` (ASE). Input is checked before anything is sent, so bad
input never leaves a partial write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import ase

from ._convert import _atoms_to_dict, _dict_to_atoms, validate_update_keys
from ._core import FacadeCore
from .exceptions import AsebytesTypeError

__all__ = ["ASETier", "BlobTier", "ObjectTier", "flatten_update"]


class ObjectTier(FacadeCore):
    """``dict[str, Any]`` rows (numpy arrays, scalars, str, lists, nested dicts)."""

    _tier: ClassVar[str] = "object"
    _key_types: tuple[type, ...] = (str,)

    def _prepare_row(self, row: Any) -> dict[str, Any] | None:
        if row is None:
            return None
        if not isinstance(row, Mapping):
            raise AsebytesTypeError(
                f"{type(self).__name__} rows must be dict[str, Any] or None, got {type(row)}"
            )
        out = {}
        for key, value in row.items():
            if not isinstance(key, str):
                raise AsebytesTypeError(
                    f"{type(self).__name__} row keys must be str, got {key!r}"
                )
            out[key] = value
        return out or None


class BlobTier(FacadeCore):
    """``dict[bytes, bytes]`` rows stored as given; column keys may be ``bytes`` or ``str``
    (UTF-8 encoded)."""

    _tier: ClassVar[str] = "blob"
    _key_types: tuple[type, ...] = (str, bytes)

    def _normalize_key(self, key: Any) -> Any:
        if isinstance(key, str):
            return key.encode("utf-8")
        if isinstance(key, bytes):
            return key
        raise AsebytesTypeError(
            f"Keys of {type(self).__name__} are bytes (or str), got {key!r}"
        )

    def _prepare_row(self, row: Any) -> dict[bytes, bytes] | None:
        if row is None:
            return None
        if not isinstance(row, Mapping):
            raise AsebytesTypeError(
                f"{type(self).__name__} rows must be dict[bytes, bytes] or None, "
                f"got {type(row)}"
            )
        out = {}
        for key, value in row.items():
            if not isinstance(key, bytes):
                raise AsebytesTypeError(
                    f"{type(self).__name__} row keys must be bytes, got {key!r}"
                )
            out[key] = _blob_value(key, value)
        return out or None

    def _prepare_update(self, data: Any) -> dict[Any, Any]:
        partial = super()._prepare_update(data)
        return {k: _blob_value(k, v) for k, v in partial.items()}

    def _prepare_column_values(
        self, key: Any, values: list[Any]
    ) -> tuple[Any, list[Any]]:
        k, _ = super()._prepare_column_values(key, values[:1])
        return k, [_blob_value(k, v) for v in values]


def _blob_value(key: bytes, value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise AsebytesTypeError(
            f"Blob values must be bytes, got {type(value)} for key {key!r}"
        )
    return bytes(value)


#: ``ASEBYTES_ATOMS_ENCODE=python`` sends every ``Atoms`` through :func:`atoms_to_dict`
#: even where the backend converts them natively (to compare the two paths).
_PYTHON_ENCODE = os.environ.get("ASEBYTES_ATOMS_ENCODE", "").lower() == "python"


class ASETier(ObjectTier):
    """``ase.Atoms`` rows; column views yield Atoms built from the requested keys only.

    Backends that build ``Atoms`` themselves (the native store's ``get_atoms_many``) are
    read through that; any other backend through its row dicts and
    :func:`asebytes.dict_to_atoms`. Likewise on write: a backend that takes ``Atoms``
    rows (``_takes_atoms``: the daemon's object-tier stores) gets them as they are and
    converts them in Rust, byte-identical to :func:`asebytes.atoms_to_dict` and the codec;
    any other backend gets the flat dicts.
    """

    _reads_atoms: ClassVar[bool] = True
    _writes_atoms: bool = False

    def _attach(self, backend: Any) -> None:
        super()._attach(backend)
        self._writes_atoms = (
            not _PYTHON_ENCODE
            and bool(getattr(backend, "_takes_atoms", False))
            and getattr(backend, "tier", None) == "object"
        )

    def _prepare_row(self, row: Any) -> Any:
        if row is None:
            return None
        if self._writes_atoms and type(row) is ase.Atoms:
            return row  # checked and converted by the backend, before anything is sent
        return _atoms_to_dict(row, copy=False)

    def _prepare_view_row(self, row: Any) -> Any:
        # A view's set() also takes the flat dicts of the reference (its async facades
        # only take dicts there); they follow the same key rule as update().
        if isinstance(row, Mapping):
            validate_update_keys(row)
            return super()._prepare_update(row) or None
        return self._prepare_row(row)

    def _prepare_update(self, data: Any) -> dict[Any, Any]:
        partial = super()._prepare_update(data)
        validate_update_keys(partial)
        return partial

    def _build_result(self, row: Any) -> ase.Atoms | None:
        if row is None:
            return None
        return _dict_to_atoms(row)

    def _build_partial(self, row: dict[Any, Any]) -> ase.Atoms:
        return _dict_to_atoms(row)


def flatten_update(
    data: Mapping[str, Any] | None,
    info: Mapping[str, Any] | None,
    arrays: Mapping[str, Any] | None,
    calc: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``ASEIO.update``'s arguments as one flat dict (``{"calc.energy": -1.0}``)."""
    flat: dict[str, Any] = {}
    if data is not None:
        if not isinstance(data, Mapping):
            raise AsebytesTypeError(f"update() needs a dict, got {type(data)}")
        flat.update(data)
    for prefix, part in (("info", info), ("arrays", arrays), ("calc", calc)):
        if part:
            flat.update({f"{prefix}.{k}": v for k, v in part.items()})
    return flat
