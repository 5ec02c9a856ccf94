"""One HTTP/2 connection's limits (protocols/http/h2.py): streams, windows, resets, malformed frames, time.

An ASGI app of the test's own is served on the proxy listener's protocol; a frame-level client plays the
hostile peer. Limits are small where a test waits on them, and bounds are generous.
"""
from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame

from protocols.http.h2 import RESET_LIMIT
from protocols.http.listener import ListenerLimits
from tests.support.h2client import H2Client, ListenerApp

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Gate:
    """Requests to /gate wait until the test opens it; /read-after-gate reads its body only then."""

    def __init__(self) -> None:
        self.event: asyncio.Event | None = None
        self.waiting = 0

    async def wait(self) -> None:
        if self.event is None:
            self.event = asyncio.Event()
        self.waiting += 1
        await self.event.wait()


GATE = Gate()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] in ("/gate", "/read-after-gate"):
        await GATE.wait()
    if scope["path"] == "/bytes":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5000")]})
        await send({"type": "http.response.body", "body": b"z" * 5000})
        return
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message["body"])
        more = message["more_body"]
    body = b"%d" % size
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server() -> Iterator[ListenerApp]:
    GATE.event, GATE.waiting = None, 0
    with ListenerApp(app, ListenerLimits(header_timeout=1, body_timeout=30)) as running:
        yield running


def open_gate(server: ListenerApp) -> None:
    server.call_soon(lambda: GATE.event.set() if GATE.event is not None else None)


def test_settings_advertise_the_stream_window_and_header_limits(server):
    with H2Client(server.port) as client:
        client.read_until(lambda c: SettingCodes.MAX_CONCURRENT_STREAMS in c.conn.remote_settings)
        settings = client.conn.remote_settings
        assert settings.max_concurrent_streams == 128
        assert settings.initial_window_size == 65536
        assert settings.max_header_list_size == 65536


def test_the_stream_beyond_the_limit_is_refused_and_the_others_are_served(server):
    with H2Client(server.port, obey_limits=False) as client:
        streams = [client.request("GET", "/gate") for _ in range(129)]
        assert client.read_until(lambda c: c.responses[streams[-1]].reset is not None)
        assert client.responses[streams[-1]].reset == ErrorCodes.REFUSED_STREAM
        open_gate(server)
        served = [client.response(stream) for stream in streams[:128]]
    assert [response.status for response in served] == [200] * 128


def test_a_stream_reset_by_the_client_counts_until_its_application_finishes(server):
    with H2Client(server.port, obey_limits=False) as client:
        streams = [client.request("GET", "/gate") for _ in range(128)]
        for stream in streams:
            client.reset(stream)
        extra = client.request("GET", "/after")
        assert client.read_until(lambda c: c.responses[extra].reset is not None or c.responses[extra].ended)
        assert client.responses[extra].reset == ErrorCodes.REFUSED_STREAM
        open_gate(server)


def test_a_reset_flood_ends_the_connection_with_goaway_enhance_your_calm(server):
    with H2Client(server.port) as client:
        for _ in range(RESET_LIMIT + 50):
            stream = client.request("GET", "/quick", end=False)
            client.reset(stream)
        assert client.read_until(lambda c: c.terminated is not None)
        assert client.terminated is not None
        assert client.terminated.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        assert client.read_until(lambda c: c.closed)


@pytest.mark.parametrize("frame", [
    b"\x00\x00\x03\x00\x00\x00\x00\x00\x00abc",  # DATA on stream 0
    HeadersFrame(1, b"\xff\xff\xff\xff not hpack", flags=["END_HEADERS", "END_STREAM"]).serialize(),
    HeadersFrame(2, b"\x82", flags=["END_HEADERS"]).serialize(),  # an even (server-initiated) stream id
    DataFrame(7, b"data on a stream never opened").serialize(),
], ids=["data-on-stream-0", "bad-hpack", "even-stream-id", "data-on-idle-stream"])
def test_a_malformed_frame_gets_goaway_with_an_error_and_never_a_500(server, frame):
    with H2Client(server.port) as client:
        client.send_raw(frame)
        assert client.read_until(lambda c: c.terminated is not None)
        assert client.terminated is not None
        assert client.terminated.error_code in (ErrorCodes.PROTOCOL_ERROR, ErrorCodes.COMPRESSION_ERROR)
        assert client.read_until(lambda c: c.closed)
    with H2Client(server.port) as client:
        assert client.response(client.request("GET", "/after")).status == 200


def test_garbage_after_the_preface_gets_goaway_protocol_error(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(PREFACE + b"\x00\x00\x04\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00garbage-and-more")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert b"HTTP/1.1" not in data
    goaway = data.find(b"\x07\x00\x00\x00\x00\x00")  # a GOAWAY frame's type, flags and stream 0
    assert goaway > 0
    assert data[goaway + 10:goaway + 14] != b"\x00\x00\x00\x00"  # an error code, not NO_ERROR


def test_a_header_list_over_64_kib_ends_the_connection(server):
    with H2Client(server.port) as client:
        client.request("GET", "/big", [("x-big", "a" * 70_000)])
        assert client.read_until(lambda c: c.terminated is not None or c.closed)
        assert client.terminated is None or client.terminated.error_code != ErrorCodes.NO_ERROR


def test_a_continuation_flood_ends_the_connection(server):
    with H2Client(server.port) as client:
        client.read_until(lambda c: SettingCodes.MAX_CONCURRENT_STREAMS in c.conn.remote_settings)
        client.send_raw(HeadersFrame(1, b"\x82").serialize())  # :method GET, no END_HEADERS
        for _ in range(200):
            client.send_raw(ContinuationFrame(1, b"\x84").serialize())
        assert client.read_until(lambda c: c.terminated is not None or c.closed)
        assert client.terminated is None or client.terminated.error_code != ErrorCodes.NO_ERROR


def test_a_request_body_is_acknowledged_only_as_the_application_reads_it(server):
    body = b"x" * 300_000
    with H2Client(server.port) as client:
        client.read_until(lambda c: c.conn.remote_settings.initial_window_size == 65536)
        stream = client.request("POST", "/read-after-gate", end=False)
        sent = 0
        while sent < len(body):
            window = min(client.conn.local_flow_control_window(stream), client.conn.max_outbound_frame_size)
            if window == 0:
                break
            client.conn.send_data(stream, body[sent:sent + window])
            sent += window
            client.flush()
        assert sent == 65536  # the stream window: the application has not read a byte
        assert client.read_until(lambda c: sum(p.held for p in server.http2_connections()) == 65536)
        assert client.conn.local_flow_control_window(stream) == 0  # nothing acknowledged meanwhile
        open_gate(server)
        while sent < len(body):
            client.read_until(lambda c: c.conn.local_flow_control_window(stream) > 0)
            window = min(client.conn.local_flow_control_window(stream), client.conn.max_outbound_frame_size,
                         len(body) - sent)
            client.conn.send_data(stream, body[sent:sent + window], end_stream=sent + window == len(body))
            sent += window
            client.flush()
        response = client.response(stream)
        assert bytes(response.body) == b"300000"
        assert max(p.held_peak for p in server.http2_connections()) <= 65536


def test_a_response_waits_for_the_clients_window(server):
    with H2Client(server.port, window=1000, acknowledge=False) as client:
        stream = client.request("GET", "/bytes")
        assert client.read_until(lambda c: len(c.responses[stream].body) == 1000)
        assert not client.responses[stream].ended
        client.acknowledge = True
        client.conn.acknowledge_received_data(1000, stream)
        client.flush()
        response = client.response(stream)
    assert bytes(response.body) == b"z" * 5000


def test_a_connection_that_sends_no_request_head_is_closed_after_the_header_timeout(server):
    with H2Client(server.port) as client:
        assert client.read_until(lambda c: c.closed, timeout=10)


def test_an_http2_connection_counts_against_the_per_client_cap():
    limits = ListenerLimits(max_connections_per_client=1)
    with ListenerApp(app, limits) as server, H2Client(server.port) as client:
        assert client.response(client.request("GET", "/first")).status == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as other:
            other.sendall(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
            assert other.recv(100).startswith(b"HTTP/1.1 429")


def test_a_stalled_request_body_gets_408_on_its_stream_and_the_connection_serves_on():
    limits = ListenerLimits(header_timeout=5, body_timeout=0.5)
    with ListenerApp(app, limits) as server, H2Client(server.port) as client:
        stalled = client.request("POST", "/count", [("content-length", "10")], body=b"12345", end=False)
        response = client.response(stalled)
        after = client.response(client.request("GET", "/after"))
    assert response.status == 408
    assert json.loads(bytes(response.body))["type"] == "request_body_timeout"
    assert after.status == 200
