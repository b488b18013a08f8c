"""``rediss://``: a Redis store over TLS, against a private ``redis-server`` that serves TLS
(and, on a second port, plain TCP for the test's own checks) with certificates from a CA
made here by the ``openssl`` command.

The server asks for a client certificate (``--tls-auth-clients yes``), so one server shows
every case: the private CA given with ``tls_ca_file=`` and a client certificate with
``tls_cert_file=``/``tls_key_file=`` work, through the sync and the async facade; without
the CA (the system's roots do not know it) or without the client certificate the open
fails with ``ConnectionError`` naming host and port, never the password; and what was
written over TLS is the reference layout (read back through the plain port).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _redis_server import RedisServer, _free_port
from asebytes import AsyncObjectIO, BlobIO, ObjectIO

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("redis-server") is None,
    reason="needs the openssl command and redis-server",
)

PASSWORD = "tls-s3cret-pw"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(dir: Path, name: str, cn: str, ext: str) -> None:
    """``<name>.pem`` and ``<name>.key``: an EC key and a certificate the CA signs."""
    (dir / f"{name}.ext").write_text(ext + "\n")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        cwd=dir,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=dir,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tls")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=asebytes test CA",
        cwd=d,
    )  # fmt: skip
    _issue(
        d,
        "server",
        "localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
    )
    _issue(d, "client", "asebytes test client", "extendedKeyUsage=clientAuth")
    return d


@pytest.fixture(scope="module")
def server(certs: Path) -> Iterator[tuple[RedisServer, int]]:
    tls_port = _free_port()
    s = RedisServer(
        "--tls-port", str(tls_port),
        "--tls-cert-file", str(certs / "server.pem"),
        "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.pem"),
        "--tls-auth-clients", "yes",
        password=PASSWORD,
    )  # fmt: skip
    yield s, tls_port
    s.close()


def _tls_url(port: int, db: int = 0) -> str:
    return f"rediss://:{PASSWORD}@127.0.0.1:{port}/{db}"


def _client_files(certs: Path) -> dict[str, str]:
    return {
        "tls_ca_file": str(certs / "ca.pem"),
        "tls_cert_file": str(certs / "client.pem"),
        "tls_key_file": str(certs / "client.key"),
    }


def test_rows_go_over_tls_in_the_reference_layout(
    server: tuple[RedisServer, int], certs: Path
) -> None:
    plain, port = server
    db = ObjectIO(_tls_url(port, 1), group="g", **_client_files(certs))
    rows = [
        {"calc.energy": -float(i), "arrays.x": np.arange(i + 1.0)} for i in range(5)
    ]
    db.extend(rows)
    assert len(db) == 5
    assert db.get(3, keys=["calc.energy"]) == {"calc.energy": -3.0}
    np.testing.assert_array_equal(db[4]["arrays.x"], np.arange(5.0))
    np.testing.assert_array_equal(db["calc.energy"].to_numpy(), [-0.0, -1, -2, -3, -4])
    # The same keys as over plain TCP: the plain port of the same server reads them.
    same = ObjectIO(plain.url(1), group="g")
    assert len(same) == 5
    assert same[2]["calc.energy"] == -2.0
    blobs = BlobIO(plain.url(1), group="g")
    assert len(blobs) == 5


def test_the_async_facade_goes_over_tls(
    server: tuple[RedisServer, int], certs: Path
) -> None:
    _, port = server

    async def run() -> tuple[int, Any]:
        db = AsyncObjectIO(_tls_url(port, 2), group="a", **_client_files(certs))
        await db.extend([{"info.k": i} for i in range(3)])
        return await db.len(), await db[1]

    n, row = asyncio.run(run())
    assert n == 3
    assert row == {"info.k": 1}


def test_an_unknown_ca_is_a_connection_error_naming_the_server(
    server: tuple[RedisServer, int], certs: Path
) -> None:
    _, port = server
    files = _client_files(certs)
    del files["tls_ca_file"]  # the system's roots do not know the test CA
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}") as info:
        len(ObjectIO(_tls_url(port, 3), group="g", **files))
    assert PASSWORD not in str(info.value)


def test_a_server_asking_for_a_client_certificate_refuses_one_without(
    server: tuple[RedisServer, int], certs: Path
) -> None:
    _, port = server
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}") as info:
        len(ObjectIO(_tls_url(port, 4), group="g", tls_ca_file=str(certs / "ca.pem")))
    assert PASSWORD not in str(info.value)


def test_tls_options_are_checked(server: tuple[RedisServer, int], certs: Path) -> None:
    plain, port = server
    with pytest.raises(ValueError, match="rediss://"):
        len(ObjectIO(plain.url(5), group="g", tls_ca_file=str(certs / "ca.pem")))
    with pytest.raises(ValueError, match="both"):
        len(ObjectIO(_tls_url(port, 6), group="g", tls_cert_file=str(certs / "c.pem")))
    with pytest.raises(FileNotFoundError, match="missing.pem"):
        len(
            ObjectIO(
                _tls_url(port, 7), group="g", tls_ca_file=str(certs / "missing.pem")
            )
        )
