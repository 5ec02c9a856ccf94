"""Redis rate-limit decision micro-benchmark: decisions/s and CPU µs per decision in the gateway's event loop.

Runs `Limiter.hit` on a Redis-stored token bucket (the "JWT + Redis rate limit" bench scenario's policy, one
shared key) from C concurrent tasks on one uvloop loop, for each path in turn:

- `redis-py`: one EVALSHA per decision through redis-py's asyncio client and a connection pool, under
  asyncio.timeout (the rate limiter's store before protocols/limits/resp.py);
- `store`: protocols.limits.RedisStore as it is in this checkout.

CPU is this process's (time.process_time): what the gateway's loop pays; Redis's own CPU is not counted. Each
run is bounded by `--seconds`; keys live under `rusta-bench:` in the given database and are deleted after.

    .venv/bin/python bench/limit_bench.py [--url redis://127.0.0.1:6379/13] [--seconds 2] [--concurrency 1,50]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
import uvloop  # noqa: E402
from redis.asyncio import BlockingConnectionPool, Redis  # noqa: E402
from redis.asyncio.retry import Retry  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.exceptions import NoScriptError, RedisError  # noqa: E402

from protocols.limits import Decision, Limiter, RateLimitPolicy, RedisStore, StoreUnavailable  # noqa: E402
from protocols.limits.lua import SCRIPTS, SHAS  # noqa: E402

POLICY = RateLimitPolicy.from_config({"algorithm": "token_bucket", "limit": 10_000_000, "window_s": 60,
                                      "store": "redis", "scope": "global"}, name="bench")


class RedisPyStore:
    """The previous RedisStore's request path, kept here as the reference: redis-py asyncio, a blocking
    pool, asyncio.timeout around each decision, EVALSHA with a SCRIPT LOAD on NOSCRIPT."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 0.25, max_connections: int = 64) -> None:
        self.prefix = prefix
        self.timeout_s = timeout_s
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout_s, socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 1))
        self.client = Redis(connection_pool=pool)

    async def hit(self, policy: RateLimitPolicy, key: str, now: float | None = None) -> Decision:
        base = f"{self.prefix}{{{key}}}:tb"
        args = ("", policy.limit, str(int(policy.window_s * 1_000_000)), policy.capacity)
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                try:
                    result = await self.client.evalsha(SHAS[policy.algorithm], 1, base, *args)
                except NoScriptError:
                    await self.client.script_load(SCRIPTS[policy.algorithm])
                    result = await self.client.evalsha(SHAS[policy.algorithm], 1, base, *args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        allowed, remaining, reset_us, retry_us = (int(v) for v in result)
        return Decision(bool(allowed), policy.capacity, remaining, reset_us / 1e6, retry_us / 1e6)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()


async def measure(store: Any, concurrency: int, seconds: float) -> dict[str, float]:
    """Decisions from `concurrency` tasks for `seconds` (after a short warm-up): rate, CPU per decision."""
    limiter = Limiter(POLICY, store)
    counts = {"done": 0, "degraded": 0}
    stop_at = 0.0

    async def client() -> None:
        while time.monotonic() < stop_at:
            decision = await limiter.hit("shared")
            counts["done"] += 1
            counts["degraded"] += decision.degraded

    stop_at = time.monotonic() + min(0.5, seconds / 4)  # warm-up: connections open, script loaded
    await asyncio.gather(*(client() for _ in range(concurrency)))
    counts.update(done=0, degraded=0)
    wall0, cpu0 = time.monotonic(), time.process_time()
    stop_at = wall0 + seconds
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    done = max(1, counts["done"])
    return {"decisions": counts["done"], "per_s": counts["done"] / wall, "cpu_us": cpu / done * 1e6,
            "degraded": counts["degraded"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per path and concurrency")
    parser.add_argument("--concurrency", default="1,50", help="comma-separated numbers of concurrent tasks")
    parser.add_argument("--paths", default="redis-py,store", help="comma-separated: redis-py, store")
    args = parser.parse_args()
    prefix = f"rusta-bench:{uuid.uuid4().hex[:8]}:"
    makers: dict[str, Callable[[], Any]] = {
        "redis-py": lambda: RedisPyStore(args.url, prefix),
        "store": lambda: RedisStore(args.url, prefix),
    }
    levels = [int(n) for n in args.concurrency.split(",") if n.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]

    async def run(path: str, concurrency: int) -> dict[str, float]:
        store = makers[path]()
        try:
            return await measure(store, concurrency, args.seconds)
        finally:
            await store.aclose()

    print(f"{'path':10s} {'tasks':>5s} {'decisions/s':>12s} {'CPU µs/decision':>16s} {'degraded':>9s}")
    try:
        for concurrency in levels:
            for path in paths:
                result = uvloop.run(run(path, concurrency))
                print(f"{path:10s} {concurrency:5d} {result['per_s']:12,.0f} {result['cpu_us']:16.1f} "
                      f"{result['degraded']:9d}", flush=True)
    finally:
        client = redis.Redis.from_url(args.url)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
