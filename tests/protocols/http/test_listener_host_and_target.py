"""The proxy listener against hostile request lines and Host fields: raw bytes over loopback, a real backend that
records the exact head it receives (protocols/http/listener.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.proxy import ProxyServer, route
from tests.support.rawhttp import RawExchange, exchange, head_fields, send_refused, send_served
from tests.support.upstream import SeenRequest, UpstreamServer


@pytest.fixture(scope="module")
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    routes = [
        route("a", "/echo", upstream.port, internal_path="/served-by-a", match_host="a.example"),
        route("evil", "/echo", upstream.port, internal_path="/served-by-evil", match_host="evil.example"),
        route("any", "/any/{rest}", upstream.port),
        route("root", "/", upstream.port),
    ]
    with ProxyServer(routes) as server:
        yield server


def refused(proxy: ProxyServer, upstream: UpstreamServer, data: bytes, status: int, *kinds: str) -> RawExchange:
    return send_refused(proxy.port, upstream, data, status, *kinds)


def served(proxy: ProxyServer, upstream: UpstreamServer, data: bytes) -> SeenRequest:
    return send_served(proxy.port, upstream, data)


def assert_one_host(seen: SeenRequest) -> None:
    assert [name for name, _ in head_fields(seen.head)].count(b"host") == 1, seen.head


# Host

@pytest.mark.parametrize("data", [
    b"GET /any/x HTTP/1.1\r\n\r\n",
    b"GET /any/x HTTP/1.1\r\nX-Host: a.example\r\n\r\n",
    b"GET /any/x HTTP/1.1\r\nX-Forwarded-Host: a.example\r\n\r\n",
    b"POST /any/x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
    b"GET http://a.example/any/x HTTP/1.1\r\n\r\n",  # absolute-form does not excuse the missing field
])
def test_an_http11_request_without_host_is_refused(proxy, upstream, data):
    refused(proxy, upstream, data, 400, "invalid_host")


@pytest.mark.parametrize("data", [
    b"GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: evil.example\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nhost: a.example\r\nX-Other: 1\r\nHOST: evil.example\r\n\r\n",
    b"GET /echo HTTP/1.0\r\nHost: a.example\r\nHost: evil.example\r\n\r\n",
    b"GET http://a.example/echo HTTP/1.1\r\nHost: a.example\r\nHost: evil.example\r\n\r\n",
])
def test_a_request_with_two_host_fields_is_refused(proxy, upstream, data):
    refused(proxy, upstream, data, 400, "invalid_host")


@pytest.mark.parametrize("host", [
    b"a example",
    b"a.example/evil",
    b"a.example/",
    b"user@a.example",
    b"user:pw@a.example",
    b"a.example:80:80",
    b"a.example:port",
    b"a.example:123456",
    b"[::1",
    b"a.example?x",
    b"a.example#x",
    b"a.example\\evil",
    b"a.example%zz",
])
def test_an_invalid_host_value_is_refused(proxy, upstream, host):
    refused(proxy, upstream, b"GET /echo HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400, "invalid_host")


@pytest.mark.parametrize("host", [b"a.example", b"A.Example:8080", b"127.0.0.1:1", b"[::1]:443", b"a.example:"])
def test_a_valid_host_value_is_forwarded_as_x_forwarded_host(proxy, upstream, host):
    seen = served(proxy, upstream, b"GET /any/x HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert_one_host(seen)
    assert (b"x-forwarded-host", host) in head_fields(seen.head)


@pytest.mark.parametrize("data", [
    b"GET /any/x HTTP/1.0\r\n\r\n",
    b"GET /any/x HTTP/1.0\r\nX-Other: 1\r\n\r\n",
    b"POST /any/x HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
])
def test_an_http10_request_without_host_is_served(proxy, upstream, data):
    seen = served(proxy, upstream, data)
    assert seen.target == "/any/x"
    assert_one_host(seen)  # the backend's own authority
    assert b"x-forwarded-host" not in dict(head_fields(seen.head))


# Absolute-form

@pytest.mark.parametrize("target, authority, sent", [
    (b"http://a.example/echo", b"a.example", "/served-by-a"),
    (b"http://a.example:8080/echo?q=1", b"a.example:8080", "/served-by-a?q=1"),
    (b"https://a.example/echo", b"a.example", "/served-by-a"),
    (b"HTTP://A.EXAMPLE/echo", b"A.EXAMPLE", "/served-by-a"),
    (b"http://evil.example/echo", b"evil.example", "/served-by-evil"),
    (b"http://[::1]:8080/any/x", b"[::1]:8080", "/any/x"),
    (b"http://a.example", b"a.example", "/"),
    (b"http://a.example?x=1", b"a.example", "/?x=1"),
])
@pytest.mark.parametrize("host", [b"a.example", b"evil.example", b"other.example:81"])
def test_an_absolute_form_target_routes_by_its_authority_not_the_host_field(proxy, upstream, target, authority,
                                                                             sent, host):
    seen = served(proxy, upstream, b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert seen.target == sent
    assert_one_host(seen)
    assert [value for name, value in head_fields(seen.head) if name == b"x-forwarded-host"] == [authority]
    assert host == authority or host not in [value for _, value in head_fields(seen.head)]


def test_an_http10_absolute_form_target_without_host_routes_by_its_authority(proxy, upstream):
    seen = served(proxy, upstream, b"GET http://evil.example/echo HTTP/1.0\r\n\r\n")
    assert seen.target == "/served-by-evil"
    assert seen.header("x-forwarded-host") == ["evil.example"]


@pytest.mark.parametrize("target", [
    b"ftp://a.example/echo",
    b"ws://a.example/echo",
    b"file:///etc/passwd",
    b"http://user@a.example/echo",
    b"http://user:pw@a.example/echo",
    b"http://evil.example@a.example/echo",
    b"http:///echo",
    b"http://a.example:80x/echo",
    b"http://a.example/any/%zz",
    b"http://a.example/any/x#f",
])
def test_an_unusable_absolute_form_target_is_refused(proxy, upstream, target):
    refused(proxy, upstream, b"GET " + target + b" HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, "invalid_target")


@pytest.mark.parametrize("data", [
    b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"OPTIONS * HTTP/1.0\r\n\r\n",
])
def test_an_asterisk_form_target_is_refused(proxy, upstream, data):
    refused(proxy, upstream, data, 400, "invalid_target")


@pytest.mark.parametrize("data", [
    b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
    b"CONNECT evil.example:80 HTTP/1.0\r\n\r\n",
])
def test_connect_is_not_implemented(proxy, upstream, data):
    refused(proxy, upstream, data, 501, "method_not_implemented")


# Request line and version

@pytest.mark.parametrize("data", [
    b"GET /\r\n\r\n",
    b"GET /any/x\r\n\r\n",
    b"GET /any/x\r\nHost: a.example\r\n\r\n",
])
def test_a_request_line_without_a_version_is_refused(proxy, upstream, data):
    refused(proxy, upstream, data, 400, "invalid_request_line")


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/9.9", b"HTTP/0.1"])
def test_an_http_major_version_other_than_1_is_not_supported(proxy, upstream, version):
    refused(proxy, upstream, b"GET /any/x " + version + b"\r\nHost: a.example\r\n\r\n", 505,
            "http_version_not_supported")


@pytest.mark.parametrize("data", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the plain-text port
    b"GET /any/x HTTP/1.1\nHost: a.example\n\n",  # bare LF
    b"GET /any/x HTTP/1.1\r\nHost: a.example\r\n folded\r\n\r\n",  # obs-fold
    b"GET /any/x HTTP/1.1\r\nHost : a.example\r\n\r\n",  # white space before the colon
    b"GET /any/x HTTP/1.1\r\nHost: a.example\r\nNo colon here\r\n\r\n",
    b"GET /any/x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
    b"GET /any/x HTTP/1.1\r\nHost: a.example\r\nContent-Length: -1\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"G\x00T /any/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # a response where a request belongs
    b"GET /any/x HTTP/1.10\r\nHost: a.example\r\n\r\n",
    b"GET /any/x http/1.1\r\nHost: a.example\r\n\r\n",
    b"GET /any/x HTTP/1.1 extra\r\nHost: a.example\r\n\r\n",
    # llhttp also parses RTSP and ICE request lines; they reach routing as if they were HTTP.
])
def test_garbage_is_a_malformed_request(proxy, upstream, data):
    refused(proxy, upstream, data, 400, "malformed_request")


# llhttp parses RTSP and ICE request lines too; the listener serves only the ones that name HTTP.
@pytest.mark.parametrize("data", [
    [b"GET /any/x RTSP/1.0\r\nHost: a.example\r\n\r\n"],
    [b"GET /any/x RTSP/1.1\r\nHost: a.example\r\n\r\n"],
    [b"POST /any/x RTSP/1.0\r\nHost: a.example\r\nContent-Length: 2\r\n\r\nhi"],
    [b"OPTIONS /any/x RTSP/1.0\r\nHost: a.example\r\n\r\n"],
    [b"SOURCE /any/x ICE/1.0\r\nHost: a.example\r\n\r\n"],
    [b"GET /any/x RT", b"SP/1.0\r\nHost: a.example\r\n\r\n"],  # the token split across reads
    [b"GET /any/x ", b"R", b"T", b"S", b"P", b"/", b"1.0\r\nHost: a.example\r\n\r\n"],  # one byte a read
    [b"GET /any/SERVICE/ RTSP/1.0\r\nHost: a.example\r\n\r\n"],
])
def test_a_request_line_naming_another_protocol_is_refused(proxy, upstream, data):
    refused(proxy, upstream, data, 400, "invalid_request_line")


def test_a_pipelined_rtsp_line_behind_an_http_one_with_the_same_target_never_reaches_the_backend(proxy, upstream):
    # Both lines arrive in one read: the listener cannot tell which message named RTSP, so it refuses there.
    before = len(upstream.requests)
    result = exchange(proxy.port, b"GET /any/x HTTP/1.1\r\nHost: a.example\r\nX-Seq: 1\r\n\r\n"
                                  b"GET /any/x RTSP/1.0\r\nHost: a.example\r\nX-Seq: 2\r\n\r\n")
    assert result.closed
    assert result.responses[-1].status == 400
    assert result.responses[-1].json()["type"] == "invalid_request_line"
    assert all(seen.header("x-seq") == ["1"] for seen in upstream.requests[before:])


@pytest.mark.parametrize("target", [b"/any/SERVICE", b"/any/RTSP%2F1.0", b"/any/x?v=ICE/RTSP/"])
def test_a_target_or_field_that_merely_contains_rtsp_or_ice_is_served(proxy, upstream, target):
    seen = served(proxy, upstream, b"GET " + target + b" HTTP/1.1\r\nHost: a.example\r\nUser-Agent: RTSP/1.0\r\n\r\n")
    assert seen.target == target.decode()


@pytest.mark.parametrize("version", [b"HTTP/1.2", b"HTTP/1.9"])
def test_a_higher_http1_minor_version_is_served_as_http11(proxy, upstream, version):
    """RFC 9110 2.5: a minor version above the one implemented is processed as the highest implemented."""
    seen = served(proxy, upstream, b"GET /any/x " + version + b"\r\nHost: a.example\r\n\r\n")
    assert seen.head.startswith(b"GET /any/x HTTP/1.1\r\n")


# Targets

@pytest.mark.parametrize("target", [
    b"/any/a\\b",
    b"/any/a#frag",
    b"/any/a?x=1#frag",
    b"/any/a%zz",
    b"/any/a%",
    b"/any/a%2",
    b"/any/a%g0",
    b"/any/a%0g",
    b"/any/a?x=%zz",
    b"/any/a?x=%",
    b"/any/%00",
    b"/any/a%00b",
    b"/any/a?x=%00",
    b"/echo%00",
])
def test_an_invalid_target_is_refused_before_routing(proxy, upstream, target):
    refused(proxy, upstream, b"GET " + target + b" HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, "invalid_target")


@pytest.mark.parametrize("target", [b"/any/a%41b", b"/any/a%2520", b"/any/a?x=%7e&y=%C3%A9", b"/any/a?x=%25"])
def test_a_well_encoded_target_is_served(proxy, upstream, target):
    seen = served(proxy, upstream, b"GET " + target + b" HTTP/1.1\r\nHost: a.example\r\n\r\n")
    assert seen.target.startswith("/any/")
