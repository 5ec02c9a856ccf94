"""Rate limiting for the data plane: a compiled policy, a key per request, a decision per hit, two stores.

Wiring (ProxyApp)::

    # once per process:
    local = LocalStore()                                   # embedded default, and the Redis fallback
    shared = RedisStore(redis_url, prefix="rusta:rl:")     # only when REDIS_URL is set
    # when the route table is built (protocols.block_errors.BlockError -> refuse the config):
    policy = RateLimitPolicy.from_config(block, name="route:" + route.name)   # or name="global"
    limiter = Limiter(policy, shared if policy.store == "redis" and shared else local, fallback=local)

    # per request, after the route matched (and after JWT, so `user` is the verified sub):
    key = limit_key(policy, route.name, client_ip, principal.subject if principal else None, scope["headers"],
                    consumer)   # the consumer's name, when the key or token resolved to one
    if key is not None:
        decision = await limiter.hit(key)
        if not decision.allowed:
            raise decision.error(route.name)     # RateLimited, a GatewayError: 429 + JSON + headers
        extra_response_headers = decision.headers()  # RateLimit-Limit / -Remaining / -Reset

    await shared.aclose()   # at shutdown

With a global policy and a route policy, call both and send `strictest([...]).headers()`. Counting a
rejection in metrics per route is the caller's (`RateLimited` has `.decision`; `decision.degraded` says
the shared store was away). `Limiter.hit` never raises for store trouble, and the gateway never answers a
5xx of its own because of Redis.

Config keys (the earlier gateway's block and the multi-protocol example's shape both work):
- `algorithm` / `window_type` / `strategy` (when its value names an algorithm): fixed_window (FixedWindow),
  sliding_window (SlidingWindow, the default), token_bucket (TokenBucket).
  fixed_window: a window opens at a key's first request and admits `limit` in `window_s`.
  sliding_window: an exact sliding log: admitted when fewer than `limit` were admitted in the last
  `window_s`, so no window of that length ever holds more than `limit` (memory: one timestamp per
  admitted request in the window). The two-window weighted estimate was not used: it can admit more
  than `limit` in some windows.
  token_bucket: `capacity` tokens (full at first), refilled at limit/window_s per second.
- `limit` + `window_s` (60), or `requests_per_window` + `window_duration`, or `requests_per_second`,
  `requests_per_minute`, `requests_per_hour`.
- `burst` / `burst_size`: the bucket size (>= limit); `burst_allowance`: tokens on top of the limit.
  Token bucket only; on a window algorithm it is ignored with an entry in `policy.warnings`.
- `scope` (list of ip, user, consumer, route, api_key, header; [] or "global": one counter) or `strategy`:
  PerIP, PerUser, PerRoute, PerIPAndRoute, PerUserAndRoute (["user", "route"]: the JWT subject, per route),
  PerAPIKey, PerHeader, PerConsumer, Global. Default ["ip"]. "consumer" is the consumer an API key or a
  JWT subject resolves to (protocols.auth.consumers); "user" is that consumer too when there is one, else
  the JWT subject. `header` names the header for scope "header";
  `api_key_header` ("x-api-key") for "api_key".
  `missing_identity`: "ip" (default: no user / API key / header -> limited by client address) or "skip".
- `store`: "local" (default) or "redis" (`enable_redis: true` means "redis"). `key_prefix` /
  `redis_key_prefix` go into the key namespace.
- `on_store_error`: "open" (default: local fallback, `fallback_limit` = limit per process) or "closed"
  (429, Retry-After 1).
- `enabled`: false turns the policy off (limit_key returns None).
"""
from __future__ import annotations

from protocols.limits.config import RateLimitPolicy, limit_key
from protocols.limits.decision import Decision, RateLimited, strictest
from protocols.limits.limiter import Limiter
from protocols.limits.local import LocalStore
from protocols.limits.redis_store import RedisStore, StoreUnavailable

__all__ = [
    "Decision", "Limiter", "LocalStore", "RateLimitPolicy", "RateLimited", "RedisStore",
    "StoreUnavailable", "limit_key", "strictest",
]
