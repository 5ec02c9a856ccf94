"""The ASGI application for "websocket" scopes on the proxy listener: match, guard, authorize, pick a backend,
open the backend side, accept, relay; plus the registry that closes tunnels whose route was deleted, and shutdown."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection

from protocols.errors import GatewayError, InternalGatewayError, NoRoute
from protocols.http.headers import (
    RequestHead,
    RequestIds,
    host_key,
    normalize_path,
    raw_path,
    scan_request_headers,
)
from protocols.leases import lease_backend
from protocols.table import CompiledRoute
from protocols.websocket.guards import check_handshake
from protocols.websocket.handshake import (
    Admission,
    UpgradeRejected,
    UpstreamConnect,
    answer_fields,
    authorize_handshake,
    client_ip,
    handshake_error,
    upstream_request,
)
from protocols.websocket.metrics import RouteCounters, WebSocketMetrics
from protocols.websocket.relay import GOING_AWAY, UPSTREAM_MAX_QUEUE, Tunnel

if TYPE_CHECKING:
    from protocols.dataplane import DataPlane
    from protocols.plan import RoutePlan

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

_HTTP_RESPONSE = "websocket.http.response"
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
POLICY_VIOLATION = 1008


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    """What WebSocketProxy needs from configuration beyond its DataPlane's, built once at start-up."""

    route_check_interval: float = 0.5  # how often open tunnels look for their route in a new table
    close_timeout: float = 2.0  # how long the backend gets to answer our close frame
    ping_interval: float | None = 20.0  # keepalive pings to the backend (uvicorn pings the client)
    ping_timeout: float | None = 20.0
    clock: Callable[[], float] = time.monotonic


@dataclass(slots=True)
class _Opened:
    plan: RoutePlan
    route: CompiledRoute
    upstream: ClientConnection
    counters: RouteCounters
    table: object
    answer_fields: list[tuple[bytes, bytes]]
    backend: str  # host:port, for the access log


class WebSocketProxy:
    """ASGI 3 application for "websocket" scopes (route it with ProtocolTypeRouter's "websocket" key).

    ASGI rules it relies on: the first event is `websocket.connect`, and until `websocket.accept` the app may
    answer with `websocket.http.response.*` when the server lists that extension (uvicorn does), so a refused
    handshake is a real HTTP status with Rusta's JSON error body. The handshake passes the route's guards (IP
    rules, head limits, Origin: protocols.websocket.guards) before its credential (API key or JWT) and rate
    limit, and both before any backend is picked. Like ProxyApp it never touches Django or the ORM. Call
    `await app.aclose()` at shutdown: every open tunnel closes with 1001 on both sides.
    """

    def __init__(self, dataplane: DataPlane, options: WebSocketOptions | None = None,
                 metrics: WebSocketMetrics | None = None) -> None:
        self.options = options or WebSocketOptions()
        # The HTTP proxy's: one table plan, shared breakers, in-flight counts, JWT policies, rate-limit counters,
        # trusted proxies, TLS trust, and its access log (one line per refused handshake and per ended session).
        self.dataplane = dataplane
        self.state = dataplane.state
        self.trusted = dataplane.trusted
        self.access_log = dataplane.access_log
        self.request_ids = RequestIds()
        self.metrics = metrics or WebSocketMetrics()
        self.tunnels: set[Tunnel] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None
        self._closing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"WebSocketProxy serves 'websocket' scopes, not {scope['type']!r}")
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before the handshake reached us
        request_id = b""
        started = time.time()
        clock = time.perf_counter()
        try:
            head = scan_request_headers(scope["headers"])
            request_id = self.request_ids.take(head.request_id)
            opened = await self._open(scope, head, request_id)
        except GatewayError as exc:
            await self._refuse(scope, send, exc.status, exc.headers, exc.body(_text(request_id)), request_id)
            self._log(scope, started, clock, request_id, None, exc.status, exc.type)
            return
        except Exception:  # the last resort: a 502 answer, never a hang or a 500
            request_id = request_id or self.request_ids.take(b"")
            log.exception("unexpected failure opening WebSocket %s (request %s)", scope.get("path"),
                          _text(request_id))
            error = InternalGatewayError()
            await self._refuse(scope, send, error.status, error.headers, error.body(_text(request_id)), request_id)
            self._log(scope, started, clock, request_id, None, error.status, error.type)
            return
        ended = await self._serve(opened, receive, send, request_id)
        if ended is not None:
            self._log(scope, started, clock, request_id, opened, 101, ended)

    def _log(self, scope: Scope, started: float, clock: float, request_id: bytes, opened: _Opened | None,
             status: int, outcome: str | tuple[Tunnel, str]) -> None:
        """One access-log line: a refused handshake (its status and error type), or a session when it ends
        (status 101, its duration, the message bytes each way, and how it ended unless the client closed it)."""
        log = self.access_log
        if log is None:
            return
        route = backend = error = None
        bytes_in = bytes_out = 0
        if isinstance(outcome, str):
            error = outcome
        else:
            tunnel, cause = outcome
            bytes_in, bytes_out = tunnel.bytes_from_client, tunnel.bytes_to_client
            error = None if cause in ("client", "upstream") else f"websocket_{cause}"
        if opened is not None:
            route = opened.route.name
            backend = opened.backend
        client = scope.get("client")
        log.record(started, _text(request_id), "GET", raw_path(scope), route, backend, status,
                   time.perf_counter() - clock, bytes_in, bytes_out, client[0] if client else "", error)

    async def _open(self, scope: Scope, head: RequestHead, request_id: bytes) -> _Opened:
        """Everything up to an open backend connection; raises the GatewayError that refuses it instead."""
        if self._closing:
            raise GatewayError(503, "shutting_down", "The gateway is shutting down.", [(b"retry-after", b"1")])
        plan = self.dataplane.current()
        table = plan.table
        clean_path = normalize_path(raw_path(scope))
        match = table.match("GET", host_key(head.host), clean_path)
        route = match.route
        client = client_ip(scope, head, self.trusted)
        if route is None or route.protocol != "websocket":
            # The gateway-wide guards first: a denied address learns nothing about which paths exist.
            check_handshake(plan.unrouted_guards, None, scope, client)
            raise NoRoute("GET", clean_path)
        route_plan = plan.routes[route.id]
        counters = self.metrics.route(route.id, route.name)
        try:
            # IP rules, head limits and Origin before credentials and rate limits: a refused client costs no
            # key or token check and no Redis call.
            check_handshake(route_plan.guards, route.name, scope, client)
            admission = await authorize_handshake(route, scope, route_plan.access, client)
        except GatewayError:
            counters.rejected += 1
            raise
        try:
            upstream, backend = await self._connect(route_plan, match.params, clean_path, scope, head, request_id,
                                                    client, admission)
        except GatewayError:
            counters.rejected += 1
            raise
        return _Opened(route_plan, route, upstream, counters, table,
                       admission.answer_fields if admission is not None else [], backend)

    async def _connect(self, plan: RoutePlan, params: dict[str, str], clean_path: str, scope: Scope,
                       head: RequestHead, request_id: bytes, client: str,
                       admission: Admission | None) -> tuple[ClientConnection, str]:
        """The open backend connection and its host:port."""
        route, policy, runtime = plan.route, plan.websocket, plan.runtime
        assert policy is not None and runtime is not None, "not a websocket route's plan"
        spec = route.spec
        lease = lease_backend(runtime, self.state.health, client)
        request = upstream_request(route, lease.backend, params, clean_path, scope, head, request_id, self.trusted,
                                   admission.query if admission is not None else None)
        if admission is not None:
            request.headers = admission.upstream_fields(request.headers)
        options = self.options
        extra: dict[str, Any] = dict(request.connect_kwargs)
        backend = lease.backend
        if request.uri.startswith("wss:"):
            # The backend's own `tls` options (CA bundle, verification, the name sent and checked), as an https
            # backend's; without them, the gateway's client context (the system's CAs).
            extra["ssl"] = self.dataplane.client.tls_context(backend)
            if backend.tls_server_name:
                extra["server_hostname"] = backend.tls_server_name
        try:
            upstream = await UpstreamConnect(
                request.uri, additional_headers=request.headers,
                subprotocols=request.subprotocols,  # type: ignore[arg-type]  # Subprotocol is a NewType of str
                compression=None, open_timeout=spec.connect_timeout, ping_interval=options.ping_interval,
                ping_timeout=options.ping_timeout, close_timeout=options.close_timeout,
                max_size=policy.max_message_bytes, max_queue=UPSTREAM_MAX_QUEUE, user_agent_header=None,
                proxy=None, **extra,
            )
        except asyncio.CancelledError:
            lease.done(None)
            raise
        except Exception as exc:
            error = handshake_error(exc, request.label, spec.connect_timeout)
            if error is None:
                lease.done(None)
                raise
            # A 4xx refusal is the backend working as intended; it must not open its breaker.
            lease.done(not (isinstance(error, UpgradeRejected) and error.status < 500))
            raise error from None
        lease.done(False)
        return upstream, request.label

    async def _serve(self, opened: _Opened, receive: Receive, send: Send,
                     request_id: bytes) -> tuple[Tunnel, str] | None:
        """Accept the client and relay until the session ends: the tunnel and how it ended (None: the client
        left before the accept)."""
        upstream, counters, route = opened.upstream, opened.counters, opened.route
        try:
            fields = answer_fields(upstream.response.headers if upstream.response else None, request_id)
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol,
                        "headers": fields + opened.answer_fields})
        except OSError:  # the client left while we were connecting
            await upstream.close(GOING_AWAY, "client connection lost")
            return None
        policy = opened.plan.websocket
        assert policy is not None
        tunnel = Tunnel(route.id, receive, send, upstream, policy, counters, self.options.clock)
        tunnel.table = opened.table
        counters.open += 1
        counters.opened += 1
        self._register(tunnel)
        cause = "cancelled"
        try:
            ending = await tunnel.run()
            cause = ending.cause
            log.debug("tunnel %s on route %s ended: %s", _text(request_id), route.name, ending.cause)
        finally:
            counters.open -= 1
            counters.closed += 1
            self._unregister(tunnel)
            if upstream.transport is not None and not upstream.transport.is_closing():
                upstream.transport.abort()  # cancelled mid-close: never leave the backend socket behind
        return tunnel, cause

    async def _refuse(self, scope: Scope, send: Send, status: int, headers: list[tuple[bytes, bytes]],
                      body: bytes, request_id: bytes) -> None:
        try:
            if _HTTP_RESPONSE in (scope.get("extensions") or {}):
                fields = [*_JSON_HEADERS, *(h for h in headers if h[0] not in (b"content-type", b"cache-control"))]
                fields.append((b"content-length", b"%d" % len(body)))
                fields.append((b"x-request-id", request_id))
                await send({"type": "websocket.http.response.start", "status": status, "headers": fields})
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                # Without the extension a refusal before accept is all ASGI can say (servers answer it with 403).
                await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        except OSError:
            pass  # the client left first

    # The registry of open tunnels: route removal and shutdown.

    def _register(self, tunnel: Tunnel) -> None:
        self.tunnels.add(tunnel)
        if self._drained is not None:
            self._drained.clear()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch())

    def _unregister(self, tunnel: Tunnel) -> None:
        self.tunnels.discard(tunnel)
        if not self.tunnels and self._drained is not None:
            self._drained.set()

    async def _watch(self) -> None:
        """Runs while tunnels are open: a table swap that removed a tunnel's route closes that tunnel."""
        while self.tunnels:
            await asyncio.sleep(self.options.route_check_interval)
            self.check_routes()

    def check_routes(self) -> int:
        """Close (1001, "route removed") every tunnel whose route is not in the live table any more, or is no
        longer a WebSocket route. Edits of a route that stays keep its tunnels open. Returns how many closed."""
        table = self.state.table
        closed = 0
        for tunnel in list(self.tunnels):
            if tunnel.table is table:
                continue
            route = table.by_id.get(tunnel.route_id)
            if route is None or route.protocol != "websocket":
                tunnel.shut(GOING_AWAY, "route removed", "route_removed")
                closed += 1
            else:
                tunnel.table = table
        return closed

    async def aclose(self, timeout: float = 5.0) -> None:
        """Shutdown: refuse new handshakes (503) and close every tunnel with 1001 on both sides, waiting at most
        `timeout` seconds for them to finish."""
        self._closing = True
        for tunnel in list(self.tunnels):
            tunnel.shut(GOING_AWAY, "gateway shutting down", "shutdown")
        if self.tunnels:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                log.warning("%d WebSocket tunnels did not close within %g s", len(self.tunnels), timeout)
        if self._watcher is not None:
            self._watcher.cancel()


def _text(value: bytes) -> str:
    return value.decode("latin-1")

