"""``ase.Atoms`` <-> flat dict (the key convention of ``asebytes``) and the bytes codec.

Keys: ``cell``, ``pbc``, ``constraints``, ``arrays.<name>``, ``info.<name>``,
``calc.<name>`` (the name after the first namespace separator is kept verbatim).

:func:`dict_to_atoms` builds ``Atoms`` without running the public constructors, which cost
~25 us per frame; the fast path assigns exactly the instance attributes the installed ASE's
``Atoms.__init__`` and ``Calculator.__init__`` set (checked against the public path by the
test suite) and falls back to the public path for anything unusual (wrong dtypes or shapes,
lists instead of arrays), so the result is always what ASE itself would build. Unlike the
reference, the attached ``SinglePointCalculator`` holds an independent snapshot of the
atoms, so moving an atom makes ``get_potential_energy()`` raise
``PropertyNotImplementedError`` exactly as in ASE.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, cast

import ase
import ase.constraints
import numpy as np
from ase.calculators.calculator import Calculator, Parameters
from ase.calculators.singlepoint import SinglePointCalculator
from ase.cell import Cell

from .exceptions import AsebytesTypeError, AsebytesValueError

__all__ = [
    "atoms_to_dict",
    "decode",
    "dict_to_atoms",
    "encode",
    "get_metadata",
]

_INT = np.dtype(np.int64)
_FLOAT = np.dtype(np.float64)
_BOOL = np.dtype(np.bool_)
_TOP_LEVEL = ("cell", "pbc", "constraints")
_new_object = object.__new__
_ZERO_CELLDISP = np.zeros((3, 1))


def _check_atoms(atoms: object) -> ase.Atoms:
    if not isinstance(atoms, ase.Atoms):
        raise AsebytesTypeError("Input must be an ase.Atoms object.")
    celldisp = getattr(atoms, "_celldisp", None)
    if celldisp is not None and celldisp.any():
        raise AsebytesValueError(
            "Atoms object has a non-zero cell displacement (_celldisp), which is not "
            "supported by asebytes serialization; call atoms.set_celldisp([0, 0, 0]) and "
            "shift the positions instead."
        )
    return atoms


def _constraint_dicts(atoms: ase.Atoms) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for constraint in atoms.constraints:
        if not isinstance(constraint, ase.constraints.FixConstraint):
            raise AsebytesTypeError(
                f"Constraint {type(constraint).__name__} does not inherit from "
                "ase.constraints.FixConstraint and cannot be serialized."
            )
        as_any: Any = constraint  # ASE is untyped
        out.append(as_any.todict())
    return out


def _atoms_to_dict(atoms: object, *, sep: str = ".", copy: bool) -> dict[str, Any]:
    """Flatten ``atoms``; ``copy=False`` shares the Atoms' arrays (for immediate encoding)."""
    atoms = _check_atoms(atoms)

    def own(value: Any) -> Any:
        return value.copy() if copy and isinstance(value, np.ndarray) else value

    data: dict[str, Any] = {
        "cell": atoms.cell.array.copy() if copy else atoms.cell.array,
        "pbc": atoms.pbc.copy() if copy else atoms.pbc,
    }
    prefix = f"arrays{sep}"
    for name, value in atoms.arrays.items():
        data[prefix + name] = own(value)
    prefix = f"info{sep}"
    for name, value in atoms.info.items():
        data[f"{prefix}{name}"] = own(value)
    calc = atoms.calc
    if calc is not None:
        prefix = f"calc{sep}"
        for name, value in calc.results.items():
            data[prefix + name] = own(value)
    if atoms.constraints:
        constraints = _constraint_dicts(atoms)
        if constraints:
            data["constraints"] = constraints
    return data


def atoms_to_dict(atoms: ase.Atoms, *, sep: str = ".") -> dict[str, Any]:
    """Flatten an ``ase.Atoms`` into the asebytes key convention.

    Keys in order: ``cell``, ``pbc``, ``arrays.*`` (ASE order), ``info.*``, ``calc.*``
    (every entry of ``atoms.calc.results``), ``constraints`` (list of ``todict()``; omitted
    when empty). ``sep`` replaces the ``.`` after the namespace. Top-level numpy arrays are
    copies, so mutating the dict never changes the Atoms (nor the reverse).

    Raises ``TypeError("Input must be an ase.Atoms object.")`` for anything else,
    ``ValueError`` for a non-zero cell displacement and ``TypeError`` for a constraint that
    does not inherit from ``ase.constraints.FixConstraint``.
    """
    return _atoms_to_dict(atoms, sep=sep, copy=True)


# --------------------------------------------------------------------------- dict -> Atoms


#: How :func:`dict_to_atoms` treats the dict's arrays: ``COPY`` copies every one (the
#: default), ``SHARE`` keeps every one as it is (``copy=False``: zero-copy, read-only
#: arrays stay read-only), ``OWN`` keeps the writable C-contiguous ones and copies the rest
#: (the facades, whose rows are already the caller's own: results are always writable).
COPY, SHARE, OWN = "copy", "share", "own"


def _owned(value: Any, dtype: np.dtype[Any], mode: str) -> np.ndarray | None:
    """``value`` as an array of ``dtype`` treated by ``mode``, or ``None`` when it needs the
    public path's conversion."""
    if type(value) is not np.ndarray or value.dtype != dtype:
        return None
    return _kept(value, mode)


def _kept(value: np.ndarray, mode: str) -> np.ndarray:
    if mode == SHARE:
        return value
    if mode == OWN:
        flags = value.flags
        if flags.writeable and flags.c_contiguous:
            return value
    return value.copy()


#: ``calc.get_spin_polarized`` of every calculator we build: what ``Calculator.__init__``
#: binds there (``Calculator._deprecated_get_spin_polarized``: warns, returns ``False``;
#: it never looks at ``self``), but not bound to the calculator. ASE's bound method makes
#: every calculator a reference cycle, so every ``Atoms`` read stayed in memory until the
#: cyclic garbage collector ran, and walking a store spent a fifth of its time in it. One
#: shared object, no cycle: a dropped ``Atoms`` is freed at once.
_GET_SPIN_POLARIZED = functools.partial(
    Calculator._deprecated_get_spin_polarized, cast(Calculator, None)
)


def _make_calc(atoms: ase.Atoms, results: dict[str, Any]) -> SinglePointCalculator:
    """A ``SinglePointCalculator`` as ``SinglePointCalculator(atoms)`` would build it, whose
    ``.atoms`` is an independent snapshot (what ``atoms.copy()`` gives), except that its
    ``get_spin_polarized`` is not bound to it (:data:`_GET_SPIN_POLARIZED`)."""
    calc: SinglePointCalculator = _new_object(SinglePointCalculator)
    calc.__dict__.update(
        atoms=_snapshot(atoms),
        results=results,
        parameters=Parameters(),
        _directory=".",
        prefix=None,
        use_cache=False,
    )
    calc.__dict__["get_spin_polarized"] = _GET_SPIN_POLARIZED
    return calc


def _snapshot(atoms: ase.Atoms) -> ase.Atoms:
    """``atoms.copy()`` without the public constructor (arrays, cell and pbc copied)."""
    src = atoms.__dict__
    cell: Cell = _new_object(Cell)
    cell.array = src["_cellobj"].array.copy()
    snap: ase.Atoms = _new_object(ase.Atoms)
    constraints = src["_constraints"]
    snap.__dict__ = {
        "_cellobj": cell,
        "_pbc": src["_pbc"].copy(),
        "arrays": {name: a.copy() for name, a in src["arrays"].items()},
        "_celldisp": src["_celldisp"].copy(),
        "_constraints": [c.copy() for c in constraints] if constraints else [],
        "info": dict(src["info"]),
        "_calc": None,
    }
    return snap


def dict_to_atoms(
    data: Mapping[str, Any], *, sep: str = ".", fast: bool = True, copy: bool = True
) -> ase.Atoms:
    """Rebuild an ``ase.Atoms`` from a flat dict (see :func:`atoms_to_dict`).

    Missing numbers give an empty Atoms, missing positions zeros, missing cell zeros, missing
    pbc ``[False] * 3``; unknown keys are ignored. Any ``calc.*`` key attaches a
    ``SinglePointCalculator`` holding those results for *these* positions. ``copy=True``
    copies every array taken from ``data`` (numbers, cell and pbc too), so the Atoms is
    writable and never shares memory with the dict; ``copy=False`` is zero-copy: arrays of
    the right dtype are used as they are (a read-only array stays read-only, as in the
    reference). ``fast=False`` uses ASE's public constructors (same result, ~10x slower).
    """
    return _dict_to_atoms(data, sep=sep, fast=fast, mode=COPY if copy else SHARE)


def _dict_to_atoms(
    data: Mapping[str, Any], *, sep: str = ".", fast: bool = True, mode: str = OWN
) -> ase.Atoms:
    """:func:`dict_to_atoms` with the array treatment ``mode`` (``COPY``/``SHARE``/``OWN``)."""
    if fast:
        atoms = _fast_dict_to_atoms(data, sep, mode)
        if atoms is not None:
            return atoms
    return _public_dict_to_atoms(data, sep, mode == COPY)


def _fast_dict_to_atoms(
    data: Mapping[str, Any], sep: str, mode: str
) -> ase.Atoms | None:
    """The fast path, or ``None`` when ``data`` needs the public path's conversions."""
    if sep == ".":
        arrays_prefix, info_prefix, calc_prefix = "arrays.", "info.", "calc."
    else:
        arrays_prefix, info_prefix, calc_prefix = (
            f"arrays{sep}",
            f"info{sep}",
            f"calc{sep}",
        )
    n_arrays, n_info, n_calc = len(arrays_prefix), len(info_prefix), len(calc_prefix)

    cell_array: np.ndarray | None = None
    pbc: np.ndarray | None = None
    arrays: dict[str, np.ndarray] = {}
    numbers: np.ndarray | None = None
    positions: np.ndarray | None = None
    info: dict[Any, Any] = {}
    results: dict[str, Any] | None = None
    constraint_dicts: Any = None

    for key, value in data.items():
        if key.startswith(arrays_prefix):
            name = key[n_arrays:]
            if name == "numbers":
                numbers = _owned(value, _INT, mode)
                if numbers is None or numbers.ndim != 1:
                    return None
            elif name == "positions":
                positions = _owned(value, _FLOAT, mode)
                if positions is None or positions.ndim != 2 or positions.shape[1] != 3:
                    return None
            else:
                if type(value) is not np.ndarray or value.ndim == 0:
                    return None
                arrays[name] = _kept(value, mode)
        elif key.startswith(info_prefix):
            info[key[n_info:]] = (
                value.copy() if mode == COPY and type(value) is np.ndarray else value
            )
        elif key.startswith(calc_prefix):
            if results is None:
                results = {}
            results[key[n_calc:]] = (
                value.copy() if mode == COPY and type(value) is np.ndarray else value
            )
        elif key == "cell":
            cell_array = _owned(value, _FLOAT, mode)
            if cell_array is None or cell_array.shape != (3, 3):
                return None
        elif key == "pbc":
            pbc = _owned(value, _BOOL, mode)
            if pbc is None or pbc.shape != (3,):
                return None
        elif key == "constraints":
            constraint_dicts = value

    if numbers is None:
        # A partial row (`get(i, keys=["arrays.positions"])`, a column view): atoms of
        # unknown element (0, ASE's "X"), as many as its per-atom arrays have.
        numbers = np.zeros(_atom_count(positions, arrays.values()), dtype=_INT)
    n = len(numbers)
    if positions is None:
        positions = np.zeros((n, 3))
    elif len(positions) != n:
        return None
    for a in arrays.values():
        if len(a) != n:
            return None

    cell: Cell = _new_object(Cell)
    cell.array = np.zeros((3, 3)) if cell_array is None else cell_array
    atoms: ase.Atoms = _new_object(ase.Atoms)
    atoms.__dict__ = {
        "_cellobj": cell,
        "_pbc": np.zeros(3, dtype=bool) if pbc is None else pbc,
        "arrays": {"numbers": numbers, "positions": positions, **arrays},
        "_celldisp": _ZERO_CELLDISP.copy(),
        "_constraints": _constraints_from(constraint_dicts),
        "info": info,
        "_calc": None,
    }
    if results is not None:
        atoms.__dict__["_calc"] = _make_calc(atoms, results)
    return atoms


def _atom_count(positions: np.ndarray | None, arrays: Iterable[np.ndarray]) -> int:
    """Atoms in a row without ``arrays.numbers``: the length of its positions, else of its
    first per-atom array, else none."""
    if positions is not None:
        return len(positions)
    for a in arrays:
        if a.ndim > 0:
            return len(a)
    return 0


def _constraints_from(value: Any) -> list[Any]:
    if not value:
        return []
    return [ase.constraints.dict2constraint(d) for d in value]


def _public_dict_to_atoms(data: Mapping[str, Any], sep: str, copy: bool) -> ase.Atoms:
    """The same result through ASE's public API (and its validation and conversions)."""
    arrays_prefix, info_prefix, calc_prefix = f"arrays{sep}", f"info{sep}", f"calc{sep}"
    numbers = data.get(f"{arrays_prefix}numbers")
    positions = data.get(f"{arrays_prefix}positions")
    pbc = data.get("pbc")
    if numbers is None:
        per_atom = [
            np.asarray(v)
            for k, v in data.items()
            if k.startswith(arrays_prefix) and k != f"{arrays_prefix}positions"
        ]
        at = None if positions is None else np.asarray(positions)
        numbers = np.zeros(_atom_count(at, per_atom), dtype=int)
    atoms: ase.Atoms = ase.Atoms(
        numbers=numbers,
        positions=positions,
        cell=data.get("cell"),
        pbc=None if pbc is None else np.asarray(pbc, dtype=bool),
    )
    untyped: Any = atoms  # ASE's methods carry no annotations
    results: dict[str, Any] | None = None
    for key, value in data.items():
        if key.startswith(arrays_prefix):
            name = key[len(arrays_prefix) :]
            if name not in ("numbers", "positions"):
                untyped.set_array(name, np.asarray(value))  # new_array copies
        elif key.startswith(info_prefix):
            atoms.info[key[len(info_prefix) :]] = (
                value.copy() if copy and isinstance(value, np.ndarray) else value
            )
        elif key.startswith(calc_prefix):
            if results is None:
                results = {}
            results[key[len(calc_prefix) :]] = (
                value.copy() if copy and isinstance(value, np.ndarray) else value
            )
    untyped.set_constraint(_constraints_from(data.get("constraints")))
    if results is not None:
        spc: Any = SinglePointCalculator
        calc = spc(atoms)
        calc.results.update(results)
        atoms.calc = calc
    return atoms


# --------------------------------------------------------------------------- bytes codec


def _native() -> Any:
    from . import _native

    return _native


def encode(atoms: ase.Atoms) -> dict[bytes, bytes]:
    """``atoms`` as ``dict[bytes, bytes]``: UTF-8 keys, each value packed on its own in the
    msgpack-numpy layout (byte-compatible with the reference). Same validation as
    :func:`atoms_to_dict`; values that cannot be stored raise ``TypeError`` naming the key.
    Converted in Rust straight from the Atoms' arrays (no intermediate dict).
    """
    encoded: dict[bytes, bytes] = _native().encode_atoms(atoms)
    return encoded


def _check_known_keys(data: Mapping[bytes, bytes]) -> None:
    for key in data:
        if not isinstance(key, bytes):
            raise AsebytesTypeError(f"decode() expects bytes keys, got {key!r}")
        if key in (b"cell", b"pbc", b"constraints"):
            continue
        if key.startswith((b"arrays.", b"info.", b"calc.")):
            continue
        raise AsebytesValueError(
            f"Unknown key in data: {key!r}; keys must be cell, pbc, constraints or start "
            "with arrays., info. or calc."
        )


def decode(
    data: Mapping[bytes, bytes], fast: bool = True, copy: bool = True
) -> ase.Atoms:
    """Inverse of :func:`encode`. With ``copy=True`` (the default) every array of the
    result is writable and its own; ``copy=False`` is zero-copy as in the reference: the
    arrays of numbers, positions, cell, pbc, ``arrays.*`` and top-level ``info.*`` /
    ``calc.*`` values are read-only views of ``data``'s bytes. A key outside the convention
    raises ``ValueError("Unknown key in data: b'...'")``; ``pbc`` stored as a plain list
    becomes a bool array.
    """
    _check_known_keys(data)
    if fast:
        atoms: ase.Atoms = _native().decode_atoms(dict(data))
    else:
        row: dict[str, Any] = _native().decode_row(dict(data))
        pbc = row.get("pbc")
        if pbc is not None and not isinstance(pbc, np.ndarray):
            row["pbc"] = np.asarray(pbc, dtype=bool)
        atoms = _dict_to_atoms(row, fast=False)
    if not copy:
        _share_buffers(atoms, data)
    return atoms


def _share_buffers(atoms: ase.Atoms, data: Mapping[bytes, bytes]) -> None:
    """Point ``atoms``' decoded arrays at the bytes they came from (read-only views)."""
    d = atoms.__dict__
    cell = d["_cellobj"]
    cell.array = _buffer_view(data.get(b"cell"), cell.array)
    d["_pbc"] = _buffer_view(data.get(b"pbc"), d["_pbc"])
    arrays = d["arrays"]
    for name, value in arrays.items():
        arrays[name] = _buffer_view(data.get(b"arrays." + name.encode()), value)
    info = d["info"]
    for name, value in info.items():
        if isinstance(value, np.ndarray):
            info[name] = _buffer_view(data.get(b"info." + str(name).encode()), value)
    calc = d.get("_calc")
    if calc is not None:
        results = calc.results
        for name, value in results.items():
            if isinstance(value, np.ndarray):
                results[name] = _buffer_view(data.get(b"calc." + name.encode()), value)


def _buffer_view(raw: bytes | None, decoded: np.ndarray) -> np.ndarray:
    """A read-only array over ``raw`` equal to ``decoded``: in the msgpack-numpy layout an
    array's raw bytes close its encoded value. Values without such bytes (defaults, a
    ``pbc`` stored as a list) stay as decoded, made read-only."""
    nbytes = decoded.nbytes
    if raw is not None and nbytes and len(raw) >= nbytes and decoded.flags.c_contiguous:
        view = np.frombuffer(
            raw, dtype=decoded.dtype, count=decoded.size, offset=len(raw) - nbytes
        ).reshape(decoded.shape)
        try:
            as_bytes: Any = memoryview  # numpy arrays are buffers; the stubs disagree
            same = as_bytes(view).cast("B") == as_bytes(decoded).cast("B")
        except (TypeError, ValueError):  # a dtype memoryview cannot express
            same = False
        if same:
            return view
    decoded.flags.writeable = False
    return decoded


def _value_metadata(value: Any) -> dict[str, Any]:
    if isinstance(value, np.ndarray):
        return {"type": "ndarray", "dtype": str(value.dtype), "shape": value.shape}
    if isinstance(value, np.generic):
        return {"type": "numpy_scalar", "dtype": value.dtype.name}
    if value is None:
        return {"type": "NoneType"}
    for kind in (bytes, bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return {"type": kind.__name__}
    return {"type": type(value).__name__}


def get_metadata(data: Mapping[bytes, bytes]) -> dict[str, dict[str, Any]]:
    """Per key of an encoded row: ``{"type": "ndarray", "dtype": ..., "shape": ...}``,
    ``{"type": "numpy_scalar", "dtype": ...}`` or ``{"type": "<python type name>"}``."""
    native = _native()
    return {
        key.decode("utf-8"): _value_metadata(native.decode_value(value))
        for key, value in data.items()
    }


def validate_update_keys(data: Mapping[str, Any]) -> None:
    """ASEIO.update's key rule: ``arrays.*``, ``info.*``, ``calc.*``, ``cell``, ``pbc`` or
    ``constraints``; anything else is ``ValueError("Invalid key ...")``."""
    for key in data:
        if isinstance(key, str) and (
            key in _TOP_LEVEL or key.startswith(("arrays.", "info.", "calc."))
        ):
            continue
        raise AsebytesValueError(
            f"Invalid key {key!r}. Keys must start with arrays., info., calc. or be one of "
            "cell, pbc, constraints."
        )
