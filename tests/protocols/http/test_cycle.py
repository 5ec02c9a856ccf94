"""The proxy listener's response cycle (protocols/http/cycle.py): what it writes, and when, for each kind of answer.

The cycle is driven directly with a transport that records its writes (the listener's tests cover it over
loopback sockets): the behaviour under test is how many writes an answer takes and in which order they come.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from uvicorn.protocols.http.flow_control import FlowControl

from protocols.http.cycle import MessageEvent, ProxyCycle

DATE = [(b"date", b"Mon, 07 Dec 2026 00:00:00 GMT")]


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Runs the async test body in a fresh event loop."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return run


class RecordingTransport:
    """An asyncio transport that keeps every write apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def cycle_for(method: str = "GET", keep_alive: bool = True) -> tuple[ProxyCycle, RecordingTransport, list[str]]:
    transport = RecordingTransport()
    completed: list[str] = []
    scope: dict[str, Any] = {"type": "http", "method": method, "headers": []}
    cycle = ProxyCycle(scope, transport, FlowControl(transport), asyncio.get_running_loop(),  # type: ignore[arg-type]
                       DATE, keep_alive, False, lambda: completed.append("done"))
    return cycle, transport, completed


def start(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status,
            "headers": headers if headers is not None else [(b"content-length", b"5")]}


@in_loop
async def test_a_complete_answer_is_one_write_with_head_and_body():
    cycle, transport, completed = cycle_for()
    await cycle.send(start(headers=[(b"content-type", b"text/plain"), (b"content-length", b"5")]))
    await cycle.send({"type": "http.response.body", "body": b"hello"})
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 00:00:00 GMT\r\n"
                                b"content-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"]
    assert completed == ["done"]
    assert not transport.closed


@in_loop
async def test_a_streamed_answers_head_goes_out_by_the_end_of_the_loop_turn_before_its_body():
    cycle, transport, _ = cycle_for()
    await cycle.send(start(headers=[]))
    assert transport.writes == []  # held for the rest of this turn
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 00:00:00 GMT\r\n"
                                b"transfer-encoding: chunked\r\n\r\n"]
    await cycle.send({"type": "http.response.body", "body": b"part", "more_body": True})
    await cycle.send({"type": "http.response.body", "body": b""})
    assert transport.writes[1:] == [b"4\r\npart\r\n", b"0\r\n\r\n"]


@in_loop
async def test_an_answer_to_head_has_its_head_only():
    cycle, transport, completed = cycle_for("HEAD")
    await cycle.send(start())
    await cycle.send({"type": "http.response.body", "body": b""})
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 00:00:00 GMT\r\n"
                                b"content-length: 5\r\n\r\n"]
    assert completed == ["done"]


@in_loop
async def test_an_answer_without_keep_alive_says_close_and_closes():
    cycle, transport, _ = cycle_for(keep_alive=False)
    await cycle.send(start())
    await cycle.send({"type": "http.response.body", "body": b"hello"})
    assert b"connection: close\r\n" in transport.writes[0]
    assert transport.closed


@pytest.mark.parametrize("headers, error", [
    ([(b"x-ok", b"1"), (b"x-bad", b"a\r\nset-cookie: injected")], "Invalid HTTP header value."),
    ([(b"x bad", b"1")], "Invalid HTTP header name."),
    ([(b"x-bad:", b"1")], "Invalid HTTP header name."),
])
@in_loop
async def test_a_field_with_forbidden_bytes_is_refused_and_nothing_is_written(headers, error):
    cycle, transport, _ = cycle_for()
    with pytest.raises(RuntimeError, match=error):
        await cycle.send(start(headers=headers))
    await asyncio.sleep(0)
    assert transport.writes == []


@in_loop
async def test_a_body_longer_than_its_content_length_is_refused_after_the_head_went_out():
    cycle, transport, _ = cycle_for()
    await cycle.send(start())
    with pytest.raises(RuntimeError, match="longer than Content-Length"):
        await cycle.send({"type": "http.response.body", "body": b"too long"})
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 00:00:00 GMT\r\n"
                                b"content-length: 5\r\n\r\n"]


@in_loop
async def test_an_application_that_fails_after_its_head_gets_the_head_then_the_connection_closed():
    cycle, transport, _ = cycle_for()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start())
        raise ValueError("broken")

    await cycle.run_asgi(app)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 00:00:00 GMT\r\n"
                                b"content-length: 5\r\n\r\n"]
    assert transport.closed


@in_loop
async def test_the_message_event_wakes_its_waiters_and_forgets_a_cancelled_one():
    event = MessageEvent(asyncio.get_running_loop())
    waiting = asyncio.ensure_future(event.wait())
    cancelled = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    event.set()
    assert await waiting is True
    assert event.is_set()
    event.clear()
    assert not event.is_set()
