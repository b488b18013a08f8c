"""Location string -> daemon-backed backend instance.

The facades call :func:`open_backend` with whatever the user passed (``"data.lmdb"``,
``"memory://scratch"``). Known URI schemes are matched first, then the file name
(``fnmatch`` on the whole string, as the reference does). Backends the reference has but
this build does not serve yet raise :class:`UnsupportedOperationError` (a
``NotImplementedError``); anything else is ``KeyError`` listing what is known.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Any

from .exceptions import AsebytesTypeError, KeyNotFoundError, UnsupportedOperationError

__all__ = ["Resolved", "list_groups", "open_backend", "refuse_options", "resolve"]

#: Schemes the reference knows, in its registry's order. ``None`` = not built yet.
_SCHEMES: dict[str, str | None] = {
    "memory": "memory",
    "hf": None,
    "colabfit": None,
    "optimade": None,
    "mongodb": None,
    "redis": None,
}

#: File-name patterns, first match wins. ``None`` = not built yet.
_PATTERNS: tuple[tuple[str, str | None, str], ...] = (
    ("*.lmdb", "lmdb", "LMDB"),
    ("*.h5", None, "HDF5 (ragged columnar)"),
    ("*.h5p", None, "HDF5 (padded columnar)"),
    ("*.h5md", None, "H5MD"),
    ("*.zarr", None, "Zarr (ragged columnar)"),
    ("*.zarrp", None, "Zarr (padded columnar)"),
    ("*.traj", None, "ASE trajectory (read-only)"),
    ("*.xyz", None, "ASE xyz (read-only)"),
    ("*.extxyz", None, "ASE extxyz (read-only)"),
)

#: Keyword arguments the native store takes; the facades forward these.
_STORE_KWARGS = ("group", "map_size")


@dataclass(frozen=True)
class Resolved:
    """Which backend serves a location, and the location as the daemon should see it."""

    backend: str
    location: str


def _known() -> str:
    schemes = [f"{s}://" for s in _SCHEMES]
    patterns = [p for p, _, _ in _PATTERNS]
    return ", ".join(patterns + schemes)


def _not_built(what: str, location: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"backend {what} is not available in this build yet (location {location!r}); "
        "available now: *.lmdb and memory://"
    )


def resolve(location: str) -> Resolved:
    """The backend for ``location``; relative file paths become absolute (the daemon runs
    in another working directory)."""
    if not isinstance(location, str):
        raise AsebytesTypeError(
            f"A backend location must be a str, got {type(location)}; pass a path such as "
            "'data.lmdb', a URI such as 'memory://name', or a backend instance."
        )
    scheme, sep, _rest = location.partition("://")
    if sep and scheme in _SCHEMES:
        backend = _SCHEMES[scheme]
        if backend is None:
            raise _not_built(f"'{scheme}://'", location)
        return Resolved(backend, location)
    for pattern, backend, label in _PATTERNS:
        if fnmatch.fnmatchcase(location, pattern):
            if backend is None:
                raise _not_built(f"{label} ('{pattern}')", location)
            return Resolved(backend, os.path.abspath(location))
    raise KeyNotFoundError(f"No backend registered for '{location}'; known: {_known()}")


def open_backend(
    location: str,
    *,
    tier: str,
    readonly: bool | None = None,
    asynchronous: bool = False,
    group: str | None = None,
    map_size: int | None = None,
    **kwargs: Any,
) -> Any:
    """The backend serving ``location`` for a facade of ``tier`` (``"object"`` or
    ``"blob"``): a daemon-backed store, sync or (``asynchronous``) async."""
    resolved = resolve(location)
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise AsebytesTypeError(
            f"Unexpected keyword argument(s) for the {resolved.backend} backend: {names}. "
            f"It accepts readonly=, {'=, '.join(_STORE_KWARGS)}=."
        )
    from . import _stores

    options: dict[str, Any] = {
        "group": group,
        "readonly": bool(readonly),
        "map_size": map_size,
        "tier": tier,
    }
    if asynchronous:
        return _stores.AsyncDaemonBackend(resolved.location, **options)
    if readonly:
        return _stores.DaemonReadBackend(resolved.location, **options)
    return _stores.DaemonBackend(resolved.location, **options)


def refuse_options(kwargs: dict[str, Any]) -> None:
    """Backend keywords make sense only with a location string, not with an instance."""
    if kwargs:
        raise AsebytesTypeError(
            f"{', '.join(sorted(kwargs))}= apply only when the backend is given as a "
            "location string; configure the backend instance instead"
        )


def list_groups(location: str, **kwargs: Any) -> list[str]:
    """Groups stored at ``location``."""
    resolved = resolve(location)
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise AsebytesTypeError(
            f"Unexpected keyword argument(s) for list_groups on {resolved.backend}: {names}"
        )
    from ._native import list_groups as native_list_groups

    return native_list_groups(resolved.location)
