"""Who may use a route, and how often: its JWT policy and rate limit, compiled with the table's plan.

A route gets a JWT policy when `auth_required` is set or its policies carry a `jwt` block; the block is the
route's own, else the gateway-wide one (`RouteTable.settings["jwt"]`). Its rate limit is its own `rate_limit`
block, else the gateway-wide one (a route's block replaces the global one, as the admin form says).
`AccessControl.compile` answers None for a route with neither, which the route's plan (protocols.plan) keeps, so
such a route costs nothing.

Errors, all GatewayErrors that the listeners answer as JSON: AuthFailure (401/403), KeysUnavailable (503),
RateLimited (429) and `AccessMisconfigured` (503 `route_misconfigured`): a route that requires a token but
whose JWT settings are missing or do not compile is refused, never opened. A rate-limit block that does not
compile is logged and left out (the route stays up, unlimited): the control plane's validation is the place
that refuses such a block.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from protocols.auth import JwtPolicy, Principal, authorization_value
from protocols.block_errors import BlockError
from protocols.errors import GatewayError
from protocols.limits import Decision, Limiter, LocalStore, RateLimitPolicy, RedisStore, limit_key
from protocols.recorder import Recorder, recorder
from protocols.table import CompiledRoute

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
# Compiled JWT policies kept across tables (their token cache and JWKS survive a configuration change).
_MAX_KEPT_POLICIES = 256


class AccessMisconfigured(GatewayError):
    """503: the route requires a token, but no usable JWT settings exist for it; the log says why."""

    def __init__(self, route_name: str) -> None:
        super().__init__(
            503, "route_misconfigured",
            f"Route '{route_name}' requires authentication, but the gateway's JWT settings for it are unusable.",
        )


class RouteAccess:
    """One route's admission: `admit` authenticates (when `jwt` is set) and then spends from the rate limit
    (when `limiter` is set). Shared by the HTTP proxy and the WebSocket handshake."""

    __slots__ = ("route_name", "jwt", "limiter", "broken", "recorder")

    def __init__(self, route_name: str, jwt: JwtPolicy | None, limiter: Limiter | None, broken: bool,
                 metrics: Recorder) -> None:
        self.route_name = route_name
        self.jwt = jwt
        self.limiter = limiter
        self.broken = broken  # requires a token, cannot check one: every request is refused
        self.recorder = metrics

    async def admit(self, headers: Iterable[tuple[bytes, bytes]], client_ip: str) -> tuple[Principal | None,
                                                                                           Decision | None]:
        """The principal (None without a JWT policy) and the rate-limit decision (None when not limited);
        raises the GatewayError that answers instead (401/403/503/429)."""
        if self.broken:
            raise AccessMisconfigured(self.route_name)
        principal = None
        jwt = self.jwt
        if jwt is not None:
            principal = await jwt.authenticate(authorization_value(headers))
        limiter = self.limiter
        if limiter is None:
            return principal, None
        key = limit_key(limiter.policy, self.route_name, client_ip,
                        principal.subject if principal is not None else None, headers)
        if key is None:
            return principal, None
        decision = await limiter.hit(key)
        if not decision.allowed:
            self.recorder.rate_limited(self.route_name)
            raise decision.error(self.route_name)
        return principal, decision

    def upstream_headers(self, headers: Headers, principal: Principal | None) -> Headers:
        """`headers` without the client's copies of the claim headers, plus the principal's own."""
        jwt = self.jwt
        if jwt is None or principal is None or not jwt.forwarded_names:
            return headers
        return jwt.strip_forwarded(headers) + list(principal.headers)


class AccessControl:
    """A process's admission state: the rate-limit stores (a LocalStore; a RedisStore when `redis_url` is set)
    and the compiled JWT policies, kept across tables. Each table's plan asks it for every route's RouteAccess.

    Call `await aclose()` at shutdown (the Redis connections)."""

    def __init__(self, redis_url: str = "", metrics: Recorder = recorder, local: LocalStore | None = None) -> None:
        self.local = local or LocalStore()
        self.shared = RedisStore(redis_url) if redis_url else None
        self.recorder = metrics
        self._policies: dict[str, JwtPolicy] = {}
        self._warned_no_redis = False

    def start_table(self) -> None:
        """A new table's routes are about to be compiled: keep the JWT policies, unless there are too many."""
        if len(self._policies) > _MAX_KEPT_POLICIES:
            self._policies.clear()

    def compile(self, route: CompiledRoute, settings: Mapping[str, Any]) -> RouteAccess | None:
        """The route's admission under the table's gateway-wide `settings`, None when it has neither a JWT policy
        nor a rate limit."""
        spec = route.spec
        policies = spec.policies or {}
        jwt: JwtPolicy | None = None
        broken = False
        own_jwt = policies.get("jwt")
        if spec.auth_required or own_jwt:
            block = own_jwt or settings.get("jwt")
            if not block:
                log.error("route %r requires authentication but there are no jwt settings: it answers 503",
                          route.name)
                broken = True
            else:
                try:
                    jwt = self._jwt_policy(block)
                except BlockError as exc:
                    log.error("route %r: its jwt settings do not compile (%s): it answers 503", route.name, exc)
                    broken = True
        limiter = self._limiter(route.name, policies.get("rate_limit"), settings.get("rate_limit"))
        if jwt is None and limiter is None and not broken:
            return None
        return RouteAccess(route.name, jwt, limiter, broken, self.recorder)

    def _jwt_policy(self, block: Any) -> JwtPolicy:
        """One JwtPolicy per distinct block: routes sharing the gateway-wide block share its cache and JWKS."""
        if not isinstance(block, dict):
            raise BlockError.at("", "The jwt block must be a JSON object.")
        key = json.dumps(block, sort_keys=True, default=str)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = JwtPolicy.from_config(block)
        return policy

    def _limiter(self, route_name: str, own: Any, shared_block: Any) -> Limiter | None:
        block, name = (own, "route:" + route_name) if own else (shared_block, "global")
        if not block:
            return None
        try:
            policy = RateLimitPolicy.from_config(block, name=name)
        except BlockError as exc:
            log.error("route %r: the %s rate limit does not compile (%s): not limited", route_name,
                      "route's" if own else "gateway-wide", exc)
            return None
        if not policy.enabled:
            return None
        store: Any = self.local
        if policy.store == "redis":
            if self.shared is not None:
                store = self.shared
            elif not self._warned_no_redis:
                self._warned_no_redis = True
                log.warning("rate limits with store 'redis' count per process: REDIS_URL is not set")
        return Limiter(policy, store, fallback=self.local)

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()
