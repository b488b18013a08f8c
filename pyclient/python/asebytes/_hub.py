"""HuggingFace Hub datasets (``hf://``, ``colabfit://``, ``optimade://``): the column
mappings of the reference (``ColumnMapping``, ``COLABFIT``, ``OPTIMADE``) and the options a
hub location sends to the daemon.

The daemon reads the dataset (it may have been started from another shell), so the
client sends what this process's environment says: ``HF_ENDPOINT``, ``HF_HUB_CACHE`` /
``HF_HOME`` and ``HF_TOKEN`` become the ``endpoint``, ``cache_dir`` and ``token`` options
unless given explicitly. A mapping travels as JSON, its dicts as ``[key, column]`` pairs so
their order survives.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from .exceptions import AsebytesTypeError

__all__ = ["COLABFIT", "OPTIMADE", "SCHEMES", "ColumnMapping", "hub_options"]

#: The URI schemes served from the Hub.
SCHEMES = frozenset({"hf", "colabfit", "optimade"})


@dataclass(frozen=True)
class ColumnMapping:
    """Maps HuggingFace dataset columns to asebytes keys (as asebytes 0.3.3).

    ``positions`` -> ``arrays.positions`` (float64), ``numbers`` -> ``arrays.numbers``
    (int; element symbols when ``species_are_strings``), ``cell`` -> ``cell`` (zeros when
    ``None`` or null), ``pbc`` -> ``pbc`` (OPTIMADE ``dimension_types`` when
    ``pbc_are_dimension_types``; ``[False] * 3`` when ``None`` or null), ``calc``,
    ``info`` and ``arrays`` map ``key -> column``; every column not mapped becomes
    ``info.<column>`` verbatim.
    """

    positions: str
    numbers: str
    cell: str | None = None
    pbc: str | None = None
    calc: dict[str, str] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, str] = field(default_factory=dict)
    species_are_strings: bool = False
    pbc_are_dimension_types: bool = False

    def to_json(self) -> str:
        """The mapping as the daemon's ``mapping=`` option takes it."""
        return json.dumps(
            {
                "positions": self.positions,
                "numbers": self.numbers,
                "cell": self.cell,
                "pbc": self.pbc,
                "calc": list(self.calc.items()),
                "info": list(self.info.items()),
                "arrays": list(self.arrays.items()),
                "species_are_strings": self.species_are_strings,
                "pbc_are_dimension_types": self.pbc_are_dimension_types,
            }
        )


COLABFIT = ColumnMapping(
    positions="positions",
    numbers="atomic_numbers",
    cell="cell",
    pbc="pbc",
    calc={"energy": "energy", "forces": "atomic_forces", "stress": "cauchy_stress"},
)

OPTIMADE = ColumnMapping(
    positions="cartesian_site_positions",
    numbers="species_at_sites",
    cell="lattice_vectors",
    pbc="dimension_types",
    calc={"energy": "energy", "forces": "forces", "stress": "stress_tensor"},
    species_are_strings=True,
    pbc_are_dimension_types=True,
)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


def hub_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` of a hub location as the daemon takes them: the mapping as JSON, and
    endpoint, cache and token from this process's environment where not given."""
    out = dict(options)
    mapping = out.get("mapping")
    if mapping is not None:
        if not isinstance(mapping, ColumnMapping):
            raise AsebytesTypeError(
                f"mapping= must be an asebytes.ColumnMapping, got {type(mapping).__name__}"
            )
        out["mapping"] = mapping.to_json()
    home = _env("HF_HOME")
    cache = _env("HF_HUB_CACHE") or (os.path.join(home, "hub") if home else None)
    for name, value in (
        ("endpoint", _env("HF_ENDPOINT")),
        ("cache_dir", cache),
        ("token", _env("HF_TOKEN")),
    ):
        if out.get(name) is None and value is not None:
            out[name] = value
    return out
