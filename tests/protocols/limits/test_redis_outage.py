"""Redis stopped and started again under a live limiter (a private redis-server on a spare port): no exception
escapes, fail-open falls back to the local limit, fail-closed answers 429, and Redis is used again within
seconds of its return. And a Redis that accepts but never answers: the fallback decides within the timeout."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols.limits import Decision, Limiter, RateLimitPolicy, RedisStore
from tests.protocols.limits.redis_server import REDIS_CLI, REDIS_SERVER, PrivateRedis

needs_redis_server = pytest.mark.skipif(not (REDIS_SERVER and REDIS_CLI), reason="needs redis-server and redis-cli")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def limiter(server: PrivateRedis, on_store_error: str, limit: int = 3) -> tuple[Limiter, RedisStore]:
    policy = RateLimitPolicy.from_config({"algorithm": "sliding_window", "limit": limit, "window_s": 60,
                                          "on_store_error": on_store_error, "store": "redis"})
    store = RedisStore(server.url, "rl:", retry_interval_s=0.5, timeout_s=0.25)
    return Limiter(policy, store), store


async def until_redis_decides(limit: Limiter, key: str, deadline_s: float = 10.0) -> tuple[Decision, float]:
    """Hit every 50 ms until a decision comes from Redis again; the decision and how long it took."""
    started = time.monotonic()
    for _ in range(int(deadline_s / 0.05)):
        decision = await limit.hit(key)
        if not decision.degraded:
            return decision, time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"Redis was not used again within {deadline_s} s")


@pytest.mark.redis
@needs_redis_server
def test_fail_open_falls_back_to_the_local_limit_and_recovers(private_redis):
    async def scenario() -> dict[str, object]:
        limit, store = limiter(private_redis, "open")
        try:
            before = [await limit.hit("client") for _ in range(4)]
            private_redis.stop()
            during = [await limit.hit("client") for _ in range(4)]
            burst = await asyncio.gather(*(limit.hit(f"other-{n}") for n in range(50)))
            private_redis.start()
            after, took = await until_redis_decides(limit, "client")
            return {"before": before, "during": during, "burst": burst, "after": after, "took": took}
        finally:
            await store.aclose()

    result = asyncio.run(scenario())
    assert [(d.allowed, d.degraded) for d in result["before"]] == [(True, False)] * 3 + [(False, False)]
    # Redis is gone: the local fallback applies the same limit, counted in this process, and says so
    assert [(d.allowed, d.degraded) for d in result["during"]] == [(True, True)] * 3 + [(False, True)]
    assert all(d.allowed and d.degraded for d in result["burst"])
    # Redis is back (empty: it kept nothing), and decisions come from it again within a couple of seconds
    assert result["after"].allowed and result["after"].remaining == 2
    assert result["took"] < 3.0


@pytest.mark.redis
@needs_redis_server
def test_fail_closed_rejects_while_redis_is_away_and_recovers(private_redis):
    async def scenario() -> dict[str, object]:
        limit, store = limiter(private_redis, "closed")
        try:
            before = await limit.hit("client")
            private_redis.stop()
            during = [await limit.hit("client") for _ in range(3)]
            private_redis.start()
            after, took = await until_redis_decides(limit, "client")
            return {"before": before, "during": during, "after": after, "took": took}
        finally:
            await store.aclose()

    result = asyncio.run(scenario())
    assert result["before"].allowed and not result["before"].degraded
    for decision in result["during"]:
        assert (decision.allowed, decision.degraded) == (False, True)
        assert (b"retry-after", b"1") in decision.headers()
        assert decision.error("orders").status == 429  # a 429, never a 5xx of the gateway's own
    assert result["after"].allowed
    assert result["took"] < 3.0


@pytest.mark.redis
@needs_redis_server
def test_a_restarted_server_gets_the_script_again(private_redis):
    # A fresh server has an empty script cache: the first EVALSHA meets NOSCRIPT and the store loads it.
    async def scenario() -> list[Decision]:
        limit, store = limiter(private_redis, "closed", limit=2)
        try:
            await limit.hit("a")
            private_redis.stop()
            private_redis.start()
            first, _ = await until_redis_decides(limit, "a")
            return [first, await limit.hit("a"), await limit.hit("a")]
        finally:
            await store.aclose()

    decisions = asyncio.run(scenario())
    assert [(d.allowed, d.remaining, d.degraded) for d in decisions] == [
        (True, 1, False), (True, 0, False), (False, 0, False)]


def test_a_redis_that_never_answers_sends_decisions_to_the_fallback_within_the_timeout():
    async def scenario() -> tuple[list[Decision], float]:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        policy = RateLimitPolicy.from_config({"algorithm": "fixed_window", "limit": 2, "window_s": 60,
                                              "store": "redis"})
        store = RedisStore(f"redis://127.0.0.1:{port}/0", "rl:", timeout_s=0.2)
        limit = Limiter(policy, store)
        started = time.monotonic()
        try:
            decisions = list(await asyncio.gather(*(limit.hit("client") for _ in range(3))))
            return decisions, time.monotonic() - started
        finally:
            await store.aclose()
            server.close()

    decisions, took = asyncio.run(scenario())
    assert [(d.allowed, d.degraded) for d in decisions] == [(True, True), (True, True), (False, True)]
    assert took < 1.0
