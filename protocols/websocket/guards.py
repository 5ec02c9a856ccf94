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

The guards are compiled with the table's plan (protocols.plan). A route whose guard blocks do not compile (the
control plane's validation normally prevents it) answers 503 `route_misconfigured` and is never opened
unguarded.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocols.errors import GatewayError
from protocols.guards import Guards, origin_of

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


def check_handshake(guards: Guards | None, route_name: str | None, scope: dict[str, Any], client_ip: str) -> None:
    """Every handshake guard, in order: IP rules (403 client_forbidden), head limits (414, 431), Origin (403
    origin_not_allowed). `guards` are the route's from its plan (the plan's `unrouted_guards` for a handshake
    without a route, `route_name` None); None when they do not compile: 503 GuardsMisconfigured. Raises the
    GatewayError that refuses the upgrade."""
    if guards is None:
        raise GuardsMisconfigured(route_name)
    guards.check_request(scope, client_ip)
    check_origin(guards, scope["headers"])
