"""Progress bars for long work the user starts (``extend`` of many rows, ``asebytes convert``).

One rule decides whether a bar is shown, in this order: the call's ``progress=`` argument
(``True``/``False``); else the environment variable ``ASEBYTES_PROGRESS`` (``0``/``false``/
``off`` turns bars off everywhere, ``1``/``true``/``on`` turns them on even without a
terminal); else only where someone watches: a terminal on stderr or a Jupyter kernel --
never in logs, pipes or CI. A bar that was not asked for explicitly appears only when the
work lasts longer than :data:`DELAY` seconds, so short calls stay silent. Bars are tqdm's: the notebook widget in
Jupyter (``tqdm.auto``), text elsewhere, always on stderr.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Self, TypeVar

__all__ = ["DELAY", "ENV", "FEW", "Bar", "bar", "enabled", "track"]

T = TypeVar("T")

#: The environment variable that turns bars off (``0``) or on (``1``) by default.
ENV = "ASEBYTES_PROGRESS"
#: Seconds of work before a bar appears.
DELAY = 0.5
#: Lists and tuples shorter than this are quick: no bar, no check.
FEW = 64
_QUICK = (list, tuple)

_OFF = {"0", "false", "off", "no"}
_ON = {"1", "true", "on", "yes"}


def _in_kernel() -> bool:
    """Running inside a Jupyter (IPython) kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _decide(progress: bool | None) -> tuple[bool, bool]:
    """(show a bar, asked for explicitly) by the rule of this module."""
    if progress is not None:
        return bool(progress), bool(progress)
    env = os.environ.get(ENV, "").strip().lower()
    if env in _OFF:
        return False, False
    if env in _ON:
        return True, True
    if _in_kernel():
        return True, False
    stderr = sys.stderr
    tty = stderr is not None and hasattr(stderr, "isatty") and stderr.isatty()
    return bool(tty), False


def enabled(progress: bool | None = None) -> bool:
    """Whether to show a bar, by the rule of this module."""
    return _decide(progress)[0]


class Bar:
    """A bar that shows nothing (progress is off); the interface of a tqdm bar we use."""

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""

    def set_postfix_str(self, text: str) -> None:
        """Say what is happening now."""

    def close(self) -> None:
        """Finish the bar."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(
    total: int | None,
    *,
    desc: str,
    unit: str = "row",
    initial: int = 0,
    progress: bool | None = None,
) -> Any:
    """A progress bar (a tqdm bar, or a silent :class:`Bar`) for ``total`` items; it shows
    after :data:`DELAY` seconds, at once when asked for explicitly."""
    show, asked = _decide(progress)
    if not show:
        return Bar()
    kwargs: dict[str, Any] = {
        "total": total,
        "desc": desc,
        "unit": unit,
        "initial": initial,
        "delay": 0 if asked else DELAY,
        "file": sys.stderr,
        "dynamic_ncols": True,
        "unit_scale": True,
    }
    if _in_kernel() and importlib.util.find_spec("ipywidgets") is not None:
        # The widget needs ipywidgets; without it tqdm.auto would warn and fall back to
        # the text bar, which renders in a notebook too.
        from tqdm.auto import tqdm as auto_tqdm  # type: ignore[import-untyped]

        return auto_tqdm(**kwargs)
    from tqdm import tqdm  # type: ignore[import-untyped]

    return tqdm(**kwargs)


def track(
    items: Iterable[T], *, desc: str, progress: bool | None = None, unit: str = "row"
) -> Iterable[T]:
    """``items``, counted on a bar while consumed (total = ``len(items)`` when it has
    one); ``items`` itself when no bar is shown (nothing added to a hot loop). Fewer than
    :data:`FEW` items in a list or tuple never get a bar unless asked for, and cost no
    check at all (``db.extend([atoms])`` in a loop)."""
    if progress is None and type(items) in _QUICK and len(items) < FEW:  # type: ignore[arg-type]
        return items
    if not enabled(progress):
        return items
    return _counted(items, desc, progress, unit)


def _counted(
    items: Iterable[T], desc: str, progress: bool | None, unit: str
) -> Iterator[T]:
    total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    with bar(total, desc=desc, unit=unit, progress=progress) as b:
        for item in items:
            yield item
            b.update(1)
