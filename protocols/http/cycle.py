"""One request's ASGI send/receive on the proxy listener: uvicorn's RequestResponseCycle, with less work per answer.

What differs from uvicorn's cycle (everything else, the attributes the listener reads included, is the same):

- the response head is held until the first body message and written with it, so a complete answer is one
  write (one system call, one TCP segment) instead of two; a head with no body message in the same loop turn
  (a streamed answer waiting for its backend) is written at the end of that turn, so it is never held longer;
- the default fields (Date) are joined once per second, not per answer, and the answer's field names and
  values are checked for forbidden bytes (uvicorn's rules) in one search each rather than two per field;
- its message event is a light asyncio.Event (MessageEvent), and it does no uvicorn access logging (the
  gateway writes its own access log);
- the last write of a complete answer on a kept-alive connection goes out with the loop turn's other answers
  (protocols.write_batch), when the listener gave it a BatchedTransport (`write_soon`).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle

Headers = list[tuple[bytes, bytes]]

_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_NO_BODY_STATUSES = (204, 304)
_LAST_CHUNK = b"0\r\n\r\n"
_logger = logging.getLogger("uvicorn.error")


def _nothing() -> None:
    return None


class _DefaultHead:
    """The server's default fields (uvicorn replaces the list once a second for Date) as one piece of head."""

    __slots__ = ("source", "text")

    def __init__(self) -> None:
        self.source: Headers | None = None
        self.text = b""

    def of(self, headers: Headers) -> bytes:
        if headers is not self.source:
            self.text = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in headers)
            self.source = headers
        return self.text


_DEFAULTS = _DefaultHead()


class MessageEvent:
    """asyncio.Event's set, clear, is_set and wait for one cycle, without Event's per-instance deque and loop
    check (one is made per request)."""

    __slots__ = ("_value", "_waiters", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None
        self._loop = loop

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters = self._waiters
        if waiters:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[bool] = self._loop.create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)  # cancelled before set()


class ProxyCycle(RequestResponseCycle):
    """uvicorn's cycle with the head written together with the body (see the module docstring)."""

    logger = _logger

    def __init__(self, scope: Any, transport: asyncio.Transport, flow: FlowControl, loop: asyncio.AbstractEventLoop,
                 default_headers: Headers, keep_alive: bool, expect_100_continue: bool,
                 on_response: Callable[[], None]) -> None:
        # The attributes of uvicorn's cycle, set here without its per-request logger look-ups.
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.loop = loop
        self.access_log = False
        self.default_headers = default_headers
        self.message_event = MessageEvent(loop)  # type: ignore[assignment]
        self.on_response = on_response
        self.disconnected = False
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = bytearray()
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding: bool | None = None
        self.expected_content_length = 0
        self.head: bytes | None = None  # a head not written yet (it goes with the first body message)
        self._flush: asyncio.Handle | None = None
        # A complete answer on a kept-alive connection is written with the loop turn's others (protocols.write_batch).
        self._write_last: Callable[[bytes], None] = getattr(transport, "write_soon", transport.write)

    async def run_asgi(self, app: Any) -> None:
        """uvicorn's, but a held head goes out before the connection is closed on a failed answer."""
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.write_head()
                self.transport.close()
        else:
            if result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
                self.write_head()
                self.transport.close()
            elif not self.response_started and not self.disconnected:
                self.logger.error("ASGI callable returned without starting response.")
                await self.send_500_response()
            elif not self.response_complete and not self.disconnected:
                self.logger.error("ASGI callable returned without completing response.")
                self.write_head()
                self.transport.close()
        finally:
            self.on_response = _nothing

    def write_head(self) -> None:
        """Write a held head now (at the end of the loop turn it was sent in, or before an error)."""
        head = self.head
        if head is None:
            return
        self.head = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not self.disconnected:
            self.transport.write(head)

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message['type']}'.")
            self._start(message)
        elif not self.response_complete:
            if message["type"] != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' sent, after response already completed.")

    def _start(self, message: Any) -> None:
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        content = [STATUS_LINE[status], _DEFAULTS.of(self.default_headers)]
        close = False
        for name, value in message.get("headers", ()):
            name = name.lower()
            if name in _FRAMING:
                if name == b"content-length":
                    if self.chunked_encoding is None:
                        self.expected_content_length = int(value.decode())
                        self.chunked_encoding = False
                elif name == b"transfer-encoding":
                    if value.lower() == b"chunked":
                        self.expected_content_length = 0
                        self.chunked_encoding = True
                elif b"close" in [token.lower().strip() for token in value.split(b",")]:
                    self.keep_alive = False
                    close = True
            content += (name, b": ", value, b"\r\n")
        # One search over all the names and one over all the values: the same bytes refused as uvicorn's
        # per-field checks (joining adds no byte either pattern matches).
        if HEADER_RE.search(b"".join(content[2::4])) is not None:
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"".join(content[4::4])) is not None:
            raise RuntimeError("Invalid HTTP header value.")
        if not self.keep_alive and not close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status not in _NO_BODY_STATUSES:
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.head = b"".join(content)
        self._flush = self.loop.call_soon(self.write_head)

    def _body(self, body: bytes, more_body: bool) -> None:
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            data = b""
        elif self.chunked_encoding:
            data = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            if not more_body:
                data += _LAST_CHUNK
        else:
            if len(body) > self.expected_content_length:
                self.write_head()
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = body
        head = self.head
        if head is not None:
            self.head = None
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None
            data = head + data
        if data:
            if more_body or not self.keep_alive:
                self.transport.write(data)
            else:
                self._write_last(data)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()
