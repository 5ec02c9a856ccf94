"""The request guards (CORS, security headers, size limits, IP rules) on real traffic: ProxyApp under uvicorn and
a real backend on loopback."""
from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from protocols.http import parse_networks
from protocols.table import RouteTable
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer

CORS = {"origins": ["https://app.example.com"], "exposed_headers": ["X-Total"]}


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def serve(upstream: UpstreamServer, global_blocks: dict[str, Any] | None = None, **options: Any) -> ProxyServer:
    routes = [
        route("cors", "/cors/{rest}", upstream.port, policies={"cors": CORS}),
        route("small", "/small/{rest}", upstream.port, methods=("POST", "PUT"), internal_path="/{rest}",
              policies={"limits": {"max_body_bytes": 1000, "max_header_count": 20, "max_url_length": 100}}),
        route("private", "/private/{rest}", upstream.port, policies={"ip_rules": {"allow": ["10.0.0.0/8"]}}),
        route("open", "/open/{rest}", upstream.port),
        route("dead", "/dead", 1),
    ]
    return ProxyServer(routes, settings=global_blocks, **options)


@pytest.fixture
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    with serve(upstream) as server:
        yield server


PREFLIGHT = [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST"),
             ("Access-Control-Request-Headers", "Content-Type")]


def test_a_preflight_is_answered_by_the_gateway_even_though_the_route_lacks_options(proxy, upstream):
    reply = proxy.call("OPTIONS", "/cors/items", PREFLIGHT)
    assert reply.status == 204
    assert reply.header("access-control-allow-origin") == ["https://app.example.com"]
    assert reply.header("access-control-allow-headers") == ["Content-Type"]
    assert reply.header("x-content-type-options") == ["nosniff"]
    assert upstream.requests == []


def test_a_preflight_for_a_method_the_route_does_not_serve_gets_the_routes_405(proxy, upstream):
    reply = proxy.call("OPTIONS", "/cors/items", [("Origin", "https://app.example.com"),
                                                  ("Access-Control-Request-Method", "DELETE")])
    assert reply.status == 405
    assert upstream.requests == []


def test_a_preflight_from_another_origin_is_refused_with_a_json_403(proxy, upstream):
    reply = proxy.call("OPTIONS", "/cors/items", [("Origin", "https://evil.test"),
                                                  ("Access-Control-Request-Method", "GET")])
    assert reply.status == 403
    assert reply.json()["type"] == "cors_rejected"
    assert reply.header("access-control-allow-origin") == []
    assert upstream.requests == []


def test_an_actual_request_from_an_allowed_origin_can_be_read_by_it(proxy):
    reply = proxy.call("GET", "/cors/echo", [("Origin", "https://app.example.com")])
    assert reply.status == 200
    assert reply.header("access-control-allow-origin") == ["https://app.example.com"]
    assert reply.header("access-control-expose-headers") == ["X-Total"]
    assert "Origin" in reply.header("vary")


def test_the_backends_own_cors_fields_are_replaced_on_a_cors_route(upstream):
    cors_route = route("cors", "/respond", upstream.port, policies={"cors": CORS})
    with ProxyServer([cors_route]) as proxy:
        reply = proxy.call("GET", "/respond?header=Access-Control-Allow-Origin:*", [("Origin", "https://evil.test")])
        assert reply.status == 200
        assert reply.header("access-control-allow-origin") == []


def test_a_route_without_cors_passes_preflights_on_as_ordinary_requests(proxy):
    reply = proxy.call("OPTIONS", "/open/x", [("Origin", "https://a.test"), ("Access-Control-Request-Method", "GET")])
    assert reply.status == 405


def test_every_answer_carries_the_default_security_headers_but_hsts_only_over_https(proxy):
    reply = proxy.call("GET", "/open/echo")
    assert reply.header("x-frame-options") == ["DENY"]
    assert reply.header("referrer-policy") == ["no-referrer"]
    assert reply.header("strict-transport-security") == []


def test_the_backends_own_frame_options_are_kept(upstream):
    with ProxyServer([route("raw", "/respond", upstream.port)]) as proxy:
        reply = proxy.call("GET", "/respond?header=X-Frame-Options:SAMEORIGIN")
        assert reply.header("x-frame-options") == ["SAMEORIGIN"]


def test_hsts_is_sent_when_a_trusted_proxy_says_the_client_used_https(upstream):
    with serve(upstream, trusted_proxies=parse_networks(["127.0.0.1"])) as proxy:
        reply = proxy.call("GET", "/open/echo", [("X-Forwarded-Proto", "https")])
        assert reply.header("strict-transport-security") == ["max-age=31536000"]


def test_an_untrusted_peer_cannot_ask_for_hsts(proxy):
    assert proxy.call("GET", "/open/echo", [("X-Forwarded-Proto", "https")]).header(
        "strict-transport-security") == []


def test_gateway_errors_carry_the_security_headers_too(proxy):
    for target in ("/nowhere", "/dead"):
        reply = proxy.call("GET", target)
        assert reply.status in (404, 502)
        assert reply.header("x-content-type-options") == ["nosniff"]


def test_a_body_declared_over_the_limit_is_413_and_never_reaches_the_backend(proxy, upstream):
    reply = proxy.call("POST", "/small/upload", body=b"x" * 1001)
    assert reply.status == 413
    assert reply.json()["type"] == "payload_too_large"
    assert upstream.requests == []


def test_a_body_at_the_limit_goes_through(proxy):
    reply = proxy.call("POST", "/small/upload", body=b"x" * 1000)
    assert reply.status == 200
    assert reply.json()["length"] == 1000


def test_a_chunked_body_is_cut_off_with_413_once_it_passes_the_limit(proxy):
    conn = proxy.connection()
    try:
        conn.putrequest("POST", "/small/upload")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        # Past the limit, then stop sending and read: writing on after the gateway answered and closed would race
        # its close (a reset can reach the client before it reads the 413).
        for _ in range(4):
            conn.send(b"%x\r\n%s\r\n" % (300, b"y" * 300))
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["type"] == "payload_too_large"
    finally:
        conn.close()


def test_too_many_header_fields_are_431(proxy, upstream):
    reply = proxy.call("POST", "/small/x", [(f"X-N{i}", "1") for i in range(25)], body=b"")
    assert reply.status == 431
    assert upstream.requests == []


def test_a_target_over_the_limit_is_414(proxy):
    assert proxy.call("POST", "/small/" + "a" * 100, body=b"").status == 414


def test_an_address_outside_the_allow_list_gets_403(proxy, upstream):
    reply = proxy.call("GET", "/private/echo")
    assert reply.status == 403
    assert reply.json()["type"] == "client_forbidden"
    assert upstream.requests == []


def test_the_allow_list_judges_the_client_a_trusted_proxy_names(upstream):
    with serve(upstream, trusted_proxies=parse_networks(["127.0.0.1"])) as proxy:
        assert proxy.call("GET", "/private/echo", [("X-Forwarded-For", "10.1.2.3")]).status == 200
        assert proxy.call("GET", "/private/echo", [("X-Forwarded-For", "192.0.2.1")]).status == 403


def test_an_untrusted_peer_cannot_claim_an_allowed_address(proxy):
    assert proxy.call("GET", "/private/echo", [("X-Forwarded-For", "10.1.2.3")]).status == 403


def test_global_blocks_guard_routes_without_their_own(upstream):
    with serve(upstream, {"ip_rules": {"deny": ["127.0.0.0/8"]}}) as proxy:
        assert proxy.call("GET", "/open/echo").status == 403
        # The route's own block replaces the global one.
        assert proxy.call("GET", "/private/echo").status == 403
        assert proxy.call("GET", "/nowhere").status == 403


def test_a_route_whose_guards_do_not_compile_answers_503_rather_than_run_unguarded(upstream):
    with ProxyServer([route("bad", "/bad", upstream.port, policies={"ip_rules": {"alow": ["x"]}})]) as proxy:
        reply = proxy.call("GET", "/bad")
        assert reply.status == 503
        assert reply.json()["type"] == "route_misconfigured"
        assert upstream.requests == []


def test_the_request_id_of_a_refusal_is_the_clients(proxy):
    reply = proxy.call("GET", "/private/echo", [("X-Request-ID", "abc-123")])
    assert reply.header("x-request-id") == ["abc-123"]
    assert reply.json()["request_id"] == "abc-123"


def test_keep_alive_connections_serve_guarded_requests_in_a_row(proxy):
    conn: http.client.HTTPConnection = proxy.connection()
    try:
        for _ in range(3):
            conn.request("GET", "/open/echo")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()


def test_the_live_tables_gateway_wide_blocks_apply_and_follow_a_reload(upstream):
    routes = [route("open", "/open/{rest}", upstream.port)]
    with ProxyServer(routes) as proxy:
        assert proxy.call("GET", "/open/echo").status == 200
        proxy.state.install(RouteTable(routes, version=2, settings={"ip_rules": {"deny": ["127.0.0.1"]}}))
        assert proxy.call("GET", "/open/echo").status == 403
        proxy.state.install(RouteTable(routes, version=3, settings={}))
        assert proxy.call("GET", "/open/echo").status == 200


def test_cached_and_compressed_answers_carry_the_guard_fields_exactly_once(upstream):
    shaped = route("shaped", "/respond", upstream.port,
                   policies={"cache": {"ttl_s": 60}, "compression": {"enabled": True}, "cors": CORS})
    with ProxyServer([shaped]) as proxy:
        for expected in ("MISS", "HIT"):
            reply = proxy.call("GET", "/respond?body=x", [("Origin", "https://app.example.com")])
            assert reply.header("x-cache") == [expected]
            assert reply.header("x-frame-options") == ["DENY"]
            assert reply.header("access-control-allow-origin") == ["https://app.example.com"]
