"""Pipelined requests on one connection: however the bytes are split, each request gets its own answer, in order,
and the back end receives exactly the requests the client sent (property tests with hypothesis)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.support.errorlog import ErrorLog
from tests.support.proxy import ProxyServer, route
from tests.support.rawhttp import RawConnection, RawExchange, parse_responses
from tests.support.upstream import UpstreamServer

# Every example reuses one gateway and one back end (module fixtures), so an example costs a few loopback round
# trips; these counts keep the file well under a minute. Derandomized for CI; no "explain" phase (it reruns a
# failing example many times), so a failure is reported shrunk, with its bytes, in seconds.
PIPELINE = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(PIPELINE, max_examples=80)

BODY = st.one_of(
    st.binary(max_size=300),
    # Bodies that look like the framing around them: a request line, a chunk, a blank line.
    st.sampled_from([b"GET /p/99 HTTP/1.1\r\nHost: smuggled\r\nX-Seq: 99\r\n\r\n", b"0\r\n\r\n", b"\r\n\r\n",
                     b"5\r\nhello\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]),
)


@dataclass(frozen=True)
class Sent:
    """One request of a pipelined stream, and what the back end should receive for it."""

    seq: int
    method: str
    upstream_target: str  # the route forwards /p/<n> as is and /slow/<n>?ms=M to /slow?ms=M
    body: bytes
    wire: bytes


@st.composite
def a_request(draw: st.DrawFn, seq: int, slow: bool = False) -> Sent:
    method = draw(st.sampled_from(["GET", "POST"]))
    delay = draw(st.sampled_from([0, 0, 10, 40])) if slow else 0
    target, upstream_target = (f"/slow/{seq}?ms={delay}", f"/slow?ms={delay}") if delay else (f"/p/{seq}",) * 2
    head = [f"{method} {target} HTTP/1.1", "Host: gateway.test", f"X-Seq: {seq}"]
    body = payload = b""
    if method == "POST":
        body = draw(BODY)
        if draw(st.booleans()):
            head.append("Transfer-Encoding: chunked")
            payload = _chunked(body, draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=5)),
                               draw(st.booleans()), draw(st.booleans()))
        else:
            head.append(f"Content-Length: {len(body)}")
            payload = body
    wire = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    return Sent(seq, method, upstream_target, body, wire)


def _chunked(body: bytes, cuts: set[int], upper: bool, extensions: bool) -> bytes:
    """`body` as chunks cut at `cuts`, sizes in upper- or lower-case hex, with or without chunk extensions."""
    bounds = [0, *sorted(cut for cut in cuts if cut < len(body)), len(body)]
    out = b""
    for start, end in zip(bounds, bounds[1:], strict=False):
        if end > start:
            size = (b"%X" if upper else b"%x") % (end - start)
            out += size + (b";ext=1" if extensions else b"") + b"\r\n" + body[start:end] + b"\r\n"
    return out + b"0\r\n\r\n"


@st.composite
def a_stream(draw: st.DrawFn, slow: bool = False) -> list[Sent]:
    count = draw(st.integers(2, 6))
    return [draw(a_request(seq, slow)) for seq in range(1, count + 1)]


@st.composite
def pieces_of(draw: st.DrawFn, data: bytes) -> list[tuple[bytes, float]]:
    """`data` cut at offsets hypothesis picks, each piece with the pause to take after sending it."""
    cuts = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=8)))
    bounds = [0, *cuts, len(data)]
    pauses = draw(st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.004]), min_size=len(bounds) - 1,
                           max_size=len(bounds) - 1))
    return [(data[start:end], pause) for start, end, pause in zip(bounds, bounds[1:], pauses, strict=False)]


@pytest.fixture(scope="module")
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    routes = [route("p", "/p/{n}", upstream.port),
              route("slow", "/slow/{n}", upstream.port, internal_path="/slow")]
    with ProxyServer(routes) as server:
        yield server


def send_pipelined(proxy: ProxyServer, pieces: list[tuple[bytes, float]], answers: int | None,
                   before: tuple[int, Callable[[], None]] | None = None) -> RawExchange:
    """Send the pieces on one connection (calling `before[1]` before piece number `before[0]`), then read
    `answers` responses (None: until the server closes)."""
    with RawConnection(proxy.port) as conn:
        for index, (piece, pause) in enumerate(pieces):
            if before is not None and before[0] == index:
                before[1]()
            if not conn.send(piece):
                break
            if pause:
                time.sleep(pause)
        return conn.read(answers, timeout=5.0)


def assert_answered_in_order(exchange: RawExchange, stream: list[Sent]) -> None:
    statuses = [response.status for response in exchange.responses]
    assert statuses[:len(stream)] == [200] * len(stream), exchange.data
    for sent, response in zip(stream, exchange.responses, strict=False):
        echo = response.json()
        assert (echo["method"], echo["path"], echo["body_length"]) == (
            sent.method, sent.upstream_target.partition("?")[0], len(sent.body))
        assert [value for name, value in echo["headers"] if name == "x-seq"] == [str(sent.seq)]


def assert_upstream_saw(upstream: UpstreamServer, stream: list[Sent]) -> None:
    seen = list(upstream.requests)
    assert len(seen) <= len(stream), f"the back end received {len(seen)} requests for {len(stream)} sent"
    assert [(r.method, r.target, r.header("x-seq"), bytes(r.body)) for r in seen] == [
        (s.method, s.upstream_target, [str(s.seq)], s.body) for s in stream]


def _start(upstream: UpstreamServer, errors: ErrorLog, wire: bytes) -> None:
    upstream.requests.clear()
    upstream.delay_ms = 0
    errors.messages.clear()
    if currently_in_test_context():
        note(f"client bytes: {wire!r}")  # printed with a failing example


@PIPELINE
@given(data=st.data(), stream=a_stream())
def test_every_pipelined_request_gets_its_own_answer_in_order_however_the_bytes_are_split(
        proxy, upstream, errors, data, stream):
    wire = b"".join(sent.wire for sent in stream)
    _start(upstream, errors, wire)
    exchange = send_pipelined(proxy, data.draw(pieces_of(wire), label="pieces"), len(stream))
    assert len(exchange.responses) == len(stream), exchange.data
    assert_answered_in_order(exchange, stream)
    assert_upstream_saw(upstream, stream)
    assert errors.messages == []


@SLOW
@given(data=st.data(), stream=a_stream(slow=True), delay_ms=st.sampled_from([0, 15]))
def test_requests_queued_behind_a_slow_answer_keep_their_order_and_framing(
        proxy, upstream, errors, data, stream, delay_ms):
    wire = b"".join(sent.wire for sent in stream)
    _start(upstream, errors, wire)
    pieces = data.draw(pieces_of(wire), label="pieces")
    # The back end turns slow part-way through sending (every answer from then on is `delay_ms` late).
    slow_from = data.draw(st.integers(0, len(pieces) - 1), label="slow from piece")
    try:
        exchange = send_pipelined(proxy, pieces, len(stream),
                                  (slow_from, lambda: setattr(upstream, "delay_ms", delay_ms)))
    finally:
        upstream.delay_ms = 0
    assert len(exchange.responses) == len(stream), exchange.data
    assert_answered_in_order(exchange, stream)
    assert_upstream_saw(upstream, stream)
    assert errors.messages == []


# (request, status, type): each is refused by the listener before any application sees it.
INVALID = [
    (b"GET /p/9 HTTP/1.1\r\nHost: gateway.test\r\nHost: other.test\r\n\r\n", 400, "invalid_host"),
    (b"GET /p/9 HTTP/1.1\r\nX-Seq: 9\r\n\r\n", 400, "invalid_host"),
    (b"GET /p/9 HTTP/1.1\r\nHost: gate way\r\n\r\n", 400, "invalid_host"),
    (b"GET /p/%zz HTTP/1.1\r\nHost: gateway.test\r\n\r\n", 400, "invalid_target"),
    (b"GET /p/a%00b HTTP/1.1\r\nHost: gateway.test\r\n\r\n", 400, "invalid_target"),
    (b"GET /p/a\\..\\b HTTP/1.1\r\nHost: gateway.test\r\n\r\n", 400, "invalid_target"),
    (b"GET * HTTP/1.1\r\nHost: gateway.test\r\n\r\n", 400, "invalid_target"),
    (b"GET /p/9 HTTP/2.0\r\nHost: gateway.test\r\n\r\n", 505, "http_version_not_supported"),
    (b"CONNECT gateway.test:443 HTTP/1.1\r\nHost: gateway.test:443\r\n\r\n", 501, "method_not_implemented"),
    (b"POST /p/9 HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
     "transfer_coding_not_implemented"),
    (b"GET /p/9 HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "invalid_framing"),
    (b"POST /p/9 HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400, "malformed_request"),
    (b"GET /p/9 HTTP/1.1\r\nHost: gateway.test\r\nX-Seq: 9\nX-Other: 1\r\n\r\n", 400, "malformed_request"),
    (b"GET /p/9 HTTP/1.1\r\nHost: gateway.test\r\nX-Seq: 9\r\n folded\r\n\r\n", 400, "malformed_request"),
]
AFTERWARDS = b"GET /p/100 HTTP/1.1\r\nHost: gateway.test\r\nX-Seq: 100\r\n\r\n"


@SLOW
@given(data=st.data(), stream=st.integers(1, 4).flatmap(lambda n: st.tuples(
    *[a_request(seq, slow=True) for seq in range(1, n + 1)])), invalid=st.sampled_from(INVALID),
    more=st.booleans())
def test_an_invalid_last_request_is_refused_after_the_answers_before_it(
        proxy, upstream, errors, data, stream, invalid, more):
    bad, status, kind = invalid
    wire = b"".join(sent.wire for sent in stream) + bad + (AFTERWARDS if more else b"")
    _start(upstream, errors, wire)
    exchange = send_pipelined(proxy, data.draw(pieces_of(wire), label="pieces"), None)
    assert exchange.closed
    assert len(exchange.responses) == len(stream) + 1, exchange.data
    assert parse_responses(exchange.data)[1] == b"", "bytes after the refusal"
    assert_answered_in_order(exchange, list(stream))
    refusal = exchange.responses[-1]
    assert (refusal.status, refusal.json()["type"]) == (status, kind)
    assert refusal.header("connection") == ["close"]
    assert sorted(refusal.json()) == ["error", "request_id", "type"]
    assert not upstream.wait_until(lambda server: len(server.requests) > len(stream), timeout=0.05)
    assert_upstream_saw(upstream, list(stream))
    assert errors.messages == []


def test_a_broken_chunked_body_in_a_queued_request_is_refused_after_the_answers_before_it(proxy, upstream, errors):
    stream = [Sent(1, "GET", "/slow?ms=200", b"", b"GET /slow/1?ms=200 HTTP/1.1\r\nHost: gateway.test\r\n"
                   b"X-Seq: 1\r\n\r\n"),
              Sent(2, "POST", "/p/2", b"wxyz", b"POST /p/2 HTTP/1.1\r\nHost: gateway.test\r\nX-Seq: 2\r\n"
                   b"Content-Length: 4\r\n\r\nwxyz")]
    bad = (b"POST /p/3 HTTP/1.1\r\nHost: gateway.test\r\nX-Seq: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\nzz\r\n")
    wire = b"".join(sent.wire for sent in stream) + bad
    _start(upstream, errors, wire)
    exchange = send_pipelined(proxy, [(wire, 0.0)], None)
    assert [response.status for response in exchange.responses] == [200, 200, 400], exchange.data
    assert_answered_in_order(exchange, stream)
    assert_upstream_saw(upstream, stream)
    assert errors.messages == []
