"""One upstream HTTP/1.1 connection: an asyncio protocol around httptools, with flow control in both directions."""
from __future__ import annotations

import asyncio

import httptools

from protocols.errors import UpstreamInvalidResponse, UpstreamReset, UpstreamTimeout
from protocols.write_batch import BatchedTransport, batch_of

# RFC 9110 7.6.1: fields that describe one connection, never forwarded by an intermediary.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    b"proxy-authenticate", b"proxy-authorization",
})
# Connection options that name no header field, so they never trigger the second filtering pass.
_PLAIN_CONNECTION_OPTIONS = frozenset({b"keep-alive", b"close"})
# The Connection fields almost every backend sends, as on_header collects them: nothing to filter, no set built.
_PLAIN_CONNECTION_VALUES = frozenset({b",keep-alive", b",close"})

# Response body held per connection before the socket stops being read: the consumer sets the pace, so a
# 1 GiB body costs at most this plus one socket read of memory.
READ_BUFFER_HIGH = 256 * 1024


class _Surplus(Exception):
    """A second response began on a connection whose response was already complete."""


class UpstreamConnection(asyncio.Protocol):
    """A keep-alive connection to one backend, serving one exchange at a time.

    The parser callbacks run inside data_received, so a small response usually arrives complete (head, body and
    end) before the waiting coroutine even resumes: the proxy then answers with one send and no extra wake-ups.
    """

    def __init__(self, label: str, strip_headers: frozenset[bytes]) -> None:
        self.label = label  # "host:port", used in error messages
        self.strip_headers = strip_headers
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False  # has finished an exchange before: a failure may be the stale keep-alive race
        self.idle_since = 0.0
        self.active = False
        self.head_only = False
        self.got_bytes = False
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.error: BaseException | None = None
        self._interim = False
        self._connection_options = b""
        self._framed = False  # Content-Length or chunked: the body does not simply run until EOF
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0
        self.request_done = False

    # --- used by the client ------------------------------------------------------------------------------

    def begin(self, head_only: bool) -> None:
        """Reset per-exchange state before writing a new request."""
        self.active = True
        self.head_only = head_only
        self.got_bytes = self.head_done = self.complete = self.keep_alive = False
        self.status = 0
        self.headers = []
        self.chunks = []
        self.buffered = 0
        self.error = None
        self._interim = False
        self._connection_options = b""
        self._framed = False
        self.request_done = False

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """A whole request, written with the loop turn's others (protocols.write_batch)."""
        assert self.transport is not None
        self.transport.write_soon(data)  # type: ignore[attr-defined]  # a BatchedTransport (connection_made)

    @property
    def writing_paused(self) -> bool:
        return self._writing_paused

    async def drain(self, timeout: float) -> None:
        """Wait until the socket accepts more request body; a backend that stops reading is a read timeout."""
        while self._writing_paused and self.error is None:
            waiter = self._drain_waiter = self.loop.create_future()
            timer = self.loop.call_later(timeout, self._drain_timed_out, waiter, timeout)
            try:
                await waiter
            finally:
                timer.cancel()
                self._drain_waiter = None
        if self.error is not None:
            raise self.error

    def request_sent(self, read_timeout: float) -> None:
        """The whole request is on the wire: from now on the backend has read_timeout to answer."""
        self.request_done = True
        self._read_timeout = read_timeout
        if self._waiter is not None and self._timer is None and not self.head_done:
            self._timer = self.loop.call_later(read_timeout, self._timed_out, "the response head")

    async def read(self) -> bytes:
        """The body bytes buffered so far (waiting for some if there are none); b"" once the body is over."""
        while True:
            chunks = self.chunks
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self.chunks = []
                self.buffered = 0
                if self._reading_paused and not self.closed:
                    self._reading_paused = False
                    assert self.transport is not None
                    self.transport.resume_reading()
                return data
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            await self.waiter("the next part of the body")

    def take_body(self) -> bytes:
        """The whole body when it has already arrived (the common small-response case)."""
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks = []
        self.buffered = 0
        return data

    def abort(self) -> None:
        """Close without reuse: the exchange was cut short and the connection state is unknown."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()  # now, dropping unsent bytes: a stalled backend must not keep it open

    def fail(self, exc: BaseException) -> None:
        """End the exchange with `exc` (first failure wins) and close the connection."""
        if self.error is None:
            self.error = exc
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self.abort()

    def waiter(self, waiting_for: str | None) -> asyncio.Future[None]:
        """A future that the next parser event or failure resolves; with `waiting_for`, so does the read timeout.

        Callers await it directly: a proxied request resumes through as few coroutine frames as possible.
        """
        waiter = self._waiter = self.loop.create_future()
        if waiting_for is not None:
            self._timer = self.loop.call_later(self._read_timeout, self._timed_out, waiting_for)
        return waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not waiter.done():
                waiter.set_result(None)

    def _timed_out(self, waiting_for: str) -> None:
        self._timer = None
        self.fail(UpstreamTimeout(self.label, self._read_timeout, waiting_for))

    def _drain_timed_out(self, waiter: asyncio.Future[None], timeout: float) -> None:
        if not waiter.done():
            self.fail(UpstreamTimeout(self.label, timeout, "read the request body"))

    # --- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Requests that go out whole are written together at the end of the loop turn, like the listener's answers.
        self.transport = BatchedTransport(transport, batch_of(self.loop))  # type: ignore[arg-type,assignment]

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # Bytes on an idle connection mean the backend is confused; never hand it to the next request.
            self.abort()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(UpstreamInvalidResponse(self.label, "it switched protocols on a plain HTTP request"))
        except httptools.HttpParserError as exc:
            if self.complete:
                # Bytes after a complete response that nobody asked for: the response stands, the connection
                # cannot be trusted with another request.
                self.keep_alive = False
                return
            self.fail(UpstreamInvalidResponse(self.label, str(exc) or type(exc).__name__))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost decides whether the response was complete

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and not self.complete:
            if self.head_done and not self._framed and exc is None:
                # A body without Content-Length or chunking ends at EOF (RFC 9112 6.3, last rule).
                self.complete = True
                self.keep_alive = False
                self._wake()
            else:
                detail = "while sending the response body" if self.head_done else "before sending a response"
                self.fail(UpstreamReset(self.label, detail))
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # --- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Surplus  # stops the parser; handled in data_received

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in self.strip_headers:
            if name == b"connection":
                self._connection_options += b"," + value.lower()
            elif name == b"transfer-encoding":
                self._framed = True
            return
        if name == b"content-length":
            self._framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim response (103 Early Hints and the like): drop it and wait for the final one.
            self._interim = True
            self.headers = []
            self._connection_options = b""
            self._framed = False
            return
        self.status = status
        options = self._connection_options
        if options and options not in _PLAIN_CONNECTION_VALUES:
            named = {option.strip() for option in options.split(b",")}
            named -= _PLAIN_CONNECTION_OPTIONS
            named.discard(b"")
            if named:
                self.headers = [(n, v) for n, v in self.headers if n not in named]
        if status == 204 or status == 304:
            self._framed = True  # no body whatever the fields say (RFC 9112 6.3)
            # uvicorn would hold the proxy to a Content-Length it can never send for these statuses.
            self.headers = [(n, v) for n, v in self.headers if n != b"content-length"]
        self.head_done = True
        if self.head_only:
            # llhttp cannot be told the request was HEAD, so it would wait for the announced body: finish the
            # exchange here and give the next exchange a fresh parser.
            self.complete = True
            self._framed = True
            self.keep_alive = bool(self.parser.should_keep_alive())
            self.parser = httptools.HttpResponseParser(self)
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered >= READ_BUFFER_HIGH and not self._reading_paused:
            self._reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self.complete:  # HEAD already finished at the head
            return
        self.complete = True
        self.keep_alive = bool(self.parser.should_keep_alive())
        self._wake()
