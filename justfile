# asebytes-rs developer recipes. Run through ./dev (it bootstraps .venv and just).

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := justfile_directory() / ".venv"
py := venv / "bin" / "python"
ref_py := justfile_directory() / ".venv-ref" / "bin" / "python"
bench_py := justfile_directory() / ".venv-bench" / "bin" / "python"
rust_pkgs := "-p asebytes-protocol -p asebytes-daemon -p asebytes-tests"
rust_unit_pkgs := "-p asebytes-py --lib"

# List recipes.
default:
    @just --list

# Install the Python tooling into .venv (idempotent).
[group('dev')]
venv:
    @[ -x {{py}} ] || python3 -m venv {{venv}}
    @{{py}} -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# Create .venv-ref with the reference asebytes 0.3.3 (compatibility tests, benchmarks).
[group('dev')]
ref-venv:
    @[ -x {{ref_py}} ] || python3 -m venv .venv-ref
    @{{ref_py}} -m pip install -q --disable-pip-version-check -r requirements-ref.txt

# Build the extension (release) into .venv.
[group('dev')]
develop: venv
    cd pyclient && VIRTUAL_ENV={{venv}} PATH={{venv}}/bin:$PATH maturin develop --release -q

# The quick-start job: several processes write and read one local LMDB through the daemon.
[group('dev')]
demo: develop
    {{py}} examples/quickstart.py

# Rust tests: protocol, daemon (unit + end-to-end), contract suite on every backend, and
# the Python client's Rust unit tests (read-ahead, pool, codec, columns, errors).
[group('test')]
test-rs: ref-venv
    cargo test --locked {{rust_pkgs}}
    cargo test --locked {{rust_unit_pkgs}}

# Python tests against a freshly built extension and a private daemon.
[group('test')]
test-py: develop ref-venv
    {{py}} -m pytest -q pyclient/tests
    {{py}} -m pytest -q tests/python

# The PyTorch dataset with a real DataLoader (fork, spawn, forkserver workers). Installs
# torch into .venv first (several GB from PyPI with its CUDA libraries, a few minutes
# once), which is why CI does not run it; elsewhere these tests skip.
[group('test')]
test-torch: develop
    {{py}} -m pip install -q --disable-pip-version-check -r requirements-torch.txt
    {{py}} -m pytest -q tests/python/test_torch.py tests/python/test_readme_examples.py

# Format check, clippy -D warnings, ruff, mypy --strict of the package.
[group('lint')]
lint: venv
    cargo fmt --all --check
    cargo fmt --manifest-path fuzz/Cargo.toml --check
    cargo clippy --locked {{rust_pkgs}} -p asebytes-py -p asebytes-benches --all-targets -- -D warnings
    cargo clippy --locked --manifest-path fuzz/Cargo.toml --bins -- -D warnings
    {{venv}}/bin/ruff check pyclient/python pyclient/tests tests/python benches/python examples protocol/tests
    {{venv}}/bin/ruff format --check pyclient/python pyclient/tests tests/python benches/python examples protocol/tests
    {{venv}}/bin/python -m mypy --strict pyclient/python/asebytes

# Stub check of the native module against _native.pyi.
[group('lint')]
stubtest: develop
    {{py}} -m mypy.stubtest asebytes._native --allowlist pyclient/.stubtest-allowlist

# Coverage-guided fuzzing of the protocol with libFuzzer on the stable toolchain: the frame
# stream and handshake as the daemon reads a connection, request decoding, the value codec;
# RUNS inputs per target, failing on a panic or a heap beyond the input's limit (fuzz/run).
[group('test')]
fuzz RUNS="1000000":
    fuzz/run {{RUNS}}

# A short fuzzing pass (15 s per target) for CI.
[group('test')]
fuzz-smoke:
    fuzz/run --time 15

# Everything: lint, Rust tests, Python tests, a short fuzzing pass (what CI runs).
[group('test')]
test: lint stubtest test-rs test-py fuzz-smoke

# Alias of `test`, the name CI uses.
[group('test')]
ci: test

# Round-trip latency and read benchmarks against the reference asebytes (issue: speed).
[group('bench')]
bench-latency: develop ref-venv
    {{py}} benches/python/bench_latency.py --ref-python {{ref_py}}

# Row-at-a-time reads while nothing changed (db[i] in order / random, get(i, keys), len):
# with the published generation and read-ahead cache, without, and asebytes 0.3.3, one run.
[group('bench')]
bench-nochange: develop ref-venv
    {{py}} benches/python/bench_nochange.py --ref-python {{ref_py}}

# Eight reader processes on one store: aggregate rows/s with the spin gate, without it,
# and asebytes 0.3.3 in-process; plus one lone reader's latency (benches/results/readers.*).
[group('bench')]
bench-readers *ARGS: develop ref-venv
    {{py}} benches/python/bench_readers.py --ref-python {{ref_py}} {{ARGS}}

# The write path before and after in one run: extend (Atoms converted in Rust or Python),
# one append at a time (durable, durability="os", asebytes 0.3.3, extxyz), 4 processes
# appending (group-commit window on/off); results in benches/results/writes.{json,md}.
[group('bench')]
bench-writes *ARGS: develop ref-venv
    {{py}} benches/python/bench_writes.py --ref-python {{ref_py}} {{ARGS}}

# Read-only sources (extxyz, traj, aselmdb) against ase.io, ase.db and asebytes 0.3.3 on
# 10,000 frames; results in benches/results/readonly.{json,md}.
[group('bench')]
bench-readonly: develop ref-venv
    {{py}} benches/python/bench_readonly.py --ref-python {{ref_py}}

# cache_to: epoch 1 vs later epochs of random db[i] over a 10,000-frame extxyz, ours vs
# asebytes 0.3.3's cache_to; results in benches/results/cache.{json,md}.
[group('bench')]
bench-cache: develop ref-venv
    {{py}} benches/python/bench_cache.py --ref-python {{ref_py}}

# Hub datasets (colabfit://) against asebytes 0.3.3's HuggingFaceBackend on a local mock
# Hub, 10,000 frames; results in benches/results/hub.{json,md}.
[group('bench')]
bench-hub: develop ref-venv
    {{py}} benches/python/bench_hub.py --ref-python {{ref_py}}

# Create .venv-bench: the peers (requirements-bench.txt) and our package as a release wheel
# built from this checkout (so editing the tree never changes a running benchmark).
[group('bench')]
bench-venv: venv
    @[ -x {{bench_py}} ] || python3 -m venv .venv-bench
    @{{bench_py}} -m pip install -q --disable-pip-version-check -r requirements-bench.txt
    rm -rf target/bench-wheels
    cd pyclient && {{venv}}/bin/maturin build --release --locked -q --auditwheel skip --out ../target/bench-wheels
    {{bench_py}} -m pip install -q --disable-pip-version-check --no-deps --force-reinstall target/bench-wheels/*.whl

# The benchmark suite against aselmdb, znh5md, extxyz, ASE SQLite, atompack and asebytes
# 0.3.3 (with Redis and MongoDB on private servers), then the multi-process scenarios,
# latency, the read-only sources, the Hub, the write path and cache_to; results in
# benches/results/, plots in docs/benchmarks/ (the suite alone took 87 min on 2 cores on
# 2026-12-02). Extra arguments go to bench_suite.py.
[group('bench')]
bench *ARGS: bench-venv ref-venv
    {{bench_py}} benches/python/bench_suite.py --ref-python {{ref_py}} {{ARGS}}
    {{bench_py}} benches/python/bench_concurrency.py --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_latency.py --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_nochange.py --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_readers.py --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_readonly.py --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_writes.py --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_cache.py --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_hub.py --ref-python {{ref_py}}

# A small run of the suite and the multi-process scenario for development (under 3 min);
# writes benches/results/quick/ (not committed), no plots.
[group('bench')]
bench-quick: bench-venv ref-venv
    {{bench_py}} benches/python/bench_suite.py --quick --ref-python {{ref_py}}
    {{bench_py}} benches/python/bench_concurrency.py --quick --ref-python {{ref_py}}

# DataLoader samples/s with 0, 2 and 4 workers: asebytes.torch.AtomsDataset against
# aselmdb read the fairchem way (ase.db per worker). Installs torch into .venv-bench first
# (several GB, once), so it is not part of `bench`. Results: benches/results/torch.{json,md}.
[group('bench')]
bench-torch *ARGS: bench-venv
    {{bench_py}} -m pip install -q --disable-pip-version-check -r requirements-torch.txt
    {{bench_py}} benches/python/bench_torch.py {{ARGS}}

# Criterion benches (codec, daemon round trip).
[group('bench')]
bench-rs:
    cargo bench --locked -p asebytes-benches
