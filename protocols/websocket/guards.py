"""The request guards at the WebSocket handshake: IP rules, head size limits and the Origin check, run before
JWT, rate limits or any backend, so a refused client never costs a token check, a Redis call or a connection.

A route runs with its own `ip_rules`, `limits` and `cors` blocks, else the gateway-wide ones
(`RouteTable.settings`), exactly as protocols.guards composes them for HTTP; a handshake that matches no
WebSocket route is checked against the gateway-wide blocks alone (a denied address gets 403, not a 404 that
tells it which paths exist).

IP rules see the client address WebSocketProxy derives for the balancer and the rate limits (the peer, or the
X-Forwarded-For entry a trusted proxy vouches for). Size limits are the head's (414 and 431); a handshake has no
body.

The Origin check. CORS does not protect WebSockets: a browser opens a cross-site WebSocket without a preflight
and with the user's cookies, and the page then reads every message (cross-site WebSocket hijacking). Browsers
always send Origin on a handshake (RFC 6455 4.1), so when the route (or the gateway) has a `cors` block, a
handshake whose Origin that policy does not allow is refused with 403 `origin_not_allowed` ("null", sent by
sandboxed frames and local files, is allowed only by `"*"`). A handshake without Origin is let through: it
cannot come from a web page, and native and command-line clients send none. Without a `cors` block there is
no Origin check (as in Kong and Traefik by default): the backend may still check Origin itself, it is forwarded.

A route whose guard blocks do not compile (the control plane's validation normally prevents it) answers 503
`route_misconfigured` and is never opened unguarded.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from protocols.block_errors import BlockError
from protocols.errors import GatewayError
from protocols.guards import Guards, origin_of
from protocols.table import CompiledRoute, RouteTable

log = logging.getLogger(__name__)

_MISSING = object()
_ORIGIN_SHOWN = 256  # characters of a refused Origin repeated in the error message


class OriginNotAllowed(GatewayError):
    """403: a handshake from a web page whose origin the route's (or the gateway's) `cors` block does not allow."""

    def __init__(self, origin: str) -> None:
        super().__init__(403, "origin_not_allowed",
                         f"WebSocket connections from origin {origin[:_ORIGIN_SHOWN]} are not allowed here.")


class GuardsMisconfigured(GatewayError):
    """503: the route's (or the gateway-wide) guard blocks do not compile; the log says which key is wrong."""

    def __init__(self, route_name: str | None) -> None:
        where = f"Route '{route_name}'" if route_name is not None else "The gateway-wide configuration"
        super().__init__(503, "route_misconfigured",
                         f"{where} has request guard settings (cors, limits, ip_rules) that do not compile.")


def check_origin(guards: Guards, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Raises OriginNotAllowed when there is a CORS policy and the handshake's Origin is present and not allowed."""
    cors = guards.cors
    if cors is None:
        return
    origin = origin_of(headers)
    if not origin:
        return
    text = origin.decode("latin-1")
    if not cors.allows(text):
        raise OriginNotAllowed(text)


class HandshakeGuards:
    """Each WebSocket route's compiled Guards for the live table, built on the route's first handshake and
    dropped when the table object changes (as protocols.http.access.AccessControl does), so a handshake costs a
    dict lookup and the checks themselves."""

    def __init__(self) -> None:
        self._table: RouteTable | None = None
        self._by_route: dict[int, Guards | None] = {}
        self._global: Any = _MISSING  # Guards, or None when the gateway-wide blocks do not compile

    def for_route(self, table: RouteTable, route: CompiledRoute | None) -> Guards:
        """The route's guards (the gateway-wide ones for None); raises GuardsMisconfigured when they do not
        compile. `route` must come from `table`."""
        if table is not self._table:
            self._table = table
            self._by_route = {}
            self._global = _MISSING
        if route is None:
            if self._global is _MISSING:
                self._global = _compile(None, table, None)
            guards: Guards | None = self._global
        else:
            try:
                guards = self._by_route[route.id]
            except KeyError:
                guards = self._by_route[route.id] = _compile(route.spec.policies, table, route.name)
        if guards is None:
            # A fresh error each time: re-raising one cached instance would grow its traceback forever.
            raise GuardsMisconfigured(route.name if route is not None else None)
        return guards

    def check(self, table: RouteTable, route: CompiledRoute | None, scope: dict[str, Any], client_ip: str) -> None:
        """Every handshake guard, in order: IP rules (403 client_forbidden), head limits (414, 431), Origin (403
        origin_not_allowed). Raises the GatewayError that refuses the upgrade."""
        guards = self.for_route(table, route)
        guards.check_request(scope, client_ip)
        check_origin(guards, scope["headers"])


def _compile(policies: Any, table: RouteTable, route_name: str | None) -> Guards | None:
    try:
        return Guards.from_config(policies, table.settings)
    except BlockError as exc:
        if route_name is None:
            log.error("the gateway-wide guard blocks do not compile; WebSocket handshakes without a route "
                      "answer 503: %s", exc)
        else:
            log.error("route %r has guard blocks that do not compile; its WebSocket handshakes answer 503: %s",
                      route_name, exc)
        return None
