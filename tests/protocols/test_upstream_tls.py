"""Upstream TLS per backend (BackendSpec's tls_ca, tls_server_name, tls_verify) against an HTTPS backend on loopback
whose certificate a test CA signed."""
from __future__ import annotations

import ssl

import pytest
import trustme

from protocols.table import BackendSpec, RouteSpec
from protocols.upstream import UpstreamClient
from tests.support.proxy import ProxyServer
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def backend(ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("backend.internal").configure_cert(context)  # not 127.0.0.1: the name must be given
    with UpstreamServer(ssl_context=context) as server:
        yield server


def https_route(port: int, **tls: object) -> RouteSpec:
    spec = BackendSpec(id=1, scheme="https", host="127.0.0.1", port=port, **tls)  # type: ignore[arg-type]
    return RouteSpec(id=1, name="tls", external_path="/x", methods=("GET",), backends=(spec,))


def test_a_backend_verified_with_its_own_ca_and_server_name_is_served(ca, backend):
    route = https_route(backend.port, tls_ca=ca.cert_pem.bytes().decode(), tls_server_name="backend.internal")
    with ProxyServer([route]) as proxy:
        assert proxy.call("GET", "/x").status == 200
    assert backend.requests[-1].header("host") == [f"127.0.0.1:{backend.port}"]  # Host stays the address


def test_a_backend_whose_certificate_another_ca_signed_is_a_502_naming_tls(backend):
    route = https_route(backend.port, tls_ca=trustme.CA().cert_pem.bytes().decode(),
                        tls_server_name="backend.internal")
    with ProxyServer([route]) as proxy:
        reply = proxy.call("GET", "/x")
    assert reply.status == 502
    assert reply.json()["type"] == "upstream_connect_refused"
    assert "TLS handshake failed (CERTIFICATE_VERIFY_FAILED)" in reply.json()["error"]


def test_a_name_the_certificate_does_not_carry_is_a_502(ca, backend):
    route = https_route(backend.port, tls_ca=ca.cert_pem.bytes().decode())  # verified as 127.0.0.1
    with ProxyServer([route]) as proxy:
        reply = proxy.call("GET", "/x")
    assert reply.status == 502
    assert "TLS" in reply.json()["error"]


def test_verification_off_accepts_any_certificate(backend):
    with ProxyServer([https_route(backend.port, tls_verify=False)]) as proxy:
        assert proxy.call("GET", "/x").status == 200


def test_verification_stays_on_by_default_with_the_systems_trust(backend):
    with ProxyServer([https_route(backend.port, tls_server_name="backend.internal")]) as proxy:
        assert proxy.call("GET", "/x").status == 502


def test_one_context_per_distinct_option_set(ca):
    client = UpstreamClient()
    bundle = ca.cert_pem.bytes().decode()
    first = BackendSpec(id=1, scheme="https", host="a", port=443, tls_ca=bundle)
    second = BackendSpec(id=2, scheme="https", host="b", port=443, tls_ca=bundle, tls_server_name="b.internal")
    unverified = BackendSpec(id=3, scheme="https", host="c", port=443, tls_ca=bundle, tls_verify=False)
    assert client.tls_context(first) is client.tls_context(second)
    assert client.tls_context(unverified) is not client.tls_context(first)
    assert client.tls_context(unverified).verify_mode == ssl.CERT_NONE
    assert client.tls_context(first).verify_mode == ssl.CERT_REQUIRED and client.tls_context(first).check_hostname
