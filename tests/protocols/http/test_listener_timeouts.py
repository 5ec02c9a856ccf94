"""The proxy listener against slow and greedy clients: head and body time limits, and the per-client connection
cap (protocols/http/listener.py). Limits are small and bounds generous: no test relies on a quiet machine."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from protocols.http import parse_networks
from protocols.http.listener import ListenerLimits
from tests.support.proxy import ProxyServer, route
from tests.support.rawhttp import RawConnection, RawExchange, assert_refused, exchange
from tests.support.upstream import UpstreamServer

LIMIT = 0.5  # header_timeout and body_timeout, seconds
BOUND = 5.0  # what "soon" means in these tests, seconds: ten times the limit
GET = b"GET /any/x HTTP/1.1\r\nHost: a.example\r\n\r\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    limits = ListenerLimits(header_timeout=LIMIT, body_timeout=LIMIT)
    with ProxyServer([route("any", "/any/{rest}", upstream.port)], listener=limits) as server:
        yield server


def capped(upstream: UpstreamServer, **limits: object) -> ProxyServer:
    return ProxyServer([route("any", "/any/{rest}", upstream.port)],
                       listener=ListenerLimits(max_connections_per_client=3, **limits))  # type: ignore[arg-type]


def drip(conn: RawConnection, data: bytes, gap: float, deadline: float = BOUND) -> RawExchange:
    """Send `data` a byte every `gap` seconds, stopping early when the server answers or closes; then read until
    it closes (within `deadline` seconds of the start)."""
    for byte in data:
        if conn.readable(gap) or not conn.send(bytes([byte])):
            break
        if time.monotonic() - conn.started > deadline:
            break
    return conn.read(timeout=max(0.0, deadline - (time.monotonic() - conn.started)))


# The head

@pytest.mark.parametrize("data", [
    GET,  # the request line itself crawls
    b"GET /any/x HTTP/1.1\r\nHost: a.example\r\n" + b"X-Slow: " + b"a" * 40 + b"\r\n\r\n",
    b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n" + b"X-Slow: 1\r\n" * 10 + b"\r\nhello",
])
def test_a_head_that_crawls_gets_408_and_the_connection_closes(proxy, upstream, data):
    before = len(upstream.requests)
    with RawConnection(proxy.port) as conn:
        result = drip(conn, data, 0.2)
    assert_refused(result, 408, "request_header_timeout")
    assert result.elapsed < BOUND
    assert len(upstream.requests) == before


@pytest.mark.parametrize("partial", [b"G", b"GET /any/x HTTP/1.1\r\n", b"GET /any/x HTTP/1.1\r\nHost: a.example\r\n"])
def test_a_head_that_stops_gets_408_and_the_connection_closes(proxy, upstream, partial):
    before = len(upstream.requests)
    result = exchange(proxy.port, partial, timeout=BOUND)
    assert_refused(result, 408, "request_header_timeout")
    assert result.elapsed < BOUND
    assert len(upstream.requests) == before


def test_a_second_head_that_crawls_on_a_kept_alive_connection_gets_408(proxy, upstream):
    with RawConnection(proxy.port) as conn:
        conn.send(GET)
        first = conn.read(responses=1, timeout=BOUND)
        assert first.response.status == 200
        conn.received = b""
        started = time.monotonic()
        result = drip(conn, GET, 0.2, deadline=time.monotonic() - conn.started + BOUND)
    assert_refused(result, 408, "request_header_timeout")
    assert time.monotonic() - started < BOUND


def test_a_connection_that_never_sends_a_byte_is_closed_without_an_answer(proxy):
    with RawConnection(proxy.port) as conn:
        result = conn.read(timeout=BOUND)
    assert result.closed
    assert result.data == b""
    assert result.elapsed < BOUND


# Keep-alive

def test_a_kept_alive_connection_left_idle_past_the_keep_alive_timeout_is_closed(upstream):
    with ProxyServer([route("any", "/any/{rest}", upstream.port)], keep_alive=LIMIT) as proxy:
        with RawConnection(proxy.port) as conn:
            conn.send(GET)
            assert conn.read(responses=1, timeout=BOUND).response.status == 200
            conn.received = b""
            started = time.monotonic()
            result = conn.read(timeout=BOUND)
    assert result.closed
    assert result.data == b""
    assert time.monotonic() - started < BOUND


def test_a_connection_asked_again_within_the_keep_alive_timeout_stays_open(upstream):
    # Requests every 0.1 s for three times the keep-alive timeout, all on one connection.
    with ProxyServer([route("any", "/any/{rest}", upstream.port)], keep_alive=1.0) as proxy:
        with RawConnection(proxy.port) as conn:
            for _ in range(30):
                time.sleep(0.1)
                assert conn.send(GET)
                result = conn.read(responses=1, timeout=BOUND)
                assert result.response.status == 200
                assert not result.closed
                conn.received = b""


# The body

@pytest.mark.parametrize("head, sent", [
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100\r\n\r\n", b""),
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100\r\n\r\n", b"0123456789"),
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n", b""),
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n", b"a\r\n01234"),
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n", b"5\r\nhello\r\n"),
])
def test_a_body_that_stalls_gets_408_and_the_connection_closes(proxy, upstream, head, sent):
    before = len(upstream.requests)
    result = exchange(proxy.port, head + sent, timeout=BOUND)
    assert_refused(result, 408, "request_body_timeout")
    assert result.elapsed < BOUND
    # The backend may have seen the head and the bytes that came, never a complete request.
    for seen in upstream.requests[before:]:
        assert len(seen.body) < 100
        assert not seen.header("content-length") or int(seen.header("content-length")[0]) != len(seen.body)


@pytest.mark.parametrize("head, body, framed", [
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 12\r\n\r\n", b"hello, world", b"hello, world"),
    (b"POST /any/x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n", b"hello, world",
     b"c\r\nhello, world\r\n0\r\n\r\n"),
])
def test_a_slow_but_steady_body_is_not_cut(proxy, upstream, head, body, framed):
    # A byte every 0.1 s: the body takes several body_timeouts in all, but never stalls for one.
    before = len(upstream.requests)
    with RawConnection(proxy.port) as conn:
        conn.send(head)
        for byte in framed:
            time.sleep(0.1)
            assert conn.send(bytes([byte]))
        result = conn.read(responses=1, timeout=BOUND)
    assert result.response.status == 200, result.data
    assert result.response.json()["body_length"] == len(body)
    assert [bytes(seen.body) for seen in upstream.requests[before:]] == [body]


# Connections per client

def open_idle(port: int, count: int) -> list[RawConnection]:
    conns = [RawConnection(port) for _ in range(count)]
    for conn in conns:
        assert conn.still_open(0.05), conn.exchange()
    return conns


def test_the_connection_over_the_cap_gets_429_and_is_closed(upstream):
    with capped(upstream) as proxy, ExitStack() as stack:
        held = [stack.enter_context(conn) for conn in open_idle(proxy.port, 3)]
        with RawConnection(proxy.port) as over:
            result = over.read(timeout=BOUND)
        assert_refused(result, 429, "too_many_connections")
        for conn in held:  # the three within the cap are served as usual
            conn.send(GET)
            assert conn.read(responses=1, timeout=BOUND).response.status == 200


def test_a_request_on_the_connection_over_the_cap_reaches_nothing(upstream):
    with capped(upstream) as proxy, ExitStack() as stack:
        for conn in open_idle(proxy.port, 3):
            stack.enter_context(conn)
        before = len(upstream.requests)
        result = exchange(proxy.port, GET, timeout=BOUND)
        assert_refused(result, 429, "too_many_connections")
        assert len(upstream.requests) == before


def test_closing_a_connection_makes_room_for_a_new_one(upstream):
    with capped(upstream) as proxy, ExitStack() as stack:
        held = [stack.enter_context(conn) for conn in open_idle(proxy.port, 3)]
        assert_refused(exchange(proxy.port, GET, timeout=BOUND), 429, "too_many_connections")
        held[0].close()
        # The gateway learns of the close asynchronously: retry, within the bound, until the new one is served.
        deadline = time.monotonic() + BOUND
        while True:
            result = exchange(proxy.port, GET, responses=1, timeout=BOUND)
            if result.responses and result.responses[0].status == 200 or time.monotonic() > deadline:
                break
            assert_refused(result, 429, "too_many_connections")
            time.sleep(0.05)
        assert result.response.status == 200


def test_the_cap_counts_each_client_address_apart(upstream):
    with capped(upstream) as proxy, ExitStack() as stack:
        for conn in open_idle(proxy.port, 3):
            stack.enter_context(conn)
        other = socket.socket()
        try:
            other.bind(("127.0.0.2", 0))
        except OSError:
            other.close()
            pytest.skip("127.0.0.2 is not a loopback address here")
        with other:
            other.settimeout(BOUND)
            other.connect(("127.0.0.1", proxy.port))
            other.sendall(GET)
            assert other.recv(12) == b"HTTP/1.1 200"


def test_trusted_proxies_are_exempt_from_the_cap(upstream):
    with capped(upstream, trusted_proxies=parse_networks(["127.0.0.0/8"])) as proxy, ExitStack() as stack:
        held = [stack.enter_context(conn) for conn in open_idle(proxy.port, 6)]
        for conn in held:
            conn.send(GET)
            assert conn.read(responses=1, timeout=BOUND).response.status == 200
