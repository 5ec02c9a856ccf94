"""A real WebSocket backend on 127.0.0.1 for the suite: the `websockets` server in a background thread.

Paths (the query is parsed for parameters):
  anything else              echoes every message, text as text and binary as binary
  /close?code=N&reason=R     closes with that code and reason after the first message
  /big?bytes=N               sends one binary message of N bytes, then echoes
  /flood?size=N              sends binary messages of N bytes (default 64 KiB) as fast as the connection takes
                             them, counting `flood_sent`, until closed or `FLOOD_LIMIT` bytes (bounded)
  /forbidden                 refuses the upgrade with HTTP 403

Offered subprotocols: "chat.v2" is chosen when offered, nothing otherwise. Every 101 answer sets the cookie
`backend=yes`. Every handshake is recorded in `handshakes`; every connection's end in `endings` (the close code
and reason it received, and when).
"""
from __future__ import annotations

import asyncio
import itertools
import os
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from protocols.table import BackendSpec, RouteSpec

FLOOD_LIMIT = 2 << 30  # bytes: a flood that was never paused stops here rather than running forever


_ids = itertools.count(5000)


def ws_route(name: str, path: str, port: int, *, scheme: str = "ws", **extra: Any) -> RouteSpec:
    """A WebSocket route to one backend on 127.0.0.1:`port`."""
    route_id = next(_ids)
    backend = BackendSpec(id=route_id, scheme=scheme, host="127.0.0.1", port=port)
    extra.setdefault("methods", ("GET",))
    return RouteSpec(id=route_id, name=name, external_path=path, backends=(backend,), protocol="websocket", **extra)


@dataclass
class SeenHandshake:
    """An upgrade request as the backend received it."""

    path: str
    headers: list[tuple[str, str]]
    subprotocols: list[str]

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Ending:
    """How a connection ended, seen from the backend."""

    code: int | None
    reason: str
    at: float  # time.monotonic()


@dataclass
class WebSocketBackend:
    """`with WebSocketBackend() as backend:`; `backend.port` is the ephemeral port."""

    port: int = 0
    handshakes: list[SeenHandshake] = field(default_factory=list)
    endings: list[Ending] = field(default_factory=list)
    flood_sent: int = 0
    ended: threading.Event = field(default_factory=threading.Event)
    ssl: ssl_module.SSLContext | None = None  # serves wss:// with this context when set

    def __post_init__(self) -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name="test-ws-backend", daemon=True)

    def __enter__(self) -> WebSocketBackend:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket backend did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)

    def wait_until(self, condition: Callable[[WebSocketBackend], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self):
                return True
            time.sleep(0.01)
        return condition(self)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._process_request,
                         process_response=_set_cookie,
                         select_subprotocol=_select_subprotocol, compression=None, max_size=None,
                         ssl=self.ssl) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        offered = [token.strip() for value in request.headers.get_all("Sec-WebSocket-Protocol")
                   for token in value.split(",")]
        self.handshakes.append(SeenHandshake(request.path, list(request.headers.raw_items()), offered))
        if urlsplit(request.path).path == "/forbidden":
            return Response(403, "Forbidden", Headers([("Content-Length", "0")]), b"")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        parts = urlsplit(connection.request.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        try:
            if parts.path == "/flood":
                await self._flood(connection, int(query.get("size", 65536)))
            else:
                if parts.path == "/big":
                    await connection.send(b"x" * int(query["bytes"]))
                async for message in connection:
                    if parts.path == "/close":
                        await connection.close(int(query.get("code", 1000)), query.get("reason", ""))
                        break
                    await connection.send(message)
        except ConnectionClosed:
            pass
        await connection.wait_closed()
        received = connection.protocol.close_rcvd
        self.endings.append(Ending(received.code if received else None, received.reason if received else "",
                                   time.monotonic()))
        self.ended.set()

    async def _flood(self, connection: ServerConnection, size: int) -> None:
        chunk = os.urandom(size)  # incompressible: per-message deflate must not shrink the flood
        while self.flood_sent < FLOOD_LIMIT:
            await connection.send(chunk)
            self.flood_sent += size


def _set_cookie(connection: ServerConnection, request: Request, response: Response) -> Response:
    if response.status_code == 101:
        response.headers["Set-Cookie"] = "backend=yes; Path=/"
    return response


def _select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return Subprotocol("chat.v2") if "chat.v2" in offered else None
