"""Turns the suite's results into ratios, markdown tables and plots.

``summarise`` adds ``ratios`` (ours on LMDB divided by the best peer on local files measured
in the same run, per dataset and operation, with the issue's targets) and ``server_ratios``
(ours on a Redis or MongoDB server divided by asebytes 0.3.3 on the same server);
``markdown`` renders both ratio tables, the absolute times of every peer and the notes; ``plots`` draws one PNG per dataset
(log-scale bars per operation) into ``docs/benchmarks/``.

``python bench_report.py benches/results/suite.json`` redraws tables and plots from a
saved run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OURS = "ours-lmdb"

OP_TITLES = {
    "write_trajectory": "write trajectory (one extend)",
    "write_single": "write single (append one by one)",
    "read_trajectory": "read trajectory (iterate a view)",
    "read_single": "read single (db[i] in order)",
    "random_view": "random access, view over a permutation",
    "random_single": "random access, one by one",
    "positions_view": "positions only, bulk",
    "positions_single": "positions only, one by one",
    "row_single": "one row without Atoms (dict / lazy row), one by one",
    "column_energy": "column energy (all energies)",
    "update_bulk": "update one property, bulk",
    "update_single": "update one property, one by one",
    "open_len": "open + len",
    "file_size": "file size on disk",
}

#: ours / best peer, per frame (the issue's targets).
TARGETS = {
    "write_trajectory": 0.5,
    "read_trajectory": 0.4,
    "read_single": 0.6,
    "random_single": 0.7,
    "positions_view": 1.0,
    "positions_single": 1.0,
    "row_single": 1.0,
    "column_energy": 1.0,
    "update_bulk": 1.0,
}


#: Ours and asebytes 0.3.3 on the same server the suite starts: compared with each other
#: (the Redis and MongoDB issue's target), not with the local files of the first table (a
#: server holds the data in its own memory, beside the disk).
SERVER_PAIRS = {
    "Redis": ("ours-redis", "asebytes-redis"),
    "MongoDB": ("ours-mongodb", "asebytes-mongodb"),
}
SERVER_TARGET = 0.5
_ON_A_SERVER = {p for pair in SERVER_PAIRS.values() for p in pair}


def _value(cell: dict[str, Any] | None) -> float | None:
    if not cell or cell.get("status") != "ok":
        return None
    v = cell.get("us_per_frame", cell.get("bytes"))
    return float(v) if v is not None else None


def summarise(report: dict[str, Any]) -> None:
    kinds = {p: info["kind"] for p, info in report["peers"].items()}
    ratios: dict[str, Any] = {}
    for ds, ops in report["results"].items():
        ratios[ds] = {}
        for op, cells in ops.items():
            ours = _value(cells.get(OURS))
            peers = {
                p: v
                for p, c in cells.items()
                if kinds.get(p) == "peer"
                and p not in _ON_A_SERVER
                and (v := _value(c)) is not None
            }
            entry: dict[str, Any] = {"target": TARGETS.get(op)}
            if ours is not None and peers:
                best = min(peers, key=lambda p: peers[p])
                entry.update(
                    ours=ours,
                    best_peer=best,
                    best=peers[best],
                    ratio=ours / peers[best],
                )
                if entry["target"] is not None:
                    entry["met"] = entry["ratio"] <= entry["target"]
            ratios[ds][op] = entry
    report["ratios"] = ratios
    report["server_ratios"] = {
        server: {
            ds: {
                op: ours / ref
                for op, cells in ops.items()
                if (ours := _value(cells.get(pair[0]))) is not None
                and (ref := _value(cells.get(pair[1])))
            }
            for ds, ops in report["results"].items()
        }
        for server, pair in SERVER_PAIRS.items()
    }


def _fmt(op: str, cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    if cell.get("status") == "n/a":
        return "n/a"
    if cell.get("status") == "error":
        return "error"
    v = _value(cell)
    if v is None:
        return ""
    if op == "file_size":
        return f"{v / 1024:.0f} KiB"
    if op == "open_len":
        return f"{v / 1000:.1f} ms"
    return f"{v:.3g}" if v < 10 else f"{v:.0f}"


def _unit(op: str) -> str:
    return {"file_size": "size", "open_len": "per open"}.get(op, "µs/frame")


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    names = list(report["results"])
    lines = [
        (
            f"Run: `{meta['command']}` on {meta['date']}, {meta['wall_seconds']:.0f} s; "
            f"{meta['rounds']} interleaved rounds × {meta['repeats']} repeats, medians; "
            f"one-by-one writes/updates on the first {meta['single_write_frames']} "
            "frames; one-by-one operations of slow peers on fewer rows (at least 50, "
            "about 2 s per repeat)."
        ),
        "",
        "### Ours / best peer on local files (same run; < 1 is faster)",
        "",
        "| operation | " + " | ".join(names) + " | target |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for op, title in OP_TITLES.items():
        row = []
        target = TARGETS.get(op)
        for ds in names:
            e = report["ratios"].get(ds, {}).get(op)
            if not e or "ratio" not in e:
                row.append("n/a")
                continue
            mark = ""
            if "met" in e:
                mark = " ✓" if e["met"] else " ✗"
            row.append(f"{e['ratio']:.2f}{mark} (vs {e['best_peer']})")
        t = f"≤ {target}" if target is not None else ""
        lines.append(f"| {title} | " + " | ".join(row) + f" | {t} |")

    lines += _server_table(report, names)

    for ds in names:
        res = report["results"][ds]
        peers = [p for p in report["peers"] if any(p in res[op] for op in res)]
        frames = report["datasets"][ds]["frames"]
        lines += [
            "",
            f"### {ds} ({frames} frames): µs per frame",
            "",
            "| operation | unit | " + " | ".join(peers) + " |",
            "|---|---|" + "---|" * len(peers),
        ]
        for op in OP_TITLES:
            if op not in res:
                continue
            cells = [_fmt(op, res[op].get(p)) for p in peers]
            lines.append(f"| {op} | {_unit(op)} | " + " | ".join(cells) + " |")

    errors = [
        f"- {ds} {op} {p}: {c['reason']}"
        for ds, ops in report["results"].items()
        for op, cells in ops.items()
        for p, c in cells.items()
        if c.get("status") == "error"
    ]
    if errors:
        lines += ["", "Errors (the peer failed the operation):", "", *errors]
    lines += ["", "Peers:", ""]
    from bench_peers import NOTES

    for p, info in report["peers"].items():
        note = f": {NOTES[p]}" if p in NOTES else ""
        lines.append(f"- `{p}` = {info['label']}{note}")
    v = meta["versions"]
    m = meta["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory']}, {m['system']}; "
        f"Python {v.get('bench', {}).get('python', '?')}. Versions: "
        + ", ".join(
            f"{k} {val}"
            for venv in ("bench", "ref")
            for k, val in v.get(venv, {}).items()
            if k not in ("python", "numpy")
            and not (venv == "ref" and k in ("ase", "lmdb", "h5py"))
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _server_table(report: dict[str, Any], names: list[str]) -> list[str]:
    """Ours / asebytes 0.3.3 on the same server, per operation, dataset and server."""
    servers = report.get("server_ratios", {})
    cols = [
        (srv, ds)
        for srv in SERVER_PAIRS
        for ds in names
        if servers.get(srv, {}).get(ds)
    ]
    if not cols:
        return []
    lines = [
        "",
        "### On a server: ours / asebytes 0.3.3 on the same server (same run)",
        "",
        "| operation | "
        + " | ".join(f"{srv} {ds}" for srv, ds in cols)
        + " | target |",
        "|---|" + "---|" * len(cols) + "---|",
    ]
    for op, title in OP_TITLES.items():
        if op == "file_size":
            continue
        cells = []
        for srv, ds in cols:
            r = servers[srv][ds].get(op)
            if r is None:
                cells.append("n/a")
            else:
                cells.append(f"{r:.2f}" + (" ✓" if r <= SERVER_TARGET else " ✗"))
        lines.append(f"| {title} | " + " | ".join(cells) + f" | ≤ {SERVER_TARGET} |")
    lines += [
        "",
        (
            "n/a: the reference cannot do it (MongoDB: the dotted-key bug of asebytes 0.3.3 "
            "reads nothing and writes a nested field; spec §4.4)."
        ),
    ]
    return lines


def plots(report: dict[str, Any], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = {p: info["kind"] for p, info in report["peers"].items()}
    colours = {"ours": "#d62728", "peer": "#1f77b4", "floor": "#aaaaaa"}
    for ds, res in report["results"].items():
        ops = [op for op in OP_TITLES if op in res]
        cols = 4
        rows = (len(ops) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows))
        for ax, op in zip(axes.flat, ops):
            items = [(p, v) for p, c in res[op].items() if (v := _value(c)) is not None]
            items.sort(key=lambda pv: pv[1])
            if op == "file_size":
                items = [(p, v / 1024) for p, v in items]
                unit = "KiB"
            elif op == "open_len":
                items = [(p, v / 1000) for p, v in items]
                unit = "ms"
            else:
                unit = "µs / frame"
            ax.barh(
                [p for p, _ in items],
                [v for _, v in items],
                color=[colours[kinds.get(p, "peer")] for p, _ in items],
            )
            ax.set_xscale("log")
            ax.invert_yaxis()
            ax.set_title(OP_TITLES[op], fontsize=9)
            ax.set_xlabel(unit, fontsize=8)
            ax.tick_params(labelsize=7)
            na = [p for p, c in res[op].items() if c.get("status") in ("n/a", "error")]
            if na:
                ax.text(
                    0.99,
                    0.01,
                    "n/a: " + ", ".join(na),
                    transform=ax.transAxes,
                    ha="right",
                    va="bottom",
                    fontsize=6,
                    color="#666666",
                    wrap=True,
                )
        for ax in list(axes.flat)[len(ops) :]:
            ax.axis("off")
        frames = report["datasets"][ds]["frames"]
        fig.suptitle(
            f"{ds}, {frames} frames (log scale, shorter is better; red: asebytes-rs, "
            "grey: floors)",
            fontsize=11,
        )
        fig.tight_layout()
        fig.savefig(out_dir / f"{ds}.png", dpi=90)
        plt.close(fig)


def main() -> None:
    path = Path(sys.argv[1])
    report = json.loads(path.read_text())
    summarise(report)
    md = markdown(report)
    path.with_suffix(".md").write_text(md)
    if "quick" not in path.name:
        root = Path(__file__).resolve().parents[2]
        plots(report, root / "docs" / "benchmarks")
    print(md)


if __name__ == "__main__":
    main()
