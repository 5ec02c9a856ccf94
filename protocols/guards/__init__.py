"""Request guards of the data plane: CORS, security response headers, size limits (413/414/431), IP rules.

Pure and ORM-free. A route's guards are compiled once from its blocks (RouteSpec.policies: `cors`, `limits`,
`ip_rules`, `security_headers`) and the gateway-wide ones (GatewaySettings' blocks of the same names); a
route's block replaces the global block of the same name, `{"enabled": false}` switches it off there.

Where the proxy calls them (protocols.http.proxy, compiled per table in protocols.plan; the WebSocket
handshake in protocols.websocket.guards): a CORS preflight is matched with the method it asks about
(`preflight_method`); after matching, `check_request` (403 ip_rules, 414, 431, 413 by Content-Length) runs before
JWT and rate limits, so a denied address or an oversized request never costs a token check or a Redis call; then
`cors_preflight` (the gateway's own answer), `limit_receive` before the body is read, and `response_headers` on
every response head: the backend's, the cache's and the gateway's own errors. Requests that match no route get
the gateway-wide blocks alone.

`https`: scope["scheme"] == "https", or a trusted peer's `X-Forwarded-Proto: https` (HSTS only then). Every
rejection is a GatewayError subclass with a JSON body, so ProxyApp's `except GatewayError` answers it; a
PayloadTooLarge raised while the body streams upstream travels out of UpstreamClient.request as the body
iterator's own exception (not an UpstreamError: it never counts against the backend).

Block keys and defaults: see protocols.guards.cors, .security, .limits and .ip_rules.
"""
from __future__ import annotations

from protocols.guards.cors import CorsPolicy, preflight_method
from protocols.guards.guards import DEFAULT_GUARDS, GUARD_BLOCKS, Guards, choose_blocks, origin_of, validate_blocks
from protocols.guards.ip_rules import IpRules
from protocols.guards.limits import RequestLimits
from protocols.guards.refusals import (
    ClientForbidden,
    CorsRejected,
    HeaderFieldsTooLarge,
    PayloadTooLarge,
    UriTooLong,
)
from protocols.guards.security import SecurityHeaders

__all__ = [
    "DEFAULT_GUARDS", "GUARD_BLOCKS", "ClientForbidden", "CorsPolicy", "CorsRejected", "Guards",
    "HeaderFieldsTooLarge", "IpRules", "PayloadTooLarge", "RequestLimits", "SecurityHeaders", "UriTooLong",
    "choose_blocks", "origin_of", "preflight_method", "validate_blocks",
]
