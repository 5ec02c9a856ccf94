"""One stream of an upstream HTTP/2 connection (protocols.upstream.http2): its response as it arrives, read with the
window re-opened as the caller consumes it, and its request body sent as the peer's windows allow."""
from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import h2.errors
import h2.exceptions

from protocols.errors import GatewayError, UpstreamReset

if TYPE_CHECKING:
    from protocols.upstream.http2 import Http2Connection

Headers = list[tuple[bytes, bytes]]

# Our receive window per stream: what one stream may buffer before its reader catches up.
STREAM_WINDOW = 256 * 1024


class UpstreamStreamReset(UpstreamReset):
    """502: the backend reset one stream (RST_STREAM); `code` is its HTTP/2 error code."""

    def __init__(self, backend: str, code: int) -> None:
        GatewayError.__init__(self, 502, "upstream_reset",
                              f"Backend {backend} reset the stream (RST_STREAM {code_name(code)}).")
        self.code = code


def code_name(code: int) -> str:
    """An HTTP/2 error code's name (NO_ERROR, CANCEL...), or its number when it has none."""
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return str(code)


class Http2Stream:
    """One request/response exchange on an Http2Connection, read and written by one caller."""

    __slots__ = ("conn", "id", "status", "headers", "trailers", "head_done", "ended", "error", "_chunks",
                 "_unacked", "_waiter", "_send_waiter")

    def __init__(self, conn: Http2Connection, stream_id: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.status = 0
        self.headers: Headers = []
        self.trailers: Headers = []
        self.head_done = False
        self.ended = False  # the backend ended its side (END_STREAM)
        # The first failure: the backend's (an UpstreamError), or the client side's that ended the exchange.
        self.error: Exception | None = None
        self._chunks: deque[tuple[bytes, int]] = deque()  # data, flow-controlled length (padding included)
        self._unacked = 0
        self._waiter: asyncio.Future[None] | None = None
        self._send_waiter: asyncio.Future[None] | None = None

    async def response(self) -> None:
        """Wait for the response head (raises the stream's error)."""
        while not self.head_done and self.error is None:
            await self._wait()
        if self.error is not None and not self.head_done:
            raise self.error

    async def read(self) -> bytes:
        """The next piece of the body (b"" once it is over: `trailers` are then set); re-opens the window."""
        while True:
            if self._chunks:
                data, length = self._chunks.popleft()
                self._consumed(length)
                return data
            if self.error is not None:
                raise self.error
            if self.ended:
                return b""
            await self._wait()

    async def send(self, data: bytes, end: bool = False) -> None:
        """Send request body bytes as the peer's windows and our socket allow; `end` half-closes the stream."""
        conn = self.conn
        view = memoryview(data)
        while view:
            self._check()
            window = min(conn.h2.local_flow_control_window(self.id), conn.h2.max_outbound_frame_size)
            if window <= 0 or conn.writing_paused:
                await self._wait_send()
                continue
            piece = view[:window]
            view = view[window:]
            self._write(piece.tobytes(), end and not view)
        if end and not data:
            self._check()
            self._write(None, True)
        if conn.writing_paused:
            await self._wait_send()

    def cancel(self, code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        """Give up on the exchange: RST_STREAM to the backend unless the stream is already over."""
        conn = self.conn
        if conn.streams.pop(self.id, None) is None:
            return
        if not conn.closed:
            try:
                conn.h2.reset_stream(self.id, code)
            except h2.exceptions.StreamClosedError:
                pass  # both sides had already ended it
            conn.flush()
        conn.stream_done()

    def finish(self) -> None:
        """The exchange is over on both sides: forget the stream (a stream still open is reset)."""
        if self.ended and self.conn.streams.get(self.id) is self and self._send_closed():
            del self.conn.streams[self.id]
            self.conn.stream_done()
        else:
            self.cancel()

    # --- called by the connection ------------------------------------------------------------------------

    def fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        self.wake()
        self.wake_sender()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wake_sender(self) -> None:
        waiter = self._send_waiter
        if waiter is not None:
            self._send_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def received(self, data: bytes, length: int) -> None:
        self._chunks.append((data, length))
        self.wake()

    # --- internals -----------------------------------------------------------------------------------------

    async def _wait(self) -> None:
        waiter = self._waiter = self.conn.loop.create_future()
        await waiter

    async def _wait_send(self) -> None:
        while self.error is None and not self.conn.closed:
            conn = self.conn
            if not conn.writing_paused and conn.h2.local_flow_control_window(self.id) > 0:
                return
            waiter = self._send_waiter = conn.loop.create_future()
            conn.senders.add(self)
            try:
                await waiter
            finally:
                conn.senders.discard(self)
        self._check()

    def _write(self, data: bytes | None, end: bool) -> None:
        """Send DATA (None: only END_STREAM); a stream the backend ended or reset meanwhile fails the call."""
        try:
            if data is None:
                self.conn.h2.end_stream(self.id)
            else:
                self.conn.h2.send_data(self.id, data, end_stream=end)
        except h2.exceptions.ProtocolError:  # StreamClosedError included: the backend's answer says why
            raise self.error or UpstreamReset(self.conn.label, "while the request was being sent") from None
        self.conn.flush()

    def _check(self) -> None:
        if self.error is not None:
            raise self.error
        if self.conn.closed:
            raise UpstreamReset(self.conn.label, "while the request was being sent")

    def _send_closed(self) -> bool:
        stream = self.conn.h2.streams.get(self.id)
        return stream is None or stream.closed or stream.state_machine.state.name in ("HALF_CLOSED_LOCAL", "CLOSED")

    def _consumed(self, length: int) -> None:
        if not length or self.ended or self.conn.closed:
            return  # an ended stream takes no WINDOW_UPDATE
        self._unacked += length
        if self._unacked >= STREAM_WINDOW // 2:
            conn = self.conn
            try:
                conn.h2.increment_flow_control_window(self._unacked, stream_id=self.id)
            except h2.exceptions.StreamClosedError:
                return
            self._unacked = 0
            conn.flush()
