"""Bodies through the proxy: streamed both ways with flat memory, kept-alive backends, clients that leave early."""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.proxy import ProxyProcess, ProxyServer, route
from tests.support.upstream import UpstreamServer, pattern_chunks, pattern_sha256

MiB = 1 << 20
GiB = 1 << 30
PEAK_RSS_LIMIT_MIB = 150


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def backend_routes(port: int) -> list:
    return [route("backend", "/b/{handler}", port, internal_path="/{handler}", methods=("GET", "POST", "PUT"))]


@pytest.fixture
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    with ProxyServer(backend_routes(upstream.port)) as server:
        yield server


def download(conn: http.client.HTTPConnection, target: str) -> tuple[int, str]:
    conn.request("GET", target)
    response = conn.getresponse()
    digest = hashlib.sha256()
    size = 0
    while chunk := response.read(MiB):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def upload(conn: http.client.HTTPConnection, size: int, chunked: bool = False) -> dict:
    headers = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)}
    conn.request("PUT", "/b/upload", body=pattern_chunks(size), headers=headers, encode_chunked=chunked)
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


def test_it_reuses_one_backend_connection_for_sequential_requests(proxy, upstream):
    for _ in range(5):
        proxy.call("GET", "/b/echo")
    assert upstream.connections == 1


def test_it_streams_a_chunked_download(proxy):
    assert download(proxy.connection(), f"/b/stream?bytes={16 * MiB + 1}&chunked=1") == (
        16 * MiB + 1, pattern_sha256(16 * MiB + 1))


def test_it_streams_an_upload_with_a_content_length(proxy, upstream):
    reply = upload(proxy.connection(), 16 * MiB + 7)
    assert reply == {"length": 16 * MiB + 7, "sha256": pattern_sha256(16 * MiB + 7)}
    assert upstream.requests[0].header("content-length") == [str(16 * MiB + 7)]


def test_it_streams_a_chunked_upload(proxy, upstream):
    reply = upload(proxy.connection(), 8 * MiB + 3, chunked=True)
    assert reply == {"length": 8 * MiB + 3, "sha256": pattern_sha256(8 * MiB + 3)}
    assert upstream.requests[0].header("transfer-encoding") == ["chunked"]


def test_it_closes_the_backend_connection_when_the_client_leaves_mid_download(proxy, upstream):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
        client.sendall(f"GET /b/stream?bytes={GiB} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        received = 0
        while received < MiB:
            received += len(client.recv(65536))
    assert upstream.wait_until(lambda u: u.closed_connections == 1)
    assert upstream.bytes_streamed < GiB


@pytest.mark.slow
def test_it_downloads_a_gibibyte_in_flat_memory(upstream):
    with ProxyProcess(backend_routes(upstream.port)) as proxy:
        started = time.monotonic()
        size, digest = download(proxy.connection(), f"/b/stream?bytes={GiB}")
        peak = proxy.peak_rss_mib()
    assert size == GiB
    assert digest == pattern_sha256(GiB)
    assert peak < PEAK_RSS_LIMIT_MIB, f"proxy peaked at {peak:.0f} MiB"
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_it_uploads_a_gibibyte_in_flat_memory(upstream):
    # The backend stops reading for a while, as a slow one would; a proxy without backpressure would soak up
    # what the client sends meanwhile (the gate opens early once the client is 256 MiB ahead).
    def body() -> Iterator[memoryview]:
        sent = 0
        for chunk in pattern_chunks(GiB):
            yield chunk
            sent += len(chunk)
            if sent >= 256 * MiB:
                upstream.upload_gate.set()

    with ProxyProcess(backend_routes(upstream.port)) as proxy:
        started = time.monotonic()
        conn = proxy.connection()
        conn.request("PUT", "/b/upload?stall=1", body=body(), headers={"Content-Length": str(GiB)})
        reply = json.loads(conn.getresponse().read())
        peak = proxy.peak_rss_mib()
    assert reply == {"length": GiB, "sha256": pattern_sha256(GiB)}
    assert peak < PEAK_RSS_LIMIT_MIB, f"proxy peaked at {peak:.0f} MiB"
    assert time.monotonic() - started < 60
