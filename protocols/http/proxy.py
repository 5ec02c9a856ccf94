"""The ASGI application of the proxy listener: match a route, pick a backend, stream the exchange, answer errors."""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from protocols.balancing import Balancing
from protocols.errors import (
    ClientDisconnected,
    GatewayError,
    InternalGatewayError,
    MethodNotAllowed,
    NoRoute,
    protocol_error,
)
from protocols.health import HEALTH_PATHS, health_status
from protocols.http.accesslog import AccessLog
from protocols.http.headers import (
    VIA,
    Network,
    RequestHead,
    RequestIds,
    TrustedPeers,
    host_key,
    normalize_path,
    raw_path,
    scan_request_headers,
)
from protocols.table import LiveTable, live
from protocols.upstream import DEFAULT_IDLE_TIMEOUT, HOP_BY_HOP, UpstreamClient, UpstreamResponse

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

_METHODS = {m: m.encode() for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
_REPLACED_RESPONSE_HEADERS = frozenset({b"x-request-id", b"date", b"server"})
_SCHEMES = {"http": b"http", "https": b"https"}
# The client's view of the exchange (499, as nginx logs it) when it left before an answer could be sent.
CLIENT_CLOSED = 499


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """Everything ProxyApp needs from configuration, built once at start-up (the proxy never reads settings)."""

    trusted_proxies: tuple[Network, ...] = ()
    access_log: bool = True
    pool_size: int = 256
    state: LiveTable = field(default=live)
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    ssl_context: ssl.SSLContext | None = None  # for https backends; None means the system's default trust


class _Exchange:
    """What one request did, for error handling and the access-log line."""

    __slots__ = ("request_id", "route", "backend", "status", "answered", "bytes_in", "bytes_out", "error",
                 "body_read")

    def __init__(self, request_id: bytes) -> None:
        self.request_id = request_id
        self.route: str | None = None
        self.backend: str | None = None
        self.status = 0
        self.answered = False  # the response head went to the client: errors can only cut the response short
        self.bytes_in = 0
        self.bytes_out = 0
        self.error: str | None = None
        self.body_read = True  # the request body has been read to the end (or there is none)


class ProxyApp:
    """ASGI 3 application for the proxy listener ("http" scopes only; the lead routes the rest elsewhere).

    It never imports Django and never touches the ORM: it reads `options.state.table`, which the table watcher
    replaces as a whole. Call `await app.aclose()` at shutdown to close pooled connections and flush the log.
    """

    def __init__(self, options: ProxyOptions | None = None, access_log: AccessLog | None = None) -> None:
        options = options or ProxyOptions()
        self.options = options
        self.state = options.state
        self.client = UpstreamClient(
            pool_size=options.pool_size, idle_timeout=options.idle_timeout, ssl_context=options.ssl_context,
            # The backend's X-Request-ID is replaced by ours so the client sees exactly one; like nginx, the
            # server's own Date and Server go out instead of the backend's (two Date fields would be invalid).
            strip_response_headers=HOP_BY_HOP | _REPLACED_RESPONSE_HEADERS,
        )
        self.balancing = Balancing()
        self.trusted = TrustedPeers(options.trusted_proxies)
        self.request_ids = RequestIds()
        self.access_log = (access_log or AccessLog()) if options.access_log else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"ProxyApp serves 'http' scopes, not {scope['type']!r}")
        if scope["path"] in HEALTH_PATHS:
            await self._health(scope, send)
            return
        started = time.time()
        clock = time.perf_counter()
        exchange = _Exchange(b"")
        path = scope["path"]
        try:
            head = scan_request_headers(scope["headers"])
            exchange.request_id = self.request_ids.take(head.request_id)
            path = raw_path(scope)
            await self._proxy(scope, receive, send, head, path, exchange)
        except GatewayError as exc:
            await self._fail(send, exchange, exc)
        except ClientDisconnected:
            exchange.error = "client_disconnected"
            if not exchange.answered:
                exchange.status = CLIENT_CLOSED
        except Exception:  # the last resort: Rusta answers 502, never 500
            if not exchange.request_id:
                exchange.request_id = self.request_ids.take(b"")
            log.exception("unexpected failure proxying %s %s (request %s)", scope["method"], path,
                          exchange.request_id.decode("latin-1"))
            await self._fail(send, exchange, InternalGatewayError())
        if self.access_log is not None:
            client = scope.get("client")
            self.access_log.record(
                started, exchange.request_id.decode("latin-1"), scope["method"], path, exchange.route,
                exchange.backend, exchange.status, time.perf_counter() - clock, exchange.bytes_in,
                exchange.bytes_out, client[0] if client else "", exchange.error,
            )

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, head: RequestHead, path: str,
                     exchange: _Exchange) -> None:
        method = scope["method"]
        table = self.state.table
        clean_path = normalize_path(path)
        match = table.match(method, host_key(head.host), clean_path)
        route = match.route
        if route is None:
            if match.allow:
                raise MethodNotAllowed(method, clean_path, match.allow)
            raise NoRoute(method, clean_path)
        exchange.route = route.name
        if route.protocol != "http":
            raise protocol_error(route.name, route.protocol)
        client = scope.get("client")
        client_ip = client[0] if client else ""
        balancer, backend = self.balancing.registry(table).pick(route, client_ip)
        pool = self.client.pool(backend)
        exchange.backend = pool.label
        spec = route.spec

        headers = [(b"host", head.host if spec.preserve_host and head.host else pool.host_header)]
        headers += head.forward
        peer = client_ip.encode()
        if client_ip in self.trusted:
            forwarded_for = head.forwarded_for + b", " + peer if head.forwarded_for else peer
            proto = head.forwarded_proto or _SCHEMES.get(scope["scheme"], b"http")
            forwarded_host = head.forwarded_host or head.host
        else:
            forwarded_for = peer
            proto = _SCHEMES.get(scope["scheme"], b"http")
            forwarded_host = head.host
        headers.append((b"x-forwarded-for", forwarded_for))
        headers.append((b"x-forwarded-proto", proto))
        if forwarded_host:
            headers.append((b"x-forwarded-host", forwarded_host))
        headers.append((b"via", head.via + b", " + VIA if head.via else VIA))
        headers.append((b"x-request-id", exchange.request_id))

        target = route.upstream_path(match.params, clean_path).encode("latin-1")
        query = scope.get("query_string")
        if query:
            target += b"?" + query
        body: bytes | AsyncIterator[bytes] = b""
        if head.has_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client went away before sending its body")
            first: bytes = message.get("body", b"")
            exchange.bytes_in = len(first)
            if message.get("more_body", False):
                exchange.body_read = False
                body = _request_body(receive, first, exchange)
            else:
                body = first

        failed = True
        clock = time.perf_counter()
        try:
            response = await self.client.request(
                pool, _METHODS.get(method) or method.encode(), target, headers, body, head.content_length,
                connect_timeout=spec.connect_timeout, read_timeout=spec.read_timeout,
            )
            await self._respond(response, receive, send, exchange)
            failed = False
        finally:
            balancer.release(backend, time.perf_counter() - clock, failed)

    async def _respond(self, response: UpstreamResponse, receive: Receive, send: Send,
                       exchange: _Exchange) -> None:
        status = exchange.status = response.status
        headers = response.headers
        headers.append((b"x-request-id", exchange.request_id))
        headers.append((b"via", VIA))
        if response.complete:
            # The common case: the whole response arrived with its head. The connection is back in the pool
            # before the client is even answered.
            payload = response.body()
            exchange.answered = True
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            exchange.bytes_out = len(payload)
            return
        exchange.answered = True
        await send({"type": "http.response.start", "status": status, "headers": headers})
        # uvicorn's send() goes quiet once the client has gone, so only receive() can tell: watch it while
        # streaming and cut the backend off the moment the client leaves.
        watcher = asyncio.get_running_loop().create_task(_client_gone(receive)) if exchange.body_read else None
        if watcher is not None:
            watcher.add_done_callback(lambda task: _cut_off(task, response))
        try:
            async for chunk in response:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                exchange.bytes_out += len(chunk)
        finally:
            if watcher is not None:
                watcher.cancel()
            response.close()
        await send({"type": "http.response.body", "body": b""})

    async def _health(self, scope: Scope, send: Send) -> None:
        """protocols.health's answer, for this app's table (health_app always reads the process-wide one)."""
        status, body = health_status(scope["path"], self.state)
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload)),
            (b"cache-control", b"no-store"),
        ]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})

    async def _fail(self, send: Send, exchange: _Exchange, exc: GatewayError) -> None:
        exchange.error = exc.type
        if exchange.answered:
            # A second head is impossible: return without finishing the body, and the server closes the
            # connection, so the client sees a truncated response rather than a complete-looking one.
            return
        request_id = exchange.request_id
        status, headers, payload = exc.response(request_id.decode("latin-1"))
        headers.append((b"x-request-id", request_id))
        exchange.status = status
        exchange.answered = True
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def aclose(self) -> None:
        """Shutdown: close idle upstream connections and write pending access-log lines."""
        await self.client.aclose()
        if self.access_log is not None:
            self.access_log.flush()


async def _request_body(receive: Receive, first: bytes, exchange: _Exchange) -> AsyncIterator[bytes]:
    """The request body as it arrives from the server, which stops reading the socket until we ask again."""
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away during the upload")
        chunk = message.get("body", b"")
        exchange.bytes_in += len(chunk)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            exchange.body_read = True
            return


def _cut_off(watcher: asyncio.Task[ClientDisconnected], response: UpstreamResponse) -> None:
    if not watcher.cancelled():
        response.cancel(watcher.exception() or watcher.result())


async def _client_gone(receive: Receive) -> ClientDisconnected:
    """Returns once the ASGI server reports the client's disconnection."""
    while (await receive())["type"] != "http.disconnect":
        pass
    return ClientDisconnected("the client went away during the download")
