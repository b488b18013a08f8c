"""Stores released when idle: a store nobody used for ``ASEBYTES_STORE_IDLE_SECS`` (1 s in
this suite, see conftest) lets go of its files, so the reference ``asebytes`` 0.3.3 can
open them, and the handle that wrote it writes on; ``daemon_status`` lists this process
as a client and the store as released.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from asebytes import ObjectIO, _native

REF_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"

REF_SCRIPT = """
import sys
import asebytes
assert asebytes.__version__ == "0.3.3", asebytes.__version__
db = asebytes.ObjectIO(sys.argv[1])
print(len(db))
for i in range(len(db)):
    print(db[i]["info.tag"], db[i]["calc.energy"])
db.extend([{"info.tag": "reference", "calc.energy": -7.5}])
"""


def store_status(path: str) -> dict[str, Any] | None:
    """The status line of the store at ``path``; ``None`` in the moment it is being
    released or re-opened (status lists ready and released stores only)."""
    prefix = "lmdb://" + os.path.realpath(path) + "#"
    lines = [
        s
        for s in _native.daemon_status()["stores"]
        if s["canonical"].startswith(prefix)
    ]
    return lines[0] if lines else None


def wait_released(path: str, within: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        st = store_status(path)
        if st is not None and st["released"]:
            return st
        assert time.monotonic() < deadline, f"{path} was not released: {st}"
        time.sleep(0.02)


@pytest.mark.skipif(
    not REF_PYTHON.exists() and not os.environ.get("CI"),
    reason="reference virtualenv .venv-ref not present (`just ref-venv`; required in CI)",
)
def test_an_idle_store_is_released_to_the_reference_and_the_handle_writes_on(
    tmp_path, daemon
):
    path = str(tmp_path / "shared.lmdb")
    db = ObjectIO(path)
    assert (
        db.extend([{"info.tag": f"t{i}", "calc.energy": float(i)} for i in range(3)])
        == 3
    )

    st = wait_released(path)
    assert st["len"] == 3 and st["in_flight"] == 0

    out = subprocess.run(
        [str(REF_PYTHON), "-c", REF_SCRIPT, path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:4] == ["3", "t0 0.0", "t1 1.0", "t2 2.0"]

    # The same handle writes on, and sees the reference's row.
    assert db.extend([{"info.tag": "again", "calc.energy": 4.0}]) == 5
    assert db[3] == {"info.tag": "reference", "calc.energy": -7.5}
    assert db[4]["info.tag"] == "again"
    st = store_status(path)
    assert st is not None and not st["released"]


def test_daemon_status_lists_this_process_and_its_stores(tmp_path, daemon):
    path = str(tmp_path / "status.lmdb")
    db = ObjectIO(path)
    db.extend([{"a": 1}])
    st = _native.daemon_status()
    assert st["store_idle_secs"] == 1
    mine = [c for c in st["connections"] if c["pid"] == os.getpid()]
    assert mine, st["connections"]
    assert all("python" in c["program"] and c["since"] > 0 for c in mine)
    assert sum(c["stores"] for c in mine) >= 1
    line = store_status(path)
    assert line is not None
    assert {"released", "idle_secs", "in_flight", "queued"} <= line.keys()
