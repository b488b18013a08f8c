"""One benchmark measurement in its own process: one peer, one operation, one dataset.

Run by ``bench_suite.py`` with the interpreter of the peer's virtualenv::

    python bench_worker.py PEER OP DATASET.pkl WORKDIR --repeats R --tag T [--single N]

It builds the ``Atoms`` untimed, runs the operation ``R`` times (reads after one untimed
warm-up), checks every result against the dataset and prints one JSON line. One-by-one
operations of slow peers run on fewer rows (``--budget``); results are per frame anyway:
``{"seconds": [...], "frames": n}`` (or ``{"bytes": b}`` for ``file_size``). A wrong
read exits with status 3 and the message on stderr, which stops the whole suite.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Any

import bench_datasets as data
from bench_peers import PEERS, Peer

#: operation -> (peer method, which rows). "all": rows 0..n-1 in order, "perm": the
#: dataset's fixed permutation, "write": the first ``--single`` frames for one-by-one
#: writes and every frame otherwise.
OPS: dict[str, tuple[str, str]] = {
    "write_trajectory": ("write_trajectory", "all"),
    "write_single": ("write_single", "single"),
    "read_trajectory": ("read_trajectory", "all"),
    "read_single": ("read_single", "all"),
    "random_view": ("random_view", "perm"),
    "random_single": ("read_single", "perm"),
    "positions_view": ("positions_view", "all"),
    "positions_single": ("positions_single", "all"),
    "row_single": ("row_single", "all"),
    "column_energy": ("column_energy", "all"),
    "update_bulk": ("update_bulk", "all"),
    "update_single": ("update_single", "single"),
    "open_len": ("open_len", "all"),
    "file_size": ("file_size", "all"),
}


def supports(peer: Peer, op: str) -> bool:
    return peer.supports(OPS[op][0])


def _check_read(peer: Peer, op: str, got: Any, ds: dict[str, Any], idx: list[int]):
    frames = ds["frames"]
    what = f"{peer.name} {op}"
    if peer.name == "floor-lmdb-raw":
        from asebytes import _native

        if op in ("positions_view", "positions_single"):
            got = [_native.decode_value(r[b"arrays.positions"]) for r in got]
        elif op == "column_energy":
            got = [_native.decode_value(r[b"calc.energy"]) for r in got]
        else:
            got = [
                _native.decode_atoms({k: v for k, v in r.items() if v is not None})
                for r in got
            ]
    tol = peer.precision
    if op in ("positions_view", "positions_single", "row_single"):
        data.check_positions(what, got, frames, idx, tol)
    elif op == "column_energy":
        data.check_values(what, got, [frames[i]["energy"] for i in idx], tol)
    else:
        data.check_atoms(
            what, got, frames, idx, energy=peer.name != "floor-atoms", tol=tol
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    peer = PEERS[args.peer]()
    for module in peer.imports:
        importlib.import_module(module)
    ds = data.load(args.dataset)
    peer.dataset = ds  # type: ignore[attr-defined]  # the Atoms floor builds from it
    frames = [data.to_atoms(f) for f in ds["frames"]]
    n = len(frames)
    main_path = peer.store_path(args.workdir, "main")

    if args.op == "prepare":
        peer.discard(main_path)
        peer.prepare(main_path, frames)
        return {"frames": n}
    if args.op == "file_size":
        return {"bytes": peer.file_size(main_path), "frames": n}
    if args.op == "open_len":
        t0 = time.perf_counter()
        length = peer.open_len(main_path)
        dt = time.perf_counter() - t0
        if length != n:
            raise data.WrongData(f"{peer.name} open_len: {length} rows, expected {n}")
        return {"seconds": [dt], "frames": 1}

    method, rows = OPS[args.op]
    fn = getattr(peer, method)
    idx = ds["perm"] if rows == "perm" else list(range(n))
    if rows == "single":
        idx = idx[: min(n, args.single)]
    seconds: list[float] = []

    if args.op == "write_single":
        probe = peer.store_path(args.workdir, f"{args.tag}-probe")
        peer.discard(probe)
        t0 = time.perf_counter()
        fn(probe, frames[:5])
        idx = _within_budget(idx, (time.perf_counter() - t0) / 5, args.budget)
        peer.discard(probe)
    if args.op.startswith("write_"):
        todo = [frames[i] for i in idx]
        for r in range(args.repeats):
            path = peer.store_path(args.workdir, f"{args.tag}-{r}")
            peer.discard(path)
            t0 = time.perf_counter()
            fn(path, todo)
            seconds.append(time.perf_counter() - t0)
            if r == args.repeats - 1 and peer.supports("open_len"):
                length = peer.open_len(path)
                if length != len(todo):
                    raise data.WrongData(
                        f"{peer.name} {args.op}: {length} rows written"
                    )
            peer.discard(path)
        return {"seconds": seconds, "frames": len(idx)}

    if args.op.startswith("update_"):
        bulk = args.op == "update_bulk"
        path = peer.store_path(args.workdir, args.tag)
        peer.discard(path)
        h = peer.open_update(path, frames, bulk)
        if not bulk:
            t0 = time.perf_counter()
            fn(h, ds["new_energy"][:5])
            idx = _within_budget(idx, (time.perf_counter() - t0) / 5, args.budget)
        values: list[float] = []
        for r in range(args.repeats):
            values = [e + r for e in ds["new_energy"][: len(idx)]]
            t0 = time.perf_counter()
            fn(h, values)
            seconds.append(time.perf_counter() - t0)
        got = peer.updated_values(h, len(idx), bulk)
        data.check_values(f"{peer.name} {args.op}", got, values)
        peer.discard(path)
        return {"seconds": seconds, "frames": len(idx)}

    h = peer.open(main_path)
    arg: Any = idx if rows == "perm" or method.endswith("_single") else n
    # Warm-up (connections, caches, lazy imports); one-by-one reads warm on a few rows.
    warm = arg[:10] if isinstance(arg, list) else arg
    got = fn(h, warm)
    _check_read(peer, args.op, got, ds, warm if isinstance(arg, list) else idx)
    if method.endswith("_single"):
        t0 = time.perf_counter()
        fn(h, warm)
        per_row = (time.perf_counter() - t0) / len(warm)
        idx = arg = _within_budget(idx, per_row, args.budget)
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        got = fn(h, arg)
        seconds.append(time.perf_counter() - t0)
        _check_read(peer, args.op, got, ds, idx)
    return {"seconds": seconds, "frames": len(idx)}


def _within_budget(idx: list[int], per_row: float, budget: float) -> list[int]:
    """One-by-one operations of slow peers run on fewer rows (at least 50), so that one
    repeat takes about ``budget`` seconds; results are per frame either way."""
    if per_row <= 0:
        return idx
    return idx[: max(50, int(budget / per_row))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("peer", choices=sorted(PEERS))
    ap.add_argument("op", choices=[*OPS, "prepare"])
    ap.add_argument("dataset")
    ap.add_argument("workdir")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--single", type=int, default=200)
    ap.add_argument("--tag", default="x")
    ap.add_argument("--budget", type=float, default=2.0, help="s per one-by-one repeat")
    args = ap.parse_args()
    try:
        out = run(args)
    except data.WrongData as err:
        print(f"WRONG DATA: {err}", file=sys.stderr)
        sys.exit(3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
