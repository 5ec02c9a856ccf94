"""metrics.llm_spend: LLM token limits and budgets written to the database and seeded back, so they outlive a restart.

The write keeps the larger `used` (a retried or older snapshot never lowers a counter); a starting process is
raised to the windows still current; the flusher writes what the loop's counters hold; with REDIS_URL the
persist_llm_spend task copies Redis's counters and raises back those Redis lost.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings

from metrics import llm_spend, tasks
from metrics.flusher import WorkerFlusher
from metrics.models import LlmSpend
from protocols.llm.budgets import BudgetPolicy, Budgets, LocalBudgetStore, RedisBudgetStore, SpendEntry, Subject
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")

DAY = 86_400
NOW = 1_800_000_000.0 // DAY * DAY + 3600.0  # 01:00 UTC on some day
TODAY = int(NOW // DAY * DAY)
KEY = "route:chat|tokens:day|consumer=alice"
LIMITS = BudgetPolicy.from_config({"token_limits": {"tokens_per_day": 100, "per": ["consumer"]}}, name="route:chat")
ALICE = Subject("alice", "chat", "gpt-4o-mini")


def entry(used: int, start: int = TODAY, key: str = KEY) -> SpendEntry:
    return SpendEntry(key, start, start + DAY, used)


def stored() -> list[tuple[str, int, int]]:
    return [(row.key, int(row.window_start.timestamp()), row.used) for row in LlmSpend.objects.order_by("key")]


async def spend(budgets: Budgets, tokens: int, now: float = NOW) -> None:
    admission = await budgets.reserve([LIMITS], ALICE, tokens=tokens, now=now)
    assert admission.allowed and admission.reservation is not None
    await budgets.settle(admission.reservation, tokens=tokens, now=now)


def test_a_snapshot_is_stored_one_row_per_counter_and_window() -> None:
    other = "route:chat|money:USD:month|consumer=alice"
    assert llm_spend.write_snapshot([entry(40), entry(7, key=other), entry(90, start=TODAY - DAY)], NOW) == 3
    assert sorted(stored()) == sorted([(KEY, TODAY - DAY, 90), (KEY, TODAY, 40), (other, TODAY, 7)])


def test_writing_the_same_snapshot_again_changes_nothing() -> None:
    llm_spend.write_snapshot([entry(40)], NOW)
    assert llm_spend.write_snapshot([entry(40)], NOW + 10) == 0
    assert stored() == [(KEY, TODAY, 40)]


def test_a_lower_value_never_lowers_a_row_and_a_higher_one_raises_it() -> None:
    llm_spend.write_snapshot([entry(60)], NOW)
    assert llm_spend.write_snapshot([entry(20)], NOW + 10) == 0  # a late write, or a worker that counted less
    assert stored() == [(KEY, TODAY, 60)]
    assert llm_spend.write_snapshot([entry(75)], NOW + 20) == 1
    assert stored() == [(KEY, TODAY, 75)]


def test_one_counter_twice_in_a_snapshot_keeps_the_larger() -> None:
    llm_spend.write_snapshot([entry(30), entry(50), entry(10)], NOW)
    assert stored() == [(KEY, TODAY, 50)]


def test_rows_of_windows_ended_more_than_the_keep_ago_are_deleted() -> None:
    ended_long_ago = TODAY - DAY * 40
    llm_spend.write_snapshot([entry(5, start=ended_long_ago), entry(6, start=TODAY - DAY)], NOW)
    llm_spend.write_snapshot([entry(7)], NOW)
    assert sorted(stored()) == [(KEY, TODAY - DAY, 6), (KEY, TODAY, 7)]


def test_a_starting_process_is_raised_to_the_current_windows_and_refuses_past_the_limit() -> None:
    llm_spend.write_snapshot([entry(90), entry(100, start=TODAY - DAY)], NOW)
    assert llm_spend.current_entries(NOW) == [entry(90)]  # yesterday's window is over
    budgets = Budgets(LocalBudgetStore())

    async def seed_then_ask() -> tuple[int, bool, bool]:
        raised = await llm_spend.seed_budgets(budgets, NOW)
        small = await budgets.reserve([LIMITS], ALICE, tokens=10, now=NOW)
        large = await budgets.reserve([LIMITS], ALICE, tokens=11, now=NOW)
        return raised, small.allowed, large.allowed

    assert asyncio.run(seed_then_ask()) == (1, True, False)


def test_seeding_never_lowers_what_a_process_already_counted() -> None:
    llm_spend.write_snapshot([entry(30)], NOW)
    budgets = Budgets(LocalBudgetStore())

    async def count_then_seed() -> list[SpendEntry]:
        await spend(budgets, 50)
        await llm_spend.seed_budgets(budgets, NOW)
        return await budgets.export(NOW)

    assert [e.used for e in asyncio.run(count_then_seed())] == [50]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A gateway worker's event loop, running in a thread of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_the_flusher_writes_the_counters_the_loop_holds_and_again_when_it_stops(tmp_path, loop) -> None:
    budgets = Budgets(LocalBudgetStore(), clock=lambda: NOW)
    on_loop = lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(5)  # noqa: E731
    on_loop(spend(budgets, 30))
    flusher = WorkerFlusher(Recorder(), tmp_path, None, breakers=list, clock=lambda: NOW, spend=budgets.export)
    flusher._loop = loop  # what start() does, without scheduling ticks on the loop
    flusher._thread.start()
    flusher.tick()
    deadline = time.monotonic() + 5
    while not LlmSpend.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stored() == [(KEY, TODAY, 30)]

    on_loop(spend(budgets, 25))  # within spend_every of the last write: written when the process stops
    flusher.tick()
    flusher.stop()
    assert stored() == [(KEY, TODAY, 55)]


@override_settings(REDIS_URL="")
def test_without_redis_the_task_reads_nothing_and_writes_nothing() -> None:
    assert tasks.persist_llm_spend() == 0
    assert not LlmSpend.objects.exists()


@pytest.fixture
def clean_redis() -> Iterator[None]:
    def clean() -> None:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match="rusta:llm:*"))
        if keys:
            client.delete(*keys)
        client.close()

    clean()
    yield
    clean()


@needs_redis
def test_the_task_copies_redis_counters_and_raises_back_the_ones_redis_lost(clean_redis) -> None:
    now = time.time()
    today = int(now // DAY * DAY)

    async def spend_on_redis() -> None:
        store = RedisBudgetStore(REDIS_URL)
        try:
            await spend(Budgets(store, LocalBudgetStore()), 70, now)
        finally:
            await store.aclose()

    asyncio.run(spend_on_redis())
    assert tasks.persist_llm_spend() == 1
    assert stored() == [(KEY, today, 70)]
    assert tasks.persist_llm_spend() == 1 and stored() == [(KEY, today, 70)]  # again: nothing counted twice

    redis.Redis.from_url(REDIS_URL).delete(*redis.Redis.from_url(REDIS_URL).keys("rusta:llm:*"))  # Redis lost it
    sync = llm_spend.persist_redis_spend(REDIS_URL)
    assert (sync.read, sync.raised, sync.restored) == (0, 0, 1)

    async def export() -> list[SpendEntry]:
        store = RedisBudgetStore(REDIS_URL)
        try:
            return await store.export(time.time())
        finally:
            await store.aclose()

    assert [(e.key, e.start, e.used) for e in asyncio.run(export())] == [(KEY, today, 70)]


def test_beat_sends_the_task_only_where_redis_holds_the_counters() -> None:
    from django.conf import settings

    tasks_sent = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert ("metrics.persist_llm_spend" in tasks_sent) == bool(settings.REDIS_URL)
