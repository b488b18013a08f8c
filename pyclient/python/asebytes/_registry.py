"""Location string -> daemon-backed backend instance.

The facades call :func:`open_backend` with whatever the user passed (``"data.lmdb"``,
``"memory://scratch"``). Which backend serves a location comes from the daemon's backend
table (``_native.backends()``, the same table the daemon opens stores from): known URI
schemes first, then the file-name patterns (``fnmatch`` on the whole string, as the
reference does). Locations the reference serves but this build does not yet raise
:class:`UnsupportedOperationError` (a ``NotImplementedError``); anything else is
``KeyError`` listing what is known.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from dataclasses import dataclass
from typing import Any

from . import _hub
from .exceptions import AsebytesTypeError, KeyNotFoundError, UnsupportedOperationError

__all__ = [
    "Resolved",
    "backend_table",
    "list_groups",
    "open_backend",
    "refuse_options",
    "resolve",
]

#: What the reference ``asebytes`` 0.3.3 serves, by URI scheme or file pattern, with a
#: label: consulted only for locations the backend table does not match, to say "not in
#: this build yet" instead of "unknown".
_REFERENCE_LOCATIONS: tuple[tuple[str, str], ...] = (
    ("hf://", "HuggingFace datasets"),
    ("colabfit://", "ColabFit datasets"),
    ("optimade://", "OPTIMADE datasets"),
    ("mongodb://", "MongoDB"),
    ("redis://", "Redis"),
    ("*.h5", "HDF5 (ragged columnar)"),
    ("*.h5p", "HDF5 (padded columnar)"),
    ("*.h5md", "H5MD"),
    ("*.zarr", "Zarr (ragged columnar)"),
    ("*.zarrp", "Zarr (padded columnar)"),
)

#: Keywords every daemon-served backend takes; any other keyword is a backend option
#: that the backend's table entry must list.
_STORE_KWARGS = ("group", "readonly")


@dataclass(frozen=True)
class BackendEntry:
    """One line of the daemon's backend table."""

    scheme: str
    label: str
    patterns: tuple[str, ...]
    location: str
    options: tuple[str, ...]
    #: Patterns that select this backend only for an existing file whose content its
    #: sniff accepts (H5MD content in a ``*.h5``); checked before every plain pattern.
    sniffed_patterns: tuple[str, ...] = ()


@functools.cache
def backend_table() -> tuple[BackendEntry, ...]:
    """The backends this build serves, in matching order."""
    from ._native import backends

    return tuple(
        BackendEntry(
            scheme=e["scheme"],
            label=e["label"],
            patterns=tuple(e["patterns"]),
            location=e["location"],
            options=tuple(e["options"]),
            sniffed_patterns=tuple(e.get("sniffed_patterns", ())),
        )
        for e in backends()
    )


@dataclass(frozen=True)
class Resolved:
    """Which backend serves a location, and the location as the daemon should see it."""

    backend: str
    location: str
    entry: BackendEntry


def _known() -> str:
    table = backend_table()
    patterns = [p for e in table for p in e.patterns]
    schemes = [f"{e.scheme}://" for e in table if not e.patterns]
    return ", ".join(patterns + schemes)


def _redacted(location: str) -> str:
    from ._native import redact_location

    return redact_location(location)


def _not_built(location: str) -> UnsupportedOperationError | None:
    for pattern, label in _REFERENCE_LOCATIONS:
        hit = (
            location.startswith(pattern)
            if pattern.endswith("://")
            else fnmatch.fnmatchcase(location, pattern)
        )
        if hit:
            return UnsupportedOperationError(
                f"backend {label} ('{pattern}') is not available in this build yet "
                f"(location {_redacted(location)!r}); available now: {_known()}"
            )
    return None


def _shards_entry(
    location: str, table: tuple[BackendEntry, ...]
) -> BackendEntry | None:
    """The backend whose shards fill the directory ``location`` (a folder of
    ``*.aselmdb`` is one dataset), as the daemon's table decides it."""
    if not os.path.isdir(location):
        return None
    names = os.listdir(location)
    for entry in table:
        if entry.location == "shards" and any(
            fnmatch.fnmatchcase(n, p) for n in names for p in entry.patterns
        ):
            return entry
    return None


def shard_list(locations: list[Any] | tuple[Any, ...]) -> str:
    """One location for a list of shard files (``["a.aselmdb", "b.aselmdb"]`` ->
    ``"aselmdb:///abs/a.aselmdb:/abs/b.aselmdb"``): one dataset with a global index, in
    the order given. Every item must be a path that a ``shards`` backend matches."""
    paths = [os.fspath(p) for p in locations]
    entries = {resolve(p).entry for p in paths} if paths else set()
    if len(entries) != 1 or next(iter(entries)).location != "shards":
        raise AsebytesTypeError(
            "A list of locations is one dataset only when every item is a shard of the "
            "same format (e.g. *.aselmdb files); got " + ", ".join(map(repr, paths))
        )
    if any(":" in os.path.abspath(p) for p in paths):
        raise AsebytesTypeError("shard paths in a list must not contain ':'")
    entry = next(iter(entries))
    return f"{entry.scheme}://" + ":".join(os.path.abspath(p) for p in paths)


def resolve(location: str) -> Resolved:
    """The backend for ``location``; relative file paths become absolute (the daemon runs
    in another working directory)."""
    if not isinstance(location, str):
        raise AsebytesTypeError(
            f"A backend location must be a str, got {type(location)}; pass a path such as "
            "'data.lmdb', a URI such as 'memory://name', or a backend instance."
        )
    table = backend_table()
    scheme, sep, _rest = location.partition("://")
    if sep:
        for entry in table:
            if entry.scheme == scheme:
                return Resolved(entry.scheme, location, entry)
    for entry in table:
        if any(fnmatch.fnmatchcase(location, p) for p in entry.sniffed_patterns):
            from ._native import sniff

            if sniff(entry.scheme, os.path.abspath(location)):
                return Resolved(entry.scheme, os.path.abspath(location), entry)
    for entry in table:
        if any(fnmatch.fnmatchcase(location, p) for p in entry.patterns):
            return Resolved(entry.scheme, os.path.abspath(location), entry)
    shards = _shards_entry(location, table)
    if shards is not None:
        return Resolved(shards.scheme, os.path.abspath(location), shards)
    not_built = _not_built(location)
    if not_built is not None:
        raise not_built
    raise KeyNotFoundError(
        f"No backend registered for '{_redacted(location)}'; known: {_known()}"
    )


def check_options(entry: BackendEntry, options: dict[str, Any]) -> None:
    """Refuse keywords the backend does not take, listing what it accepts (the daemon
    checks again; this fails before anything connects)."""
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        accepted = [f"{k}=" for k in (*_STORE_KWARGS, *entry.options)]
        raise AsebytesTypeError(
            f"Unexpected keyword argument(s) for the {entry.label} backend: "
            f"{', '.join(unknown)}. It accepts {', '.join(accepted)}."
        )


def open_backend(
    location: str,
    *,
    tier: str,
    readonly: bool | None = None,
    asynchronous: bool = False,
    group: str | None = None,
    cache_to: str | None = None,
    **options: Any,
) -> Any:
    """The backend serving ``location`` for a facade of ``tier`` (``"object"`` or
    ``"blob"``): a daemon-backed store, sync or (``asynchronous``) async, behind the
    daemon's read-through cache at ``cache_to`` (a resolved location) if given. Keywords
    other than ``group``/``readonly``/``cache_to`` are the backend's options
    (``map_size``, ``compressor``, ``compression``, ...)."""
    resolved = resolve(location)
    check_options(resolved.entry, options)
    if resolved.entry.scheme in _hub.SCHEMES:
        options = _hub.hub_options(options)
    if cache_to is not None:
        # A read-through cache the daemon keeps (``asebytes._cache``); a store option.
        options["cache_to"] = cache_to
    if "compression" in options and options["compression"] is None:
        options["compression"] = False  # h5py and the reference: None = no compression
    from . import _stores

    kwargs: dict[str, Any] = {
        "group": group,
        "readonly": bool(readonly),
        "options": {k: v for k, v in options.items() if v is not None} or None,
        "tier": tier,
    }
    if asynchronous:
        return _stores.AsyncDaemonBackend(resolved.location, **kwargs)
    if readonly:
        return _stores.DaemonReadBackend(resolved.location, **kwargs)
    return _stores.DaemonBackend(resolved.location, **kwargs)


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
