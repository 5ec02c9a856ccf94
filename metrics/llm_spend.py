"""LLM token limits and budgets kept across restarts: day-or-longer counters written to LlmSpend, seeded back at start.

Who writes (protocols.llm.budgets counts; this module only copies):
- With `REDIS_URL` the counters are shared in Redis: the `metrics.persist_llm_spend` task (beat, every 10 s) reads
  them with one RedisBudgetStore of its own (`persist_redis_spend`), no gateway needed. A counter the table holds
  higher than Redis means Redis lost it (a restart without persistence, a flush): the task raises it back.
- On the embedded default each gateway process counts on its own (LocalBudgetStore): its metrics flusher takes the
  snapshot on the event loop and writes it from its own thread every SPEND_EVERY_S seconds and when the process
  stops (metrics.flusher); a process killed outright loses at most that much spend.
Who reads: every gateway process once it has built its data plane, before serving (`seed_budgets`): the rows of
windows still current raise its counters (never lowering them, so seeding a Redis that kept its data changes
nothing). The data plane never touches the database: rows are read on a thread and handed over as SpendEntry.

Writes are upserts that keep the larger `used`, so a retried, late or duplicated write never counts twice and
never lowers a counter; several workers of one gateway writing the same counter leave the largest of their counts.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, connection, transaction

from metrics.models import LlmSpend
from protocols.llm.budgets import Budgets, RedisBudgetStore, SpendEntry, StoreUnavailable

log = logging.getLogger(__name__)
# How often a gateway process on the embedded default writes its counters (seconds).
SPEND_EVERY_S = 10.0
# Rows of ended windows are kept this long for an operator to look at (last month's budgets), then deleted;
# nothing reads them.
KEEP_ENDED_S = 35 * 86400
# Rows per INSERT: well under SQLite's and PostgreSQL's limits on bound parameters (5 per row).
_BATCH = 500


@dataclass(frozen=True, slots=True)
class RedisSync:
    """One run of the task: counters read from Redis, rows raised in the table, counters raised back in Redis."""

    read: int = 0
    raised: int = 0
    restored: int = 0


def write_snapshot(entries: Sequence[SpendEntry], now: float | None = None) -> int:
    """Upsert `entries` (the larger `used` wins) and delete rows ended more than KEEP_ENDED_S ago, in one
    transaction; returns the rows inserted or raised."""
    now = time.time() if now is None else now
    best: dict[tuple[str, int], SpendEntry] = {}
    for entry in entries:  # one row may appear once per INSERT (PostgreSQL refuses to update a row twice)
        seen = best.get((entry.key, entry.start))
        if seen is None or entry.used > seen.used:
            best[(entry.key, entry.start)] = entry
    rows = list(best.values())
    written = 0
    with transaction.atomic():
        for index in range(0, len(rows), _BATCH):
            written += _upsert(rows[index:index + _BATCH], now)
        if rows:
            LlmSpend.objects.filter(window_end__lt=_datetime(now - KEEP_ENDED_S)).delete()
    return written


def _upsert(rows: Sequence[SpendEntry], now: float) -> int:
    ops = connection.ops
    table, key, start, end, used, updated = (ops.quote_name(name) for name in (
        LlmSpend._meta.db_table, "key", "window_start", "window_end", "used", "updated_at"))
    stamp = ops.adapt_datetimefield_value(_datetime(now))
    params: list[Any] = []
    for row in rows:
        params += [row.key, ops.adapt_datetimefield_value(_datetime(row.start)),
                   ops.adapt_datetimefield_value(_datetime(row.end)), row.used, stamp]
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    # The WHERE leaves a row that is not raised untouched: no write (and no dead tuple on PostgreSQL) every 10 s
    # for each unchanged counter. Same statement on SQLite (3.24+) and PostgreSQL.
    sql = (f"INSERT INTO {table} ({key}, {start}, {end}, {used}, {updated}) VALUES {values} "
           f"ON CONFLICT ({key}, {start}) DO UPDATE SET {used} = excluded.{used}, {updated} = excluded.{updated} "
           f"WHERE excluded.{used} > {table}.{used}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def current_entries(now: float | None = None) -> list[SpendEntry]:
    """The rows of windows not over at `now`, as SpendEntry (what a starting gateway seeds)."""
    moment = _datetime(time.time() if now is None else now)
    return [SpendEntry(key, int(start.timestamp()), int(end.timestamp()), used)
            for key, start, end, used in LlmSpend.objects.filter(window_end__gt=moment)
            .values_list("key", "window_start", "window_end", "used")]


async def seed_budgets(budgets: Budgets, now: float | None = None) -> int:
    """Raise a starting gateway process's counters to the table's (on its event loop; the read on a thread).
    Returns the counters raised; a database or Redis that does not answer is logged, and the process starts
    with what its store holds."""
    entries = await asyncio.to_thread(_read_for_seed, now)
    if not entries:
        return 0
    try:
        return await budgets.seed(entries, now)
    except StoreUnavailable as exc:  # Budgets.seed raised the local fallback first: an outage starts from there
        log.warning("could not seed the LLM token limits and budgets into Redis: %s", exc)
        return 0


def _read_for_seed(now: float | None) -> list[SpendEntry]:
    try:
        return current_entries(now)
    except DatabaseError as exc:
        log.warning("could not read the LLM spend kept in the database; counting from what the store holds: %s",
                    exc)
        return []
    finally:
        connection.close()  # this thread's own connection: the executor's threads are not Django's to clean up


def persist_redis_spend(redis_url: str, now: float | None = None) -> RedisSync:
    """Copy Redis's day-or-longer counters to the table, then raise back in Redis those the table holds higher
    (Redis lost them). Raises StoreUnavailable when Redis does not answer."""
    now = time.time() if now is None else now
    # Two short event loops around the ORM, which refuses to run inside one.
    exported = asyncio.run(_export(redis_url, now))
    raised = write_snapshot(exported, now)
    in_redis = {(entry.key, entry.start): entry.used for entry in exported}
    lost = [entry for entry in current_entries(now) if entry.used > in_redis.get((entry.key, entry.start), 0)]
    restored = asyncio.run(_seed(redis_url, lost, now)) if lost else 0
    if lost:
        log.warning("%d LLM spend counter(s) were lower in Redis than in the database (Redis lost them); "
                    "raised back", len(lost))
    return RedisSync(len(exported), raised, restored)


async def _export(redis_url: str, now: float) -> list[SpendEntry]:
    store = RedisBudgetStore(redis_url)
    try:
        return await store.export(now)
    finally:
        await store.aclose()


async def _seed(redis_url: str, entries: list[SpendEntry], now: float) -> int:
    store = RedisBudgetStore(redis_url)
    try:
        return await store.seed(entries, now)
    finally:
        await store.aclose()


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
