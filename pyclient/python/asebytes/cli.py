"""The ``asebytes`` command: look into stores and copy them, from a shell.

``asebytes info LOCATION``   backend, groups, length, schema, size on disk
``asebytes head LOCATION``   the first rows (``-n N``), as a table for ASE data
``asebytes convert SRC DST`` copy every row, batched, with a progress bar; re-running an
                             interrupted copy resumes it; ``--append`` onto a non-empty
                             destination
``asebytes ls``              what the daemon has open (its ``Status``)

Modelled on ``ase db`` and ``znh5md view/export/convert``. Every command takes ``--json``
where its output is data. Errors print one line to stderr and exit 1; usage errors exit 2;
an interrupted ``convert`` exits 130 after saying how to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import __version__, _native
from ._convert import atoms_to_dict
from ._display import schema_rows, schema_table
from ._io import ObjectIO
from ._schema import infer_schema
from ._transfer import ase_file, convert, open_source
from .exceptions import AsebytesError

__all__ = ["main"]


def _size_on_disk(location: str) -> int | None:
    """Bytes allocated on disk under ``location`` (sparse LMDB maps count as used), or
    ``None`` for a location that is not a local path."""
    if "://" in location or not os.path.exists(location):
        return None
    paths = [location]
    if os.path.isdir(location):
        paths = [
            os.path.join(root, name)
            for root, _, names in os.walk(location)
            for name in names
        ]
    total = 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _groups(location: str) -> list[str | None]:
    try:
        groups: list[str | None] = list(ObjectIO.list_groups(location))
    except (AsebytesError, OSError):
        groups = []
    return groups or [None]


def _ase_file_info(path: str) -> dict[str, Any]:
    """``info`` of a file only ASE reads: every frame is read to count them."""
    import ase.io

    frames = ase.io.iread(path, index=":")
    first = next(frames, None)
    n = 0 if first is None else 1 + sum(1 for _ in frames)
    schema = [] if first is None else schema_rows(infer_schema(atoms_to_dict(first)))
    return {
        "backend": f"ase.io (read-only, format {ase.io.formats.filetype(path)})",
        "groups": [
            {
                "group": None,
                "length": n,
                "schema": [
                    {"key": k, "dtype": d, "shape": sh, "per": p}
                    for k, d, sh, p in schema
                ],
            }
        ],
    }


def _info(args: argparse.Namespace) -> int:
    location = args.location
    groups = [args.group] if args.group is not None else _groups(location)
    report: dict[str, Any] = {"location": location, "groups": []}
    size = _size_on_disk(location)
    report["size_on_disk"] = size
    if args.group is None and ase_file(location):
        report.update(_ase_file_info(location))
        groups = []
    for group in groups:
        db = ObjectIO(location, readonly=True, group=group)
        backend = db._backend
        report["backend"] = getattr(backend, "backend_name", type(backend).__name__)
        n = len(db)
        entry: dict[str, Any] = {"group": group, "length": n, "schema": []}
        first = next(
            (i for i, row in enumerate(db[: min(n, 16)]) if row is not None), None
        )
        if first is not None:
            entry["schema"] = [
                {"key": k, "dtype": d, "shape": s, "per": p}
                for k, d, s, p in schema_table(db, backend, first)
            ]
        report["groups"].append(entry)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"location: {location}")
    print(f"backend:  {report.get('backend')}")
    named = [str(g["group"]) for g in report["groups"] if g["group"] is not None]
    if named:
        print(f"groups:   {', '.join(named)}")
    if size is not None:
        print(f"size:     {_human(size)} on disk")
    for g in report["groups"]:
        where = "" if g["group"] is None else f"group {g['group']!r}: "
        print(f"\n{where}{g['length']} rows")
        if not g["schema"]:
            continue
        rows = [
            [c["key"], c["dtype"], c["shape"], "per-" + c["per"]] for c in g["schema"]
        ]
        _table(["key", "dtype", "shape", "per"], rows, indent="  ")
    return 0


def _table(head: list[str], rows: list[list[str]], indent: str = "") -> None:
    """Print ``rows`` under ``head`` in aligned columns."""
    widths = [max([len(h), *(len(r[j]) for r in rows)]) for j, h in enumerate(head)]
    for line in (head, *rows):
        print(indent + "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


def _cell(value: Any) -> str:
    """A value shortened for one table cell."""
    if value is None:
        return ""
    if isinstance(value, np.ndarray):
        if value.dtype == bool and value.size <= 3:  # pbc as `ase db` shows it
            return "".join("T" if v else "F" for v in value.ravel())
        if value.size <= 3:
            return np.array2string(value, precision=4, separator=",")
        return f"{value.dtype}{list(value.shape)}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _formula(row: dict[str, Any]) -> str:
    from ase.symbols import Symbols

    numbers = row.get("arrays.numbers")
    if numbers is None:
        return ""
    return str(Symbols(np.asarray(numbers)).get_chemical_formula())


def _head(args: argparse.Namespace) -> int:
    source = open_source(args.location, args.group)
    stop = args.n if source.length is None else min(args.n, source.length)
    rows = source.read(0, stop)
    if args.json:
        print(json.dumps([_jsonable(r) for r in rows], indent=2))
        return 0
    ase_like = any(r is not None and "arrays.numbers" in r for r in rows)
    keys: list[str] = []
    for r in rows:
        for k in r or {}:
            scalar = not isinstance(r[k], np.ndarray) or r[k].size <= 3  # type: ignore[index]
            if k not in keys and (
                not ase_like or (scalar and not k.startswith("arrays."))
            ):
                keys.append(k)
    head = ["#", *(("formula", "atoms") if ase_like else ()), *(keys or ["row"])]
    table = []
    for i, r in enumerate(rows):
        if r is None:
            table.append([str(i), *(["(placeholder)"] + [""] * (len(head) - 2))])
            continue
        line = [str(i)]
        if ase_like:
            numbers = r.get("arrays.numbers")
            line += [_formula(r), "" if numbers is None else str(len(numbers))]
        line += [_cell(r.get(k)) for k in keys]
        table.append(line)
    _table(head, table)
    if source.length is not None and source.length > stop:
        print(f"... {source.length - stop} more rows")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _convert(args: argparse.Namespace) -> int:
    progress = False if args.no_progress else None
    try:
        result = convert(
            args.src,
            args.dst,
            group=args.group,
            dst_group=args.dst_group,
            append=args.append,
            batch_size=args.batch_size,
            progress=progress,
        )
    except KeyboardInterrupt:
        print(
            f"asebytes convert: interrupted; {args.dst} holds whole batches only -- run "
            "the same command again to resume",
            file=sys.stderr,
        )
        return 130
    how = (
        "resumed after"
        if result.resumed
        else ("appended after" if result.skipped else "")
    )
    extra = f" ({how} {result.skipped} rows already there)" if how else ""
    print(
        f"copied {result.copied} rows to {args.dst}{extra}; it now has {result.length} rows"
    )
    return 0


def _ls(args: argparse.Namespace) -> int:
    socket = _native.socket_path()
    if not os.path.exists(socket):
        if args.json:
            print(json.dumps({"running": False, "socket": socket, "stores": []}))
        else:
            print(f"asebytesd is not running (socket {socket}); nothing is open")
        return 0
    status = _native.daemon_status()
    if args.json:
        print(json.dumps({"running": True, **_jsonable(status)}, indent=2))
        return 0
    stores = status.get("stores", [])
    print(
        f"asebytesd {status.get('version')} pid {status.get('pid')}, "
        f"{status.get('clients')} clients, {len(stores)} stores open"
    )
    if not stores:
        return 0
    head = ["store", "backend", "rows", "clients", "idle", "state"]
    table = [
        [
            str(s["canonical"]),
            str(s["backend"]),
            str(s["len"]),
            str(s["clients"]),
            f"{s['idle_secs']}s",
            "released" if s.get("released") else "open",
        ]
        for s in stores
    ]
    _table(head, table)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asebytes",
        description="Inspect and convert asebytes stores (LMDB, Zarr, HDF5, memory://).",
    )
    parser.add_argument(
        "--version", action="version", version=f"asebytes {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="backend, groups, length, schema, size on disk")
    p.add_argument("location")
    p.add_argument("--group", help="only this group (default: every group)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_info)

    p = sub.add_parser("head", help="the first rows")
    p.add_argument("location")
    p.add_argument("-n", type=int, default=10, help="how many rows (default 10)")
    p.add_argument("--group")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_head)

    p = sub.add_parser(
        "convert",
        help="copy every row of SRC into DST (resumes an interrupted copy)",
        description=(
            "Copy every row of SRC (any location, or a file ASE reads) into DST in atomic "
            "batches. Re-running an interrupted copy resumes it; a DST that holds other "
            "rows is refused unless --append."
        ),
    )
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--group", help="group to read (and to write, unless --dst-group)")
    p.add_argument("--dst-group", help="group to write")
    p.add_argument(
        "--append", action="store_true", help="add after existing rows of DST"
    )
    p.add_argument(
        "--batch-size", type=int, default=500, help="rows per write (default 500)"
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (also ASEBYTES_PROGRESS=0; off anyway without a terminal)",
    )
    p.set_defaults(run=_convert)

    p = sub.add_parser("ls", help="what the daemon has open")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_ls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``asebytes`` command with ``argv`` (default ``sys.argv[1:]``)."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (
        AsebytesError,
        KeyError,
        ValueError,
        TypeError,
        NotImplementedError,
        OSError,
    ) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"asebytes {args.command}: {message}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
