"""What the client gets when the gateway cannot forward: documented JSON errors with the right status, never 500."""
from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import replace

import pytest

from protocols import balancing
from protocols.table import RouteSpec
from tests.support.proxy import ProxyServer, pool_route, route
from tests.support.upstream import BlackholeListener, UpstreamServer, refused_port


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    routes = [
        route("read-only", "/things/{id}", upstream.port, methods=("GET", "PUT")),
        route("slow", "/slow/{handler}", upstream.port, internal_path="/{handler}", read_timeout=0.2),
        route("backend", "/b/{handler}", upstream.port, internal_path="/{handler}"),
    ]
    with ProxyServer(routes) as server:
        yield server


def only_route(spec: RouteSpec) -> ProxyServer:
    return ProxyServer([spec])


def test_it_answers_404_in_json_when_no_route_matches(proxy):
    reply = proxy.call("GET", "/nowhere", [("X-Request-ID", "req-1")])
    assert reply.status == 404
    assert reply.json() == {"error": "No route matches GET /nowhere.", "type": "route_not_found",
                            "request_id": "req-1"}
    assert reply.header("content-type") == ["application/json"]


def test_it_echoes_the_request_id_on_errors(proxy):
    reply = proxy.call("GET", "/nowhere")
    assert reply.header("x-request-id") == [reply.json()["request_id"]]


def test_it_answers_405_with_allow_when_only_the_method_is_wrong(proxy):
    reply = proxy.call("DELETE", "/things/1")
    assert reply.status == 405
    assert reply.json()["type"] == "method_not_allowed"
    assert reply.header("allow") == ["GET, HEAD, PUT"]


def test_it_answers_502_when_the_backend_refuses_connections():
    port = refused_port()
    with only_route(route("down", "/down", port)) as proxy:
        reply = proxy.call("GET", "/down")
    assert reply.status == 502
    assert reply.json()["type"] == "upstream_connect_refused"
    assert f"127.0.0.1:{port}" in reply.json()["error"]


def unresolvable(spec: RouteSpec) -> RouteSpec:
    """The route with its backend at a name that never resolves (RFC 2606 reserves .invalid)."""
    return replace(spec, backends=(replace(spec.backends[0], host="nothing.invalid"),))


def test_it_answers_502_name_not_resolved_when_the_backend_host_does_not_resolve():
    with only_route(unresolvable(route("typo", "/typo", 8080))) as proxy:
        reply = proxy.call("GET", "/typo")
    assert reply.status == 502
    assert reply.json()["type"] == "upstream_name_not_resolved"
    assert "nothing.invalid:8080" in reply.json()["error"]
    assert "did not resolve" in reply.json()["error"]


def test_it_answers_502_when_the_backend_resets_the_connection(proxy):
    reply = proxy.call("GET", "/b/reset")
    assert reply.status == 502
    assert reply.json()["type"] == "upstream_reset"


def test_it_answers_502_when_the_backend_speaks_garbage(proxy):
    reply = proxy.call("GET", "/b/garbage")
    assert reply.status == 502
    assert reply.json()["type"] == "upstream_invalid_response"


def test_it_answers_504_when_connecting_takes_too_long():
    with BlackholeListener() as blackhole, only_route(
        route("blackhole", "/bh", blackhole.port, connect_timeout=0.2)
    ) as proxy:
        reply = proxy.call("GET", "/bh")
    assert reply.status == 504
    assert reply.json()["type"] == "upstream_connect_timeout"


def test_it_answers_504_when_the_backend_does_not_answer_in_time(proxy):
    reply = proxy.call("GET", "/slow/hang")
    assert reply.status == 504
    assert reply.json()["type"] == "upstream_timeout"


def test_it_answers_503_with_retry_after_when_a_route_has_no_backend():
    with only_route(RouteSpec(id=1, name="empty", external_path="/empty", methods=("GET",), backends=())) as proxy:
        reply = proxy.call("GET", "/empty")
    assert reply.status == 503
    assert reply.json()["type"] == "no_backend"
    assert reply.header("retry-after") == ["5"]


def test_it_answers_426_on_a_websocket_route_hit_without_upgrade(upstream):
    with only_route(route("ws", "/ws", upstream.port, protocol="websocket")) as proxy:
        reply = proxy.call("GET", "/ws")
    assert reply.status == 426
    assert reply.header("upgrade") == ["websocket"]
    assert upstream.requests == []


def test_it_answers_501_on_a_dns_route_hit_with_plain_http(upstream):
    # DNS over HTTPS has paths of its own (/dns-query); ftp routes are served by the FTP gateway.
    with only_route(route("other", "/other", upstream.port, protocol="dns")) as proxy:
        reply = proxy.call("GET", "/other")
    assert reply.status == 501
    assert reply.json()["type"] == "protocol_not_supported"


def test_it_answers_502_not_500_when_something_unexpected_breaks(upstream, monkeypatch, caplog):
    class Exploding(balancing.Balancer):
        def pick(self, route, client_ip):
            raise RuntimeError("boom")

    monkeypatch.setitem(balancing.STRATEGIES, "exploding", Exploding)
    # Two backends: a route with one has nothing to balance, so its balancer is never asked.
    with only_route(pool_route("bad", "/bad", [upstream.port] * 2, load_balancing_strategy="exploding")) as proxy:
        reply = proxy.call("GET", "/bad")
    assert reply.status == 502
    assert reply.json()["type"] == "gateway_error"
    assert "boom" in caplog.text


def test_it_cuts_the_response_short_when_the_backend_fails_mid_body(proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", "/b/reset-mid-body")
    response = conn.getresponse()
    assert response.status == 200  # the head was already on its way: no second head, no JSON error
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()
