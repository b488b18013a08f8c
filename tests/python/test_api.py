"""The public surface: exported names, not-yet-available names, the location registry."""

from __future__ import annotations

import asebytes
import pytest
from asebytes import ASEIO, BlobIO, ObjectIO, _native, _registry, exceptions
from asebytes._registry import resolve

EXPORTED = [
    "ASEIO",
    "ASEColumnView",
    "AsebytesError",
    "AtomsDecoder",
    "AtomsEncoder",
    "BlobIO",
    "ColumnView",
    "ConcatView",
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
        exec("from asebytes import MongoObjectBackend", {})  # noqa: S102 - the statement under test


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
        "hf://user/ds",
        "colabfit://ds",
        "optimade://org/ds",
    ],
)
def test_registry_known_but_not_built_is_not_implemented(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every location the reference serves is built by default; a build without a backend
    # (here: the Hub schemes left out of the table) says "not in this build", not "unknown".
    scheme = location.split("://")[0]
    table = tuple(e for e in _registry.backend_table() if e.scheme != scheme)
    monkeypatch.setattr(_registry, "backend_table", lambda: table)
    for facade in (ObjectIO, ASEIO, BlobIO):
        with pytest.raises(
            NotImplementedError, match="is not available in this build yet"
        ) as info:
            facade(location)
        assert isinstance(info.value, exceptions.UnsupportedOperationError)


def test_locations_shown_in_errors_never_carry_secrets() -> None:
    assert (
        _native.redact_location("mongodb://u:hunter2@h:27017/db?authSource=admin")
        == "mongodb://u:***@h:27017/db?authSource=admin"
    )
    assert _native.redact_location("x.lmdb") == "x.lmdb"
    for location in ("ftp://u:hunter2@host/x", "gcs://org/ds?token=hunter2"):
        with pytest.raises(Exception) as info:
            ObjectIO(location)
        assert "hunter2" not in str(info.value), info.value
        assert "***" in str(info.value), info.value


@pytest.mark.parametrize("location", ["x.csv", "data", "ftp://host/x", "x.lmdb.bak"])
def test_registry_unknown_location_is_key_error_listing_known(location: str) -> None:
    with pytest.raises(
        KeyError,
        match=f"No backend registered for '{location}'; known: .*lmdb.*memory://",
    ):
        ObjectIO(location)


def test_list_groups_of_unbuilt_backend_is_not_implemented(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ObjectIO.list_groups("hf://user/ds") == []  # built: as the reference
    table = tuple(e for e in _registry.backend_table() if e.scheme != "hf")
    monkeypatch.setattr(_registry, "backend_table", lambda: table)
    with pytest.raises(NotImplementedError):
        ObjectIO.list_groups("hf://user/ds")


def test_registry_reads_the_daemons_backend_table() -> None:
    from asebytes import _native
    from asebytes._registry import backend_table

    table = {e.scheme: e for e in backend_table()}
    assert [e["scheme"] for e in _native.backends()] == list(table)
    assert table["lmdb"].patterns == ("*.lmdb",) and table["lmdb"].location == "file"
    assert "map_size" in table["lmdb"].options
    assert table["memory"].patterns == () and table["memory"].location == "name"


def test_unknown_backend_option_is_type_error_listing_what_is_accepted(
    tmp_path: object,
) -> None:
    for facade in (ObjectIO, ASEIO, BlobIO):
        with pytest.raises(
            TypeError, match=r"compressor.*It accepts .*map_size="
        ) as info:
            facade(f"{tmp_path}/x.lmdb", compressor="zstd")
        assert isinstance(info.value, exceptions.AsebytesTypeError)


def test_daemon_refuses_options_the_backend_does_not_take(tmp_path: object) -> None:
    from asebytes import _native

    store = _native.Store(f"{tmp_path}/x.lmdb", options={"clevel": 3})
    with pytest.raises(TypeError, match=r"clevel; it accepts: map_size"):
        len(store)
    store = _native.Store("memory://opts", options={"map_size": 1})
    with pytest.raises(
        TypeError, match=r"memory backend: map_size; it accepts: no options"
    ):
        len(store)


def test_backend_option_of_the_wrong_type_names_the_option(tmp_path: object) -> None:
    with pytest.raises(TypeError, match="map_size"):
        len(ObjectIO(f"{tmp_path}/x.lmdb", map_size="big"))
    with pytest.raises(
        TypeError, match=r"option codec= must be a bool, int, float, str"
    ):
        from asebytes import _native

        _native.Store(f"{tmp_path}/x.lmdb", options={"codec": [1]})


def test_map_size_option_still_opens_lmdb(tmp_path: object) -> None:
    db = ObjectIO(f"{tmp_path}/x.lmdb", map_size=1 << 24)
    assert db.extend([{"a": 1}]) == 1 and db[0] == {"a": 1}
