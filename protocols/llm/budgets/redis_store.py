"""RedisBudgetStore: token and money counters shared by every gateway process, one Lua call per reserve or settle."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from protocols.limits.redis_store import StoreUnavailable
from protocols.limits.resp import RedisUnavailable, ReplyError, RespClient, Script
from protocols.llm.budgets.config import Charge, is_persisted
from protocols.llm.budgets.lua import RESERVE_LUA, SEED_LUA, SETTLE_LUA
from protocols.llm.budgets.snapshot import SpendEntry, grace_s
from protocols.redis_outage import RedisOutage

log = logging.getLogger(__name__)
_RESERVE = Script(RESERVE_LUA)
_SETTLE = Script(SETTLE_LUA)
_SEED = Script(SEED_LUA)
# Every key carries this hash tag: a reservation touches several counters in one script, which Redis Cluster
# allows only within one slot. The price: on a cluster, all budget keys live on one node.
TAG = "{budgets}"


class RedisBudgetStore:
    """Counters in Redis, shared by all processes using the same `url` and `prefix`.

    - Keys: `{prefix}{budgets}|<window start>|<window end>|<counter key>` (a hash: `u` settled, `h` held),
      `{prefix}{budgets}|res|<reservation id>` (a reservation's state: open, settled or released) and
      `{prefix}{budgets}|index` (a sorted set of the day-or-longer counters, scored by expiry, for exports).
      Counters expire a grace after their window (60 s for a minute, an hour for longer ones).
    - The clock is the caller's (wall-clock epoch seconds): windows follow the UTC calendar (months), which a
      Lua script cannot compute. Processes should run NTP; a skewed clock only moves its requests across a
      window boundary.
    - Client and outages as the rate limiter's RedisStore: one pipelined RespClient connection per process;
      a failure, a `timeout_s` without answer or an error reply raises StoreUnavailable, and after it Redis is
      left alone for `retry_interval_s` (every call fails fast) before one call probes it again (RedisOutage).
    """

    def __init__(self, url: str, prefix: str = "rusta:llm:", *, timeout_s: float = 0.25,
                 retry_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"The budget store's key prefix {prefix!r} may not hold braces (they are the hash tag).")
        self.url = url
        self.base = f"{prefix}{TAG}|"
        self.client = RespClient(url, timeout_s=timeout_s)
        self.outage = RedisOutage("Redis budget store", url, "using the fallback",
                                  retry_interval_s=retry_interval_s, clock=clock, logger=log)
        self.skipped = 0  # calls sent to the fallback without asking Redis (it was just down)

    @property
    def healthy(self) -> bool:
        return self.outage.healthy

    @property
    def index_key(self) -> str:
        return self.base + "index"

    def counter_key(self, key: str, start: int, end: int) -> str:
        return f"{self.base}{start}|{end}|{key}"

    async def reserve(self, reservation_id: str, charges: Sequence[Charge], now: float,
                      hold_s: float) -> tuple[int, list[int]]:
        keys = [self.base + "res|" + reservation_id, self.index_key]
        args: list[int] = [max(1, int(hold_s * 1000))]
        for charge in charges:
            keys.append(self.counter_key(charge.key, charge.start, charge.end))
            args += [charge.meter.limit, charge.amount, (charge.end + grace_s(charge.meter.meter)) * 1000,
                     int(is_persisted(charge.meter.meter))]
        reply = await self._run(_RESERVE, keys, args)
        return int(reply[0]), [int(total) for total in reply[1:]]

    async def settle(self, reservation_id: str, charges: Sequence[Charge], actuals: Sequence[int], state: str,
                     now: float, keep_s: float) -> bool:
        keys = [self.base + "res|" + reservation_id]
        args: list[int | str] = [state, max(1, int(keep_s * 1000))]
        for charge, actual in zip(charges, actuals, strict=True):
            keys.append(self.counter_key(charge.key, charge.start, charge.end))
            args += [-charge.amount, actual]
        return bool(await self._run(_SETTLE, keys, args))

    async def export(self, now: float) -> list[SpendEntry]:
        """Every day-or-longer counter still kept, read with one pipelined HMGET each (not one long script,
        which would block Redis for every gateway while it ran)."""
        index = self.index_key
        await self._call("ZREMRANGEBYSCORE", index, "-inf", int(now * 1000))
        names = await self._call("ZRANGE", index, 0, -1)
        states = await asyncio.gather(*(self._call("HMGET", name, "u", "h") for name in names))
        entries = []
        for name, (used, held) in zip(names, states, strict=True):
            if used is None and held is None:
                continue  # expired between the two calls
            start, end, key = name.decode()[len(self.base):].split("|", 2)
            entries.append(SpendEntry(key, int(start), int(end), int(used or 0), int(held or 0)))
        return entries

    async def seed(self, entries: Sequence[SpendEntry], now: float) -> int:
        keys = [self.index_key]
        args: list[int] = [int(now * 1000)]
        for entry in entries:
            if entry.end <= now:
                continue  # its window is over: nothing would read it
            keys.append(self.counter_key(entry.key, entry.start, entry.end))
            args += [entry.used, (entry.end + grace_s(entry.meter)) * 1000]
        if len(keys) == 1:
            return 0
        return int(await self._run(_SEED, keys, args))

    async def _run(self, script: Script, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        outage = self.outage
        if not outage.healthy and outage.skipping():
            self.skipped += 1
            raise StoreUnavailable("Redis is unavailable; retrying shortly")
        try:
            reply = await self.client.evalsha(script, tuple(keys), tuple(args))
        except (RedisUnavailable, ReplyError) as exc:
            outage.failed(exc)
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        if not outage.healthy:
            outage.succeeded()
        return reply

    async def _call(self, *command: object) -> Any:
        try:
            return await self.client.call(*command)
        except (RedisUnavailable, ReplyError) as exc:
            self.outage.failed(exc)
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self.client.aclose()
