"""200 MiB files up and down through the gateway (a process of its own) with its peak memory flat."""
from __future__ import annotations

import hashlib
import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.edge import EdgeProcess
from tests.support.ftpserver import FtpServer, ftp_route
from tests.support.upstream import pattern_chunks, pattern_sha256

SIZE = 200 << 20
ALICE = {"ftp": {"username": "alice", "password": "secret"}}
# Bytes in flight are a few socket and stream buffers of 64 KiB; a gateway that buffered would grow by ~200 MiB.
MAX_GROWTH_MIB = 30

pytestmark = pytest.mark.slow


@pytest.fixture
def ftp() -> Iterator[FtpServer]:
    with FtpServer() as server:
        (server.root / "warmup.bin").write_bytes(b"w" * (1 << 20))
        yield server


@pytest.fixture
def gateway(ftp: FtpServer) -> Iterator[EdgeProcess]:
    with EdgeProcess([ftp_route("files", "/ftp", ftp.port, policies=ALICE)]) as process:
        connection = connect(process)
        connection.request("GET", "/ftp/download?path=/warmup.bin")  # every code path loaded once
        assert len(connection.getresponse().read()) == 1 << 20
        connection.close()
        yield process


def connect(process: EdgeProcess) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", process.port, timeout=60)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_a_200_mib_upload_streams_through_at_flat_memory(ftp: FtpServer, gateway: EdgeProcess) -> None:
    baseline = gateway.peak_rss_mib()
    connection = connect(gateway)
    connection.putrequest("PUT", "/ftp/upload?path=/big.bin")
    connection.putheader("Content-Length", str(SIZE))
    connection.endheaders()
    for chunk in pattern_chunks(SIZE):
        connection.send(chunk)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    peak = gateway.peak_rss_mib()
    assert response.status == 201, body
    assert sha256_of(ftp.root / "big.bin") == pattern_sha256(SIZE)
    assert peak - baseline < MAX_GROWTH_MIB, f"peak RSS {baseline:.1f} -> {peak:.1f} MiB"


def test_a_200_mib_download_streams_through_at_flat_memory(ftp: FtpServer, gateway: EdgeProcess) -> None:
    with (ftp.root / "big.bin").open("wb") as handle:
        for chunk in pattern_chunks(SIZE):
            handle.write(chunk)
    baseline = gateway.peak_rss_mib()
    connection = connect(gateway)
    connection.request("GET", "/ftp/download?path=/big.bin")
    response = connection.getresponse()
    digest = hashlib.sha256()
    received = 0
    while chunk := response.read(1 << 20):
        digest.update(chunk)
        received += len(chunk)
    connection.close()
    peak = gateway.peak_rss_mib()
    assert response.status == 200 and response.getheader("Content-Length") == str(SIZE)
    assert received == SIZE and digest.hexdigest() == pattern_sha256(SIZE)
    assert peak - baseline < MAX_GROWTH_MIB, f"peak RSS {baseline:.1f} -> {peak:.1f} MiB"
