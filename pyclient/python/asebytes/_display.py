"""What a facade or a view shows in a notebook and in ``print()``.

:func:`summarize` reads, for a facade, a row view, a column view or a ``ConcatView``
(sync or async): location, backend, group, length, which rows a view covers, and a
schema table of its first row (key, dtype, shape, per-atom or per-frame). :func:`html_of`
and :func:`text_of` render it; the facades' and views' ``_repr_html_`` (Jupyter) and
``_repr_pretty_`` (IPython's plain text, also in Jupyter) call them. ``repr()`` keeps the
reference's short form and reads nothing. Async objects are read through a sync twin of their daemon store (a notebook cell
cannot await inside a repr); anything that fails to read is shown as unknown, never
raised: a repr must not break a notebook.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from ._core import InRange, Op, run

__all__ = ["Summary", "html_of", "summarize", "text_of"]

#: Rows listed when a view covers an irregular selection.
_SHOW_POSITIONS = 6


@dataclass
class Summary:
    """What :func:`summarize` found; ``None`` where it could not be read."""

    kind: str
    location: str | None = None
    backend: str | None = None
    group: str | None = None
    length: int | None = None
    rows: str | None = None
    keys: list[str] | None = None
    #: (key, dtype, shape, "atom" or "frame")
    schema: list[tuple[str, str, str, str]] = field(default_factory=list)
    note: str | None = None


def _sync_backend(backend: Any) -> Any:
    """A backend the summary can call synchronously (``None`` when there is none)."""
    from ._abc import AsyncReadBackend
    from ._adapters import SyncToAsyncReadAdapter
    from ._stores import AsyncDaemonBackend, DaemonReadBackend

    if isinstance(backend, AsyncDaemonBackend):
        return DaemonReadBackend(
            backend.location,
            group=backend.group,
            readonly=backend.readonly,
            tier=backend.tier,  # type: ignore[arg-type]
        )
    if isinstance(backend, SyncToAsyncReadAdapter):
        return backend.backend  # a sync backend the async facade runs in threads
    if isinstance(backend, AsyncReadBackend):
        return None  # a native async backend: its reads need an event loop
    return backend


def _where(backend: Any) -> tuple[str | None, str | None, str | None]:
    """(location, backend name, group) of a backend, as far as it tells."""
    location = getattr(backend, "location", None)
    name = getattr(backend, "backend_name", None) or type(backend).__name__
    group = getattr(backend, "group", None)
    if group is None and hasattr(backend, "backend_name"):
        group = "default"  # a daemon store opened without group=
    return (
        None if location is None else str(location),
        str(name),
        None if group is None else str(group),
    )


def describe_rows(indices: list[int]) -> str:
    """``rows 10:20``, ``rows 0:100:2`` or ``rows [1, 5, 9, ...] (n rows)``."""
    n = len(indices)
    if n == 0:
        return "no rows"
    if n == 1:
        return f"row {indices[0]}"
    step = indices[1] - indices[0]
    if step > 0 and all(b - a == step for a, b in pairwise(indices)):
        stop = indices[-1] + 1
        return f"rows {indices[0]}:{stop}" + ("" if step == 1 else f":{step}")
    shown = ", ".join(str(i) for i in indices[:_SHOW_POSITIONS])
    more = ", ..." if n > _SHOW_POSITIONS else ""
    return f"rows [{shown}{more}] ({n} rows)"


def _dtype_name(dtype: Any) -> str:
    return (
        str(dtype)
        if isinstance(dtype, np.dtype)
        else getattr(dtype, "__name__", str(dtype))
    )


def schema_table(
    facade: Any, backend: Any, index: int
) -> list[tuple[str, str, str, str]]:
    """(key, dtype, shape, per) of row ``index``: ``per`` is ``atom`` for arrays whose
    first axis is the frame's atom count (``arrays.*``, ``calc.forces``), else ``frame``."""
    if facade._tier == "blob":
        keys: list[Any] = run(facade._op_keys(index), backend)
        return [(_key_text(k), "bytes", "", "frame") for k in keys]
    schema: dict[str, Any] = run(facade._op_schema(index), backend)
    return schema_rows(schema)


def schema_rows(schema: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(key, dtype, shape, per) of a row's ``{key: SchemaEntry}``."""
    n_atoms = None
    for key in ("arrays.numbers", "arrays.positions"):
        entry = schema.get(key)
        if entry is not None and entry.shape:
            n_atoms = entry.shape[0]
            break
    table = []
    for key, entry in schema.items():
        shape = tuple(entry.shape)
        per_atom = str(key).startswith("arrays.") or (
            n_atoms is not None
            and str(key).startswith("calc.")
            and len(shape) > 0
            and shape[0] == n_atoms
        )
        table.append(
            (
                _key_text(key),
                _dtype_name(entry.dtype),
                str(shape),
                "atom" if per_atom else "frame",
            )
        )
    return table


def _key_text(key: Any) -> str:
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)


def summarize(obj: Any) -> Summary:
    """The :class:`Summary` of a facade, a view or a ``ConcatView``."""
    from ._concat import ConcatView
    from ._views import _ColumnViewBase, _RowViewBase

    is_view = isinstance(obj, (_RowViewBase, _ColumnViewBase))
    facade = obj._parent if is_view else obj
    out = Summary(kind=type(obj).__name__)
    if isinstance(facade, ConcatView):
        wheres = [_where(s._backend) for s in map(_facade_of_source, facade.sources)]
        out.location = " + ".join(str(w[0]) for w in wheres)
        out.backend = " + ".join(sorted({str(w[1]) for w in wheres}))
        groups = {w[2] for w in wheres if w[2] is not None}
        out.group = ", ".join(sorted(groups)) or None
        backend: Any = facade._backend
    else:
        out.location, out.backend, out.group = _where(facade._backend)
        backend = _sync_backend(facade._backend)
    if isinstance(obj, _ColumnViewBase):
        out.keys = [_key_text(k) for k in obj._keys]
    if backend is None:
        out.note = "async store: await db.len() for its length"
        return out
    try:
        indices: list[int]
        if is_view:
            rows_op: Op[list[int]] = obj._rows.op_indices()
            indices = run(rows_op, backend)
            out.rows = describe_rows(_absolute(indices, backend))
        else:
            n = len(backend)
            indices = InRange(range(n))
        out.length = len(indices)
        if indices:
            table = schema_table(facade, backend, indices[0])
            if out.keys is not None:
                table = [row for row in table if row[0] in out.keys]
            out.schema = table
            if not table:
                out.note = f"row {indices[0]} is a placeholder (no schema)"
    except Exception as exc:  # noqa: BLE001 - a repr must never raise
        out.note = f"could not read the store: {exc}"
    return out


def _facade_of_source(source: Any) -> Any:
    from ._views import RowView

    return source._parent if isinstance(source, RowView) else source


def _absolute(indices: list[int], backend: Any) -> list[int]:
    if isinstance(indices, InRange) or all(i >= 0 for i in indices):
        return list(indices)
    n = len(backend)
    return [i + n if i < 0 else i for i in indices]


def _header(s: Summary) -> list[tuple[str, str]]:
    fields = [
        ("location", s.location),
        ("backend", s.backend),
        ("group", s.group),
        ("rows" if s.rows is not None else "", s.rows),
        ("keys", None if s.keys is None else ", ".join(s.keys)),
        ("length", None if s.length is None else str(s.length)),
    ]
    return [(k, v) for k, v in fields if k and v is not None]


def text_of(obj: Any) -> str:
    """The plain-text summary (``print(db)``, IPython's plain text)."""
    s = summarize(obj)
    lines = [s.kind]
    lines += [f"  {k + ':':<10}{v}" for k, v in _header(s)]
    if s.schema:
        widths = [
            max(len(h), *(len(row[j]) for row in s.schema))
            for j, h in enumerate(("key", "dtype", "shape", "per"))
        ]
        heads = ("key", "dtype", "shape", "per")
        lines.append(
            "  " + "  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip()
        )
        for row in s.schema:
            lines.append(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
            )
    if s.note:
        lines.append(f"  ({s.note})")
    return "\n".join(lines)


def html_of(obj: Any) -> str:
    """The HTML summary (Jupyter's ``_repr_html_``)."""
    s = summarize(obj)
    esc = html.escape
    parts = [f"<div class='asebytes-summary'><strong>{esc(s.kind)}</strong>"]
    parts.append("<table><tbody>")
    for k, v in _header(s):
        parts.append(
            f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(v)}</td></tr>"
        )
    parts.append("</tbody></table>")
    if s.schema:
        parts.append(
            "<table><thead><tr><th>key</th><th>dtype</th><th>shape</th>"
            "<th>per</th></tr></thead><tbody>"
        )
        for row in s.schema:
            cells = "".join(f"<td>{esc(c)}</td>" for c in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
    if s.note:
        parts.append(f"<p><em>{esc(s.note)}</em></p>")
    parts.append("</div>")
    return "".join(parts)


class Displayable:
    """Mixin: Jupyter's ``_repr_html_`` and IPython's plain-text ``_repr_pretty_`` from the
    summary; ``repr()`` and ``str()`` stay the reference's one line (no reads)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # IPython takes the first class in the MRO that defines ``_repr_pretty_`` *or*
        # ``__repr__``; a subclass defining ``__repr__`` would hide the summary.
        cls._repr_pretty_ = Displayable._repr_pretty_  # type: ignore[method-assign]

    def _repr_html_(self) -> str:
        return html_of(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else text_of(self))
