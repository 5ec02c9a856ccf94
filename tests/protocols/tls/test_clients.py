"""Client certificates per route (the `tls` block) over the proxy's TLS listener, and ASGI's TLS extension."""
from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import trustme
import uvicorn

from protocols.http.listener import ListenerState, protocol_factory
from protocols.tls.contexts import ServerContexts, front_context
from tests.support.background import UvicornThread
from tests.support.proxy import ProxyServer, route
from tests.support.tls import certificate, client_context, handshake, https_call
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module")
def server_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_a() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_b() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(server_ca, ca_a, ca_b, upstream):
    def tls(mode: str, ca: trustme.CA) -> dict[str, Any]:
        return {"tls": {"client_certificate": mode, "client_ca": ca.cert_pem.bytes().decode()}}

    routes = [route("a", "/a", upstream.port, policies=tls("required", ca_a)),
              route("b", "/b", upstream.port, policies=tls("optional", ca_b)),
              route("plain", "/plain", upstream.port)]
    with ProxyServer(routes, tls=True, certificates=(certificate(server_ca, "gw.example"),)) as server:
        yield server


def call(proxy, server_ca, path: str, cert: trustme.LeafCert | None = None, headers=()) -> Any:
    return https_call(proxy.port, "gw.example", client_context(server_ca, cert), "GET", path, headers)


def test_a_certificate_from_the_routes_ca_passes_its_subject_upstream(proxy, server_ca, ca_a, upstream):
    alice = ca_a.issue_cert("alice@example.com", common_name="alice")
    reply = call(proxy, server_ca, "/a", alice)
    assert reply.status == 200
    (subject,) = upstream.requests[-1].header("x-client-cert-subject")
    assert subject.startswith("CN=alice,") and "O=trustme" in subject  # RFC 4514: the last RDN first


def test_no_certificate_on_a_required_route_is_refused_with_401(proxy, server_ca):
    reply = call(proxy, server_ca, "/a")
    assert reply.status == 401
    assert reply.json()["type"] == "client_certificate_required"


def test_a_certificate_from_another_routes_ca_is_refused_with_403(proxy, server_ca, ca_b):
    bob = ca_b.issue_cert("bob@example.com", common_name="bob")
    reply = call(proxy, server_ca, "/a", bob)
    assert reply.status == 403
    assert reply.json()["type"] == "client_certificate_untrusted"


def test_an_optional_route_serves_a_client_without_certificate_and_strips_a_spoofed_subject(proxy, server_ca,
                                                                                           upstream):
    reply = call(proxy, server_ca, "/b", headers=[("X-Client-Cert-Subject", "CN=admin")])
    assert reply.status == 200
    assert upstream.requests[-1].header("x-client-cert-subject") == []


def test_a_spoofed_subject_is_replaced_by_the_verified_one(proxy, server_ca, ca_b, upstream):
    bob = ca_b.issue_cert("bob@example.com", common_name="bob")
    reply = call(proxy, server_ca, "/b", bob, headers=[("X-Client-Cert-Subject", "CN=admin")])
    assert reply.status == 200
    (subject,) = upstream.requests[-1].header("x-client-cert-subject")
    assert subject.startswith("CN=bob,")


def test_a_route_without_client_certificates_serves_a_client_that_has_one(proxy, server_ca, ca_a):
    alice = ca_a.issue_cert("alice@example.com", common_name="alice")
    assert call(proxy, server_ca, "/plain", alice).status == 200


def test_a_certificate_no_configured_ca_issued_fails_the_handshake(proxy, server_ca):
    stranger = trustme.CA().issue_cert("eve@example.com", common_name="eve")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with handshake(proxy.port, "gw.example", client_context(server_ca, stranger)) as tls:
            tls.sendall(b"GET /plain HTTP/1.1\r\nHost: gw.example\r\n\r\n")
            assert tls.recv(1)  # TLS 1.3: the server's verdict arrives after the client's Finished


class ScopeApp:
    """Answers 204 and keeps the scope of every request."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def aclose(self) -> None:
        await asyncio.sleep(0)


def test_the_scope_carries_asgis_tls_extension(server_ca, ca_a):
    lookup = ServerContexts().lookup((certificate(server_ca, "gw.example"),), ca_a.cert_pem.bytes().decode())
    front = front_context(lambda: lookup)

    def server(app: ScopeApp) -> uvicorn.Server:
        return uvicorn.Server(uvicorn.Config(app, loop="uvloop", http=protocol_factory(ListenerState()),
                                             lifespan="off", log_level="warning",
                                             ssl_context_factory=lambda _config, _default: front))

    runner = UvicornThread(ScopeApp, server, "tls-scope")
    runner.start()
    try:
        alice = ca_a.issue_cert("alice@example.com", common_name="alice")
        assert https_call(runner.port, "gw.example", client_context(server_ca, alice), "GET", "/").status == 204
        assert https_call(runner.port, "gw.example", client_context(server_ca), "GET", "/").status == 204
    finally:
        runner.stop()
    assert runner.app is not None
    with_cert, without = (scope["extensions"]["tls"] for scope in runner.app.scopes)
    assert with_cert["client_cert_name"].startswith("CN=alice,")
    assert len(with_cert["client_cert_chain"]) == 1 and "BEGIN CERTIFICATE" in with_cert["client_cert_chain"][0]
    assert with_cert["tls_version"] == 0x0304
    assert with_cert["cipher_suite"] in (0x1301, 0x1302, 0x1303)
    assert without["client_cert_chain"] == [] and without["client_cert_name"] is None
    assert all(scope["scheme"] == "https" for scope in runner.app.scopes)
