"""A local mock of the HuggingFace Hub for the hub backend's tests (nothing touches the
internet): dataset repos served from memory, answering what hf-hub and the daemon ask.

* ``GET /api/datasets/<owner>/<name>/revision/<rev>`` -> ``{"sha", "siblings"}``
  (``rev`` may be ``refs%2Fconvert%2Fparquet`` for a repo with a converted branch).
* ``GET|HEAD /datasets/<owner>/<name>/resolve/<rev>/<path>`` -> the file, with ``ETag``,
  ``X-Repo-Commit`` and ``Content-Length`` (no ``X-Xet-Hash``), ``206`` and
  ``Content-Range`` for ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n``.
* A gated repo answers ``401`` for its files unless ``Authorization: Bearer <token>``.

Every request is logged (method, path, range, bytes sent) so tests can check what a read
fetched. Run as a script, it serves the repos of a directory written by
``write_repo_dir`` (used by the Rust contract fixture and the bench).
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Repo:
    """One dataset repo: files by path, a commit sha, and an optional token gate."""

    files: dict[str, bytes]
    token: str | None = None
    converted: dict[str, bytes] | None = None

    @property
    def sha(self) -> str:
        h = hashlib.sha1()
        for path in sorted(self.files):
            h.update(path.encode() + b"\0" + self.files[path])
        return h.hexdigest()

    @property
    def converted_sha(self) -> str:
        return hashlib.sha1(b"convert" + self.sha.encode()).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    sent: int


@dataclass
class HubState:
    repos: dict[str, Repo] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bytes_sent(self, suffix: str = ".parquet") -> int:
        with self.lock:
            return sum(r.sent for r in self.log if r.path.endswith(suffix))


class _Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self, code: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = 0 if self.command == "HEAD" else len(body)
        # Logged before the body goes out: a client that has its answer finds it counted.
        with self.state.lock:
            self.state.log.append(
                Request(self.command, self.path, self.headers.get("Range"), sent)
            )
        if sent:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = path.strip("/").split("/")
        if (
            parts[:2] == ["api", "datasets"]
            and len(parts) >= 6
            and parts[4] == "revision"
        ):
            self._info("/".join(parts[2:4]), "/".join(parts[5:]))
        elif parts[0] == "datasets" and len(parts) >= 6 and parts[3] == "resolve":
            self._file("/".join(parts[1:3]), parts[4], "/".join(parts[5:]))
        else:
            self._send(404, b"not found")

    def _revision(self, repo: Repo, rev: str) -> tuple[str, dict[str, bytes]] | None:
        if rev in ("main", repo.sha):
            return repo.sha, repo.files
        if repo.converted is not None and rev in (
            "refs/convert/parquet",
            repo.converted_sha,
        ):
            return repo.converted_sha, repo.converted
        return None

    def _info(self, repo_id: str, rev: str) -> None:
        repo = self.state.repos.get(repo_id)
        found = self._revision(repo, rev) if repo else None
        if found is None:
            self._send(404, b'{"error": "Repository not found"}')
            return
        sha, files = found
        body = json.dumps(
            {"sha": sha, "siblings": [{"rfilename": p} for p in sorted(files)]}
        ).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def _file(self, repo_id: str, rev: str, path: str) -> None:
        repo = self.state.repos.get(repo_id)
        found = self._revision(repo, rev) if repo else None
        if repo is None or found is None or path not in found[1]:
            self._send(404, b"Entry not found")
            return
        gated = repo.token is not None and path != "README.md"
        if gated and self.headers.get("Authorization") != f"Bearer {repo.token}":
            self._send(401, b"Access to this dataset is restricted")
            return
        sha, files = found
        data = files[path]
        headers = {
            "ETag": '"' + hashlib.sha256(data).hexdigest() + '"',
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
        }
        spec = self.headers.get("Range")
        if spec is None:
            self._send(200, data, headers)
            return
        start, stop = _parse_range(spec, len(data))
        if start >= stop:
            self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            return
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        self._send(206, data[start:stop], headers)


def _parse_range(spec: str, size: int) -> tuple[int, int]:
    """``bytes=a-b`` / ``a-`` / ``-n`` as a half-open ``[start, stop)``."""
    first, _, last = spec.removeprefix("bytes=").partition("-")
    if first == "":
        n = int(last)
        return max(size - n, 0), size
    start = int(first)
    stop = size if last == "" else min(int(last) + 1, size)
    return start, stop


class HubServer:
    """A mock Hub on a free loopback port, serving ``state`` until ``stop``."""

    def __init__(self, state: HubState | None = None) -> None:
        self.state = state or HubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_repo_dir(root: Path, repos: dict[str, Repo]) -> None:
    """Writes repos as ``root/<owner>/<name>/<path>`` (+ ``.token`` for a gated one)."""
    for repo_id, repo in repos.items():
        for path, data in repo.files.items():
            target = root / repo_id / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if repo.token is not None:
            (root / repo_id / ".token").write_text(repo.token)


def read_repo_dir(root: Path) -> dict[str, Repo]:
    """The repos ``write_repo_dir`` wrote."""
    repos: dict[str, Repo] = {}
    for owner in sorted(p for p in root.iterdir() if p.is_dir()):
        for name in sorted(p for p in owner.iterdir() if p.is_dir()):
            files = {
                str(f.relative_to(name)): f.read_bytes()
                for f in name.rglob("*")
                if f.is_file() and f.name != ".token"
            }
            token_file = name / ".token"
            token = token_file.read_text() if token_file.exists() else None
            repos[f"{owner.name}/{name.name}"] = Repo(files, token)
    return repos


if __name__ == "__main__":
    # python _hub_server.py <repo dir>: serve it, print the URL, run until stdin closes.
    server = HubServer(HubState(read_repo_dir(Path(sys.argv[1]))))
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()
