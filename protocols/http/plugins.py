"""A route's request guards and shaping (transformations, cache, compression), compiled once per route table.

The proxy looks a route's plugins up by route id in a dict that lives as long as the table object, so a request
pays one lookup; the first request after a configuration change compiles what it needs. A route whose blocks do
not compile (validation at save time normally prevents it) is refused with 503 `route_misconfigured` rather than
served unguarded or untransformed.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from protocols.block_errors import BlockError
from protocols.errors import GatewayError
from protocols.guards import DEFAULT_GUARDS, Guards, origin_of
from protocols.shaping import RouteShaping
from protocols.table import CompiledRoute, RouteTable

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)


class RouteMisconfigured(GatewayError):
    """503: the route's guard or shaping blocks do not compile; the log names the problem."""

    def __init__(self, route_name: str) -> None:
        super().__init__(503, "route_misconfigured",
                         f"Route '{route_name}' has settings the gateway cannot apply; the gateway log says why.")


class RoutePlugins:
    """What runs around one route's upstream exchange besides JWT and rate limits (protocols.http.access).

    `guards` is None only when `broken`; `shaping` is None when the route neither transforms, caches nor
    compresses (the proxy's fast path)."""

    __slots__ = ("guards", "shaping", "broken", "touches_answers")

    def __init__(self, guards: Guards | None, shaping: RouteShaping | None, broken: bool = False) -> None:
        self.guards = guards
        self.shaping = shaping
        self.broken = broken
        # Whether answers get fields from the guards (CORS, security headers): otherwise `send` is used as is.
        self.touches_answers = guards is not None and (
            guards.cors is not None or bool(guards.security.plain) or bool(guards.security.secure))


class TablePlugins:
    """The plugins of every route of one table, compiled on first use; `unrouted` are the gateway-wide guards that
    404 and 405 answers (and requests from denied addresses) go through."""

    __slots__ = ("settings", "unrouted", "_by_route")

    def __init__(self, table: RouteTable | None) -> None:
        self.settings: dict[str, Any] = dict(table.settings) if table is not None else {}
        try:
            self.unrouted = Guards.from_config(None, self.settings)
        except BlockError as exc:
            # Route answers say 503 (route_misconfigured) below; answers without a route keep the defaults.
            log.error("the gateway-wide guard blocks do not compile: %s", exc)
            self.unrouted = DEFAULT_GUARDS
        self._by_route: dict[int, RoutePlugins] = {}

    def of(self, route: CompiledRoute) -> RoutePlugins:
        found = self._by_route.get(route.id)
        if found is None:
            found = self._by_route[route.id] = self._compile(route)
        return found

    def _compile(self, route: CompiledRoute) -> RoutePlugins:
        policies = route.spec.policies or {}
        try:
            guards = Guards.from_config(policies, self.settings)
            shaping = RouteShaping.from_policies(policies)
        except BlockError as exc:
            log.error("route %r: its settings do not compile, it answers 503: %s", route.name, exc)
            return RoutePlugins(None, None, broken=True)
        return RoutePlugins(guards, shaping)


class GuardedSend:
    """The ASGI `send` of a request whose answers get the route's CORS and security fields: every response head,
    the backend's, the cache's and the gateway's own error answers, goes through `Guards.response_headers`.

    Built complete, once the route is known: the proxy keeps it on the Exchange, where forwarding.respond and the
    error answers read its fields, and a shaped answer (transformed, cached or compressed) is sent through it."""

    __slots__ = ("send", "guards", "origin", "https")

    def __init__(self, send: Send, guards: Guards, origin: bytes, https: bool) -> None:
        self.send = send
        self.guards = guards
        self.origin = origin
        self.https = https

    @classmethod
    def for_request(cls, send: Send, guards: Guards, request_headers: Any, https: bool) -> GuardedSend:
        """The fields for this request's answers (its Origin is read only when the guards have a CORS policy)."""
        return cls(send, guards, origin_of(request_headers) if guards.cors else b"", https)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            # Our own messages: the head's list is ours to change in place.
            message["headers"] = self.guards.response_headers(list(message.get("headers", ())), self.origin,
                                                              self.https)
        await self.send(message)
