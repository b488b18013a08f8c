"""Every ```python block of the repository README runs as written.

Each block is executed on its own (in a fresh namespace and an empty temporary working
directory), so every block must be self-contained. A README without Python blocks fails.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[str]:
    if not README.exists():
        return []
    return _BLOCK.findall(README.read_text(encoding="utf-8"))


BLOCKS = python_blocks()


def test_readme_has_python_examples() -> None:
    assert BLOCKS, f"{README} has no ```python blocks to test"


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_example_runs(
    number: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "asebytes.torch" in BLOCKS[number] and importlib.util.find_spec("torch") is None:
        pytest.skip("needs PyTorch (run by `just test-torch`)")
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[number], f"README.md python block {number + 1}", "exec")
    exec(code, {"__name__": f"readme_block_{number + 1}"})  # noqa: S102 - running the docs
