"""Request guards of the data plane: CORS, security response headers, size limits (413/414/431), IP rules.

Pure and ORM-free. A route's guards are compiled once from its blocks (RouteSpec.policies: `cors`, `limits`,
`ip_rules`, `security_headers`) and the gateway-wide ones (GatewaySettings' blocks of the same names); a
route's block replaces the global block of the same name, `{"enabled": false}` switches it off there.

Wiring (ProxyApp; GuardedApp in protocols.guards.asgi does exactly this around an unchanged ProxyApp)::

    # per route, once per table (cached by route id, like protocols.http.access; GuardConfigError: answer 502,
    # never run the route unguarded). The gateway-wide blocks are RouteTable.settings:
    guards = Guards.from_config(route.spec.policies, table.settings)
    no_route_guards = Guards.from_config(None, table.settings)        # for 404/405 answers

    # per request, in ProxyApp.__call__ / _prepare:
    # 1. before matching: a CORS preflight is matched with the method it asks about
    match_method = preflight_method(scope["method"], scope["headers"]) or scope["method"]
    # 2. after matching and after the client address is derived (trusted proxies), before JWT and rate limits
    #    (a denied address or an oversized request never costs a token check or a Redis call):
    guards.check_request(scope, client_ip)        # 403 ip_rules, 414, 431, 413 by Content-Length
    answer = guards.cors_preflight(scope["method"], scope["headers"], https)   # CorsRejected (403) if refused
    if answer: send status answer[0] with the fields answer[1] (complete) and an empty body; stop
    # 3. before the body is read (_read_body) and before forward():
    receive = guards.limit_receive(receive)       # PayloadTooLarge (413) once the bytes pass the limit
    # 4. on every response head, the backend's (forwarding.respond) and the gateway's own (ProxyApp._fail):
    headers = guards.response_headers(headers, origin_of(scope["headers"]), https)

`https`: scope["scheme"] == "https", or a trusted peer's `X-Forwarded-Proto: https` (HSTS only then). Every
rejection is a GatewayError subclass with a JSON body, so ProxyApp's `except GatewayError` answers it; a
PayloadTooLarge raised while the body streams upstream travels out of UpstreamClient.request as the body
iterator's own exception (not an UpstreamError: it never counts against the backend).

Block keys and defaults: see protocols.guards.cors, .security, .limits and .ip_rules.
"""
from __future__ import annotations

from protocols.guards.cors import CorsPolicy, preflight_method
from protocols.guards.errors import (
    ClientForbidden,
    CorsRejected,
    GuardConfigError,
    HeaderFieldsTooLarge,
    PayloadTooLarge,
    UriTooLong,
)
from protocols.guards.guards import DEFAULT_GUARDS, GUARD_BLOCKS, Guards, choose_blocks, origin_of, validate_blocks
from protocols.guards.ip_rules import IpRules
from protocols.guards.limits import RequestLimits
from protocols.guards.security import SecurityHeaders

__all__ = [
    "DEFAULT_GUARDS", "GUARD_BLOCKS", "ClientForbidden", "CorsPolicy", "CorsRejected", "GuardConfigError",
    "Guards", "HeaderFieldsTooLarge", "IpRules", "PayloadTooLarge", "RequestLimits", "SecurityHeaders",
    "UriTooLong", "choose_blocks", "origin_of", "preflight_method", "validate_blocks",
]
