"""RedisStore on the suite's Redis: three processes with 64 concurrent clients share one exact limit, the
server's clock decides when the caller gives none, and an error reply sends the decision to the fallback."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from protocols.limits import Limiter, RateLimitPolicy, RedisStore

REDIS_URL = os.environ.get("REDIS_URL", "")
ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.redis, pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")]

PROCESSES = 3
CLIENTS = 64  # in total: 22 + 21 + 21 concurrent tasks


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"rusta-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def run_processes(prefix: str, algorithm: str, limit: int, window_s: float, hits_per_client: int) -> list[dict]:
    tasks = [CLIENTS // PROCESSES + (1 if i < CLIENTS % PROCESSES else 0) for i in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.protocols.limits.hammer", REDIS_URL, prefix, algorithm, str(limit),
             str(window_s), str(n), str(hits_per_client)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in tasks
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


@pytest.mark.parametrize(("algorithm", "window_s"), [
    ("fixed_window", 600), ("sliding_window", 600), ("token_bucket", 86_400 * 30),
])
def test_three_processes_share_exactly_one_limit(prefix, algorithm, window_s):
    limit = 500
    results = run_processes(prefix, algorithm, limit, window_s, hits_per_client=16)  # 1024 hits, 500 places
    assert sum(r["degraded"] for r in results) == 0
    assert sum(r["allowed"] + r["rejected"] for r in results) == CLIENTS * 16
    assert sum(r["allowed"] for r in results) == limit, results
    # The processes really raced for the same places (a process the OS put aside for the whole ~50 ms run
    # may get none, on a busy machine: the exact total above is what matters).
    assert sum(1 for r in results if r["allowed"] > 0) >= 2, results


def test_the_server_clock_decides_when_the_caller_gives_none(prefix):
    policy = RateLimitPolicy.from_config({"algorithm": "fixed_window", "limit": 2, "window_s": 60})

    async def scenario() -> list[tuple[bool, int, int]]:
        store = RedisStore(REDIS_URL, prefix)
        try:
            decisions = [await Limiter(policy, store).hit("k") for _ in range(3)]
        finally:
            await store.aclose()
        return [(d.allowed, d.remaining, round(d.reset_s)) for d in decisions]

    assert asyncio.run(scenario()) == [(True, 1, 60), (True, 0, 60), (False, 0, 60)]
    ttl = redis.Redis.from_url(REDIS_URL).pttl(f"{prefix}{{k}}:fw")
    assert 59_000 < ttl <= 61_000  # the counter expires with its window (plus a second of slack)


def test_an_error_reply_from_redis_sends_the_decision_to_the_fallback(prefix):
    policy = RateLimitPolicy.from_config({"algorithm": "fixed_window", "limit": 2, "window_s": 60})
    redis.Redis.from_url(REDIS_URL).set(f"{prefix}{{k}}:fw", "not a hash")  # the script meets WRONGTYPE

    async def scenario() -> tuple[list[tuple[bool, bool]], bool]:
        store = RedisStore(REDIS_URL, prefix)
        try:
            limiter = Limiter(policy, store)
            decisions = [await limiter.hit("k") for _ in range(3)]
            return [(d.allowed, d.degraded) for d in decisions], store.healthy
        finally:
            await store.aclose()

    decisions, healthy = asyncio.run(scenario())
    assert decisions == [(True, True), (True, True), (False, True)]  # the local fallback's count of 2
    assert not healthy


def test_a_new_policy_on_the_same_key_is_decided_by_its_own_limit(prefix):
    # The store keeps each key's encoded command: a changed limit (a new table's policy) must not reuse it.
    before = RateLimitPolicy.from_config({"algorithm": "fixed_window", "limit": 5, "window_s": 60})
    after = RateLimitPolicy.from_config({"algorithm": "fixed_window", "limit": 1, "window_s": 60})

    async def scenario() -> list[tuple[bool, int]]:
        store = RedisStore(REDIS_URL, prefix)
        try:
            first = await Limiter(before, store).hit("k")
            second = await Limiter(after, store).hit("k")
        finally:
            await store.aclose()
        return [(first.allowed, first.remaining), (second.allowed, second.remaining)]

    assert asyncio.run(scenario()) == [(True, 4), (False, 0)]


def test_a_flushed_script_is_loaded_again_without_falling_back(prefix):
    policy = RateLimitPolicy.from_config({"algorithm": "fixed_window", "limit": 5, "window_s": 60})

    async def scenario() -> list[tuple[int, bool]]:
        store = RedisStore(REDIS_URL, prefix)
        try:
            limiter = Limiter(policy, store)
            first = await limiter.hit("k")
            redis.Redis.from_url(REDIS_URL).script_flush()  # the server forgets the script: NOSCRIPT
            second = await limiter.hit("k")
        finally:
            await store.aclose()
        return [(first.remaining, first.degraded), (second.remaining, second.degraded)]

    assert asyncio.run(scenario()) == [(4, False), (3, False)]
