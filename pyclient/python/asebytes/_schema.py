"""``SchemaEntry`` and the per-row schema inference of ``ObjectIO.schema``/``ASEIO.schema``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SchemaEntry", "infer_schema"]


@dataclass(frozen=True)
class SchemaEntry:
    """One column's type and shape: a numpy dtype (or a Python type for ``str``, ``list``
    and other values) and the value's shape (``()`` for scalars)."""

    dtype: np.dtype[Any] | type
    shape: tuple[int | str, ...]


def infer_schema(row: Mapping[Any, Any]) -> dict[Any, SchemaEntry]:
    """The reference's rules: arrays keep dtype and shape, numpy scalars their dtype,
    ``bool``/``int``/``float`` map to ``bool``/``int64``/``float64``, ``str`` to ``str``,
    a list to ``(list, (len,))``, anything else to ``(type(value), ())``."""
    schema: dict[Any, SchemaEntry] = {}
    for key, value in row.items():
        if isinstance(value, np.ndarray):
            schema[key] = SchemaEntry(dtype=value.dtype, shape=tuple(value.shape))
        elif isinstance(value, np.generic):
            schema[key] = SchemaEntry(dtype=np.dtype(value.dtype), shape=())
        elif isinstance(value, bool):
            schema[key] = SchemaEntry(dtype=np.dtype("bool"), shape=())
        elif isinstance(value, int):
            schema[key] = SchemaEntry(dtype=np.dtype("int64"), shape=())
        elif isinstance(value, float):
            schema[key] = SchemaEntry(dtype=np.dtype("float64"), shape=())
        elif isinstance(value, str):
            schema[key] = SchemaEntry(dtype=str, shape=())
        elif isinstance(value, list):
            schema[key] = SchemaEntry(dtype=list, shape=(len(value),))
        else:
            schema[key] = SchemaEntry(dtype=type(value), shape=())
    return schema
