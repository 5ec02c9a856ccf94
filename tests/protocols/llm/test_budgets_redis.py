"""RedisBudgetStore on the suite's Redis: 50 concurrent requests from 3 gateway processes stay within one token
limit, and the keys a reservation leaves are the documented ones, expiring after their window.

Run as a module, this file is one of those processes:

    python -m tests.protocols.llm.test_budgets_redis URL PREFIX LIMIT TASKS NOW SEED

It reserves on its connection once (so the script is loaded), prints "ready", reads a start time (epoch seconds)
from stdin, starts TASKS concurrent requests at that moment (reserve prompt + max_tokens, wait as a provider
would, settle with a usage of at most that; a refused request tries again a few times), and prints
{"admitted", "refused", "used", "degraded"} as JSON.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from protocols.llm.budgets import BudgetPolicy, Budgets, RedisBudgetStore, Subject, window

REDIS_URL = os.environ.get("REDIS_URL", "")
ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.redis, pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")]

PROCESSES = 3
REQUESTS = 50  # in total: 17 + 17 + 16 concurrent requests
PROMPT_TOKENS = 100
MAX_TOKENS = 400
ATTEMPTS = 30


def next_minute() -> float:
    """1 s into the next minute, taken when a test starts: the whole test is in one minute window."""
    return (time.time() // 60 + 1) * 60 + 1


def limits(limit: int) -> BudgetPolicy:
    return BudgetPolicy.from_config({"token_limits": {"tokens_per_minute": limit, "per": ["consumer", "model"]}},
                                    name="route:chat")


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"rusta-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def run_processes(prefix: str, limit: int, now: float) -> list[dict[str, int]]:
    tasks = [REQUESTS // PROCESSES + (1 if i < REQUESTS % PROCESSES else 0) for i in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.protocols.llm.test_budgets_redis", REDIS_URL, prefix, str(limit), str(n),
             repr(now), str(seed)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for seed, n in enumerate(tasks)
    ]
    try:
        for proc in procs:  # every process has connected and loaded the script: start them together
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        start_at = time.time() + 0.3
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start_at}\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def counter(prefix: str, key: str, period: str, now: float) -> dict[bytes, bytes]:
    start, end = window(period, now)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return client.hgetall(f"{prefix}{{budgets}}|{start}|{end}|{key}")  # type: ignore[return-value]
    finally:
        client.close()


def test_fifty_concurrent_requests_from_three_processes_overshoot_by_at_most_one_max_tokens(prefix):
    limit = 10_000  # 50 requests of up to 500 tokens each ask for 25_000
    now = next_minute()
    results = run_processes(prefix, limit, now)
    assert sum(r["degraded"] for r in results) == 0
    assert sum(r["admitted"] + r["refused"] for r in results) == REQUESTS
    used = sum(r["used"] for r in results)
    assert used <= limit + MAX_TOKENS, results
    assert sum(r["refused"] for r in results) > 0, results  # the limit was really reached
    # Settling with less than reserved let more requests in than 10_000 / 500 reservations would hold.
    assert sum(r["admitted"] for r in results) > limit // (PROMPT_TOKENS + MAX_TOKENS), results
    assert sum(1 for r in results if r["admitted"] > 0) >= 2, results  # the processes raced for it
    # The shared counter holds exactly what was settled, and nothing is still held.
    assert counter(prefix, "route:chat|tokens:minute|consumer=alice|model=gpt-4o", "minute", now) == {
        b"u": str(used).encode(), b"h": b"0"}


def test_a_reservation_leaves_its_counters_and_record_expiring_after_their_windows(prefix):
    policy = BudgetPolicy.from_config({"token_limits": {"tokens_per_minute": 1000, "tokens_per_day": 5000},
                                       "budgets": {"amount": 2, "period": "month"}}, name="global")
    now = next_minute()

    async def scenario() -> str:
        store = RedisBudgetStore(REDIS_URL, prefix)
        try:
            admission = await Budgets(store).reserve([policy], Subject("alice", "chat", "gpt-4o"), tokens=300,
                                                     cost=7_000, now=now)
            return admission.reservation.id
        finally:
            await store.aclose()

    reservation_id = run(scenario())
    client = redis.Redis.from_url(REDIS_URL)
    try:
        minute, day, month = (window(p, now) for p in ("minute", "day", "month"))
        base = f"{prefix}{{budgets}}|"
        assert sorted(k.decode() for k in client.scan_iter(match=prefix + "*")) == sorted([
            f"{base}{minute[0]}|{minute[1]}|global|tokens:minute|consumer=alice",
            f"{base}{day[0]}|{day[1]}|global|tokens:day|consumer=alice",
            f"{base}{month[0]}|{month[1]}|global|money:USD:month|consumer=alice",
            f"{base}res|{reservation_id}",
            f"{base}index",
        ])
        assert client.hgetall(f"{base}{month[0]}|{month[1]}|global|money:USD:month|consumer=alice") == {b"h": b"7000"}
        # Expiry: the window's end plus a grace (a minute for a minute window, an hour for longer ones).
        assert client.pexpiretime(f"{base}{minute[0]}|{minute[1]}|global|tokens:minute|consumer=alice") == (
            (minute[1] + 60) * 1000)
        assert client.pexpiretime(f"{base}{day[0]}|{day[1]}|global|tokens:day|consumer=alice") == (
            (day[1] + 3600) * 1000)
        assert 3_500_000 < client.pttl(f"{base}res|{reservation_id}") <= 3_600_000  # hold_s
        # Only the day-or-longer counters are indexed for exports.
        assert len(client.zrange(f"{base}index", 0, -1)) == 2
    finally:
        client.close()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def hammer(url: str, prefix: str, limit: int, tasks: int, now: float, seed: int) -> dict[str, int]:
    policy = limits(limit)
    store = RedisBudgetStore(url, prefix, timeout_s=2.0)  # generous: this measures exactness, not scheduling
    budgets = Budgets(store)
    warm = await budgets.reserve([policy], Subject(f"warm-up-{os.getpid()}", "chat", "gpt-4o"), tokens=1, now=now)
    assert warm.reservation is not None
    await budgets.release(warm.reservation, now=now)
    counts = {"admitted": 0, "refused": 0, "used": 0, "degraded": 0}
    rng = random.Random(seed)
    go = asyncio.Event()

    async def request() -> None:
        usage = PROMPT_TOKENS + rng.randint(0, MAX_TOKENS)
        await go.wait()
        for _ in range(ATTEMPTS):  # a refused client tries again shortly, so freed tokens find takers
            admission = await budgets.reserve([policy], Subject("alice", "chat", "gpt-4o"),
                                              tokens=PROMPT_TOKENS + MAX_TOKENS, now=now)
            counts["degraded"] += admission.degraded
            if admission.reservation is not None:
                break
            await asyncio.sleep(0.005)
        else:
            counts["refused"] += 1
            return
        counts["admitted"] += 1
        await asyncio.sleep(rng.random() * 0.02)  # the provider answers
        assert await budgets.settle(admission.reservation, tokens=usage, now=now) == "applied"
        counts["used"] += usage

    workers = [asyncio.create_task(request()) for _ in range(tasks)]
    print("ready", flush=True)
    start_at = float(await asyncio.to_thread(sys.stdin.readline))
    await asyncio.sleep(max(0.0, start_at - time.time()))  # one wall-clock moment for all processes
    go.set()
    await asyncio.gather(*workers)
    await store.aclose()
    return counts


if __name__ == "__main__":
    url, prefix, limit, tasks, now, seed = sys.argv[1:7]
    result = asyncio.run(hammer(url, prefix, int(limit), int(tasks), float(now), int(seed)))
    print(json.dumps(result), flush=True)
