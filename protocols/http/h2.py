"""HTTP/2 on the proxy listener (RFC 9113): one connection's frames, its streams' limits, and its life.

StrictHttpProtocol hands a connection over when TLS ALPN chose "h2" or its first bytes are the client preface
(cleartext with prior knowledge). Each stream runs the proxy's ASGI application as an HTTP/1.1 request would
(protocols.http.h2_stream). What a client can make the gateway hold is bounded:

- SETTINGS_MAX_CONCURRENT_STREAMS (`h2_max_streams`): a stream beyond it is refused alone (REFUSED_STREAM, so the
  client may retry it); streams whose client reset them still count until their application has finished;
- request bodies: one window per stream (`h2_window_bytes`), and the connection window (four of them), held
  until the application reads them (only then acknowledged);
- header blocks: SETTINGS_MAX_HEADER_LIST_SIZE 64 KiB, and at most 64 CONTINUATION frames (h2's own limit);
- writes: while the socket's buffer is full, the connection stops reading (a PING or SETTINGS flood cannot grow
  the answers it owes) and applications wait in `send()`;
- rapid reset (CVE-2023-44487): more than RESET_LIMIT streams reset by the client or refused by the gateway
  within RESET_PERIOD seconds end the connection with GOAWAY ENHANCE_YOUR_CALM;
- a malformed frame ends the connection with GOAWAY and h2's error code (PROTOCOL_ERROR...), never a 500;
- time: the first request head must arrive within the listener's header timeout, a request body may not stall
  for its body timeout (408, or the stream is reset when its answer has begun), and a connection without
  streams closes after uvicorn's keep-alive timeout.

Graceful shutdown (uvicorn's, on SIGTERM) sends GOAWAY naming the last stream accepted, lets those streams
finish, then closes.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from protocols.http.h2_stream import Http2Stream, build_scope, check_head

if TYPE_CHECKING:
    from protocols.http.listener import ListenerState

log = logging.getLogger("protocols.http.h2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEADER_LIST_SIZE = 1 << 16  # as HTTP/1.1's head limit
CONNECTION_WINDOWS = 4  # the connection's receive window, in stream windows
RESET_LIMIT = 200
RESET_PERIOD = 10.0


class _GatewayH2Connection(H2Connection):
    """h2's connection with the stream limit left to the gateway: h2 answers a stream beyond
    SETTINGS_MAX_CONCURRENT_STREAMS with a connection error, where RFC 9113 5.1.2 allows refusing it alone."""

    @property
    def open_inbound_streams(self) -> int:
        super().open_inbound_streams  # noqa: B018  (its side effect: closed streams are forgotten)
        return 0


class Http2Protocol(asyncio.Protocol):
    """One HTTP/2 connection: frames in and out through h2, one Http2Stream task per request."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], loop: asyncio.AbstractEventLoop,
                 *, listener: ListenerState, address: str = "", extensions: dict[str, Any] | None = None) -> None:
        self.config = config
        self.app = config.loaded_app
        self.loop = loop
        self.server_state = server_state
        self.app_state = app_state
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        self.root_path: str = config.root_path
        self.asgi_version: str = config.asgi_version
        self.listener = listener
        self.extensions = extensions or {}
        limits = listener.limits
        self.max_streams = limits.h2_max_streams
        self._address = address  # the client address counted against the listener's cap ("" when not counted)
        # Outbound fields are checked by Http2Stream already (names, values, connection-specific fields).
        self.h2 = _GatewayH2Connection(H2Configuration(client_side=False, header_encoding=None,
                                                       validate_outbound_headers=False))
        self.h2.local_settings = Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: limits.h2_window_bytes,
            SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
        })
        self.streams: dict[int, Http2Stream] = {}  # streams whose application has not finished
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.write_paused = False
        self._send_scheduled = False
        self._drained: asyncio.Event | None = None
        self._head_since: float | None = None  # until the first request head arrives
        self._idle_since = listener.now
        self._last_accepted = 0  # GOAWAY's last stream id once shutting down
        self._goaway_sent = False
        self._resets = 0
        self._resets_since = 0.0
        self.held = 0  # request-body bytes received and not read by their applications yet (not acknowledged)
        self.held_peak = 0  # the most ever held at once

    # Connection life
    def take_over(self, transport: asyncio.Transport, server: Any, client: Any, scheme: str, since: float,
                  first_bytes: bytes = b"") -> None:
        """Serve `transport` from now on (StrictHttpProtocol's hand-over); `first_bytes` were read already."""
        self.transport = transport
        self.server, self.client, self.scheme = server, client, scheme
        self._head_since = since
        self.server_state.connections.add(self)
        self.listener.watch(self, self.loop)
        transport.set_protocol(self)
        self.h2.initiate_connection()
        window = self.listener.limits.h2_window_bytes * CONNECTION_WINDOWS
        self.h2.increment_flow_control_window(window - 65535)  # the connection's initial window is 65,535
        self.flush()
        if first_bytes:
            self.data_received(first_bytes)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.listener.connections.discard(self)
        if self._address:
            self.listener.release(self._address)
            self._address = ""
        for stream in self.streams.values():
            stream.disconnect()
        self.write_paused = False
        if self._drained is not None:
            self._drained.set()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: GOAWAY now, close once the streams accepted so far are done."""
        self._goaway(ErrorCodes.NO_ERROR)
        if not self.streams:
            self.transport.close()

    def _goaway(self, code: ErrorCodes) -> None:
        """A GOAWAY written directly: h2's own close_connection would refuse every frame after it, and the
        streams accepted so far must still be answered."""
        if self._goaway_sent or self.transport.is_closing():
            return
        self._goaway_sent = True
        self._last_accepted = self.h2.highest_inbound_stream_id
        frame = GoAwayFrame(0, last_stream_id=self._last_accepted, error_code=code)
        self.flush()
        self.transport.write(frame.serialize())

    def _abort(self, code: ErrorCodes, message: str) -> None:
        log.info("HTTP/2 connection from %s ended: %s", self.client[0] if self.client else "?", message)
        self._goaway(code)
        self.transport.close()

    # Flow of bytes
    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as exc:  # h2 has queued its GOAWAY with the error's code
            self.flush()
            self._goaway_sent = True
            log.info("HTTP/2 connection from %s ended: %s", self.client[0] if self.client else "?", exc)
            self.transport.close()
            return
        for event in events:
            if isinstance(event, DataReceived):
                self._on_data(event)
            elif isinstance(event, RequestReceived):
                self._on_request(event)
            elif isinstance(event, StreamEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.end()
            elif isinstance(event, WindowUpdated):
                self._on_window(event.stream_id)
            elif isinstance(event, RemoteSettingsChanged):
                if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self._on_window(0)
            elif isinstance(event, StreamReset):
                self._on_reset(event)
            elif isinstance(event, ConnectionTerminated):
                self._goaway(ErrorCodes.NO_ERROR)
                if not self.streams:
                    self.transport.close()
            if self.transport.is_closing():
                return
        self.flush()

    def flush(self) -> None:
        """Write the frames h2 has queued, now."""
        data = self.h2.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def send_soon(self) -> None:
        """Write the queued frames at the end of this loop iteration: the frames of every stream that answered
        meanwhile go out in one write (a write per frame costs a system call each)."""
        if not self._send_scheduled:
            self._send_scheduled = True
            self.loop.call_soon(self._send_scheduled_frames)

    def _send_scheduled_frames(self) -> None:
        self._send_scheduled = False
        self.flush()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.transport.is_closing():
            self.transport.resume_reading()
        if self._drained is not None:
            self._drained.set()

    async def drained(self) -> None:
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()
        while self.write_paused:
            await self._drained.wait()

    def acknowledge(self, stream: Http2Stream, size: int) -> None:
        """The application read `size` flow-controlled bytes of `stream`: the client may send as many again."""
        self.held -= size
        if size and not self.transport.is_closing():
            self.h2.acknowledge_received_data(size, stream.id)
            self.send_soon()

    def reset(self, stream: Http2Stream, code: str) -> None:
        stream.disconnect()
        if not self.transport.is_closing():
            self._reset(stream.id, ErrorCodes[code])
            self.send_soon()

    def _reset(self, stream_id: int, code: ErrorCodes) -> None:
        """RST_STREAM, unless the stream is closed already (the client's own reset may be in the same read)."""
        with contextlib.suppress(StreamClosedError):
            self.h2.reset_stream(stream_id, code)

    # Events
    def _on_request(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        self._head_since = None
        if self._goaway_sent and stream_id > self._last_accepted:
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)  # begun after GOAWAY: never served
            return
        if len(self.streams) >= self.max_streams:
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            self._count_reset()
            return
        head: dict[bytes, bytes] = {}
        headers: list[tuple[bytes, bytes]] = []
        underscores = self.listener.limits.underscore_headers
        refusal = None
        for name, value in event.headers or ():
            if name[:1] == b":":
                head[name] = value
            elif 95 in name and underscores != "allow":  # "_": dropped or refused, as StrictHttpProtocol does
                if underscores == "reject":
                    refusal = (400, "invalid_header_name", f"Field name {name.decode('latin-1')!r} has an "
                               "underscore; this gateway refuses them.")
            else:
                headers.append((name, value))
        hosts = [value for name, value in headers if name == b"host"]
        authority = head.get(b":authority", hosts[0] if len(hosts) == 1 else None)
        refusal = refusal or check_head(head, authority)
        if refusal is not None:
            self._answer(stream_id, head, *refusal)
            return
        headers = [(name, value) for name, value in headers if name != b"host"]
        if authority is not None:
            headers.insert(0, (b"host", authority))
        ended = event.stream_ended is not None
        if not ended and not any(name == b"content-length" for name, _ in headers):
            # A body of unknown length: framed as HTTP/1.1 would frame it, so the application streams it.
            headers.append((b"transfer-encoding", b"chunked"))
        stream = Http2Stream(self, stream_id, build_scope(head, headers, self), ended)
        self.streams[stream_id] = stream
        task = self.loop.create_task(stream.run(self.app))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _answer(self, stream_id: int, head: dict[bytes, bytes], status: int, kind: str, message: str) -> None:
        """The gateway's own answer on one stream (the JSON refusal of an HTTP/1.1 head), access-logged."""
        request_id = self.listener.request_ids.take(b"").decode()
        body = json.dumps({"error": message, "type": kind, "request_id": request_id}).encode()
        method = head.get(b":method", b"").decode("latin-1")
        fields = [(b":status", b"%d" % status), *self.default_headers, (b"content-type", b"application/json"),
                  (b"content-length", b"%d" % len(body)), (b"x-request-id", request_id.encode())]
        try:
            self.h2.send_headers(stream_id, fields, end_stream=method == "HEAD")
            if method != "HEAD":
                self.h2.send_data(stream_id, body, end_stream=True)  # far below any initial window
        except StreamClosedError:
            return  # the client reset it meanwhile
        log_ = self.listener.access_log
        if log_ is not None:
            target = head.get(b":path", b"").partition(b"?")[0][:200].decode("latin-1")
            log_.record(time.time(), request_id, method, target, None, None, status, 0.0, 0, 0,
                        self.client[0] if self.client else "", kind)

    def _on_data(self, event: DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        size = event.flow_controlled_length
        if stream is None or stream.body_given or stream.disconnected:
            if size:  # nobody will read it: the client may send as much again at once
                self.h2.acknowledge_received_data(size, event.stream_id)
            return
        stream.data(event.data, size)
        held = self.held = self.held + size
        if held > self.held_peak:
            self.held_peak = held

    def _on_window(self, stream_id: int) -> None:
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.window.set()
        else:
            for stream in self.streams.values():
                stream.window.set()

    def _on_reset(self, event: StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            self._forget_held(stream)
            stream.disconnect()
        if event.remote_reset:
            self._count_reset()

    def _count_reset(self) -> None:
        now = self.listener.clock()
        if now - self._resets_since > RESET_PERIOD:
            self._resets_since, self._resets = now, 0
        self._resets += 1
        if self._resets > RESET_LIMIT:
            for stream in self.streams.values():
                stream.disconnect()
            self._abort(ErrorCodes.ENHANCE_YOUR_CALM,
                        f"more than {RESET_LIMIT} streams reset or refused within {RESET_PERIOD:g} s")

    def _forget_held(self, stream: Http2Stream) -> None:
        """Body bytes of `stream` nobody will read: handed back to the connection window."""
        held, stream.held = stream.held, 0
        stream.chunks.clear()
        if held:
            self.held -= held
            if not self.transport.is_closing():
                self.h2.acknowledge_received_data(held, stream.id)

    def stream_done(self, stream: Http2Stream) -> None:
        """A stream's application has finished: a client still sending its body is told to stop (RFC 9113
        8.1: RST_STREAM NO_ERROR after a complete answer)."""
        self.streams.pop(stream.id, None)
        self._idle_since = self.listener.now
        if self.transport.is_closing():
            return
        self._forget_held(stream)
        if not stream.ended and not stream.disconnected:
            self._reset(stream.id, ErrorCodes.NO_ERROR if stream.complete else ErrorCodes.CANCEL)
        if self._goaway_sent and not self.streams:
            self.flush()
            self.transport.close()
        else:
            self.send_soon()

    # Timeouts, checked by the listener's sweep
    def check_timeouts(self, now: float) -> None:
        limits = self.listener.limits
        since = self._head_since
        if since is not None:
            if now - since > limits.header_timeout:
                self._abort(ErrorCodes.NO_ERROR, "no request head within the header timeout")
            return
        if not self.streams:
            if now - self._idle_since > self.config.timeout_keep_alive:
                self._abort(ErrorCodes.NO_ERROR, "idle")
            return
        for stream in list(self.streams.values()):
            if stream.ended or stream.disconnected or stream.chunks or now - stream.last_read <= limits.body_timeout:
                continue
            if self.write_paused:
                stream.last_read = now  # the client is not reading our answers: not a stalled upload
            elif stream.started:
                self.reset(stream, "CANCEL")
            else:
                stream.scope["state"]["rusta.refused"] = (408, "request_body_timeout")  # for the access log
                stream.disconnect()
                self._answer(stream.id, {b":method": stream.scope["method"].encode(),
                                         b":path": stream.scope["raw_path"]},
                             408, "request_body_timeout", f"The request body stalled for {limits.body_timeout:g} s.")
                self.flush()
