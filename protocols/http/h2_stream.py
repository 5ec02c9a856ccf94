"""One HTTP/2 stream as an ASGI request: its head checked, its scope, `receive()` paced by flow control, `send()`.

The connection (protocols.http.h2) feeds a stream what arrives for it and owns the wire; a stream only holds the
body bytes its application has not read yet. They stay unacknowledged until `receive()` hands them over, so the
client can have at most one stream window of body in the gateway (RFC 9113 6.9). `send()` waits for the peer's
WINDOW_UPDATE and for the socket to drain before it writes, which is the back-pressure the application feels.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from h2.exceptions import ProtocolError, StreamClosedError

from protocols.http.listener import _BAD_TARGET, _valid_authority

if TYPE_CHECKING:
    from protocols.http.h2 import Http2Protocol

log = logging.getLogger("protocols.http.h2")

# RFC 9113 8.2.2: connection-specific fields never appear in an HTTP/2 message; an application written for
# HTTP/1.1 may still send them, so they are dropped on the way out.
CONNECTION_FIELDS = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})
_BAD_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}
_NO_BODY_STATUSES = frozenset({204, 304})


def check_head(head: dict[bytes, bytes], authority: bytes | None) -> tuple[int, str, str] | None:
    """The listener's checks of a request head that HTTP/2 framing leaves open (h2 checks the rest): the
    (status, type, message) of the refusal, or None."""
    if head.get(b":method") == b"CONNECT":
        return 501, "method_not_implemented", "CONNECT is not served: this is not a forward proxy."
    path = head.get(b":path", b"")
    if path[:1] != b"/" or not path.isascii() or _BAD_TARGET.search(path) is not None:
        return 400, "invalid_target", ("The request target must be a path without a backslash, a fragment, an "
                                       "invalid percent-encoding or an encoded NUL.")
    if authority is None or not _valid_authority(authority):
        return 400, "invalid_host", "The request needs one valid :authority (or Host) host[:port]."
    return None


def build_scope(head: dict[bytes, bytes], headers: list[tuple[bytes, bytes]], protocol: Http2Protocol
                ) -> dict[str, Any]:
    """The scope an HTTP/1.1 request would get (uvicorn's), from a request's pseudo-header fields and its
    other fields; `:authority` becomes `host`. ValueError when `:path` is not ASCII."""
    target = head[b":path"]
    raw_path, _, query = target.partition(b"?")
    path = raw_path.decode("ascii")
    if "%" in path:
        path = unquote(path)
    root = protocol.root_path
    return {
        "type": "http",
        "asgi": {"version": protocol.asgi_version, "spec_version": "2.3"},
        "http_version": "2",
        "server": protocol.server,
        "client": protocol.client,
        "scheme": protocol.scheme,
        "root_path": root,
        "method": head[b":method"].decode("ascii"),
        "path": root + path,
        "raw_path": root.encode("ascii") + raw_path,
        "query_string": query,
        "headers": headers,
        "state": protocol.app_state.copy(),
        "extensions": {"http.response.trailers": {}, **protocol.extensions},
    }


class Http2Stream:
    """A request and its response on one stream; `run(app)` is its task."""

    def __init__(self, protocol: Http2Protocol, stream_id: int, scope: dict[str, Any], ended: bool) -> None:
        self.protocol = protocol
        self.id = stream_id
        self.scope = scope
        self.chunks: deque[bytes] = deque()
        self.held = 0  # flow-controlled bytes received and not handed to the application (not acknowledged)
        self.ended = ended  # the client's END_STREAM arrived
        self.body_given = False  # the application was given the last body message
        self.disconnected = False  # reset, or the connection is gone: reads see http.disconnect, writes vanish
        self.last_read = protocol.listener.now  # for the body timeout
        self.event = asyncio.Event()  # body, its end, a reset or the response's end
        self.window = asyncio.Event()  # the peer opened a window (or the stream went away)
        self.started = False
        self.complete = False
        self._no_body = False
        self._trailers_expected = False
        self._body_over = False  # the last body message was sent
        self._trailers: list[tuple[bytes, bytes]] = []

    # What the connection tells the stream
    def data(self, data: bytes, flow_length: int) -> None:
        self.chunks.append(data)
        self.held += flow_length
        self.last_read = self.protocol.listener.now
        self.event.set()

    def end(self) -> None:
        self.ended = True
        self.event.set()

    def disconnect(self) -> None:
        self.disconnected = True
        self.event.set()
        self.window.set()

    # The ASGI application
    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except Exception:  # the boundary: one broken request must not take its connection's other streams along
            log.exception("Exception in ASGI application on an HTTP/2 stream")
            if not self.started and not self.disconnected:
                await self._internal_error()
            else:
                self.protocol.reset(self, "INTERNAL_ERROR")
        else:
            if not self.disconnected and not self.complete:
                log.error("ASGI callable returned without %s the response on an HTTP/2 stream",
                          "completing" if self.started else "starting")
                if self.started:
                    self.protocol.reset(self, "INTERNAL_ERROR")
                else:
                    await self._internal_error()
        finally:
            self.protocol.stream_done(self)

    async def _internal_error(self) -> None:
        await self.send({"type": "http.response.start", "status": 500,
                         "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")]})
        await self.send({"type": "http.response.body", "body": b"Internal Server Error"})

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.disconnected:
                return _DISCONNECT
            if self.chunks:
                body = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
                self.chunks.clear()
                held, self.held = self.held, 0
                self.protocol.acknowledge(self, held)
                self.body_given = self.ended
                return {"type": "http.request", "body": body, "more_body": not self.ended}
            if self.ended and not self.body_given:
                self.body_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.body_given and self.complete:
                return _DISCONNECT
            self.event.clear()
            await self.event.wait()

    async def send(self, message: dict[str, Any]) -> None:
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got {kind!r}.")
            self._start(message)
        elif kind == "http.response.body" and not self._body_over:
            await self._body(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.trailers" and self._trailers_expected and self._body_over and not self.complete:
            self._trailers += self._fields(message.get("headers", ()))
            if not message.get("more_trailers", False):
                self._write(lambda h2: h2.send_headers(self.id, self._trailers, end_stream=True))
                self._finish()
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} on an HTTP/2 stream in this state.")

    def _start(self, message: dict[str, Any]) -> None:
        status = int(message["status"])
        self.started = True
        self._no_body = self.scope["method"] == "HEAD" or status in _NO_BODY_STATUSES
        self._trailers_expected = bool(message.get("trailers", False))
        fields = [(b":status", b"%d" % status)]
        fields += self._fields(self.protocol.default_headers)
        fields += self._fields(message.get("headers", ()))
        self._write(lambda h2: h2.send_headers(self.id, fields))

    def _fields(self, headers: Any) -> list[tuple[bytes, bytes]]:
        fields = []
        for name, value in headers:
            name = bytes(name).lower()
            if name in CONNECTION_FIELDS:
                continue
            if _BAD_NAME.search(name) is not None:
                raise RuntimeError("Invalid HTTP header name.")
            if _BAD_VALUE.search(value) is not None:
                raise RuntimeError("Invalid HTTP header value.")
            fields.append((name, bytes(value)))
        return fields

    async def _body(self, body: bytes, more: bool) -> None:
        if self._no_body:
            body = b""
        final = not more
        end = final and not self._trailers_expected
        view = memoryview(body)
        while view or end:
            size = await self._writable(len(view))
            if size < 0:
                return  # the stream went away
            chunk, view = view[:size], view[size:]
            last = end and not view
            self._write(lambda h2, chunk=chunk, last=last: h2.send_data(self.id, bytes(chunk), end_stream=last))
            if last:
                break
        if final:
            self._body_over = True
            if not self._trailers_expected:
                self._finish()

    async def _writable(self, wanted: int) -> int:
        """How many bytes may go in the next DATA frame (0 when `wanted` is 0), once the socket has drained and
        the peer's windows allow; -1 when the stream went away meanwhile."""
        protocol = self.protocol
        while True:
            if protocol.write_paused:
                await protocol.drained()
            if self.disconnected:
                return -1
            if not wanted:
                return 0
            try:
                window = protocol.h2.local_flow_control_window(self.id)
            except StreamClosedError:
                return -1
            if window > 0:
                return min(window, wanted, protocol.h2.max_outbound_frame_size)
            self.window.clear()
            await self.window.wait()

    def _write(self, action: Any) -> None:
        try:
            action(self.protocol.h2)
        except StreamClosedError:
            self.disconnect()
            return
        except ProtocolError as exc:  # h2 refused what the application asked (a field it cannot carry...)
            raise RuntimeError(f"HTTP/2 refused the response: {exc}") from exc
        self.protocol.send_soon()

    def _finish(self) -> None:
        self.complete = True
        self.event.set()
