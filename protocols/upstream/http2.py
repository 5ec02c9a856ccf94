"""One upstream HTTP/2 connection: an asyncio protocol around h2, multiplexing streams with flow control both ways.

Receiving: every stream may hold at most STREAM_WINDOW unread bytes, because its window is re-opened only as
the caller reads (`Http2Stream.read`); the connection's window is re-opened as data arrives, so one slow reader
never stalls the other streams. Sending: `Http2Stream.send` waits for the peer's windows and for the socket.
"""
from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from protocols.errors import UpstreamError, UpstreamInvalidResponse, UpstreamReset
from protocols.upstream.http2_stream import STREAM_WINDOW, Headers, Http2Stream, UpstreamStreamReset, code_name

__all__ = ["CONNECTION_WINDOW", "IDLE_TIMEOUT", "STREAM_WINDOW", "Headers", "Http2Connection", "Http2Stream",
           "UpstreamStreamReset"]

# The connection's receive window; re-opened on receipt, so it only paces the peer, never our memory.
CONNECTION_WINDOW = 4 * 1024 * 1024
_MAX_FRAME = 64 * 1024
# A connection without streams for this long is closed (backends that are gone from the table included).
IDLE_TIMEOUT = 60.0


class _ClientConnection(h2.connection.H2Connection):
    """h2's client side, except that a GOAWAY leaves the connection's state to Http2Connection: h2 4.4 closes it
    at once and then refuses, as a protocol error, the frames the server still sends for streams in flight
    (python-hyper/h2 issue 1199), which would lose every call of a backend that restarts or ages out a
    connection, and even the GOAWAY's own news when more frames follow it in one read."""

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        event = h2.events.ConnectionTerminated()
        try:
            event.error_code = h2.errors.ErrorCodes(frame.error_code)
        except ValueError:
            event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class Http2Connection(asyncio.Protocol):
    """A client connection to one backend (cleartext with prior knowledge, or TLS that chose h2 by ALPN).

    Usable for new streams while `ready` (the server's SETTINGS arrived), neither closed nor told to go away,
    and below the server's max_concurrent_streams (`has_room`).
    """

    def __init__(self, label: str, authority: bytes, scheme: bytes, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.label = label  # host:port, for errors and metrics
        self.authority = authority
        self.scheme = scheme
        self.loop = asyncio.get_running_loop()
        config = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_inbound_headers=True)
        self.h2 = _ClientConnection(config)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Http2Stream] = {}
        self.senders: set[Http2Stream] = set()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.closed = False
        self.going_away = False
        self.writing_paused = False
        self._conn_unacked = 0
        self.idle_timeout = idle_timeout
        self._idle_timer: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        return self.ready.done() and not self.ready.exception() and not self.closed and not self.going_away

    @property
    def has_room(self) -> bool:
        return len(self.streams) < self.h2.remote_settings.max_concurrent_streams

    def open_stream(self, method: bytes, path: bytes, headers: Headers, end: bool = False,
                    authority: bytes = b"") -> Http2Stream:
        """Send a request head on a new stream (its pseudo-fields first, `headers` as given after them);
        :authority is the backend's unless `authority` is given."""
        stream_id = self.h2.get_next_available_stream_id()
        head = [(b":method", method), (b":scheme", self.scheme), (b":authority", authority or self.authority),
                (b":path", path), *headers]
        stream = self.streams[stream_id] = Http2Stream(self, stream_id)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self.h2.send_headers(stream_id, head, end_stream=end)
        self.flush()
        return stream

    def stream_done(self) -> None:
        if self.streams or self.closed:
            return
        if self.going_away:
            self.close()
        elif self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.idle_timeout, self._idle)

    def _idle(self) -> None:
        self._idle_timer = None
        if not self.streams:
            self.close()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.h2.close_connection()
            self.flush()
        except h2.exceptions.ProtocolError:
            pass  # the connection is already past saying goodbye
        self._lost(UpstreamReset(self.label, "as the gateway closed the connection"))
        if self.transport is not None:
            self.transport.close()

    # --- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: _MAX_FRAME,
        })
        # Values given at construction count as in force (the peer applies them before any frame of ours).
        self.h2.max_inbound_frame_size = _MAX_FRAME
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.flush()  # h2's GOAWAY
            self._lost(UpstreamInvalidResponse(self.label, f"HTTP/2 protocol error ({exc})"))
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            self._handle(event)
        if self._conn_unacked >= CONNECTION_WINDOW // 4 and not self.closed:
            self.h2.increment_flow_control_window(self._conn_unacked)
            self._conn_unacked = 0
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(UpstreamReset(self.label, "during the exchange"))

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        for stream in list(self.senders):
            stream.wake_sender()

    # --- h2 events -----------------------------------------------------------------------------------------

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            self._conn_unacked += event.flow_controlled_length
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.received(event.data, event.flow_controlled_length)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.headers = [(bytes(n), bytes(v)) for n, v in event.headers]
                stream.status = int(dict(stream.headers).get(b":status", b"0"))
                stream.headers = [(n, v) for n, v in stream.headers if not n.startswith(b":")]
                stream.head_done = True
                stream.wake()
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = [(bytes(n), bytes(v)) for n, v in event.headers]
                stream.wake()
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
                stream.wake()
                stream.wake_sender()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream.fail(UpstreamStreamReset(self.label, int(event.error_code or 0)))
                self.stream_done()
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.wake_sender()
            else:
                for stream in list(self.senders):
                    stream.wake_sender()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.ready.done():
                self.ready.set_result(None)
            for stream in list(self.senders):
                stream.wake_sender()  # a new initial window size opens every stream's window
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._went_away(event.last_stream_id, int(event.error_code or 0), event.additional_data)

    def _went_away(self, last_stream_id: int | None, code: int, reason: bytes | None) -> None:
        """GOAWAY: no new streams; those above `last_stream_id` were never processed; with an error code, none
        will finish and the connection is closed."""
        self.going_away = True
        last = last_stream_id if last_stream_id is not None else 0
        detail = f"(GOAWAY {code_name(code)}{': ' + reason.decode('latin-1') if reason else ''})"
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last or code:
                del self.streams[stream_id]
                stream.fail(UpstreamReset(self.label, f"{detail} before finishing the stream"))
        if code:
            self.close()
        else:
            self.stream_done()

    def _lost(self, exc: UpstreamError) -> None:
        self.closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: whoever connects reads it, nobody else need
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.fail(exc)
