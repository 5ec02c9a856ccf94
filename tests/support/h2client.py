"""A blocking HTTP/2 client for the suite, frame by frame over one loopback socket (h2's client side).

It sees what curl and httpx hide: RST_STREAM and GOAWAY codes, trailers, windows. With `obey_limits=False` it
opens streams past the server's SETTINGS_MAX_CONCURRENT_STREAMS, as a hostile client would.
"""
from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)


class _UnboundedClient(H2Connection):
    @property
    def open_outbound_streams(self) -> int:
        return 0


@dataclass
class H2Response:
    """What arrived on one stream."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset: int | None = None  # the RST_STREAM error code, when the server reset the stream
    data_frames: int = 0

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


class H2Client:
    """`with H2Client(port) as client:` connects and sends the preface (with TLS: ALPN "h2")."""

    def __init__(self, port: int, *, obey_limits: bool = True, ssl_context: ssl.SSLContext | None = None,
                 window: int | None = None, acknowledge: bool = True, preface_in_pieces: bool = False) -> None:
        self.port = port
        self.ssl_context = ssl_context
        cls = H2Connection if obey_limits else _UnboundedClient
        self.conn = cls(H2Configuration(client_side=True, header_encoding=None))
        self.window = window
        self.acknowledge = acknowledge  # hand DATA back to the server's window as it arrives
        self.preface_in_pieces = preface_in_pieces  # the 24-byte preface a byte at a time (each its own segment)
        self.responses: dict[int, H2Response] = {}
        self.terminated: ConnectionTerminated | None = None
        self.closed = False
        self.sock: socket.socket | ssl.SSLSocket = socket.socket()

    def __enter__(self) -> H2Client:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock = raw if self.ssl_context is None else self.ssl_context.wrap_socket(raw, server_hostname="localhost")
        self.conn.initiate_connection()
        if self.preface_in_pieces:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = self.conn.data_to_send()
            for index in range(24):
                self.sock.sendall(data[index:index + 1])
                time.sleep(0.01)
            self.sock.sendall(data[24:])
        if self.window is not None:
            from h2.settings import SettingCodes

            self.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: self.window})
        self.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, headers: Iterable[tuple[str, str]] = (), body: bytes | None = None,
                end: bool = True, authority: str = "a.example") -> int:
        """Open a stream; with `end` the request ends with its body (or its head when there is none)."""
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", authority), *headers]
        self.conn.send_headers(stream_id, fields, end_stream=end and body is None)
        self.responses[stream_id] = H2Response()
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=end)
        self.flush()
        return stream_id

    def reset(self, stream_id: int) -> None:
        self.conn.reset_stream(stream_id)
        self.flush()

    def read_until(self, done: Callable[[H2Client], bool], timeout: float = 10.0) -> bool:
        """Read and handle frames until `done(self)` or the connection closes; False on timeout or close."""
        deadline = time.monotonic() + timeout
        while not done(self):
            if self.closed:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(min(remaining, 0.05))  # `done` may watch the server's state, not only frames
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                continue
            for event in self.conn.receive_data(data):
                self._handle(event)
            self.flush()
        return True

    def response(self, stream_id: int, timeout: float = 10.0) -> H2Response:
        """The stream's response once it ended or was reset."""
        self.read_until(lambda c: c.responses[stream_id].ended or c.responses[stream_id].reset is not None, timeout)
        return self.responses[stream_id]

    def _handle(self, event: Event) -> None:
        stream_id: Any = getattr(event, "stream_id", None)
        response = self.responses.get(stream_id) if stream_id else None
        if isinstance(event, ResponseReceived) and response is not None:
            response.headers = list(event.headers or ())
        elif isinstance(event, DataReceived) and response is not None:
            response.body += event.data or b""
            response.data_frames += 1
            if self.acknowledge and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, TrailersReceived) and response is not None:
            response.trailers = list(event.headers or ())
        elif isinstance(event, StreamEnded) and response is not None:
            response.ended = True
        elif isinstance(event, StreamReset) and response is not None:
            response.reset = int(event.error_code or 0)
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event
            if event.error_code == 0:
                # h2 would refuse every frame after a GOAWAY; a graceful one still answers the streams it names.
                self.conn.state_machine.state = ConnectionState.CLIENT_OPEN


class ListenerApp:
    """Serves an ASGI `app` on the proxy listener's protocol (uvicorn, uvloop) on `port`, from a thread; with
    `ssl_context` over TLS (give it ALPN ["h2", "http/1.1"] to let clients pick HTTP/2)."""

    def __init__(self, app: Any, limits: Any = None, ssl_context: ssl.SSLContext | None = None) -> None:
        import uvicorn

        from protocols.http.listener import ListenerLimits, ListenerState, protocol_factory
        from tests.support.background import UvicornThread

        self.listener = ListenerState(limits or ListenerLimits())

        class Wrapped:
            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                await app(scope, receive, send)

            async def aclose(self) -> None:
                return None

        def server(wrapped: Wrapped) -> uvicorn.Server:
            http: Any = protocol_factory(self.listener)
            config = uvicorn.Config(wrapped, loop="uvloop", http=http, lifespan="off", access_log=False,
                                    log_level="warning", timeout_graceful_shutdown=5)
            config.load()
            config.ssl = ssl_context  # (uvicorn builds its own from files; this one carries ALPN)
            return uvicorn.Server(config)

        self._runner = UvicornThread(Wrapped, server, "test-h2-app")
        self.port = self._runner.port

    def __enter__(self) -> ListenerApp:
        self._runner.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.stop()

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the server's loop."""
        loop = self._runner._loop
        assert loop is not None
        loop.call_soon_threadsafe(callback)

    def http2_connections(self) -> list[Any]:
        from protocols.http.h2 import Http2Protocol

        return [c for c in list(self.listener.connections) if isinstance(c, Http2Protocol)]
