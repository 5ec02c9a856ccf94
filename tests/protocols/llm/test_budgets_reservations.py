"""Reserve, settle and release on both stores (the local one, and the suite's Redis when REDIS_URL is set): what a
caller is admitted, what a refusal names, what settling gives back, and spend exported and seeded exactly."""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import redis

from protocols.llm.budgets import (
    BudgetPolicy,
    Budgets,
    LocalBudgetStore,
    Prices,
    RedisBudgetStore,
    SpendEntry,
    Subject,
    window,
)

REDIS_URL = os.environ.get("REDIS_URL", "")
T = TypeVar("T")
ALICE = Subject("alice", "chat", "gpt-4o")
BOB = Subject("bob", "chat", "gpt-4o")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def now() -> float:
    """1 s into the next minute, taken when the test starts: its calls fall in one known minute and day, and Redis
    keys (which expire by the wall clock, a grace after their window) outlive the test."""
    return (time.time() // 60 + 1) * 60 + 1


def policy(block: dict[str, Any], name: str = "route:chat") -> BudgetPolicy:
    return BudgetPolicy.from_config(block, name=name)


@pytest.fixture(params=["local", pytest.param("redis", marks=[
    pytest.mark.redis, pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")])])
def make_budgets(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Budgets on a fresh store of the parameter's kind; a second call gives another store (a restart) that
    shares the first's Redis data, as gateway processes do."""
    prefix = f"rusta-test:{uuid.uuid4().hex[:8]}:"
    stores: list[RedisBudgetStore] = []

    def make() -> Budgets:
        if request.param == "local":
            return Budgets(LocalBudgetStore())
        store = RedisBudgetStore(REDIS_URL, prefix, timeout_s=2.0)
        stores.append(store)
        return Budgets(store)

    yield make
    for store in stores:
        run(store.aclose())
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


TPM = policy({"token_limits": {"tokens_per_minute": 1000, "per": ["consumer"]}})


def test_requests_within_the_limit_are_admitted_until_it_is_reached(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> list[bool]:
        return [(await budgets.reserve([TPM], ALICE, tokens=250, now=now)).allowed for _ in range(5)]

    assert run(scenario()) == [True, True, True, True, False]


def test_a_refusal_names_the_limit_its_scope_and_when_it_resets(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> Any:
        await budgets.reserve([TPM], ALICE, tokens=600, now=now)
        return await budgets.reserve([TPM], ALICE, tokens=600, now=now + 14.5)

    admission = run(scenario())
    assert not admission.allowed and admission.reservation is None
    refusal = admission.refusal
    assert (refusal.meter.label, refusal.key, refusal.counted, refusal.requested) == (
        "tokens_per_minute", "route:chat|tokens:minute|consumer=alice", 600, 600)
    assert refusal.reset_s == pytest.approx(window("minute", now)[1] - now - 14.5)
    error = admission.error()
    assert (error.status, error.type) == (429, "token_limit_exceeded")
    assert (b"retry-after", b"45") in error.headers
    assert error.message == ("Token limit tokens_per_minute (1000 tokens per minute per consumer) of route:chat, "
                             "consumer=alice reached; resets in 45 s.")


def test_other_consumers_count_on_their_own(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> tuple[bool, bool]:
        await budgets.reserve([TPM], ALICE, tokens=1000, now=now)
        alice = await budgets.reserve([TPM], ALICE, tokens=1, now=now)
        bob = await budgets.reserve([TPM], BOB, tokens=1000, now=now)
        return alice.allowed, bob.allowed

    assert run(scenario()) == (False, True)


def test_the_next_window_starts_from_zero(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> tuple[bool, bool]:
        await budgets.reserve([TPM], ALICE, tokens=1000, now=now)
        same = await budgets.reserve([TPM], ALICE, tokens=1000, now=now + 58)
        following = await budgets.reserve([TPM], ALICE, tokens=1000, now=now + 59)
        return same.allowed, following.allowed

    assert run(scenario()) == (False, True)


def test_a_refusal_by_one_limit_takes_nothing_from_the_others(make_budgets, now):
    budgets = make_budgets()
    per_model = policy({"token_limits": {"tokens_per_day": 500, "per": ["model"]}}, name="global")

    async def scenario() -> list[bool]:
        refused = await budgets.reserve([per_model, TPM], ALICE, tokens=600, now=now)  # the day limit says no
        # Had the minute limit kept the 600, alice could not take 1000 now.
        whole_minute = await budgets.reserve([TPM], ALICE, tokens=1000, now=now)
        return [refused.allowed, refused.refusal.meter.label == "tokens_per_day", whole_minute.allowed]

    assert run(scenario()) == [False, True, True]


def test_settling_with_less_lets_the_freed_tokens_be_admitted_again(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> list[Any]:
        first = await budgets.reserve([TPM], ALICE, tokens=800, now=now)  # prompt 300 + max_tokens 500
        before = await budgets.reserve([TPM], ALICE, tokens=700, now=now)
        settled = await budgets.settle(first.reservation, tokens=300 + 20, now=now + 1)
        after = await budgets.reserve([TPM], ALICE, tokens=680, now=now + 2)
        full = await budgets.reserve([TPM], ALICE, tokens=1, now=now + 2)
        return [before.allowed, settled, after.allowed, full.allowed]

    assert run(scenario()) == [False, "applied", True, False]


def test_settling_with_more_than_reserved_counts_the_excess(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> list[bool]:
        first = await budgets.reserve([TPM], ALICE, tokens=500, now=now)
        await budgets.settle(first.reservation, tokens=900, now=now)  # the prompt was counted short
        return [(await budgets.reserve([TPM], ALICE, tokens=n, now=now)).allowed for n in (101, 100)]

    assert run(scenario()) == [False, True]


def test_a_retried_settle_counts_nothing_twice(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> list[Any]:
        first = await budgets.reserve([TPM], ALICE, tokens=500, now=now)
        outcomes = [await budgets.settle(first.reservation, tokens=100, now=now) for _ in range(3)]
        released = await budgets.release(first.reservation, now=now)
        return [*outcomes, released, (await budgets.reserve([TPM], ALICE, tokens=900, now=now)).allowed,
                (await budgets.reserve([TPM], ALICE, tokens=1, now=now)).allowed]

    assert run(scenario()) == ["applied", "duplicate", "duplicate", "duplicate", True, False]


def test_a_released_reservation_gives_everything_back_once(make_budgets, now):
    budgets = make_budgets()

    async def scenario() -> list[Any]:
        first = await budgets.reserve([TPM], ALICE, tokens=1000, now=now)
        outcomes = [await budgets.release(first.reservation, now=now), await budgets.release(first.reservation),
                    await budgets.settle(first.reservation, tokens=1000, now=now)]
        return [*outcomes, (await budgets.reserve([TPM], ALICE, tokens=1000, now=now)).allowed]

    assert run(scenario()) == ["applied", "duplicate", "duplicate", True]


def test_a_request_larger_than_the_limit_itself_is_a_client_error(make_budgets, now):
    budgets = make_budgets()
    admission = run(budgets.reserve([TPM], ALICE, tokens=1001, now=now))
    assert admission.refusal.exceeds_limit
    error = admission.error()
    assert (error.status, error.type, error.headers) == (400, "token_limit_exceeded", [])
    assert "this request alone may use 1001 tokens, more than the limit" in error.message


def test_money_budgets_add_up_exactly_in_micro_units(make_budgets, now):
    budgets = make_budgets()
    # A budget of 0.3: three requests of 0.1 fit exactly (as floats, 0.1 + 0.1 + 0.1 > 0.3); each costs
    # 600k input tokens at 0.1 and 100k output tokens at 0.4 per million.
    prices = Prices.from_config({"input": 0.1, "output": 0.4})
    budget = policy({"budgets": {"amount": 0.3, "period": "day"}}, name="global")

    async def scenario() -> list[Any]:
        outcomes = []
        for _ in range(3):
            admission = await budgets.reserve([budget], ALICE, tokens=0, cost=prices.max_cost(600_000, 100_000),
                                              now=now)
            outcomes.append(admission.allowed)
            await budgets.settle(admission.reservation, tokens=0, cost=prices.cost(600_000, 100_000), now=now)
        refused = await budgets.reserve([budget], ALICE, tokens=0, cost=1, now=now)
        return [*outcomes, refused.allowed, refused.error().type, refused.error().message,
                await budgets.export(now=now)]

    *admitted, fourth, kind, message, exported = run(scenario())
    assert admitted == [True, True, True] and not fourth
    assert kind == "budget_exceeded"
    assert message.startswith("Budget budget (0.3 USD per day per consumer) of global, consumer=alice reached")
    start, end = window("day", now)
    assert exported == [SpendEntry("global|money:USD:day|consumer=alice", start, end, used=300_000, held=0)]


def test_export_lists_day_and_longer_counters_with_what_is_in_flight(make_budgets, now):
    budgets = make_budgets()
    limits = policy({"token_limits": {"tokens_per_minute": 10_000, "tokens_per_day": 50_000},
                     "budgets": {"amount": 5, "period": "month"}})

    async def scenario() -> list[SpendEntry]:
        done = await budgets.reserve([limits], ALICE, tokens=900, cost=40_000, now=now)
        await budgets.settle(done.reservation, tokens=700, cost=31_000, now=now)
        await budgets.reserve([limits], ALICE, tokens=500, cost=20_000, now=now)  # still in flight
        return await budgets.export(now=now)

    day, month = window("day", now), window("month", now)
    assert sorted(run(scenario()), key=lambda e: e.key) == [
        SpendEntry("route:chat|money:USD:month|consumer=alice", *month, used=31_000, held=20_000),
        SpendEntry("route:chat|tokens:day|consumer=alice", *day, used=700, held=500),
    ]


def test_a_seeded_store_refuses_what_the_snapshot_already_spent(make_budgets, now):
    limits = policy({"budgets": {"amount": 1, "period": "month"}}, name="global")
    start, end = window("month", now)
    snapshot = [SpendEntry("global|money:USD:month|consumer=alice", start, end, used=900_000, held=50_000),
                SpendEntry("global|money:USD:month|consumer=bob", start - 86_400 * 40, start, used=999_999)]
    restarted = make_budgets()

    async def scenario() -> list[Any]:
        raised = await restarted.seed([SpendEntry.from_dict(e.as_dict()) for e in snapshot], now=now)
        again = await restarted.seed(snapshot, now=now)  # seeding twice counts nothing twice
        alice = [(await restarted.reserve([limits], ALICE, tokens=0, cost=c, now=now)).allowed
                 for c in (100_001, 100_000)]
        bob = await restarted.reserve([limits], BOB, tokens=0, cost=1_000_000, now=now)  # last month's is over
        return [raised, again, *alice, bob.allowed]

    assert run(scenario()) == [1, 0, False, True, True]


def test_a_policy_without_limits_admits_without_counting(make_budgets, now):
    budgets = make_budgets()
    empty = policy({})

    async def scenario() -> list[Any]:
        admission = await budgets.reserve([empty], ALICE, tokens=10**9, now=now)
        return [admission.allowed, await budgets.settle(admission.reservation, tokens=5, now=now),
                await budgets.export(now=now)]

    assert run(scenario()) == [True, "applied", []]
