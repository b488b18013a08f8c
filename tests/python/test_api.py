"""The public surface: exported names, not-yet-available names, the location registry."""

from __future__ import annotations

import asebytes
import pytest
from asebytes import ASEIO, BlobIO, ObjectIO, exceptions
from asebytes._registry import resolve

EXPORTED = [
    "ASEIO",
    "ASEColumnView",
    "AsebytesError",
    "BlobIO",
    "ColumnView",
    "ObjectIO",
    "RowView",
    "SchemaEntry",
    "atoms_to_dict",
    "decode",
    "dict_to_atoms",
    "encode",
    "exceptions",
    "get_metadata",
    "__version__",
]


@pytest.mark.parametrize("name", EXPORTED)
def test_public_name_is_exported(name: str) -> None:
    assert name in asebytes.__all__
    assert getattr(asebytes, name) is not None


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from asebytes import *", namespace)  # noqa: S102 - star import needs exec
    assert set(asebytes.__all__) <= set(namespace)


def test_version_is_a_string() -> None:
    assert isinstance(asebytes.__version__, str) and asebytes.__version__


@pytest.mark.parametrize("name", sorted(asebytes.NOT_YET_AVAILABLE))
def test_reference_name_not_built_yet_says_so(name: str) -> None:
    with pytest.raises(
        ImportError, match=f"'{name}' is part of the asebytes API but not available yet"
    ):
        getattr(asebytes, name)


def test_from_import_of_later_name_carries_the_message() -> None:
    with pytest.raises(ImportError, match="not available yet"):
        exec("from asebytes import ConcatView", {})  # noqa: S102 - the statement under test


def test_unknown_attribute_is_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        asebytes.Nope  # noqa: B018
    assert not hasattr(asebytes, "Nope")


def test_exceptions_subclass_package_base_and_builtins() -> None:
    pairs = {
        exceptions.KeyNotFoundError: KeyError,
        exceptions.IndexOutOfRangeError: IndexError,
        exceptions.AsebytesTypeError: TypeError,
        exceptions.AsebytesValueError: ValueError,
        exceptions.UnsupportedOperationError: NotImplementedError,
        exceptions.ReadOnlyError: TypeError,
        exceptions.DaemonUnavailableError: ConnectionError,
    }
    for cls, builtin in pairs.items():
        assert issubclass(cls, builtin) and issubclass(cls, asebytes.AsebytesError)


@pytest.mark.parametrize(
    ("location", "backend"),
    [
        ("x.lmdb", "lmdb"),
        ("/abs/dir/x.lmdb", "lmdb"),
        ("memory://name", "memory"),
        ("memory://", "memory"),
        ("s3://bucket/x.lmdb", "lmdb"),
    ],
)
def test_registry_resolves_built_backends(location: str, backend: str) -> None:
    assert resolve(location).backend == backend


def test_registry_makes_relative_paths_absolute(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(str(tmp_path))
    assert resolve("a/b.lmdb").location == f"{tmp_path}/a/b.lmdb"
    assert resolve("memory://x").location == "memory://x"


@pytest.mark.parametrize(
    "location",
    [
        "x.zarr",
        "x.zarrp",
        "x.h5",
        "x.h5p",
        "x.h5md",
        "x.xyz",
        "x.extxyz",
        "x.traj",
        "mongodb://localhost/db",
        "redis://localhost:6379",
        "hf://user/ds",
        "colabfit://ds",
        "optimade://org/ds",
    ],
)
def test_registry_known_but_not_built_is_not_implemented(location: str) -> None:
    for facade in (ObjectIO, ASEIO, BlobIO):
        with pytest.raises(
            NotImplementedError, match="is not available in this build yet"
        ) as info:
            facade(location)
        assert isinstance(info.value, exceptions.UnsupportedOperationError)


@pytest.mark.parametrize("location", ["x.csv", "data", "ftp://host/x", "x.lmdb.bak"])
def test_registry_unknown_location_is_key_error_listing_known(location: str) -> None:
    with pytest.raises(
        KeyError,
        match=f"No backend registered for '{location}'; known: .*lmdb.*memory://",
    ):
        ObjectIO(location)


def test_list_groups_of_unbuilt_backend_is_not_implemented() -> None:
    with pytest.raises(NotImplementedError):
        ObjectIO.list_groups("x.zarr")


def test_aseio_cache_to_is_not_available_yet(tmp_path: object) -> None:
    with pytest.raises(NotImplementedError, match="cache_to"):
        ASEIO(f"{tmp_path}/x.lmdb", cache_to=f"{tmp_path}/c.lmdb")
