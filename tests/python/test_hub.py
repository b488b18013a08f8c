"""HuggingFace Hub datasets (``hf://``, ``colabfit://``, ``optimade://``) served read-only by
the daemon, against a local mock Hub (``_hub_server.py``; nothing touches the internet).

Rows are compared with asebytes 0.3.3's ``HuggingFaceBackend`` over ``datasets`` reading
the same Parquet files (in ``.venv-ref``, as a subprocess)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ase
import asebytes
import numpy as np
import pytest
from _hub_data import colabfit_repo, colabfit_table, lemat_repo, parquet_bytes
from _hub_server import HubServer, HubState, Repo
from asebytes import COLABFIT, OPTIMADE, ColumnMapping
from test_ase_files import assert_same_atoms

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"
TOKEN = "hf_mock_token_1234"

COLABFIT_ID = "colabfit/mock_Cu_train"
LEMAT_ID = "LeMaterial/LeMat-Mock"
BIG_ID = "colabfit/mock_big"


def _custom_repo() -> Repo:
    t = colabfit_table(0, 12).rename_columns(
        [
            "configuration_id",
            "pos",
            "z",
            "box",
            "periodic",
            "e",
            "f",
            "s",
            "formula",
            "nsites",
            "metadata",
        ]
    )
    return Repo({"data/train-00000.parquet": parquet_bytes(t, 5)})


def _converted_repo() -> Repo:
    """No card: rows come from the ``refs/convert/parquet`` branch."""
    data = parquet_bytes(colabfit_table(0, 9), 4)
    return Repo(
        {"raw/data.jsonl": b"{}"},
        converted={
            "default/train/0000.parquet": data,
            "default/partial-test/0000.parquet": parquet_bytes(
                colabfit_table(50, 3), 4
            ),
        },
    )


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    state = HubState(
        {
            COLABFIT_ID: colabfit_repo(),
            BIG_ID: colabfit_repo((1500, 1500, 1500), 250),
            LEMAT_ID: lemat_repo(),
            "me/ds": _custom_repo(),
            "me/converted": _converted_repo(),
            "gated/secret": colabfit_repo((6,), 3, token=TOKEN),
        }
    )
    server = HubServer(state)
    yield server
    server.stop()


@pytest.fixture
def hf_home(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This client's HF environment: the mock endpoint and a private cache."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home


def _repo_files(hub: HubServer, repo_id: str, prefix: str) -> list[tuple[str, bytes]]:
    files = hub.state.repos[repo_id].files
    return sorted((p, b) for p, b in files.items() if p.startswith(prefix))


def _reference(
    tmp_path: Path, files: list[tuple[str, bytes]], mapping: str
) -> list[ase.Atoms]:
    """What asebytes 0.3.3's HuggingFaceBackend gives for these files (``datasets``
    loading them locally, in sorted path order as it does from the Hub)."""
    probe = subprocess.run(
        [str(REF_PYTHON), "-c", "import datasets"], capture_output=True, check=False
    )
    if not REF_PYTHON.exists() or probe.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("the reference venv needs `datasets` (requirements-ref.txt)")
        pytest.skip("reference virtualenv with `datasets` not present")
    paths = []
    for name, data in files:
        p = tmp_path / "ref" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(str(p))
    code = f"""
import os, pickle, sys
import datasets
from asebytes import ASEIO
from asebytes.hf import HuggingFaceBackend, COLABFIT, OPTIMADE, ColumnMapping
ds = datasets.load_dataset("parquet", data_files=sys.argv[1:], split="train",
                           cache_dir=os.environ["HF_HOME"] + "/datasets")
db = ASEIO(HuggingFaceBackend(ds, {mapping}))
sys.stdout.buffer.write(pickle.dumps([db[i] for i in range(len(db))]))
"""
    out = subprocess.run(
        [str(REF_PYTHON), "-c", code, *paths],
        capture_output=True,
        check=False,
        env={
            **os.environ,
            "HF_DATASETS_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "ref-hf"),
        },
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    frames: list[ase.Atoms] = pickle.loads(out.stdout)
    return frames


def test_colabfit_rows_match_the_reference(
    hf_home: Path, hub: HubServer, tmp_path: Path
) -> None:
    db = asebytes.ASEIO("colabfit://mock_Cu_train", split="train")
    assert len(db) == 80  # known at open, from the Parquet footers
    want = _reference(tmp_path, _repo_files(hub, COLABFIT_ID, "main/"), "COLABFIT")
    assert len(want) == 80
    for i, ref in enumerate(want):
        assert_same_atoms(db[i], ref, f"colabfit[{i}]")
    assert_same_atoms(db[-1], want[-1], "colabfit[-1]")
    got = db[10:20].to_list()
    for k, a in enumerate(got):
        assert_same_atoms(a, want[10 + k], f"colabfit[10:20][{k}]")
    obj = asebytes.ObjectIO("colabfit://mock_Cu_train", split="train")
    energies = obj["calc.energy"].to_list()
    assert energies == [a.calc.results.get("energy") if a.calc else None for a in want]


def test_optimade_config_and_split_match_the_reference(
    hf_home: Path, hub: HubServer, tmp_path: Path
) -> None:
    db = asebytes.ASEIO(f"optimade://{LEMAT_ID}", split="train", name="compatible_pbe")
    assert len(db) == 50
    want = _reference(
        tmp_path, _repo_files(hub, LEMAT_ID, "compatible_pbe/"), "OPTIMADE"
    )
    for i in (0, 1, 7, 8, 29, 30, 49):
        assert_same_atoms(db[i], want[i], f"optimade[{i}]")
    assert db[3].info["immutable_id"] == "agm000000003"
    other = asebytes.ASEIO(
        f"optimade://{LEMAT_ID}", split="train", name="non_compatible"
    )
    assert len(other) == 7


def test_hf_needs_a_mapping_and_takes_a_custom_one(
    hf_home: Path, hub: HubServer, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="mapping="):
        len(asebytes.ASEIO("hf://me/ds"))
    mapping = ColumnMapping(
        positions="pos",
        numbers="z",
        cell="box",
        pbc="periodic",
        calc={"energy": "e", "forces": "f"},
        info={"label": "formula"},
    )
    db = asebytes.ASEIO("hf://me/ds", mapping=mapping)
    assert len(db) == 12
    ref_mapping = (
        "ColumnMapping(positions='pos', numbers='z', cell='box', pbc='periodic', "
        "calc={'energy': 'e', 'forces': 'f'}, info={'label': 'formula'})"
    )
    want = _reference(tmp_path, _repo_files(hub, "me/ds", "data/"), ref_mapping)
    for i, ref in enumerate(want):
        assert_same_atoms(db[i], ref, f"hf[{i}]")
    assert "s" in db[0].info and "label" in db[0].info


def test_random_access_negative_indices_slices_and_columns(hf_home: Path) -> None:
    db = asebytes.ASEIO("colabfit://mock_Cu_train", split="train")
    order = [79, 0, 41, 40, 39, 3, 65, 24, 25]
    rows = [db[i] for i in order]
    assert [a.info["configuration_id"] for a in rows] == [f"CO_{i:06d}" for i in order]
    assert db[-80].info["configuration_id"] == "CO_000000"
    with pytest.raises(IndexError):
        db[80]
    with pytest.raises(IndexError):
        db[-81]
    ids = [a.info["configuration_id"] for a in db[20:30].to_list()]
    assert ids == [f"CO_{i:06d}" for i in range(20, 30)]
    obj = asebytes.ObjectIO("colabfit://mock_Cu_train", split="train")
    energies = obj["calc.energy"].to_list()
    assert len(energies) == 80
    positions = obj["arrays.positions"][5:7].to_list()
    assert [np.asarray(p).shape[1] for p in positions] == [3, 3]
    row = obj[4]
    assert list(row)[:4] == ["cell", "pbc", "arrays.numbers", "arrays.positions"]
    assert row["info.nsites"] == len(row["arrays.numbers"])
    assert row["arrays.numbers"].dtype == np.int64
    assert row["arrays.positions"].dtype == np.float64


def test_a_missing_mapped_column_names_the_columns_there_are(hf_home: Path) -> None:
    bad = ColumnMapping(positions="coords", numbers="z")
    with pytest.raises(KeyError, match="Available columns") as e:
        len(asebytes.ASEIO("hf://me/ds", mapping=bad))
    assert "coords" in str(e.value) and "formula" in str(e.value)


def test_unknown_repo_split_and_config_say_what_exists(hf_home: Path) -> None:
    with pytest.raises(KeyError, match="not found"):
        len(asebytes.ASEIO("colabfit://no_such_dataset", split="train"))
    with pytest.raises(ValueError, match=r"available splits: \[.train.\]"):
        len(asebytes.ASEIO("colabfit://mock_Cu_train", split="validation"))
    with pytest.raises(ValueError, match="available configs") as e:
        len(
            asebytes.ASEIO(
                f"optimade://{LEMAT_ID}", split="train", name="compatible_scan"
            )
        )
    assert "compatible_pbe" in str(e.value) and "non_compatible" in str(e.value)
    with pytest.raises(ValueError, match="several configs"):
        len(asebytes.ASEIO(f"optimade://{LEMAT_ID}", split="train"))


def test_a_gated_repo_needs_a_token(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PermissionError, match="HF_TOKEN") as e:
        len(asebytes.ASEIO("colabfit://gated/secret", split="train"))
    assert isinstance(e.value, asebytes.exceptions.AsebytesError)
    db = asebytes.ASEIO("colabfit://gated/secret", split="train", token=TOKEN)
    assert len(db) == 6 and len(db[5]) > 0
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert (
        len(asebytes.ASEIO("colabfit://gated/secret", split="train", streaming=False))
        == 6
    )
    status = subprocess.run(
        [sys.executable, "-m", "asebytes.cli", "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert TOKEN not in status.stdout + status.stderr


def test_streaming_fetches_only_byte_ranges_and_downloads_nothing(
    hf_home: Path, hub: HubServer
) -> None:
    total = sum(len(b) for _, b in _repo_files(hub, BIG_ID, "main/"))
    before = hub.state.bytes_sent()
    db = asebytes.ASEIO("colabfit://mock_big", split="train", name="default")
    opened = hub.state.bytes_sent() - before
    assert len(db) == 4500
    assert opened <= 3 * 64 * 1024 < total / 4, (opened, total)  # the footers' tails
    obj = asebytes.ObjectIO("colabfit://mock_big", split="train", name="default")
    assert len(obj) == 4500
    opened = hub.state.bytes_sent() - before
    energy = obj["calc.energy"][4321:4322].to_list()
    assert energy == [-4321 * 0.25]
    one_chunk = hub.state.bytes_sent() - before - opened
    assert 0 < one_chunk < 16 * 1024, one_chunk  # one column chunk of one row group
    a = db[2000]
    assert a.info["configuration_id"] == "CO_002000"
    assert hub.state.bytes_sent() - before < total / 2
    assert not list((hf_home / "hub").rglob("*.parquet"))


def test_streaming_false_downloads_and_the_cache_works_offline(
    hf_home: Path, hub: HubServer
) -> None:
    db = asebytes.ASEIO(
        f"optimade://{LEMAT_ID}", split="train", name="compatible_pbe", streaming=False
    )
    first = [db[i] for i in (0, 49)]
    assert len(list((hf_home / "hub").rglob("*.parquet"))) == 2
    # The Hub goes away: a fresh open (another endpoint, so another store) reads the cache.
    dead = HubServer(HubState())
    dead_url = dead.url
    dead.stop()
    offline = asebytes.ASEIO(
        f"optimade://{LEMAT_ID}",
        split="train",
        name="compatible_pbe",
        endpoint=dead_url,
    )
    assert len(offline) == 50
    for a, b in zip(first, (offline[0], offline[49]), strict=True):
        assert_same_atoms(b, a, "offline")


def test_the_converted_parquet_branch_serves_a_repo_without_a_card(
    hf_home: Path,
) -> None:
    mapping = COLABFIT
    db = asebytes.ASEIO("hf://me/converted", mapping=mapping, split="train")
    assert len(db) == 9
    test = asebytes.ASEIO("hf://me/converted", mapping=mapping, split="test")
    assert len(test) == 3 and test[0].info["configuration_id"] == "CO_000050"


def test_writes_are_refused_and_groups_are_none(hf_home: Path) -> None:
    db = asebytes.ASEIO("colabfit://mock_Cu_train", split="train")
    with pytest.raises(TypeError, match="Backend is read-only"):
        db.extend([ase.Atoms("H")])
    with pytest.raises(TypeError, match="Backend is read-only"):
        db[0] = ase.Atoms("H")
    assert len(db) == 80
    assert asebytes.ASEIO.list_groups("colabfit://mock_Cu_train") == []


def test_mappings_are_the_reference_ones() -> None:
    assert OPTIMADE.species_are_strings and OPTIMADE.pbc_are_dimension_types
    assert COLABFIT.calc == {
        "energy": "energy",
        "forces": "atomic_forces",
        "stress": "cauchy_stress",
    }
    with pytest.raises(TypeError, match="ColumnMapping"):
        len(asebytes.ASEIO("hf://me/ds", mapping={"positions": "pos"}))
