"""The proxy listener end to end (uvicorn + ProxyApp + a real backend): what gets forwarded, both ways."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from protocols.http import parse_networks
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    routes = [
        route("api", "/api/{rest}", upstream.port),
        route("mapped", "/users/{id}/orders/{order}", upstream.port, internal_path="/v2/orders/{order}/user/{id}"),
        route("preserved", "/preserved", upstream.port, preserve_host=True),
        route("backend", "/b/{handler}", upstream.port, internal_path="/{handler}"),
        route("status", "/b/status/{code}", upstream.port, internal_path="/status/{code}"),
    ]
    with ProxyServer(routes) as server:
        yield server


def test_it_forwards_the_query_string_untouched(proxy, upstream):
    proxy.call("GET", "/api/echo?b=%20two&a=1&a=2")
    assert upstream.requests[0].target == "/api/echo?b=%20two&a=1&a=2"


def test_it_fills_the_internal_path_with_captured_parameters(proxy, upstream):
    proxy.call("GET", "/users/7/orders/99?x=1")
    assert upstream.requests[0].target == "/v2/orders/99/user/7?x=1"


def test_it_removes_dot_segments_before_matching_and_forwarding(proxy, upstream):
    proxy.call("GET", "/api/a/../%2e%2E/api/./echo")
    assert upstream.requests[0].target == "/api/echo"


def test_it_does_not_let_dot_segments_climb_out_of_a_route(proxy, upstream):
    reply = proxy.call("GET", "/api/%2e%2e/preserved/%2e%2e/admin")
    assert reply.status == 404
    assert upstream.requests == []


def test_it_keeps_repeated_request_fields_in_order(proxy, upstream):
    proxy.call("GET", "/api/echo", [("X-Foo", "first"), ("X-Bar", "between"), ("X-Foo", "second")])
    assert upstream.requests[0].header("x-foo") == ["first", "second"]


def test_it_keeps_repeated_response_fields_in_order(proxy):
    reply = proxy.call("GET", "/b/cookies")
    assert reply.header("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert reply.header("x-foo") == ["one", "two"]


def test_it_strips_hop_by_hop_request_fields(proxy, upstream):
    proxy.call("GET", "/api/echo", [
        ("Connection", "keep-alive, X-Secret"), ("X-Secret", "s"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
        ("Proxy-Authorization", "Basic eA=="), ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2c"),
        ("X-Kept", "yes"),
    ])
    names = {name.lower() for name, _ in upstream.requests[0].headers}
    assert "x-kept" in names
    assert not names & {"x-secret", "keep-alive", "te", "proxy-authorization", "proxy-connection", "upgrade"}


def test_it_strips_hop_by_hop_response_fields(proxy):
    reply = proxy.call("GET", "/b/hop")
    names = {name.lower() for name, _ in reply.headers}
    assert "x-kept" in names
    assert not names & {"x-secret", "keep-alive", "proxy-authenticate"}


def test_it_does_not_forward_expect(proxy, upstream):
    reply = proxy.call("POST", "/api/echo", [("Expect", "100-continue")], body=b"payload")
    assert reply.json()["body_length"] == 7
    assert upstream.requests[0].header("expect") == []


def test_it_sends_the_backend_address_as_host(proxy, upstream):
    proxy.call("GET", "/api/echo", [("Host", "public.example.com")])
    assert upstream.requests[0].header("host") == [f"127.0.0.1:{upstream.port}"]


def test_it_sends_the_client_host_when_the_route_preserves_it(proxy, upstream):
    proxy.call("GET", "/preserved", [("Host", "public.example.com")])
    assert upstream.requests[0].header("host") == ["public.example.com"]


def test_it_adds_forwarded_fields(proxy, upstream):
    proxy.call("GET", "/api/echo", [("Host", "public.example.com:8443")])
    seen = upstream.requests[0]
    assert seen.header("x-forwarded-for") == ["127.0.0.1"]
    assert seen.header("x-forwarded-proto") == ["http"]
    assert seen.header("x-forwarded-host") == ["public.example.com:8443"]


def test_it_appends_itself_to_via(proxy, upstream):
    proxy.call("GET", "/api/echo", [("Via", "1.0 edge")])
    assert upstream.requests[0].header("via") == ["1.0 edge, 1.1 rusta"]


def test_it_replaces_forwarded_for_from_an_untrusted_peer(proxy, upstream):
    proxy.call("GET", "/api/echo", [("X-Forwarded-For", "6.6.6.6")])
    assert upstream.requests[0].header("x-forwarded-for") == ["127.0.0.1"]


def test_it_appends_to_forwarded_for_from_a_trusted_proxy(upstream):
    with ProxyServer([route("api", "/api/{rest}", upstream.port)],
                     trusted_proxies=parse_networks(["127.0.0.0/8"])) as proxy:
        proxy.call("GET", "/api/echo", [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")])
    seen = upstream.requests[0]
    assert seen.header("x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    assert seen.header("x-forwarded-proto") == ["https"]


def test_it_generates_a_request_id_and_sends_it_both_ways(proxy, upstream):
    reply = proxy.call("GET", "/api/echo")
    (request_id,) = reply.header("x-request-id")
    assert upstream.requests[0].header("x-request-id") == [request_id]


def test_it_gives_each_request_its_own_id(proxy):
    first = proxy.call("GET", "/api/echo").header("x-request-id")
    second = proxy.call("GET", "/api/echo").header("x-request-id")
    assert first != second


def test_it_keeps_a_valid_client_request_id(proxy, upstream):
    reply = proxy.call("GET", "/api/echo", [("X-Request-ID", "trace-abc.123")])
    assert reply.header("x-request-id") == ["trace-abc.123"]
    assert upstream.requests[0].header("x-request-id") == ["trace-abc.123"]


@pytest.mark.parametrize("offered", ["has space", "x" * 201, "caf\u00e9"])
def test_it_replaces_an_unusable_client_request_id(proxy, offered):
    reply = proxy.call("GET", "/api/echo", [("X-Request-ID", offered.encode("utf-8").decode("latin-1"))])
    (request_id,) = reply.header("x-request-id")
    assert request_id != offered.encode("utf-8").decode("latin-1")
    assert 0 < len(request_id) <= 200


def test_it_answers_with_the_request_id_instead_of_the_backends(proxy):
    reply = proxy.call("GET", "/b/hop", [("X-Request-ID", "mine")])
    assert reply.header("x-request-id") == ["mine"]


def test_it_keeps_the_backends_content_length(proxy):
    reply = proxy.call("GET", "/api/echo")
    assert reply.header("content-length") == [str(len(reply.body))]
    assert reply.header("transfer-encoding") == []


def test_it_answers_head_with_the_length_and_no_body(proxy):
    get = proxy.call("GET", "/api/echo")
    head = proxy.call("HEAD", "/api/echo")
    assert head.status == 200
    assert head.body == b""
    assert int(head.header("content-length")[0]) > 0
    assert len(head.header("content-length")) == len(get.header("content-length")) == 1


def test_it_passes_no_content_through_without_a_body(proxy):
    reply = proxy.call("GET", "/b/status/204")
    assert (reply.status, reply.body) == (204, b"")


def test_it_sends_a_single_date_field(proxy):
    assert len(proxy.call("GET", "/api/echo").header("date")) == 1


def test_it_answers_health_paths_itself(proxy, upstream):
    reply = proxy.call("GET", "/health")
    assert reply.status == 200
    assert reply.json()["routes"] == 5
    assert upstream.requests == []
