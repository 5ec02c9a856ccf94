"""One route's request guards (CORS, security headers, size limits, IP rules), compiled from its blocks."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protocols.block_errors import BlockError
from protocols.guards.cors import CORS_RESPONSE_FIELDS, CorsPolicy
from protocols.guards.ip_rules import IpRules
from protocols.guards.limits import DEFAULT_LIMITS, Receive, RequestLimits
from protocols.guards.security import DEFAULT_SECURITY_HEADERS, SecurityHeaders

Headers = list[tuple[bytes, bytes]]

GUARD_BLOCKS = ("cors", "limits", "ip_rules", "security_headers")
_COMPILERS = {
    "cors": CorsPolicy.from_config,
    "limits": RequestLimits.from_config,
    "ip_rules": IpRules.from_config,
    "security_headers": SecurityHeaders.from_config,
}


def choose_blocks(route_blocks: Mapping[str, Any] | None,
                  global_blocks: Mapping[str, Any] | None) -> dict[str, Any]:
    """Each guard block a route runs with: its own when set (not null), else the gateway-wide one.

    A route's block replaces the gateway-wide block of the same name as a whole (keys it leaves out take Rusta's
    defaults, not the global block's), as a Kong route plugin replaces a global one; `{"enabled": false}` on a
    route switches a global block off there.
    """
    chosen: dict[str, Any] = {}
    for name in GUARD_BLOCKS:
        value = route_blocks.get(name) if route_blocks else None
        if value is None and global_blocks:
            value = global_blocks.get(name)
        chosen[name] = value
    return chosen


def validate_blocks(blocks: Mapping[str, Any]) -> dict[str, list[str]]:
    """Errors by path (`cors.origins[0]`, `ip_rules.allow[2]`) of the guard blocks present in `blocks`."""
    errors: dict[str, list[str]] = {}
    for name in GUARD_BLOCKS:
        if blocks.get(name) is None:
            continue
        try:
            _COMPILERS[name](blocks[name])
        except BlockError as exc:
            errors.update(exc.prefixed(name))
    return errors


def origin_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The request's Origin field, b"" when it has none."""
    for name, value in headers:
        if name == b"origin":
            return value
    return b""


class Guards:
    """The guards of one route (or of requests that match no route: the gateway-wide blocks alone).

    Call, per request, in this order (see the package docstring for where):
    `check_request` -> `cors_preflight` -> `limit_receive` -> `response_headers` on the answer (on every
    answer but the preflight's, which `cors_preflight` returns complete).
    """

    __slots__ = ("cors", "security", "limits", "ip_rules")

    def __init__(self, cors: CorsPolicy | None = None, security: SecurityHeaders = DEFAULT_SECURITY_HEADERS,
                 limits: RequestLimits = DEFAULT_LIMITS, ip_rules: IpRules | None = None) -> None:
        self.cors = cors
        self.security = security
        self.limits = limits
        self.ip_rules = ip_rules

    @classmethod
    def from_config(cls, route_blocks: Mapping[str, Any] | None,
                    global_blocks: Mapping[str, Any] | None = None) -> Guards:
        """Compile a route's guards; `route_blocks` is RouteSpec.policies (or None for requests without a route),
        `global_blocks` the gateway settings' blocks. Raises BlockError naming every problem by its path
        (`cors.origins[0]`)."""
        chosen = choose_blocks(route_blocks, global_blocks)
        errors = validate_blocks(chosen)
        if errors:
            raise BlockError(errors)
        return cls(
            cors=CorsPolicy.from_config(chosen["cors"]),
            security=SecurityHeaders.from_config(chosen["security_headers"]),
            limits=RequestLimits.from_config(chosen["limits"]),
            ip_rules=IpRules.from_config(chosen["ip_rules"]),
        )

    def check_request(self, scope: Mapping[str, Any], client_ip: str) -> None:
        """The request head's checks: ClientForbidden (403), UriTooLong (414), HeaderFieldsTooLarge (431),
        PayloadTooLarge (413, by Content-Length). `client_ip` is the address the proxy derived (trusted proxies
        applied)."""
        if self.ip_rules is not None:
            self.ip_rules.check(client_ip)
        self.limits.check_head(scope)

    def cors_preflight(self, method: str, headers: Iterable[tuple[bytes, bytes]],
                       https: bool = False) -> tuple[int, Headers] | None:
        """The gateway's answer to a CORS preflight: (204, every field of the answer, security headers included;
        send it with an empty body), or None when this is not a preflight or the route has no CORS policy (then
        the request goes on as usual). Raises CorsRejected (403) for a preflight the policy refuses."""
        if self.cors is None or method != "OPTIONS":
            return None
        answer = self.cors.preflight(headers)
        if answer is None:
            return None
        status, fields = answer
        return status, self.security.apply(fields, https)

    def limit_receive(self, receive: Receive) -> Receive:
        """`receive` wrapped to enforce the body limit on what actually arrives (PayloadTooLarge, 413)."""
        return self.limits.limit_receive(receive)

    def cors_response_headers(self, origin: bytes) -> Headers:
        """The CORS fields for an actual response to this Origin ([] without a CORS policy)."""
        if self.cors is None:
            return []
        return self.cors.response_headers(origin)

    def response_headers(self, headers: Headers, origin: bytes, https: bool) -> Headers:
        """A response's fields (the backend's or the gateway's own), changed in place: with a CORS policy the
        backend's Access-Control-* fields are replaced by the policy's; the security fields are added."""
        if self.cors is not None:
            headers[:] = [item for item in headers if item[0].lower() not in CORS_RESPONSE_FIELDS]
            headers.extend(self.cors.response_headers(origin))
        return self.security.apply(headers, https)


# Requests with no route and no gateway-wide blocks: default limits and security headers, no CORS, no IP rules.
DEFAULT_GUARDS = Guards()
