"""The proxy's answers that depend on TLS: HTTPS redirects, HSTS only over TLS, client certificate refusals
access-logged."""
from __future__ import annotations

import io
import json

import pytest
import trustme

from protocols.http import AccessLog
from tests.support.proxy import ProxyServer, route
from tests.support.tls import certificate, client_context, https_call
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


def redirecting(upstream: UpstreamServer, **block: object):
    return route("secure", "/secure/{rest}", upstream.port, policies={"tls": {"redirect_http": True, **block}})


def test_plain_http_on_a_redirecting_route_gets_308_to_the_tls_listener(upstream):
    with ProxyServer([redirecting(upstream)], https_port=8443) as proxy:
        reply = proxy.call("GET", "/secure/page?a=1&b=%20", [("Host", "API.example.com:8080")])
    assert reply.status == 308
    assert reply.header("location") == ["https://api.example.com:8443/secure/page?a=1&b=%20"]
    assert reply.json()["type"] == "https_redirect"
    assert not any(request.target.startswith("/secure/page") for request in upstream.requests)


def test_the_redirect_leaves_out_port_443_and_uses_the_routes_status(upstream):
    with ProxyServer([redirecting(upstream, redirect_status=301)]) as proxy:
        reply = proxy.call("POST", "/secure/x", [("Host", "api.example.com")], body=b"")
    assert reply.status == 301
    assert reply.header("location") == ["https://api.example.com/secure/x"]


def test_a_request_a_trusted_proxy_says_came_over_https_is_not_redirected(upstream):
    with ProxyServer([redirecting(upstream)], trusted_proxies=_loopback()) as proxy:
        reply = proxy.call("GET", "/secure/x", [("Host", "api.example.com"), ("X-Forwarded-Proto", "https")])
    assert reply.status == 200


def test_a_redirecting_route_is_served_over_tls(ca, upstream):
    with ProxyServer([redirecting(upstream)], tls=True, certificates=(certificate(ca, "api.example"),)) as proxy:
        assert https_call(proxy.port, "api.example", client_context(ca), "GET", "/secure/x").status == 200


def test_hsts_is_sent_over_tls_only(ca, upstream):
    routes = [route("r", "/page", upstream.port)]
    with ProxyServer(routes) as plain:
        assert plain.call("GET", "/page").header("strict-transport-security") == []
    with ProxyServer(routes, tls=True, certificates=(certificate(ca, "api.example"),)) as secure:
        reply = https_call(secure.port, "api.example", client_context(ca), "GET", "/page")
    assert reply.header("strict-transport-security") == ["max-age=31536000"]


def test_a_refused_client_certificate_is_access_logged(ca, upstream):
    stream = io.StringIO()
    client_ca = trustme.CA()
    routes = [route("mtls", "/m", upstream.port, policies={"tls": {
        "client_certificate": "required", "client_ca": client_ca.cert_pem.bytes().decode()}})]
    log = AccessLog(stream)
    with ProxyServer(routes, log, tls=True, certificates=(certificate(ca, "api.example"),)) as proxy:
        assert https_call(proxy.port, "api.example", client_context(ca), "GET", "/m").status == 401
    log.flush()
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["status"], line["route"], line["error"]) == (401, "mtls", "client_certificate_required")


def _loopback():
    from protocols.http import parse_networks

    return parse_networks(["127.0.0.1/32"])
