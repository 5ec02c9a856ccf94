"""rusta.http_protocol: uvicorn's protocol with writes gathered per loop turn, on a real uvicorn over loopback."""
from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn

from rusta.http_protocol import FLUSH_AT, CoalescingHttpToolsProtocol, CoalescingTransport

BIG = bytes(range(256)) * 4096  # 1 MiB


class RecordingTransport:
    """Stands in for the socket transport: what was written, in which calls."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


def test_writes_of_one_loop_turn_leave_in_one_write():
    async def scenario() -> list[bytes]:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        assert real.writes == []
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


def test_a_large_write_goes_out_at_once():
    async def scenario() -> list[bytes]:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"x" * FLUSH_AT)
        return real.writes

    assert asyncio.run(scenario()) == [b"x" * FLUSH_AT]


def test_close_sends_what_was_gathered_before_closing():
    async def scenario() -> RecordingTransport:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"last words")
        transport.close()
        await asyncio.sleep(0)
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"last words"] and real.closed


async def app(scope, receive, send) -> None:
    if scope["path"] == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(BIG))]})
        for start in range(0, len(BIG), 16384):
            await send({"type": "http.response.body", "body": BIG[start:start + 16384], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server() -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app, loop="asyncio", http=CoalescingHttpToolsProtocol, lifespan="off", log_config=None,
                            access_log=False)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(running.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not running.started:
        threading.Event().wait(0.01)
    yield sock.getsockname()[1]
    running.should_exit = True
    thread.join(10)


def read_all(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(payload)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_pipelined_answers_arrive_whole_and_in_order_before_a_requested_close(server):
    raw = read_all(server, b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.index(b"/one") < raw.index(b"/two") < raw.index(b"/three") and raw.endswith(b"/three")


def test_a_streamed_megabyte_arrives_intact(server):
    raw = read_all(server, b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"200 OK" in head and body == BIG
