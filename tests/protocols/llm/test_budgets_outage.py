"""Redis away under live budgets: fail-open reservations go to the local fallback, fail-closed ones are refused
with Retry-After 1, and a settle that could not reach Redis is sent once it answers again, counted once."""
from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.llm.budgets import BudgetPolicy, Budgets, LocalBudgetStore, RedisBudgetStore, Subject
from tests.protocols.limits.redis_server import REDIS_CLI, REDIS_SERVER, PrivateRedis, spare_port

needs_redis_server = pytest.mark.skipif(not (REDIS_SERVER and REDIS_CLI), reason="needs redis-server and redis-cli")
ALICE = Subject("alice", "chat", "gpt-4o")


def next_minute() -> float:
    """1 s into the next minute, taken when a test starts: the whole test is in one minute window."""
    return (time.time() // 60 + 1) * 60 + 1


def limits(on_store_error: str) -> BudgetPolicy:
    return BudgetPolicy.from_config({"token_limits": {"tokens_per_minute": 1000}, "on_store_error": on_store_error},
                                    name="route:chat")


def unreachable_store() -> RedisBudgetStore:
    """A store whose Redis port has nobody listening (connections are refused at once)."""
    return RedisBudgetStore(f"redis://127.0.0.1:{spare_port()}/0", retry_interval_s=60.0)


def test_fail_open_reserves_and_settles_on_the_local_fallback():
    store = unreachable_store()
    budgets = Budgets(store, LocalBudgetStore())
    now = next_minute()

    async def scenario() -> list[Any]:
        first = await budgets.reserve([limits("open")], ALICE, tokens=800, now=now)
        refused = await budgets.reserve([limits("open")], ALICE, tokens=800, now=now)  # the fallback counts too
        settled = await budgets.settle(first.reservation, tokens=100, now=now)
        again = await budgets.reserve([limits("open")], ALICE, tokens=800, now=now)
        return [first.allowed, first.degraded, first.reservation.degraded, refused.allowed, settled, again.allowed]

    assert asyncio.run(scenario()) == [True, True, True, False, "applied", True]
    assert not store.healthy


def test_fail_closed_refuses_with_retry_after_one_second():
    budgets = Budgets(unreachable_store(), LocalBudgetStore())
    now = next_minute()
    admission = asyncio.run(budgets.reserve([limits("closed")], ALICE, tokens=1, now=now))
    assert (admission.allowed, admission.degraded) == (False, True)
    error = admission.error()
    assert (error.status, error.type, error.headers) == (429, "limits_unavailable", [(b"retry-after", b"1")])
    assert error.message == "Token limits and budgets cannot be checked right now; retry in 1 s."


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.redis
@needs_redis_server
def test_a_settle_redis_missed_is_sent_when_it_answers_again_and_counted_once(private_redis):
    store = RedisBudgetStore(private_redis.url, timeout_s=0.25, retry_interval_s=0.2)
    budgets = Budgets(store, LocalBudgetStore())
    policy = limits("open")
    now = next_minute()

    async def scenario() -> list[Any]:
        first = await budgets.reserve([policy], ALICE, tokens=800, now=now)
        # Redis keeps its data but answers nothing for a while (as a failover or a long pause would).
        assert REDIS_CLI is not None
        subprocess.run([REDIS_CLI, "-p", str(private_redis.port), "client", "pause", "1000", "ALL"], check=True,
                       capture_output=True, timeout=10)
        settled = await budgets.settle(first.reservation, tokens=150, now=now)
        kept = len(budgets.deferred)
        for _ in range(200):  # until a reservation is decided by Redis again (its call sends the kept settle)
            after = await budgets.reserve([policy], ALICE, tokens=850, now=now)
            if not after.degraded:
                break
            await budgets.release(after.reservation, now=now)
            await asyncio.sleep(0.05)
        full = await budgets.reserve([policy], ALICE, tokens=1, now=now)
        again = await budgets.settle(first.reservation, tokens=150, now=now)
        await store.aclose()
        return [first.degraded, settled, kept, after.degraded, after.allowed, len(budgets.deferred), full.allowed,
                again]

    # 150 settled + 850 = the whole 1000: the settle reached Redis exactly once.
    assert asyncio.run(scenario()) == [False, "deferred", 1, False, True, 0, False, "duplicate"]
