"""Progress bars: shown where someone watches, off by argument or ASEBYTES_PROGRESS, never
in logs (no terminal)."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path
from typing import Any

import pytest
from asebytes import _progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("arg", "env", "tty", "expected"),
    [
        (None, None, False, False),  # a log file or CI: never
        (None, None, True, True),  # a terminal
        (None, "0", True, False),
        (None, "off", True, False),
        (None, "1", False, True),
        (False, "1", True, False),  # the argument wins
        (True, "0", False, True),
    ],
)
def test_enabled_rule(
    monkeypatch: pytest.MonkeyPatch,
    arg: bool | None,
    env: str | None,
    tty: bool,
    expected: bool,
) -> None:
    if env is None:
        monkeypatch.delenv(_progress.ENV, raising=False)
    else:
        monkeypatch.setenv(_progress.ENV, env)
    monkeypatch.setattr(sys, "stderr", _Tty() if tty else io.StringIO())
    assert _progress.enabled(arg) is expected


def test_silent_bar_and_track_pass_items_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_progress.ENV, "0")
    assert list(_progress.track(iter(range(5)), desc="x")) == [0, 1, 2, 3, 4]
    with _progress.bar(10, desc="x") as b:
        b.update(3)


def _run_in_a_terminal(code: str, env: dict[str, str]) -> str:
    """Run ``code`` with stderr on a pseudo-terminal; everything it printed there."""
    leader, follower = pty.openpty()
    # A fresh pty is 0x0; a terminal has a size (tqdm fits its bar to it).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, **env},
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


_SLOW_EXTEND = """
    import time
    from asebytes import ObjectIO

    def rows():
        for i in range(40):
            time.sleep(0.03)
            yield {"i": i}

    db = ObjectIO(%r)
    db.extend(rows()%s)
    assert len(db) == 40
"""


def test_extend_of_a_slow_generator_shows_a_bar_in_a_terminal(tmp_path: Path) -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if k != _progress.ENV}
    out = _run_in_a_terminal(_SLOW_EXTEND % (str(tmp_path / "a.lmdb"), ""), env)
    assert "extend:" in out and "row/s" in out
    quiet = _run_in_a_terminal(
        _SLOW_EXTEND % (str(tmp_path / "b.lmdb"), ", progress=False"), env
    )
    assert "extend" not in quiet
    off = _run_in_a_terminal(
        _SLOW_EXTEND % (str(tmp_path / "c.lmdb"), ""), {**env, _progress.ENV: "0"}
    )
    assert "extend" not in off


def test_convert_bar_in_a_terminal_when_asked(tmp_path: Path) -> None:
    from asebytes import ObjectIO

    src = str(tmp_path / "src.lmdb")
    ObjectIO(src).extend([{"i": i} for i in range(300)])
    script = Path(sys.executable).parent / "asebytes"
    dst = str(tmp_path / "dst.lmdb")
    code = f"""
        import subprocess, sys
        sys.exit(subprocess.call([{str(script)!r}, "convert", {src!r}, {dst!r},
                                  "--batch-size", "10"]))
    """
    env = {k: v for k, v in os.environ.items() if k != _progress.ENV}
    out = _run_in_a_terminal(code, {**env, _progress.ENV: "1"})
    assert "convert src.lmdb" in out and "100%" in out
    assert len(ObjectIO(dst)) == 300
