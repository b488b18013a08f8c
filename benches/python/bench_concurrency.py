"""Multi-process scenario: 4 processes append at once while 2 read the same store.

For each peer (ours on LMDB through the daemon, the Python ``asebytes`` 0.3.3 on LMDB,
aselmdb) the store is created with a few seed rows; then 4 writer processes each append
``--batches`` batches of ``--batch-size`` ethanol-sized frames (one ``extend`` per batch;
aselmdb: one transaction per batch) while 2 reader processes keep reading the newest rows.
Every frame is tagged (writer, batch, row) and its positions derive from the tag, so the
final check counts rows lost, duplicated and corrupt; exceptions (lock errors, ...) are
caught and counted, not hidden. Reported: aggregate write throughput (rows/s), reader
throughput, and the counts. Results: ``benches/results/concurrency.{json,md}``.

``python benches/python/bench_concurrency.py [--quick] --ref-python .venv-ref/bin/python``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_daemon import private_daemon

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WRITERS = 4
READERS = 2
SEED_ROWS = 8

PEERS = {
    # name: (virtualenv, suffix, label)
    "ours-lmdb": ("bench", ".lmdb", "asebytes-rs LMDB (daemon)"),
    "asebytes-lmdb": ("ref", ".lmdb", "asebytes 0.3.3 LMDB"),
    "aselmdb": ("bench", ".aselmdb", "aselmdb (ase-db-backends)"),
}


def frame(w: int, s: int, j: int) -> Any:
    """The frame tagged (writer w, batch s, row j): positions derive from the tag."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng([w, s, j])
    atoms = Atoms("C2H6O", positions=rng.normal(size=(9, 3)))
    atoms.info.update({"w": w, "s": s, "j": j})
    atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal()))
    return atoms


def tag_ok(atoms: Any, tag: tuple[int, int, int]) -> bool:
    if tag[0] < 0:  # a seed row
        return True
    expected = np.random.default_rng(list(tag)).normal(size=(9, 3))
    return bool(np.allclose(atoms.positions, expected))


# ---------------------------------------------------------------------- per-peer access


class Access:
    """open / append a batch / length / read rows / tags, per peer."""

    def __init__(self, peer: str, path: str) -> None:
        self.peer = peer
        self.path = path
        if peer == "aselmdb":
            import ase.db

            self.db = ase.db.connect(path, type="aselmdb")
        else:
            from asebytes import ASEIO

            self.db = ASEIO(path)

    def append(self, frames: list[Any]) -> None:
        if self.peer == "aselmdb":
            with self.db as db:  # one transaction per batch (and it closes the env)
                for a in frames:
                    db.write(a, key_value_pairs=a.info)
        else:
            self.db.extend(frames)

    def length(self) -> int:
        return len(self.db)

    def read(self, start: int, stop: int) -> list[Any]:
        if self.peer == "aselmdb":
            return [
                self.db.get(id=i + 1).toatoms(add_additional_information=True)
                for i in range(start, stop)
            ]
        return list(self.db[start:stop].to_list())

    def all(self) -> list[Any]:
        if self.peer == "aselmdb":
            return [
                r.toatoms(add_additional_information=True) for r in self.db.select()
            ]
        return list(self.db[0 : len(self.db)].to_list())


def tag_of(atoms: Any) -> tuple[int, int, int]:
    info = atoms.info
    kvp = info.get("key_value_pairs", info)
    return (int(kvp.get("w", -1)), int(kvp.get("s", -1)), int(kvp.get("j", -1)))


# ---------------------------------------------------------------------- roles


def writer(a: argparse.Namespace) -> dict[str, Any]:
    batches = [
        [frame(a.id, s, j) for j in range(a.batch_size)] for s in range(a.batches)
    ]
    # aselmdb: a fresh connection per batch, as `with db:` closes the environment
    acc = None if a.peer == "aselmdb" else Access(a.peer, a.path)
    errors: dict[str, int] = {}
    ok = 0
    _wait(a.start)
    t0 = time.perf_counter()
    for batch in batches:
        try:
            (acc or Access(a.peer, a.path)).append(batch)
            ok += len(batch)
        except Exception as err:  # noqa: BLE001 - counted and reported
            key = f"{type(err).__name__}: {str(err)[:120]}"
            errors[key] = errors.get(key, 0) + 1
    return {"rows_acked": ok, "seconds": time.perf_counter() - t0, "errors": errors}


def reader(a: argparse.Namespace) -> dict[str, Any]:
    acc = Access(a.peer, a.path)
    errors: dict[str, int] = {}
    reads = corrupt = 0
    _wait(a.start)
    t0 = time.perf_counter()
    while not os.path.exists(a.stop_file) and time.perf_counter() - t0 < 600:
        try:
            n = acc.length()
            rows = acc.read(max(0, n - 16), n)
            reads += len(rows)
            corrupt += sum(1 for r in rows if r is None or not tag_ok(r, tag_of(r)))
        except Exception as err:  # noqa: BLE001
            key = f"{type(err).__name__}: {str(err)[:120]}"
            errors[key] = errors.get(key, 0) + 1
            time.sleep(0.001)
    dt = time.perf_counter() - t0
    return {"rows_read": reads, "corrupt": corrupt, "seconds": dt, "errors": errors}


def verify(a: argparse.Namespace) -> dict[str, Any]:
    acc = Access(a.peer, a.path)
    rows = acc.all()
    seen: dict[tuple[int, int, int], int] = {}
    corrupt = 0
    for r in rows:
        t = tag_of(r)
        if not tag_ok(r, t):
            corrupt += 1
        elif t[0] >= 0:  # not a seed row
            seen[t] = seen.get(t, 0) + 1
    expected = {
        (w, s, j)
        for w in range(WRITERS)
        for s in range(a.batches)
        for j in range(a.batch_size)
    }
    return {
        "rows": len(rows),
        "length": acc.length(),
        "expected": len(expected) + SEED_ROWS,
        "lost": len(expected - set(seen)),
        "duplicated": sum(c - 1 for t, c in seen.items() if c > 1),
        "corrupt": corrupt,
    }


def seed(a: argparse.Namespace) -> dict[str, Any]:
    acc = Access(a.peer, a.path)
    from ase import Atoms

    acc.append([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])] * SEED_ROWS)
    return {"rows": SEED_ROWS}


def _wait(start: float) -> None:
    while time.time() < start:
        time.sleep(0.001)


# ---------------------------------------------------------------------- driver


def scenario(
    peer: str, python: str, tmp: str, env: dict[str, str], batches: int, size: int
) -> dict[str, Any]:
    _, suffix, label = PEERS[peer]
    path = str(Path(tmp) / f"{peer}{suffix}")
    stop_file = str(Path(tmp) / f"{peer}.stop")
    base = [python, __file__, "--peer", peer, "--path", path]
    base += ["--batches", str(batches), "--batch-size", str(size)]

    def call(role: str, extra: list[str] | None = None) -> Any:
        return subprocess.Popen(
            [*base, "--role", role, *(extra or [])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(proc: Any) -> dict[str, Any]:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            return {"crashed": (err.strip().splitlines() or ["?"])[-1][:200]}
        return dict(json.loads(out.strip().splitlines()[-1]))

    seeded = result(call("seed"))
    start = time.time() + 3.0  # every process imported and opened by then
    sargs = ["--start", str(start), "--stop-file", stop_file]
    writers = [call("writer", [*sargs, "--id", str(w)]) for w in range(WRITERS)]
    readers = [call("reader", sargs) for _ in range(READERS)]
    w_res = [result(p) for p in writers]
    Path(stop_file).touch()
    r_res = [result(p) for p in readers]
    check = result(call("verify"))
    acked = sum(r.get("rows_acked", 0) for r in w_res)
    wall = max((r.get("seconds", 0.0) for r in w_res), default=0.0)
    read_rows = sum(r.get("rows_read", 0) for r in r_res)
    r_wall = max((r.get("seconds", 0.0) for r in r_res), default=0.0)
    errors: dict[str, int] = {}
    for r in [*w_res, *r_res]:
        for k, v in r.get("errors", {}).items():
            errors[k] = errors.get(k, 0) + v
        if "crashed" in r:
            errors["process crashed: " + r["crashed"]] = errors.get(r["crashed"], 0) + 1
    return {
        "label": label,
        "seed": seeded,
        "rows_sent": WRITERS * batches * size,
        "rows_acked": acked,
        "write_rows_per_s": acked / wall if wall else None,
        "read_rows_per_s": read_rows / r_wall if r_wall else None,
        "reader_corrupt": sum(r.get("corrupt", 0) for r in r_res),
        "final": check,
        "errors": errors,
        "writers": w_res,
        "readers": r_res,
    }


def markdown(res: dict[str, Any]) -> str:
    m = res["meta"]
    lines = [
        (
            f"{WRITERS} processes append {m['batches']} batches of {m['batch_size']} "
            f"ethanol-sized frames each ({m['rows_sent']} rows) while {READERS} "
            "processes read the newest rows, all on one store."
        ),
        "",
        (
            "| peer | rows acked | rows lost | duplicated | corrupt | write rows/s | "
            "reader rows/s | exceptions |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["peers"].values():
        f = r["final"]
        if "crashed" in f:
            lost = dup = cor = f"verify failed: {f['crashed']}"
        else:
            lost, dup, cor = (
                f["lost"],
                f["duplicated"],
                f["corrupt"] + r["reader_corrupt"],
            )
        errs = "; ".join(f"{v}× {k}" for k, v in r["errors"].items()) or "none"
        wr = f"{r['write_rows_per_s']:.0f}" if r["write_rows_per_s"] else "-"
        rd = f"{r['read_rows_per_s']:.0f}" if r["read_rows_per_s"] else "-"
        lines.append(
            f"| {r['label']} | {r['rows_acked']} / {r['rows_sent']} | {lost} | {dup} | "
            f"{cor} | {wr} | {rd} | {errs} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--out", help="results directory (default benches/results[/quick])")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--id", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--batches", type=int, help="batches per writer (default 25)")
    ap.add_argument("--batch-size", type=int, help="frames per batch (default 20)")
    ap.add_argument("--start", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--stop-file", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role:
        roles = {"writer": writer, "reader": reader, "verify": verify, "seed": seed}
        print(json.dumps(roles[a.role](a)))
        return

    batches = a.batches or (8 if a.quick else 25)
    size = a.batch_size or (10 if a.quick else 20)
    pythons = {"bench": sys.executable, "ref": os.path.abspath(a.ref_python)}
    res: dict[str, Any] = {
        "meta": {
            "batches": batches,
            "batch_size": size,
            "rows_sent": WRITERS * batches * size,
            "date": time.strftime("%Y-%m-%d %H:%M"),
        },
        "peers": {},
    }
    with (
        tempfile.TemporaryDirectory(prefix="asebytes-conc-") as tmp,
        private_daemon(tmp) as env,
    ):
        os.chmod(tmp, 0o700)
        for peer, (venv, _, _) in PEERS.items():
            res["peers"][peer] = scenario(peer, pythons[venv], tmp, env, batches, size)
            print(f"{peer} done", file=sys.stderr)
    out = Path(a.out or ROOT / "benches" / "results" / ("quick" if a.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    stem = "concurrency-quick" if a.quick else "concurrency"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    (out / f"{stem}.md").write_text(md)
    print(md)
    ours = res["peers"]["ours-lmdb"]["final"]
    if ours.get("lost") or ours.get("duplicated") or ours.get("corrupt"):
        sys.exit("asebytes-rs lost, duplicated or corrupted rows")


if __name__ == "__main__":
    main()
