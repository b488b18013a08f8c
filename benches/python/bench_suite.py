"""The benchmark suite: asebytes-rs against aselmdb, znh5md, extxyz, ASE SQLite, atompack and
the Python ``asebytes`` 0.3.3, side by side in one run (``just bench``, ``just bench-quick``).

Method: the datasets are generated once (fixed seed) and pickled; then for every round,
dataset and operation each peer runs in its own process (``bench_worker.py``) with the
interpreter of its virtualenv, in an order that rotates every round so drift hits every
peer alike. A worker times ``--repeats`` runs and checks every read against the dataset;
the suite reports the median over rounds of each worker's median, per frame, and our time
divided by the best peer's per operation. Our daemon runs on a private socket with no
idle timeout and is stopped at the end. Results: ``benches/results/suite.{json,md}``,
plots: ``docs/benchmarks/*.png`` (``bench_report.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_datasets as data
import bench_mongo
import bench_report
from bench_daemon import private_daemon, stop_daemon
from bench_load import LoadMeter
from bench_peers import NA_REASONS, PEERS, start_redis
from bench_worker import OPS, supports

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKER = HERE / "bench_worker.py"

#: a worker that ran while other programs used more than this share of the machine's CPU
#: is run again (up to MAX_TRIES times in all; the least disturbed run counts)
FOREIGN_LOAD_LIMIT = 0.10
MAX_TRIES = 3

FULL_PEERS = list(PEERS)
QUICK_PEERS = ["ours-lmdb", "asebytes-lmdb", "aselmdb", "floor-lmdb-raw", "floor-atoms"]
TIMED_OPS = [op for op in OPS if op != "file_size"]


class SuiteError(RuntimeError):
    """A worker read wrong data: the whole suite stops."""


def run_worker(
    python: str, args: list[str], env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """One worker process; its JSON line, or ``{"error": ...}`` if the peer failed."""
    cmd = [python, str(WORKER), *args]
    try:
        out = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode == 3:
        raise SuiteError(out.stderr.strip().splitlines()[-1])
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["(no output)"]
        return {"error": lines[-1][:300]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def versions(python: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {'python': sys.version.split()[0]}\n"
        "for p in ('asebytes', 'asebytes-rs', 'ase', 'numpy', 'ase-db-backends',\n"
        "          'znh5md', 'h5py', 'lmdb', 'zarr', 'atompack-db'):\n"
        "    try:\n"
        "        out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=False
    )
    return dict(json.loads(out.stdout)) if out.returncode == 0 else {}


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory": mem,
        "system": f"{platform.system()} {platform.release()}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small run for development")
    ap.add_argument("--big", action="store_true", help="add ethanol with 10,000 frames")
    ap.add_argument("--frames", type=int, help="frames per dataset (default 1000)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    ap.add_argument("--repeats", type=int, help="timed repeats per worker (default 3)")
    ap.add_argument("--single", type=int, help="frames for one-by-one writes")
    ap.add_argument("--peers", help="comma-separated peers (default: all)")
    ap.add_argument("--ops", help="comma-separated operations (default: all)")
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--out", help="results directory (default benches/results[/quick])")
    ap.add_argument("--plots", default=str(ROOT / "docs" / "benchmarks"))
    ap.add_argument("--timeout", type=float, default=1200.0, help="per worker, s")
    args = ap.parse_args()

    frames = args.frames or (200 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    repeats = args.repeats or (2 if args.quick else 3)
    single = args.single or (50 if args.quick else 200)
    peers = (
        args.peers.split(",")
        if args.peers
        else (QUICK_PEERS if args.quick else FULL_PEERS)
    )
    ops = args.ops.split(",") if args.ops else TIMED_OPS
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    datasets = {name: frames for name in data.DATASETS}
    if args.big:
        datasets["ethanol-10k"] = 10_000
    pythons = {"bench": sys.executable, "ref": os.path.abspath(args.ref_python)}

    started = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="asebytes-bench-") as tmp,
        private_daemon(tmp) as env,
    ):
        os.chmod(tmp, 0o700)
        redis_server = start_redis(peers, env)
        mongo = bench_mongo.start_if_needed(peers, tmp, env)
        try:
            results = _run(
                args, tmp, env, pythons, peers, ops, datasets, rounds, repeats, single
            )
        finally:
            stop_daemon(env)  # before its servers: the daemon holds their connections
            if redis_server is not None:
                redis_server.close()
            bench_mongo.stop(mongo)

    report = {
        "meta": {
            "command": "just bench-quick" if args.quick else "just bench",
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
            "wall_seconds": round(time.time() - started, 1),
            "machine": machine(),
            "versions": {k: versions(py) for k, py in pythons.items()},
            "rounds": rounds,
            "repeats": repeats,
            "single_write_frames": single,
        },
        "datasets": {name: {"frames": n} for name, n in datasets.items()},
        "peers": {
            p: {
                "label": PEERS[p].label,
                "kind": PEERS[p].kind,
                "venv": PEERS[p].venv,
            }
            for p in peers
        },
        "results": results,
    }
    bench_report.summarise(report)
    out_dir = Path(
        args.out or ROOT / "benches" / "results" / ("quick" if args.quick else "")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "suite-quick" if args.quick else "suite"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    md = bench_report.markdown(report)
    (out_dir / f"{stem}.md").write_text(md)
    if not args.quick:
        bench_report.plots(report, Path(args.plots))
    print(md)
    print(f"suite took {report['meta']['wall_seconds']:.0f} s")


def _run(
    args: argparse.Namespace,
    tmp: str,
    env: dict[str, str],
    pythons: dict[str, str],
    peers: list[str],
    ops: list[str],
    datasets: dict[str, int],
    rounds: int,
    repeats: int,
    single: int,
) -> dict[str, Any]:
    """Prepare every peer's store, then the interleaved rounds; per-round medians."""
    instances = {p: PEERS[p]() for p in peers}
    samples: dict[str, dict[str, dict[str, list[float]]]] = {}
    results: dict[str, Any] = {}
    for name, n in datasets.items():
        base = name.split("-")[0]
        pkl = Path(tmp) / f"{name}.pkl"
        data.save(data.generate(base, n), pkl)
        workdir = Path(tmp) / name
        workdir.mkdir()
        results[name] = {op: {} for op in [*ops, "file_size"]}
        samples[name] = {op: {} for op in ops}
        for p in peers:
            common = [str(pkl), str(workdir)]
            py = pythons[instances[p].venv]
            prep = run_worker(py, [p, "prepare", *common], env, args.timeout)
            cell = results[name]["file_size"]
            if "error" in prep:
                cell[p] = {"status": "error", "reason": prep["error"]}
                continue
            if supports(instances[p], "file_size"):
                size = run_worker(py, [p, "file_size", *common], env, args.timeout)
                cell[p] = {"status": "ok", "bytes": size["bytes"]}
            elif instances[p].kind != "floor":
                cell[p] = {"status": "n/a", "reason": _na(p, "file_size")}
            print(f"prepared {name} {p}", file=sys.stderr)

    meter = LoadMeter(env["ASEBYTES_SOCKET"])
    for r in range(rounds):
        for name in datasets:
            pkl = Path(tmp) / f"{name}.pkl"
            workdir = Path(tmp) / name
            for op in ops:
                order = peers[r % len(peers) :] + peers[: r % len(peers)]
                for p in order:
                    peer = instances[p]
                    cell = results[name][op]
                    if not supports(peer, op):
                        if peer.kind != "floor":
                            cell[p] = {"status": "n/a", "reason": _na(p, op)}
                        continue
                    if cell.get(p, {}).get("status") == "error":
                        continue
                    wargs = [
                        p,
                        op,
                        str(pkl),
                        str(workdir),
                        "--repeats",
                        str(repeats),
                        "--single",
                        str(single),
                        "--tag",
                        f"{op}-r{r}",
                    ]
                    res = _quiet_run(
                        meter, pythons[peer.venv], wargs, env, args.timeout
                    )
                    if "error" in res:
                        cell[p] = {"status": "error", "reason": res["error"]}
                        print(
                            f"  {name} {op} {p}: ERROR {res['error']}", file=sys.stderr
                        )
                        continue
                    per_frame = statistics.median(res["seconds"]) / res["frames"]
                    samples[name][op].setdefault(p, []).append(per_frame)
                    prev = cell.get(p, {})
                    cell[p] = {
                        "status": "ok",
                        "frames": res["frames"],
                        "foreign_load": [
                            *prev.get("foreign_load", []),
                            round(res["foreign"], 3),
                        ],
                        "tries": [*prev.get("tries", []), res["tries"]],
                    }
            print(f"round {r + 1}/{rounds} {name} done", file=sys.stderr)

    for name in datasets:
        for op in ops:
            for p, vals in samples[name][op].items():
                cell = results[name][op][p]
                if cell.get("status") == "ok":
                    cell["us_per_frame"] = statistics.median(vals) * 1e6
                    cell["rounds_us"] = [v * 1e6 for v in vals]
    return results


def _quiet_run(
    meter: LoadMeter, python: str, wargs: list[str], env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """``run_worker``, again (a few times at most) while other programs load the machine;
    the run with the least foreign load counts."""
    best: dict[str, Any] = {}
    for attempt in range(1, MAX_TRIES + 1):
        meter.start()
        res = run_worker(python, wargs, env, timeout)
        if "error" in res:
            return res
        res["foreign"] = meter.foreign()
        res["tries"] = attempt
        if not best or res["foreign"] < best["foreign"]:
            best = res
        if res["foreign"] <= FOREIGN_LOAD_LIMIT:
            break
        print(
            f"  busy machine ({res['foreign']:.0%} foreign CPU), again", file=sys.stderr
        )
        time.sleep(2.0)
    return best


def _na(peer: str, op: str) -> str:
    return NA_REASONS.get((peer, op), "not available")


if __name__ == "__main__":
    main()
