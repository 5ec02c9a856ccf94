"""GuardedApp: the guards wrapped around the proxy's ASGI app, a reference wiring that works without touching
ProxyApp (the end-to-end tests use it). It matches the route a second time; wiring the same calls into ProxyApp
itself saves that match and puts guard rejections in the access log.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from protocols.errors import GatewayError, InternalGatewayError
from protocols.guards.cors import preflight_method
from protocols.guards.errors import GuardConfigError
from protocols.guards.guards import Guards
from protocols.health import HEALTH_PATHS
from protocols.http.headers import Network, RequestIds, TrustedPeers, client_address, host_key, normalize_path, raw_path
from protocols.table import CompiledRoute, LiveTable, RouteTable, live

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)


class GuardedApp:
    """Runs the matched route's guards (or the gateway-wide ones) around `app` for "http" scopes.

    The gateway-wide blocks are the live table's `settings` (GatewaySettings, as routes.snapshot builds it), or
    `global_blocks` when given. Guards are compiled per route on first use and dropped when the live table is
    replaced; a route whose blocks do not compile (validation normally prevents it) answers 502 rather than run
    unguarded.
    """

    def __init__(self, app: ASGIApp, *, state: LiveTable = live, trusted_proxies: tuple[Network, ...] = (),
                 global_blocks: Mapping[str, Any] | None = None) -> None:
        self.app = app
        self.state = state
        self.trusted = TrustedPeers(trusted_proxies)
        self.request_ids = RequestIds()
        self._fixed_blocks = global_blocks
        self._table: RouteTable | None = None
        self._global_blocks: Mapping[str, Any] = {}
        self._global: Guards | None = None
        self._by_route: dict[int, Guards | None] = {}

    def _refresh(self) -> None:
        table = self.state.table
        if table is self._table:
            return
        self._table = table
        self._by_route = {}
        blocks = self._fixed_blocks if self._fixed_blocks is not None else table.settings
        self._global_blocks = blocks
        try:
            self._global = Guards.from_config(None, blocks)
        except GuardConfigError as exc:
            log.error("the gateway-wide guard blocks do not compile, answering 502: %s", exc)
            self._global = None

    def guards_for(self, route: CompiledRoute | None) -> Guards | None:
        """The route's compiled guards, or the gateway-wide ones without a route; None when they do not compile."""
        self._refresh()
        if route is None:
            return self._global
        try:
            return self._by_route[route.id]
        except KeyError:
            pass
        guards: Guards | None
        try:
            guards = Guards.from_config(route.spec.policies, self._global_blocks)
        except GuardConfigError as exc:
            log.error("route %s (%s) has guard blocks that do not compile, answering 502: %s", route.id,
                      route.name, exc)
            guards = None
        self._by_route[route.id] = guards
        return guards

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        host = origin = forwarded_for = forwarded_proto = request_id = b""
        for name, value in headers:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"x-forwarded-for":
                forwarded_for = value if not forwarded_for else forwarded_for + b", " + value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
            elif name == b"x-request-id":
                request_id = value
        peer = scope.get("client")
        client_ip = peer[0] if peer else ""
        https = scope.get("scheme") == "https"
        if client_ip in self.trusted:
            if forwarded_for:
                client_ip = client_address(client_ip, forwarded_for, self.trusted)
            if forwarded_proto:
                # The first entry is what the client used; later ones are hops between proxies.
                https = forwarded_proto.split(b",")[0].strip().lower() == b"https"
        method = scope["method"]
        match_method = preflight_method(method, headers) or method
        match = self.state.table.match(match_method, host_key(host), normalize_path(raw_path(scope)))
        guards = self.guards_for(match.route)
        try:
            if guards is None:
                raise InternalGatewayError("The route's guard configuration is invalid.")
            guards.check_request(scope, client_ip)
            preflight = guards.cors_preflight(method, headers, https)
        except GatewayError as exc:
            await self._refuse(send, exc, guards, origin, https, request_id)
            return
        if preflight is not None:
            status, fields = preflight
            await send({"type": "http.response.start", "status": status, "headers": fields})
            await send({"type": "http.response.body", "body": b""})
            return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": guards.response_headers(list(message.get("headers", ())),
                                                                         origin, https)}
            await send(message)

        await self.app(scope, guards.limit_receive(receive), guarded_send)

    async def _refuse(self, send: Send, exc: GatewayError, guards: Guards | None, origin: bytes, https: bool,
                      offered_id: bytes) -> None:
        request_id = self.request_ids.take(offered_id)
        status, headers, payload = exc.response(request_id.decode("latin-1"))
        headers.append((b"x-request-id", request_id))
        if guards is not None:
            headers = guards.response_headers(headers, origin, https)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
