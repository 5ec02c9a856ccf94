"""The proxy listener against hostile framing and header sections: trailers, transfer codings, underscore field
names, padded values, pipelined refusals, and the access-log line of a refusal (protocols/http/listener.py)."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from protocols.http import AccessLog
from protocols.http.listener import ListenerLimits
from protocols.table import RouteSpec
from tests.support.proxy import ProxyServer, route
from tests.support.rawhttp import RawExchange, assert_refused, exchange, head_fields, send_refused, send_served
from tests.support.upstream import SeenRequest, UpstreamServer


def routes(port: int) -> list[RouteSpec]:
    return [
        route("a", "/echo", port, internal_path="/served-by-a", match_host="a.example"),
        route("evil", "/echo", port, internal_path="/served-by-evil", match_host="evil.example"),
        route("any", "/any/{rest}", port),
        route("slow", "/slow", port),
    ]


# One gateway per underscore_headers setting for the module (tests count what the backend received before and
# after); "drop" runs on the default limits, since it is the default.
@pytest.fixture(scope="module")
def gateways(upstream: UpstreamServer) -> Iterator[dict[str, ProxyServer]]:
    with ExitStack() as stack:
        yield {
            "drop": stack.enter_context(ProxyServer(routes(upstream.port))),
            "reject": stack.enter_context(ProxyServer(routes(upstream.port),
                                                      listener=ListenerLimits(underscore_headers="reject"))),
            "allow": stack.enter_context(ProxyServer(routes(upstream.port),
                                                     listener=ListenerLimits(underscore_headers="allow"))),
        }


@pytest.fixture
def proxy(gateways: dict[str, ProxyServer]) -> ProxyServer:
    return gateways["drop"]


def refused(proxy: ProxyServer, upstream: UpstreamServer, data: bytes, status: int, *kinds: str) -> RawExchange:
    return send_refused(proxy.port, upstream, data, status, *kinds)


def served(proxy: ProxyServer, upstream: UpstreamServer, data: bytes) -> SeenRequest:
    return send_served(proxy.port, upstream, data)


def names(seen: SeenRequest) -> list[bytes]:
    return [name for name, _ in head_fields(seen.head)]


def chunked_post(host: bytes, trailer: bytes, announce: bytes = b"") -> bytes:
    return (b"POST /echo HTTP/1.1\r\nHost: " + host + b"\r\n" + announce + b"Transfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n" + trailer + b"\r\n\r\n")


# Trailers

# Framing fields in a trailer (Content-Length, Transfer-Encoding) are refused instead: see the test below.
TRAILERS = [
    b"Host: evil.example",
    b"host: evil.example",
    b"X-Forwarded-Host: evil.example",
    b"X-Forwarded-For: 6.6.6.6",
    b"Authorization: Bearer evil-token",
    b"Proxy-Authorization: Basic ZXZpbA==",
    b"Cookie: session=evil",
    b"X_Evil_Underscore: evil",
    b"Host: evil.example\r\nX-Forwarded-For: 6.6.6.6\r\nAuthorization: Bearer evil-token\r\nCookie: a=evil",
]


@pytest.mark.parametrize("announce", [b"", b"Trailer: Host, X-Forwarded-For, Authorization\r\n"])
@pytest.mark.parametrize("trailer", TRAILERS)
def test_trailer_fields_never_reach_the_backend_nor_change_the_route(proxy, upstream, trailer, announce):
    seen = served(proxy, upstream, chunked_post(b"a.example", trailer, announce))
    assert seen.target == "/served-by-a"
    assert bytes(seen.body) == b"hello world"
    assert seen.header("x-forwarded-host") == ["a.example"]
    assert seen.header("x-forwarded-for") == ["127.0.0.1"]
    assert names(seen).count(b"host") == 1
    # (Markers that no random id can hold: the request id and traceparent are hex.)
    for leaked in (b"evil", b"6.6.6.6", b"gzip", b"ZXZpbA"):
        assert leaked not in seen.head
    assert not {b"authorization", b"proxy-authorization", b"cookie"} & set(names(seen))


@pytest.mark.parametrize("trailer", [b"Content-Length: 9999", b"Transfer-Encoding: gzip", b"Content-Length: 0",
                                     b"Transfer-Encoding: chunked"])
def test_a_framing_field_in_a_trailer_refuses_the_request(proxy, upstream, trailer):
    """RFC 9110 6.5.1: framing fields cannot be trailers; the message is malformed (the README says so)."""
    before = len(upstream.requests)
    result = exchange(proxy.port, chunked_post(b"a.example", b"Host: evil.example\r\n" + trailer))
    assert result.response.status == 400, result.data
    assert result.response.json()["type"] == "malformed_request"
    assert result.closed
    for seen in upstream.requests[before:]:  # the head may have gone ahead of the body; the body never completed
        assert seen.target == "/served-by-a"
        assert b"evil" not in seen.head and trailer not in seen.head


def test_a_host_trailer_does_not_move_a_request_to_another_host_route(proxy, upstream):
    seen = served(proxy, upstream, chunked_post(b"evil.example", b"Host: a.example"))
    assert seen.target == "/served-by-evil"
    assert seen.header("x-forwarded-host") == ["evil.example"]


def test_a_trailer_does_not_leak_into_the_next_request_on_the_connection(proxy, upstream):
    before = len(upstream.requests)
    data = (chunked_post(b"a.example", b"Host: evil.example\r\nX-Forwarded-For: 6.6.6.6")
            + b"GET /echo HTTP/1.1\r\nHost: a.example\r\n\r\n")
    result = exchange(proxy.port, data, responses=2)
    assert [response.status for response in result.responses] == [200, 200]
    assert len(upstream.requests) == before + 2
    for seen in upstream.requests[-2:]:
        assert seen.target == "/served-by-a"
        assert seen.header("x-forwarded-host") == ["a.example"]
        assert seen.header("x-forwarded-for") == ["127.0.0.1"]


def test_an_underscore_trailer_is_dropped_even_where_underscore_fields_are_refused(gateways, upstream):
    seen = served(gateways["reject"], upstream, chunked_post(b"a.example", b"X_Evil: evil"))
    assert b"evil" not in seen.head


# Transfer-Encoding

@pytest.mark.parametrize("codings", [
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: deflate, chunked",
    b"Transfer-Encoding: compress,chunked",
    b"Transfer-Encoding: GZIP , Chunked",
    b"Transfer-Encoding: gzip,\tchunked",
    b"Transfer-Encoding: x-gzip, chunked",
    b"Transfer-Encoding: identity, chunked",
    b"Transfer-Encoding: br, chunked",
    b"Transfer-Encoding: gzip, deflate, chunked",
    b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
])
def test_a_transfer_coding_other_than_chunked_is_not_implemented(proxy, upstream, codings):
    data = b"POST /any/x HTTP/1.1\r\nHost: a.example\r\n" + codings + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    refused(proxy, upstream, data, 501, "transfer_coding_not_implemented")


@pytest.mark.parametrize("head", [
    b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, gzip\r\n",
    b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, chunked\r\n",
    b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip\r\n",
    b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    b"POST /any/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n",
    b"POST /any/x HTTP/1.0\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n",
])
def test_chunked_not_last_repeated_or_on_http10_is_invalid_framing(proxy, upstream, head):
    refused(proxy, upstream, head + b"\r\n5\r\nhello\r\n0\r\n\r\n", 400, "invalid_framing", "malformed_request")


@pytest.mark.parametrize("codings", [b"chunked", b"Chunked", b"CHUNKED", b"chunked  ", b"  chunked"])
def test_chunked_alone_in_any_case_is_served(proxy, upstream, codings):
    data = (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: " + codings + b"\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n")
    seen = served(proxy, upstream, data)
    assert bytes(seen.body) == b"hello"


# Underscore field names

UNDERSCORED = [
    (b"X_Forwarded_For", b"6.6.6.6"),
    (b"X_Real_IP", b"6.6.6.6"),
    (b"Remote_User", b"admin"),
    (b"X-Auth_User", b"admin"),
    (b"_", b"admin"),
    (b"Transfer_Encoding", b"gzip"),
]


@pytest.mark.parametrize("name, value", UNDERSCORED)
def test_an_underscore_field_is_dropped_by_default(proxy, upstream, name, value):
    seen = served(proxy, upstream, b"GET /any/x HTTP/1.1\r\nHost: a.example\r\n" + name + b": " + value
                  + b"\r\nX-Kept: yes\r\n\r\n")
    assert not [field for field in names(seen) if b"_" in field]
    assert value not in seen.head
    assert seen.header("x-kept") == ["yes"]
    assert seen.header("x-forwarded-for") == ["127.0.0.1"]


@pytest.mark.parametrize("name, value", UNDERSCORED)
def test_an_underscore_field_is_refused_when_configured_to(gateways, upstream, name, value):
    data = b"GET /any/x HTTP/1.1\r\nHost: a.example\r\n" + name + b": " + value + b"\r\n\r\n"
    body = assert_refused(exchange(gateways["reject"].port, data), 400, "invalid_header_name")
    assert name.lower().decode() in body["error"]


def test_a_refused_underscore_field_reaches_nothing(gateways, upstream):
    refused(gateways["reject"], upstream, b"GET /any/x HTTP/1.1\r\nHost: a.example\r\nRemote_User: admin\r\n\r\n",
            400, "invalid_header_name")


@pytest.mark.parametrize("name, value", [(b"X_Custom", b"1"), (b"Remote_User", b"admin"), (b"x_a_b", b"c")])
def test_an_underscore_field_is_forwarded_when_allowed(gateways, upstream, name, value):
    seen = served(gateways["allow"], upstream, b"GET /any/x HTTP/1.1\r\nHost: a.example\r\n" + name + b": "
                  + value + b"\r\n\r\n")
    assert (name.lower(), value) in head_fields(seen.head)


# Field values

@pytest.mark.parametrize("sent, forwarded", [
    (b"value   ", b"value"),
    (b"value\t", b"value"),
    (b"value \t \t ", b"value"),
    (b"a b  ", b"a b"),
    (b"a\tb\t", b"a\tb"),
    (b"  lead  ", b"lead"),
])
def test_trailing_white_space_is_trimmed_before_forwarding(proxy, upstream, sent, forwarded):
    seen = served(proxy, upstream, b"GET /any/x HTTP/1.1\r\nHost: a.example  \r\nX-Pad: " + sent
                  + b"\r\nX-Pad: " + sent + b"\r\n\r\n")
    assert [value for name, value in head_fields(seen.head) if name == b"x-pad"] == [forwarded, forwarded]
    assert b" \r\n" not in seen.head and b"\t\r\n" not in seen.head
    assert seen.header("x-forwarded-host") == ["a.example"]


def test_a_padded_host_still_routes_by_its_value(proxy, upstream):
    seen = served(proxy, upstream, b"GET /echo HTTP/1.1\r\nHost: evil.example \t \r\n\r\n")
    assert seen.target == "/served-by-evil"


# Pipelined refusals

PIPELINED_REFUSALS = [
    (b"GET /any/%zz HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, "invalid_target"),
    (b"GET /any/x HTTP/1.1\r\n\r\n", 400, "invalid_host"),
    (b"GET /any/x HTTP/2.0\r\nHost: a.example\r\n\r\n", 505, "http_version_not_supported"),
    (b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501, "method_not_implemented"),
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
     "transfer_coding_not_implemented"),
    (b"GET /any/x HTTP/1.1\r\nHost: a.example\r\nBad Name: 1\r\n\r\n", 400, "malformed_request"),
]


@pytest.mark.parametrize("bad, status, kind", PIPELINED_REFUSALS)
def test_a_pipelined_refusal_comes_after_the_answers_before_it(proxy, upstream, bad, status, kind):
    before = len(upstream.requests)
    data = (b"GET /slow?ms=300 HTTP/1.1\r\nHost: a.example\r\n\r\n"
            b"POST /any/first HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\n\r\nhi"
            + bad + b"GET /any/after HTTP/1.1\r\nHost: a.example\r\n\r\n")
    result = exchange(proxy.port, data)
    assert result.closed
    assert [response.status for response in result.responses] == [200, 200, status], result.data
    assert json.loads(result.responses[0].body)["path"] == "/slow"
    assert json.loads(result.responses[1].body)["path"] == "/any/first"
    refusal = result.responses[2]
    assert refusal.json()["type"] == kind
    assert refusal.header("connection") == ["close"]
    assert [seen.target for seen in upstream.requests[before:]] == ["/slow?ms=300", "/any/first"]


# The access log

@pytest.mark.parametrize("data, status, kind", PIPELINED_REFUSALS + [
    (b"GET /any/x HTTP/1.1\r\nHost: a.example\r\nRemote_User: admin\r\n\r\n", 400, "invalid_header_name"),
    (b"GET /\r\n\r\n", 400, "invalid_request_line"),
])
def test_a_refusal_has_an_access_log_line_with_its_status_and_type(upstream, data, status, kind):
    stream = io.StringIO()
    log = AccessLog(stream=stream)
    with ProxyServer(routes(upstream.port), access_log=log,
                     listener=ListenerLimits(underscore_headers="reject")) as proxy:
        body = assert_refused(exchange(proxy.port, data), status, kind)
    log.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line["request_id"] == body["request_id"]]
    assert len(mine) == 1, lines
    assert mine[0]["status"] == status
    assert mine[0]["error"] == kind
    assert mine[0]["client"] == "127.0.0.1"
