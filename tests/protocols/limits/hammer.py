"""One gateway-like process for the shared-limit test: its own event loop, many concurrent clients, one
RedisStore, all spending from the same key.

    python -m tests.protocols.limits.hammer URL PREFIX ALGORITHM LIMIT WINDOW_S TASKS HITS_PER_TASK

It opens its connection and loads the script, prints "ready", reads a start time (epoch seconds) from stdin,
which the parent sends once every process is ready, starts its clients at that moment, and prints
{"allowed": n, "rejected": n, "degraded": n} as JSON.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from protocols.limits import Limiter, RateLimitPolicy, RedisStore


async def main(url: str, prefix: str, algorithm: str, limit: int, window_s: float, tasks: int,
               hits: int) -> dict[str, int]:
    policy = RateLimitPolicy.from_config({"algorithm": algorithm, "limit": limit, "window_s": window_s,
                                          "scope": "global", "store": "redis"}, name="hammer")
    # A generous timeout: this measures the shared count's exactness, not how a loaded CI machine schedules.
    store = RedisStore(url, prefix, timeout_s=2.0)
    limiter = Limiter(policy, store)
    # Open the connection and load the script before the start, on a key of its own.
    await asyncio.gather(*(limiter.hit(f"warm-up-{os.getpid()}") for _ in range(tasks)))
    counts = {"allowed": 0, "rejected": 0, "degraded": 0}
    go = asyncio.Event()

    async def client() -> None:
        await go.wait()
        for _ in range(hits):
            decision = await limiter.hit("shared")
            counts["allowed" if decision.allowed else "rejected"] += 1
            counts["degraded"] += decision.degraded

    workers = [asyncio.create_task(client()) for _ in range(tasks)]
    print("ready", flush=True)
    start_at = float(await asyncio.to_thread(sys.stdin.readline))
    await asyncio.sleep(max(0.0, start_at - time.time()))  # one wall-clock moment for all processes
    go.set()
    await asyncio.gather(*workers)
    await store.aclose()
    return counts


if __name__ == "__main__":
    url, prefix, algorithm, limit, window_s, tasks, hits = sys.argv[1:8]
    result = asyncio.run(main(url, prefix, algorithm, int(limit), float(window_s), int(tasks), int(hits)))
    print(json.dumps(result), flush=True)
