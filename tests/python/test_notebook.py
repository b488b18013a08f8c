"""Notebook views, rendered by a real Jupyter kernel (ipykernel through jupyter_client):
what a user sees when a cell ends with a facade or a view, and a progress bar there."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _helpers import make_atoms
from asebytes import ASEIO, AsyncASEIO, ObjectIO, _display

jupyter_client = pytest.importorskip("jupyter_client")


@pytest.fixture(scope="module")
def kernel() -> Iterator[Any]:
    """One kernel (this interpreter, this session's daemon) for the module."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run_cell(kc: Any, code: str) -> tuple[dict[str, str], str, str]:
    """Execute ``code``; (the cell's result by MIME type, its stdout, its stderr)."""
    result: dict[str, str] = {}
    streams = {"stdout": "", "stderr": ""}

    def hook(msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "execute_result":
            result.update(content["data"])
        elif kind == "stream":
            streams[content["name"]] += content["text"]
        elif kind == "error":
            raise AssertionError("\n".join(content["traceback"]))

    reply = kc.execute_interactive(textwrap.dedent(code), timeout=120, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return result, streams["stdout"], streams["stderr"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("nb") / "traj.lmdb")
    ASEIO(path).extend([make_atoms(i, n=4) for i in range(12)])
    return path


def test_facade_renders_location_backend_length_and_schema(
    kernel: Any, store: str
) -> None:
    out, _, _ = run_cell(
        kernel, f"from asebytes import ASEIO\ndb = ASEIO({store!r})\ndb"
    )
    html, text = out["text/html"], out["text/plain"]
    for shown in (store, "lmdb", "12", "arrays.positions", "float64", "(4, 3)", "atom"):
        assert shown in html, shown
    assert "<table>" in html and "<td>calc.energy</td>" in html
    assert text.startswith("ASEIO\n") and "length:   12" in text
    assert any(
        line.split() == ["calc.energy", "float64", "()", "frame"]
        for line in text.splitlines()
    )


def test_views_render_their_rows_and_keys(kernel: Any, store: str) -> None:
    out, _, _ = run_cell(kernel, "db[2:5]")
    assert "rows 2:5" in out["text/html"] and "length:   3" in out["text/plain"]
    out, _, _ = run_cell(kernel, "db[[0, 7, 3]]['calc.energy']")
    assert "ASEColumnView" in out["text/plain"]
    assert "rows [0, 7, 3] (3 rows)" in out["text/plain"]
    assert (
        "calc.energy" in out["text/html"] and "arrays.positions" not in out["text/html"]
    )
    out, _, _ = run_cell(kernel, "db + db")
    assert "ConcatView" in out["text/plain"] and "length:   24" in out["text/plain"]


def test_async_facade_renders_without_awaiting(kernel: Any, store: str) -> None:
    out, _, _ = run_cell(
        kernel, f"from asebytes import AsyncASEIO\nadb = AsyncASEIO({store!r})\nadb"
    )
    assert "AsyncASEIO" in out["text/plain"] and "length:   12" in out["text/plain"]


def test_progress_bar_in_the_notebook(kernel: Any, tmp_path: Path) -> None:
    code = f"""
        import time
        from asebytes import ObjectIO
        def rows():
            for i in range(30):
                time.sleep(0.03)
                yield {{"i": i}}
        ObjectIO({str(tmp_path / "nb.lmdb")!r}).extend(rows())
    """
    _, _, err = run_cell(kernel, code)
    assert "extend:" in err and "30" in err  # tqdm's text bar on the cell's stderr
    assert "IProgress" not in err  # no widget warning without ipywidgets


def test_repr_stays_the_reference_one_line(store: str) -> None:
    db = ASEIO(store)
    assert repr(db).startswith("ASEIO(backend=") and "\n" not in repr(db)
    assert repr(db[0:3]) == "RowView(len=3)"
    assert _display.html_of(AsyncASEIO(store)[0:2]).count("<tr>") > 3


def test_unreadable_store_renders_a_note_instead_of_raising(tmp_path: Path) -> None:
    db = ObjectIO(str(tmp_path / "empty.lmdb"))
    text = _display.text_of(db)
    assert "length:   0" in text
    db.extend([None, {"a": 1}])
    assert "placeholder" in _display.text_of(db)


def test_async_facade_over_a_sync_backend_renders(tmp_path: Path) -> None:
    from _custom_backends import object_backend
    from asebytes import AsyncObjectIO

    location = str(tmp_path / "custom")
    ObjectIO(object_backend("custom", location)).extend([{"a": 1}, {"a": 2}])
    text = _display.text_of(AsyncObjectIO(object_backend("custom", location)))
    assert "length:   2" in text and "int64" in text
