"""Issue 17's edge on a real `runproxy --tls-port` with two workers, configured only through the admin API: a
certificate stored with POST /api/certificates/ is served by SNI within 2 s, renewed with PUT under 20 concurrent
HTTPS clients with no failed request; a route's client certificates accepted and refused; HTTP/2 over TLS (curl
and httpx) and a grpcio client over TLS reach their backends."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
import trustme
from django.contrib.auth import get_user_model

from tests.rusta.test_runproxy_tls import tls_port
from tests.support.certificates import issued
from tests.support.gateway import Gateway, start_gateway
from tests.support.grpc_backend import GrpcBackend
from tests.support.proxy import Reply
from tests.support.tls import client_context, https_call, served_serial
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
HOST = "api.example"
AUTH = ("edge-admin", "edge-password")


def api(gateway: Gateway, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{gateway.admin_url}/api/{path}", json=body, auth=AUTH, timeout=10)


def serial(pem_chain: str) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem_chain.encode()).serial_number


def until_served(port: int, server_name: str, context: Any, wanted: int, timeout: float = 10.0) -> float:
    """Seconds until four handshakes in a row (both workers, most likely) are served the certificate `wanted`."""
    started = time.monotonic()
    in_a_row = 0
    while time.monotonic() - started < timeout:
        try:
            in_a_row = in_a_row + 1 if served_serial(port, server_name, context) == wanted else 0
        except OSError:
            in_a_row = 0
        if in_a_row >= 4:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"certificate {wanted} not served within {timeout} s")


def settle(gateway: Gateway) -> None:
    """Until ten answers in a row, on new connections (so from both workers), serve the stored configuration."""
    stored = api(gateway, "GET", "config/status/").json()["database"]["version"]
    deadline, in_a_row = time.monotonic() + 10, 0
    while in_a_row < 10:
        assert time.monotonic() < deadline, f"version {stored} not served by every worker"
        version = httpx.get(f"{gateway.url}/health", headers={"Connection": "close"}, timeout=5).json()
        in_a_row = in_a_row + 1 if version["config_version"] >= stored else 0


def routed(call: Callable[[], Reply], timeout: float = 10.0) -> Reply:
    """The first answer from a worker that serves the new route (each call is a new connection, which either of
    the two workers may take: one of them can still be on the table before the route)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = call()
        if reply.status != 404 or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


@pytest.fixture
def edge(tmp_path) -> Iterator[tuple[Gateway, int, UpstreamServer, GrpcBackend]]:
    get_user_model().objects.create_superuser(AUTH[0], "edge@example.com", AUTH[1])
    with UpstreamServer() as upstream, GrpcBackend("g") as backend:
        gateway = start_gateway(tmp_path, workers=2, extra_args=("--tls-port", "0"))
        try:
            yield gateway, tls_port(gateway), upstream, backend
        finally:
            assert gateway.stop() == 0


def test_a_certificate_from_the_api_is_served_within_2_s_and_renewed_under_load_with_no_failed_request(edge):
    gateway, port, upstream, _ = edge
    ca = trustme.CA()
    first, renewed = issued(ca, HOST), issued(ca, HOST)
    assert api(gateway, "POST", "routes/", {"name": "hello", "external_path": "/hello", "methods": ["GET"],
               "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}).status_code == 201
    created = api(gateway, "POST", "certificates/", {"name": "api", "certificate": first.chain, "key": first.key})
    assert created.status_code == 201, created.text
    assert "key" not in created.json() and created.json()["hosts"] == [HOST]
    context = client_context(ca)
    assert until_served(port, HOST, context, serial(first.chain)) < 2.0

    failures: list[str] = []
    done = 0
    stop = threading.Event()
    lock = threading.Lock()

    def client(keep_alive: bool) -> None:
        nonlocal done
        with httpx.Client(verify=context, timeout=10) as session:
            while not stop.is_set():
                try:
                    if keep_alive:
                        reply = session.get(f"https://127.0.0.1:{port}/hello", headers={"Host": HOST},
                                            extensions={"sni_hostname": HOST})
                        status = reply.status_code
                    else:
                        status = https_call(port, HOST, context, "GET", "/hello").status
                except (OSError, httpx.HTTPError) as exc:
                    failures.append(repr(exc))
                    continue
                with lock:
                    done += 1
                if status != 200:
                    failures.append(f"status {status}")

    threads = [threading.Thread(target=client, args=(index % 2 == 0,)) for index in range(20)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        renewal = api(gateway, "PUT", "certificates/api/", {"name": "api", "certificate": renewed.chain,
                                                             "key": renewed.key})
        assert renewal.status_code == 200, renewal.text
        assert until_served(port, HOST, context, serial(renewed.chain)) < 2.0
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
    assert failures == [] and done > 100


def test_a_route_accepts_its_clients_certificates_and_refuses_a_missing_one(edge):
    gateway, port, upstream, _ = edge
    server_ca, client_ca = trustme.CA(), trustme.CA()
    pair = issued(server_ca, HOST)
    assert api(gateway, "POST", "certificates/", {"name": "api", "certificate": pair.chain, "key": pair.key,
                                                  "default": True}).status_code == 201
    saved = api(gateway, "POST", "routes/", {
        "name": "private", "external_path": "/private", "methods": ["GET"],
        "backends": [{"host": "http://127.0.0.1", "port": upstream.port}],
        "tls": {"client_certificate": "required", "client_ca": client_ca.cert_pem.bytes().decode()}})
    assert saved.status_code == 201, saved.text
    settle(gateway)  # a connection made before a worker's table asked for client certificates carries none
    person = client_ca.issue_cert("alice@example.com", common_name="alice")
    accepted = routed(lambda: https_call(port, HOST, client_context(server_ca, person), "GET", "/private",
                                         headers=[("X-Client-Cert-Subject", "CN=mallory")]))
    missing = routed(lambda: https_call(port, HOST, client_context(server_ca), "GET", "/private"))
    assert accepted.status == 200
    [subject] = upstream.requests[-1].header("x-client-cert-subject")  # the client's own copy is gone
    assert "CN=alice" in subject.split(",") and "mallory" not in subject
    assert missing.status == 401 and json.loads(missing.body)["type"] == "client_certificate_required"


def test_http2_over_tls_and_grpc_over_tls_reach_their_backends(edge, tmp_path):
    gateway, port, upstream, backend = edge
    ca = trustme.CA()
    pair = issued(ca, HOST)
    assert api(gateway, "POST", "certificates/", {"name": "api", "certificate": pair.chain, "key": pair.key,
                                                  "default": True}).status_code == 201
    for route in ({"name": "echo", "external_path": "/test.Echo/{method}", "protocol": "grpc",
                   "backends": [{"host": "http://127.0.0.1", "port": backend.port}]},
                  {"name": "hello", "external_path": "/hello", "methods": ["GET"],
                   "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}):
        assert api(gateway, "POST", "routes/", route).status_code == 201
    settle(gateway)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    with httpx.Client(http2=True, verify=client_context(ca), timeout=10) as session:
        replies = [session.get(f"https://127.0.0.1:{port}/hello", headers={"Host": HOST},
                               extensions={"sni_hostname": HOST}) for _ in range(3)]
    assert [(r.status_code, r.http_version) for r in replies] == [(200, "HTTP/2")] * 3
    if shutil.which("curl"):
        curl = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(ca_file), "--resolve",
                               f"{HOST}:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                               f"https://{HOST}:{port}/hello"], capture_output=True, text=True, timeout=20)
        assert curl.stdout == "2 200", curl.stderr

    credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    options = [("grpc.ssl_target_name_override", HOST)]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        answer = channel.unary_unary("/test.Echo/Unary")(b"over tls", timeout=10)
        streamed = list(channel.unary_stream("/test.Echo/ServerStream")(b"2", timeout=10))
    assert answer == b"g:over tls" and len(streamed) == 2
