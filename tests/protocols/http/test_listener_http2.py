"""The proxy listener speaks HTTP/2 and HTTP/1.1 on one port (protocols/http/listener.py hands over to
protocols/http/h2.py): prior knowledge and TLS ALPN, through a route to a real upstream, with real clients
(curl, httpx, h2load)."""
from __future__ import annotations

import asyncio
import io
import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import trustme

from protocols.http import AccessLog
from tests.support.h2client import H2Client
from tests.support.proxy import ProxyServer, route
from tests.support.tls import certificate
from tests.support.upstream import UpstreamServer, pattern_chunks, pattern_sha256

MiB = 1 << 20


@pytest.fixture(scope="module")
def access_log() -> AccessLog:
    return AccessLog(stream=io.StringIO())


@pytest.fixture(scope="module")
def proxy(upstream: UpstreamServer, access_log: AccessLog) -> Iterator[ProxyServer]:
    routes = [route("any", "/any/{rest}", upstream.port, methods=("GET", "POST", "HEAD")),
              route("handler", "/b/{handler}", upstream.port, internal_path="/{handler}", methods=("GET", "POST"))]
    with ProxyServer(routes, access_log=access_log) as server:
        yield server


def curl(*arguments: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *arguments], capture_output=True, timeout=30,
                          check=False)


def test_curl_with_prior_knowledge_reaches_the_upstream_through_a_route(proxy, upstream):
    result = curl("--http2-prior-knowledge", "-w", "\n%{http_version}", "-d", "hello",
                  f"http://127.0.0.1:{proxy.port}/any/thing?x=1")
    body, _, version = result.stdout.rpartition(b"\n")
    echoed = json.loads(body)
    assert version == b"2"
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/any/thing"
    assert echoed["query"] == "x=1"
    assert ["host", f"127.0.0.1:{proxy.port}"] not in echoed["headers"]  # the route's backend's, as over 1.1
    assert ["x-forwarded-host", f"127.0.0.1:{proxy.port}"] in echoed["headers"]
    assert ["via", "2 rusta"] in echoed["headers"]  # the protocol the gateway received it over
    assert echoed["body_length"] == 5


def test_http11_still_works_on_the_same_port(proxy):
    reply = proxy.call("GET", "/any/thing", [("Host", "a.example")])
    assert reply.status == 200
    assert json.loads(reply.body)["path"] == "/any/thing"


def test_an_upgrade_to_h2c_stays_ignored(proxy):
    result = curl("--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                  f"http://127.0.0.1:{proxy.port}/any/thing")
    assert result.stdout == b"1.1 200"


def test_a_preface_that_arrives_in_pieces_is_recognised(proxy):
    with H2Client(proxy.port, preface_in_pieces=True) as client:
        response = client.response(client.request("GET", "/any/pieces"))
    assert response.status == 200
    assert json.loads(bytes(response.body))["path"] == "/any/pieces"


def test_a_bad_authority_gets_the_listeners_400_and_reaches_no_backend(proxy, upstream):
    before = len(upstream.requests)
    with H2Client(proxy.port) as client:
        response = client.response(client.request("GET", "/any/x", authority="bad host"))
    assert response.status == 400
    assert json.loads(bytes(response.body))["type"] == "invalid_host"
    assert len(upstream.requests) == before


def test_a_field_name_with_an_underscore_is_dropped_as_over_http11(proxy):
    with H2Client(proxy.port) as client:
        response = client.response(client.request("GET", "/any/x", [("x_user", "admin"), ("x-kept", "1")]))
    names = [name for name, _ in json.loads(bytes(response.body))["headers"]]
    assert "x-kept" in names
    assert "x_user" not in names


@pytest.mark.parametrize(("method", "path", "status", "kind"), [
    ("GET", "/any/a\\b", 400, "invalid_target"),
    ("GET", "/any/%zz", 400, "invalid_target"),
    ("OPTIONS", "*", 400, "invalid_target"),
])
def test_the_listeners_target_checks_apply_over_http2(proxy, upstream, method, path, status, kind):
    before = len(upstream.requests)
    with H2Client(proxy.port) as client:
        response = client.response(client.request(method, path))
    assert response.status == status
    assert json.loads(bytes(response.body))["type"] == kind
    assert len(upstream.requests) == before


def test_httpx_runs_many_concurrent_streams_on_one_connection(proxy):
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as client:
            requests = [client.get(f"http://127.0.0.1:{proxy.port}/any/{n}") for n in range(300)]
            responses = await asyncio.gather(*requests)
            assert len(proxy_http2_connections(proxy)) == 1
            return responses

    responses = asyncio.run(run())
    assert {response.http_version for response in responses} == {"HTTP/2"}
    assert [response.json()["path"] for response in responses] == [f"/any/{n}" for n in range(300)]


def proxy_http2_connections(proxy: ProxyServer) -> list[object]:
    from protocols.http.h2 import Http2Protocol

    return [c for c in list(proxy.listener.connections) if isinstance(c, Http2Protocol)]


def test_h2load_completes_2000_requests_without_an_error(proxy):
    result = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "16",
                             f"http://127.0.0.1:{proxy.port}/any/load"], capture_output=True, timeout=120, check=False)
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 2000 2xx" in out, out


@pytest.mark.slow
def test_a_20_mb_upload_streams_to_a_stalled_upstream_holding_at_most_one_window(proxy, upstream):
    size = 20 * MiB
    upstream.upload_gate.clear()  # the backend stops reading after its first MiB, until the gate opens

    async def upload() -> tuple[httpx.Response, int, int]:
        async def body():  # type: ignore[no-untyped-def]
            for chunk in pattern_chunks(size):
                yield chunk

        async with httpx.AsyncClient(http1=False, http2=True, timeout=60) as client:
            sending = asyncio.ensure_future(client.post(f"http://127.0.0.1:{proxy.port}/b/upload?stall=1",
                                                        content=body(), headers={"content-length": str(size)}))
            held = 0
            for _ in range(500):  # the gateway stops reading once the backend's socket is full
                await asyncio.sleep(0.01)
                held = max([connection.held for connection in proxy_http2_connections(proxy)] or [0])
                if held >= 32768:  # h2 hands a window back in halves: the client's sending has stopped
                    break
            upstream.upload_gate.set()
            response = await sending
            peak = max(connection.held_peak for connection in proxy_http2_connections(proxy))
            return response, held, peak

    response, held_while_stalled, peak = asyncio.run(upload())
    assert response.status_code == 200
    assert response.json() == {"length": size, "sha256": pattern_sha256(size)}
    assert 32768 <= held_while_stalled <= 65536  # unacknowledged, while the backend read nothing
    assert peak <= 65536  # never more than one stream window


def test_a_streamed_response_arrives_in_pieces_before_it_ends(proxy, upstream):
    upstream.drip_done.clear()
    with H2Client(proxy.port) as client:
        stream = client.request("GET", "/b/drip?chunks=4&size=10&gap_ms=300")
        assert client.read_until(lambda c: len(c.responses[stream].body) >= 10)
        assert not upstream.drip_done.is_set()
        assert not client.responses[stream].ended
        response = client.response(stream)
    assert bytes(response.body) == b"a" * 40


def test_an_http2_request_is_access_logged_like_an_http11_one(proxy, access_log):
    proxy.call("GET", "/any/logged-1", [("Host", "a.example")])
    with H2Client(proxy.port) as client:
        client.response(client.request("GET", "/any/logged-2"))
    deadline = time.monotonic() + 10
    stream = access_log._stream
    assert isinstance(stream, io.StringIO)
    lines: dict[str, dict[str, object]] = {}
    while len(lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        for line in stream.getvalue().splitlines():
            entry = json.loads(line)
            if entry["path"] in ("/any/logged-1", "/any/logged-2"):
                lines[str(entry["path"])] = entry
    one, two = lines["/any/logged-1"], lines["/any/logged-2"]
    assert one.keys() == two.keys()
    assert (two["method"], two["route"], two["status"], two["client"]) == ("GET", "any", 200, "127.0.0.1")


# TLS: ALPN picks HTTP/2 or HTTP/1.1 on one port (the listener's own front context, protocols.tls.contexts)

@pytest.fixture(scope="module")
def tls_proxy(upstream: UpstreamServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    authority = trustme.CA()
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    routes = [route("any", "/any/{rest}", upstream.port)]
    with ProxyServer(routes, tls=True, certificates=(certificate(authority, "api.example"),)) as server:
        yield server.port, str(ca_file)


def test_curl_over_tls_gets_http2_by_alpn(tls_proxy):
    port, ca_file = tls_proxy
    result = curl("--http2", "--cacert", ca_file, "--resolve", f"api.example:{port}:127.0.0.1", "-w",
                  "\n%{http_version}", f"https://api.example:{port}/any/secure")
    body, _, version = result.stdout.rpartition(b"\n")
    assert version == b"2", result.stderr
    echoed = json.loads(body)
    assert echoed["path"] == "/any/secure"
    assert ["x-forwarded-proto", "https"] in echoed["headers"]


def test_curl_over_tls_without_h2_still_gets_http11(tls_proxy):
    port, ca_file = tls_proxy
    result = curl("--http1.1", "--cacert", ca_file, "--resolve", f"api.example:{port}:127.0.0.1", "-o", "/dev/null",
                  "-w", "%{http_version} %{http_code}", f"https://api.example:{port}/any/secure")
    assert result.stdout == b"1.1 200", result.stderr
