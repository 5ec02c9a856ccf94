"""Who may use a route, and how often: its credentials (API key, JWT) and rate limit, compiled with the table's plan.

A route's `auth` mode ("none", "key", "jwt", "either": protocols.auth.consumers) says which credential it
takes; `auth_required` (or a `jwt` block of its own) on a route whose mode is "none" means "jwt", as it always
did. A "jwt" or "either" route gets a JWT policy: the route's own `jwt` block, else the gateway-wide one
(`RouteTable.settings["jwt"]`). Keys and JWT subjects resolve to consumers through the table's
ConsumerDirectory; the consumer's name goes upstream as `X-Consumer-Name` (http and websocket routes) and is what rate
limits with the `consumer` (or `user`) scope count. Its rate limit is its own `rate_limit`
block, else the gateway-wide one (a route's block replaces the global one, as the admin form says).
`AccessControl.compile` answers None for a route with neither, which the route's plan (protocols.plan) keeps, so
such a route costs nothing.

Errors, all GatewayErrors that the listeners answer as JSON: AuthFailure (401/403), KeysUnavailable (503),
MissingCredentials and InvalidApiKey (401), ConsumerDisabled (403), RateLimited (429) and
`AccessMisconfigured` (503 `route_misconfigured`): a route that requires a token but whose JWT settings are
missing or do not compile is refused, never opened. A rate-limit block that does not
compile is logged and left out (the route stays up, unlimited): the control plane's validation is the place
that refuses such a block.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from protocols.abuse.sanctions import LimitChange
from protocols.auth import JwtPolicy, Principal
from protocols.auth.consumers import AUTH_MODES, RouteCredentials, directory_of
from protocols.block_errors import BlockError
from protocols.errors import GatewayError
from protocols.limits import Decision, Limiter, LocalStore, RateLimitPolicy, RedisStore, limit_key
from protocols.recorder import Recorder, recorder
from protocols.table import CompiledRoute

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
# Compiled JWT policies kept across tables (their token cache and JWKS survive a configuration change).
_MAX_KEPT_POLICIES = 256


class Pending:
    """The marker of a step that must be awaited (RouteAccess.spend_now: the counter is in Redis)."""


PENDING = Pending()
_NOBODY: tuple[None, None] = (None, None)


class AccessMisconfigured(GatewayError):
    """503: the route requires a token, but no usable JWT settings exist for it; the log says why."""

    def __init__(self, route_name: str) -> None:
        super().__init__(
            503, "route_misconfigured",
            f"Route '{route_name}' requires authentication, but the gateway's JWT settings for it are unusable.",
        )


def auth_mode(auth: str, auth_required: bool, own_jwt: bool) -> str:
    """The credential a route takes: its `auth`, or "jwt" when that is "none" and `auth_required` is set or the
    route has its own `jwt` block (what both always meant)."""
    if auth == "none" and (auth_required or own_jwt):
        return "jwt"
    return auth


class RouteAccess:
    """One route's admission: `admit` authenticates (when `credentials` is set) and then spends from the rate
    limit (when `limiter` is set). Shared by the HTTP proxy and the WebSocket handshake. `jwt` is the
    credentials' JWT policy (None on "key" routes and routes without auth)."""

    __slots__ = ("route_name", "jwt", "credentials", "limiter", "broken", "recorder", "personal_only")

    def __init__(self, route_name: str, credentials: RouteCredentials | None, limiter: Limiter | None,
                 broken: bool, metrics: Recorder, personal_only: bool = False) -> None:
        self.route_name = route_name
        self.credentials = credentials
        self.jwt = credentials.jwt if credentials is not None else None
        self.limiter = limiter
        self.broken = broken  # requires a credential, cannot check one: every request is refused
        self.recorder = metrics
        # The limiter only holds clients with a personalized limit (a route with `personalized_limits` and no
        # rate limit of its own): everyone else is not limited.
        self.personal_only = personal_only

    async def admit(self, headers: Iterable[tuple[bytes, bytes]], client_ip: str) -> tuple[Principal | None,
                                                                                           Decision | None]:
        """The principal (None on a route without auth) and the rate-limit decision (None when not limited);
        raises the GatewayError that answers instead (401/403/503/429). The principal's headers carry what
        goes upstream: the forwarded claims and, on http and websocket routes, X-Consumer-Name."""
        principal, consumer = await self.identify(headers)
        return principal, await self.spend(headers, client_ip, principal, consumer)

    async def identify(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[Principal | None, str | None]:
        """`admit`'s first step: the principal and its consumer's name (None when the route takes no credential
        or the token's subject is no consumer's). The HTTP proxy calls the two steps itself, to know the consumer
        even when the rate limit then refuses the request."""
        if self.broken:
            raise AccessMisconfigured(self.route_name)
        credentials = self.credentials
        if credentials is None:
            return None, None
        return await credentials.authenticate(headers)

    async def spend(self, headers: Iterable[tuple[bytes, bytes]], client_ip: str, principal: Principal | None,
                    consumer: str | None, change: LimitChange | None = None) -> Decision | None:
        """`admit`'s second step: the rate-limit decision (None when not limited), or RateLimited. `change` is
        what an abuse sanction does to this client's limit (protocols.abuse.sanctions): the same counter, another
        limit, and a 429 that says why."""
        limiter = self.limiter
        key = self._counter(headers, client_ip, principal, consumer, change)
        if limiter is None or key is None:
            return None
        limit, window_s = (None, None) if change is None else change.applied(limiter.policy.limit,
                                                                             limiter.policy.window_s)
        return self._checked(await limiter.hit(key, limit=limit, window_s=window_s), change, limit, window_s)

    def identify_now(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[Principal | None, str | None] | None:
        """`identify` without a coroutine when nothing needs waiting for (no credential, an API key, a token
        verified before and still cached: nearly every request); None: await `identify`."""
        if self.broken:
            raise AccessMisconfigured(self.route_name)
        credentials = self.credentials
        if credentials is None:
            return _NOBODY
        return credentials.known(headers)

    def spend_now(self, headers: Iterable[tuple[bytes, bytes]], client_ip: str, principal: Principal | None,
                  consumer: str | None, change: LimitChange | None = None) -> Decision | None | Pending:
        """`spend` without a coroutine when its counter is in this process; PENDING when it is shared (Redis):
        await `spend`."""
        limiter = self.limiter
        if limiter is not None and not limiter.local:
            return PENDING
        key = self._counter(headers, client_ip, principal, consumer, change)
        if limiter is None or key is None:
            return None
        limit, window_s = (None, None) if change is None else change.applied(limiter.policy.limit,
                                                                             limiter.policy.window_s)
        return self._checked(limiter.decide_now(key, limit=limit, window_s=window_s), change, limit, window_s)

    def _counter(self, headers: Iterable[tuple[bytes, bytes]], client_ip: str, principal: Principal | None,
                 consumer: str | None, change: LimitChange | None) -> str | None:
        """The counter this request spends from; None when it is not limited (no limit; the policy skips it; a
        limiter kept for personalized limits and the client has none)."""
        limiter = self.limiter
        if limiter is None:
            return None
        key = limit_key(limiter.policy, self.route_name, client_ip,
                        principal.subject if principal is not None else None, headers, consumer)
        if key is None or (self.personal_only and (change is None or not change.limit)):
            return None
        return key

    def _checked(self, decision: Decision, change: LimitChange | None, limit: int | None,
                 window_s: float | None) -> Decision:
        return decision if decision.allowed else self._refused(decision, change, limit or 0, window_s or 0.0)

    def _refused(self, decision: Decision, change: LimitChange | None, limit: int = 0,
                 window_s: float = 0.0) -> NoReturn:
        """Count a refusal and raise its 429 (saying why, under a limit a sanction changed to `limit` per
        `window_s`)."""
        self.recorder.rate_limited(self.route_name)
        if change is None:
            raise decision.error(self.route_name)
        self.recorder.abuse_action(self.route_name, change.action)
        raise decision.error(self.route_name, change.reason(limit, window_s), change.verdict_id)

    def upstream_headers(self, headers: Headers, principal: Principal | None) -> Headers:
        """`headers` without the client's copies of what the gateway sets (claim headers, X-Consumer-Name) and
        without an API key, plus the principal's own."""
        credentials = self.credentials
        if credentials is None or principal is None:
            return headers
        return credentials.upstream_headers(headers, principal)


class AccessControl:
    """A process's admission state: the rate-limit stores (a LocalStore; a RedisStore when `redis_url` is set)
    and the compiled JWT policies, kept across tables. Each table's plan asks it for every route's RouteAccess.

    Call `await aclose()` at shutdown (the Redis connections)."""

    def __init__(self, redis_url: str = "", metrics: Recorder = recorder, local: LocalStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # the wall clock API keys expire by
        self.local = local or LocalStore()
        self.shared = RedisStore(redis_url) if redis_url else None
        self.recorder = metrics
        self._policies: dict[str, JwtPolicy] = {}
        self._warned_no_redis = False

    def start_table(self) -> None:
        """A new table's routes are about to be compiled: keep the JWT policies, unless there are too many."""
        if len(self._policies) > _MAX_KEPT_POLICIES:
            self._policies.clear()

    def compile(self, route: CompiledRoute, settings: Mapping[str, Any], *,
                personalized: bool = False) -> RouteAccess | None:
        """The route's admission under the table's gateway-wide `settings` (its consumer directory included),
        None when it takes no credential and has no rate limit. `personalized`: the route's `abuse` block has
        `personalized_limits`; without a rate limit of its own, the route gets a limiter for the clients that
        have one (`_personal_limiter`)."""
        spec = route.spec
        policies = spec.policies or {}
        jwt: JwtPolicy | None = None
        broken = False
        own_jwt = policies.get("jwt")
        mode = auth_mode(spec.auth, spec.auth_required, bool(own_jwt))
        if mode not in AUTH_MODES:
            log.error("route %r: unknown auth mode %r: it answers 503", route.name, mode)
            broken = True
        elif mode in ("jwt", "either"):
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
        credentials = None
        if mode != "none" and not broken:
            credentials = RouteCredentials(mode, jwt, directory_of(settings), self.clock,
                                           forward_consumer=route.protocol in ("http", "websocket"))
        limiter = self._limiter(route.name, policies.get("rate_limit"), settings.get("rate_limit"))
        personal_only = personalized and limiter is None
        if personal_only:
            limiter = self._personal_limiter(route.name)
        if credentials is None and limiter is None and not broken:
            return None
        return RouteAccess(route.name, credentials, limiter, broken, self.recorder, personal_only)

    def _personal_limiter(self, route_name: str) -> Limiter:
        """The limiter of a route with personalized limits and no rate limit: a sliding window per client (its
        consumer or JWT subject, else its address), shared through Redis when it is configured, whose limit is
        always the client's own (protocols.abuse.sanctions.LimitChange)."""
        policy = RateLimitPolicy.from_config({"limit": 1, "window_s": 60, "scope": ["user"]},
                                             name="personal:" + route_name)
        return Limiter(policy, self.shared if self.shared is not None else self.local, fallback=self.local)

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
