"""RedisStore: counters shared by every gateway process, one atomic Lua call (EVALSHA) per decision."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from protocols.limits.config import SLIDING_WINDOW, RateLimitPolicy
from protocols.limits.decision import Decision
from protocols.limits.lua import SCRIPTS
from protocols.limits.resp import RedisUnavailable, ReplyError, RespClient, Script
from protocols.redis_outage import RedisOutage

log = logging.getLogger(__name__)
_SUFFIX = {"fixed_window": "fw", "sliding_window": "sw", "token_bucket": "tb"}
_SCRIPTS = {name: Script(source) for name, source in SCRIPTS.items()}
# Limit keys whose encoded command is kept (a few hundred bytes each); all are dropped when there are more.
_MAX_KEPT_CALLS = 4096
_Call = tuple[RateLimitPolicy, Script, tuple[str, ...], tuple[Any, ...], bytes]


class StoreUnavailable(Exception):
    """The shared store cannot decide right now (down, slow, or just failed); the Limiter falls back."""


class RedisStore:
    """Rate-limit counters in Redis, shared by all processes that use the same `url` and `prefix`.

    - One EVALSHA per decision, through RespClient (resp.py): one connection per process, pipelined, so
      concurrent decisions share its writes and reads. A server without the script (fresh, restarted,
      flushed) answers NOSCRIPT and gets the source once (EVAL), in the same call.
    - Time: the Redis server's clock (TIME inside the script) unless the caller passes `now` (wall-clock
      seconds) to `hit`; a deployment should do one or the other. The proxy passes nothing, so processes
      with skewed clocks still agree.
    - Failure: a connection that fails or is lost, no answer within `timeout_s` (the connection is then
      dropped), or an error reply raises StoreUnavailable. After a failure the store does not touch Redis for
      `retry_interval_s` (every decision fails fast to the fallback), then lets one probe through, which
      opens a new connection when needed; the first success makes it healthy again, so decisions are back on
      Redis within about `retry_interval_s` of Redis returning (RedisOutage).
    - Keys: `{prefix}{{limit key}}:{fw|sw|tb}` (the braces are a hash tag: a script's keys share one Redis
      Cluster slot); every key expires once its window or bucket no longer matters.
    An unsupported URL scheme raises ValueError here, at start-up. The connection is opened on first use, in
    the running event loop (one store per process).
    """

    def __init__(self, url: str, prefix: str = "rusta:rl:", *, timeout_s: float = 0.25,
                 retry_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.client = RespClient(url, timeout_s=timeout_s)
        self.outage = RedisOutage("Redis rate-limit store", url, "using the fallback",
                                  retry_interval_s=retry_interval_s, clock=clock, logger=log)
        self.skipped = 0  # decisions sent to the fallback without asking Redis (it was just down)
        # Encoded commands by limit key; the policy in each is checked by identity (a new table's policy with
        # the same name gets its own).
        self._calls: dict[str, _Call] = {}

    @property
    def healthy(self) -> bool:
        return self.outage.healthy

    @property
    def failures(self) -> int:
        """Decisions that fell back (Redis failed, or was left alone after failing), for metrics."""
        return self.outage.failures + self.skipped

    async def hit(self, policy: RateLimitPolicy, key: str, now: float | None = None) -> Decision:
        """The decision for one request on `key`; raises StoreUnavailable instead of any Redis error."""
        outage = self.outage
        if not outage.healthy and outage.skipping():
            self.skipped += 1
            raise StoreUnavailable("Redis is unavailable; retrying shortly")
        if now is None:
            # The proxy's call: the same command every time for this policy and key, encoded once.
            call = self._calls.get(key)
            if call is None or call[0] is not policy:
                call = self._call(policy, key, None)
        else:
            call = self._call(policy, key, now)
        try:
            # RespClient.evalsha's steps, awaited from here: one coroutine frame fewer resumed per reply.
            try:
                allowed, remaining, reset_us, retry_us = await self.client.send(call[4])
            except ReplyError as exc:
                if exc.code != "NOSCRIPT":
                    raise
                allowed, remaining, reset_us, retry_us = await self.client.eval(call[1], call[2], call[3])
        except (RedisUnavailable, ReplyError) as exc:
            outage.failed(exc)
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        if not outage.healthy:
            outage.succeeded()
        return Decision(bool(allowed), policy.capacity, remaining, reset_us / 1e6, retry_us / 1e6)

    def _call(self, policy: RateLimitPolicy, key: str, now: float | None) -> _Call:
        """The script, keys, arguments and encoded EVALSHA of one decision; kept for the proxy's (`now` None)."""
        name = policy.algorithm
        # The algorithm is part of the key: each keeps a different Redis type, and two policies that somehow
        # share a key must not meet a WRONGTYPE error.
        base = f"{self.prefix}{{{key}}}:{_SUFFIX[name]}"
        keys = (base, base + ":seq") if name == SLIDING_WINDOW else (base,)
        args = (b"" if now is None else int(now * 1_000_000), policy.limit, int(policy.window_s * 1_000_000),
                policy.capacity)
        script = _SCRIPTS[name]
        call = (policy, script, keys, args, script.evalsha_command(keys, args))
        if now is None:
            calls = self._calls
            if len(calls) >= _MAX_KEPT_CALLS:
                calls.clear()
            calls[key] = call
        return call

    async def aclose(self) -> None:
        await self.client.aclose()
