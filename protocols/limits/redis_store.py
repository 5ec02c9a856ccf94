"""RedisStore: counters shared by every gateway process, one atomic Lua call (EVALSHA) per decision."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from protocols.limits.decision import Decision
from protocols.limits.lua import SCRIPTS, SHAS
from protocols.limits.policy import SLIDING_WINDOW, RateLimitPolicy

log = logging.getLogger(__name__)
_SUFFIX = {"fixed_window": "fw", "sliding_window": "sw", "token_bucket": "tb"}


class StoreUnavailable(Exception):
    """The shared store cannot decide right now (down, slow, or just failed); the Limiter falls back."""


class RedisStore:
    """Rate-limit counters in Redis, shared by all processes that use the same `url` and `prefix`.

    - One EVALSHA per decision; the script is loaded on the first NOSCRIPT (a fresh or restarted server)
      and the call repeated once.
    - Time: the Redis server's clock (TIME inside the script) unless the caller passes `now` (wall-clock
      seconds) to `hit`; a deployment should do one or the other. The proxy passes nothing, so processes
      with skewed clocks still agree.
    - Failure: any Redis or socket error, or no answer within `timeout_s`, raises StoreUnavailable. After a
      failure the store does not touch Redis for `retry_interval_s` (every decision fails fast to the
      fallback), then lets one probe through; the first success makes it healthy again, so decisions are
      back on Redis within about `retry_interval_s` of Redis returning. No reconnect loop runs in the
      background: the traffic itself probes.
    - Keys: `{prefix}{{limit key}}:{fw|sw|tb}` (the braces are a hash tag: a script's keys share one Redis
      Cluster slot); every key expires once its window or bucket no longer matters.
    The client and its pool are created on first use, in the running event loop (one store per process).
    """

    def __init__(self, url: str, prefix: str = "rusta:rl:", *, timeout_s: float = 0.25,
                 retry_interval_s: float = 1.0, max_connections: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_interval_s = retry_interval_s
        self.max_connections = max_connections
        self.clock = clock
        self.healthy = True
        self.failures = 0  # decisions that fell back, for metrics
        self._retry_at = 0.0
        self._client: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            pool = BlockingConnectionPool.from_url(
                self.url, max_connections=self.max_connections, timeout=self.timeout_s,
                socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                # One immediate retry replaces a pooled connection the server closed (a restart); more
                # would only delay the fallback.
                retry=Retry(NoBackoff(), 1),
            )
            self._client = Redis(connection_pool=pool)
            self._loop = loop
        return self._client

    async def hit(self, policy: RateLimitPolicy, key: str, now: float | None = None) -> Decision:
        """The decision for one request on `key`; raises StoreUnavailable instead of any Redis error."""
        if not self.healthy:
            moment = self.clock()
            if moment < self._retry_at:
                self.failures += 1
                raise StoreUnavailable("Redis is unavailable; retrying shortly")
            self._retry_at = moment + self.retry_interval_s  # this request is the one probe
        try:
            # The socket timeouts bound each step; this bounds the whole call (pool wait, retry, script load).
            async with asyncio.timeout(self.timeout_s * 2):
                result = await self._run(policy, key, now)
        except (RedisError, OSError) as exc:  # OSError includes TimeoutError, which asyncio.timeout raises
            self._failed(exc)
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        if not self.healthy:
            self.healthy = True
            log.warning("Redis rate-limit store at %s is back", _safe(self.url))
        allowed, remaining, reset_us, retry_us = (int(v) for v in result)
        return Decision(bool(allowed), policy.capacity, remaining, reset_us / 1e6, retry_us / 1e6)

    async def _run(self, policy: RateLimitPolicy, key: str, now: float | None) -> Any:
        client = self._redis()
        name = policy.algorithm
        # The algorithm is part of the key: each keeps a different Redis type, and two policies that somehow
        # share a key must not meet a WRONGTYPE error.
        base = f"{self.prefix}{{{key}}}:{_SUFFIX[name]}"
        keys = (base, base + ":seq") if name == SLIDING_WINDOW else (base,)
        args = ("" if now is None else str(int(now * 1_000_000)), policy.limit,
                str(int(policy.window_s * 1_000_000)), policy.capacity)
        try:
            return await client.evalsha(SHAS[name], len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(SCRIPTS[name])
            return await client.evalsha(SHAS[name], len(keys), *keys, *args)

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.healthy:
            log.warning("Redis rate-limit store at %s failed (%s); using the fallback for %.1f s",
                        _safe(self.url), str(exc) or type(exc).__name__, self.retry_interval_s)
        self.healthy = False
        self._retry_at = self.clock() + self.retry_interval_s

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
            self._client = None


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return scheme + sep + rest
