"""The ``asebytes`` console script, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import pytest
from _helpers import assert_same, make_atoms
from asebytes import ASEIO, ObjectIO

SCRIPT = Path(sys.executable).parent / "asebytes"


def cli(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``asebytes ARGS`` with this session's daemon; stdin closed, no terminal."""
    out = subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        check=False,
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"asebytes {' '.join(args)}: {out.returncode}\n{out.stderr}"
        )
    return out


@pytest.fixture
def frames_lmdb(tmp_path: Path) -> tuple[str, list[Any]]:
    path = str(tmp_path / "frames.lmdb")
    frames = [make_atoms(i) for i in range(25)]
    ASEIO(path).extend(frames)
    ObjectIO(path, group="extra").extend([{"x": 1.0}])
    return path, frames


def test_console_script_is_installed() -> None:
    assert SCRIPT.exists(), "the wheel's entry point asebytes = asebytes.cli:main"
    out = cli("--help")
    for command in ("info", "head", "convert", "ls"):
        assert command in out.stdout


def test_info_names_backend_groups_length_schema_and_size(
    frames_lmdb: tuple[str, list[Any]],
) -> None:
    path, _ = frames_lmdb
    out = cli("info", path).stdout
    assert "backend:  lmdb" in out
    assert "groups:   default, extra" in out or "groups:   extra, default" in out
    assert "group 'default': 25 rows" in out and "group 'extra': 1 rows" in out
    assert "on disk" in out
    lines = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.startswith("  ")
    }
    assert lines["arrays.positions"][0] == "float64"
    assert lines["arrays.positions"][-1] == "per-atom"
    assert lines["calc.forces"][-1] == "per-atom"
    assert lines["calc.energy"] == ["float64", "()", "per-frame"]
    report = json.loads(cli("info", path, "--json", "--group", "default").stdout)
    assert report["groups"][0]["length"] == 25 and report["size_on_disk"] > 0
    keys = {c["key"]: c for c in report["groups"][0]["schema"]}
    assert keys["info.i"]["dtype"] == "int64" and keys["info.i"]["per"] == "frame"


def test_head_shows_the_first_rows_as_a_table(
    frames_lmdb: tuple[str, list[Any]],
) -> None:
    path, frames = frames_lmdb
    out = cli("head", path, "-n", "3").stdout.splitlines()
    assert out[0].split()[:3] == ["#", "formula", "atoms"]
    assert "calc.energy" in out[0]
    assert len(out) == 1 + 3 + 1 and out[-1] == "... 22 more rows"
    assert out[1].split()[1] == frames[0].get_chemical_formula()
    rows = json.loads(cli("head", path, "-n", "2", "--json").stdout)
    assert rows[1]["calc.energy"] == -1.0 and len(rows) == 2


def test_convert_copies_every_row_between_backends(
    frames_lmdb: tuple[str, list[Any]], tmp_path: Path
) -> None:
    path, frames = frames_lmdb
    for dst in (tmp_path / "copy.lmdb", tmp_path / "copy.zarr", tmp_path / "copy.h5"):
        out = cli("convert", path, str(dst), "--batch-size", "7")
        assert (
            "copied 25 rows" in out.stdout and out.stderr == ""
        )  # no bar without a tty
        back = ASEIO(str(dst))
        assert len(back) == 25
        assert back[24] == frames[24] and back[3].info == frames[3].info
        assert_same(back["calc.energy"].to_numpy(), -np.arange(25.0))


def test_convert_group_and_ase_file_source(
    frames_lmdb: tuple[str, list[Any]], tmp_path: Path
) -> None:
    path, frames = frames_lmdb
    cli("convert", path, str(tmp_path / "g.lmdb"), "--group", "extra")
    assert ObjectIO(str(tmp_path / "g.lmdb"), group="extra")[0] == {"x": 1.0}
    xyz = str(tmp_path / "frames.extxyz")
    ase.io.write(xyz, frames[:5], format="extxyz")
    info = cli("info", xyz).stdout
    assert "ase.io (read-only, format extxyz)" in info and "\n5 rows" in info
    assert "arrays.positions  float64  (2, 3)  per-atom" in info
    cli("convert", xyz, str(tmp_path / "from_xyz.lmdb"))
    back = ASEIO(str(tmp_path / "from_xyz.lmdb"))
    assert len(back) == 5
    np.testing.assert_allclose(back[4].positions, frames[4].positions, atol=1e-6)


def test_convert_onto_non_empty_destination_refuses_unless_append(
    frames_lmdb: tuple[str, list[Any]], tmp_path: Path
) -> None:
    path, _ = frames_lmdb
    dst = str(tmp_path / "busy.lmdb")
    ObjectIO(dst).extend([{"other": 1}])
    out = cli("convert", path, dst, check=False)
    assert out.returncode == 1
    assert "already holds 1 rows" in out.stderr and "--append" in out.stderr
    assert len(ObjectIO(dst)) == 1
    out = cli("convert", path, dst, "--append")
    assert "appended after 1 rows" in out.stdout
    assert len(ObjectIO(dst)) == 26 and ObjectIO(dst)[0] == {"other": 1}


def test_convert_resumes_an_interrupted_copy_and_rerun_is_a_no_op(
    frames_lmdb: tuple[str, list[Any]], tmp_path: Path
) -> None:
    path, frames = frames_lmdb
    dst = str(tmp_path / "partial.lmdb")
    ObjectIO(dst).extend(ObjectIO(path)[:10].to_list())  # what an interrupt leaves
    out = cli("convert", path, dst)
    assert "resumed after 10 rows" in out.stdout and "copied 15 rows" in out.stdout
    assert ASEIO(dst)[:].to_list() == frames
    out = cli("convert", path, dst)
    assert "copied 0 rows" in out.stdout and len(ASEIO(dst)) == 25


def test_convert_interrupted_by_sigint_leaves_whole_batches(tmp_path: Path) -> None:
    src = str(tmp_path / "big.lmdb")
    ObjectIO(src).extend([{"i": i, "pad": np.zeros(2000)} for i in range(4000)])
    dst = str(tmp_path / "big-copy.lmdb")
    proc = subprocess.Popen(
        [str(SCRIPT), "convert", src, dst, "--batch-size", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(ObjectIO(dst)) < 100:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    done = len(ObjectIO(dst))
    if proc.returncode == 0:
        pytest.skip("the copy finished before the interrupt arrived")
    assert proc.returncode == 130 and "run the same command again" in err
    assert done % 50 == 0
    cli("convert", src, dst)
    assert ObjectIO(dst)["i"].to_list() == list(range(4000))


def test_missing_source_is_an_error_not_an_empty_store(tmp_path: Path) -> None:
    out = cli("info", str(tmp_path / "nope.lmdb"), check=False)
    assert out.returncode == 1 and out.stderr.startswith("asebytes info:")
    assert not (tmp_path / "nope.lmdb").exists()


def test_ls_lists_the_stores_the_daemon_has_open(
    frames_lmdb: tuple[str, list[Any]],
) -> None:
    path, _ = frames_lmdb
    assert len(ASEIO(path)) == 25  # keeps it open in the daemon
    out = cli("ls").stdout
    assert "asebytesd" in out and "stores open" in out
    assert os.path.abspath(path) in out
    status = json.loads(cli("ls", "--json").stdout)
    assert status["running"] is True
    mine = [s for s in status["stores"] if os.path.abspath(path) in s["canonical"]]
    assert mine and mine[0]["backend"] == "lmdb"


def test_ls_without_a_daemon_says_so(tmp_path: Path) -> None:
    out = cli("ls", ASEBYTES_SOCKET=str(tmp_path / "none.sock"))
    assert "not running" in out.stdout
