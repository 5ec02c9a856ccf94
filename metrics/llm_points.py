"""The LLM spend history's 10-second points: buffered per process, written, ingested from Redis, rolled up, pruned.

Each flusher tick takes the LLM routes' spend window (protocols.llm.metrics.LlmMetrics.take_window) into this
process's `SpendBuffer`, beside the recorder's windows (metrics.history.HistoryBuffer owns one). Per 10-second bucket
and (route, model, consumer) a point holds requests, input/output/cached input tokens and cost in integer
micro-units, so every sum at every resolution is exact. It takes the route points' path and rules:

- on the embedded default, one LlmSpendRawPoint row per (bucket, route, model, consumer, process), upserted: a
  write *replaces* what the process wrote before for that bucket, so a retried write never counts twice;
- with REDIS_URL, a hash per bucket (`rusta:metrics:llm:10s:<epoch>`, a field per (route, model, consumer,
  process)) whose bucket sits in the route points' pending set; `ingest_from_redis` sums it into rows of source
  `redis`, replacing them, in the transaction that ingests the bucket's route points;
- rolled up with the route series (metrics.rollups) in the same transaction and under the same marker, and pruned
  by the same retention.
"""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet

from metrics.models import LlmSpendRawPoint, LlmSpendRollupPoint
from protocols.llm.metrics import WINDOW_FIELDS, SpendKey

REDIS_LLM_PREFIX = "rusta:metrics:llm:10s:"
BUCKET_SECONDS = 10  # metrics.history's (not imported: history imports this module)
# Kept after the bucket ended, written again while it changes (as metrics.history.KEEP_AFTER_END).
KEEP_AFTER_END = 30.0

SpendBucketKey = tuple[int, str, str, str]  # epoch of the bucket start, route, model, consumer


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _floor(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def add_into(total: list[int], cell: list[int]) -> None:
    for index, value in enumerate(cell):
        total[index] += value


def figures_of(row: Any) -> list[int]:
    """A stored point's figures, in WINDOW_FIELDS order."""
    return [getattr(row, name) for name in WINDOW_FIELDS]


class SpendBuffer:
    """This process's spend per 10-second bucket, until each has been written after it ended."""

    def __init__(self) -> None:
        self.points: dict[SpendBucketKey, list[int]] = {}
        self.dirty: set[SpendBucketKey] = set()

    def add(self, window: dict[SpendKey, list[int]], bucket: int) -> None:
        for (route, model, consumer), cell in window.items():
            key = (bucket, route, model, consumer)
            add_into(self.points.setdefault(key, [0] * len(WINDOW_FIELDS)), cell)
            self.dirty.add(key)

    def flush(self, store: Any, source: str, now: float) -> int:
        """Write the buckets that changed (store.write_llm_spend), forget those long over; a failed write keeps
        them dirty for the next flush. Returns how many points were written."""
        dirty = {key: list(self.points[key]) for key in self.dirty}
        if dirty:
            store.write_llm_spend(source, dirty)
            self.dirty.clear()
        for key in [key for key in self.points if key[0] + BUCKET_SECONDS + KEEP_AFTER_END < now]:
            if key not in self.dirty:
                del self.points[key]
        return len(dirty)


def write_database(source: str, points: dict[SpendBucketKey, list[int]]) -> None:
    """Upsert `source`'s rows of these buckets (the embedded default's DatabaseStore)."""
    rows = [LlmSpendRawPoint(start=_utc(bucket), route=route, model=model, consumer=consumer, source=source,
                             **dict(zip(WINDOW_FIELDS, cell, strict=True)))
            for (bucket, route, model, consumer), cell in points.items()]
    LlmSpendRawPoint.objects.bulk_create(rows, update_conflicts=True,
                                         unique_fields=["start", "route", "model", "consumer", "source"],
                                         update_fields=list(WINDOW_FIELDS))


def write_redis(pipe: Any, source: str, points: dict[SpendBucketKey, list[int]]) -> set[int]:
    """Queue `source`'s fields of these buckets on a Redis pipeline; returns the buckets (for the pending set)."""
    buckets: set[int] = set()
    for (bucket, route, model, consumer), cell in points.items():
        pipe.hset(f"{REDIS_LLM_PREFIX}{bucket}", json.dumps([route, model, consumer, source]), json.dumps(cell))
        buckets.add(bucket)
    return buckets


def read_redis_bucket(client: Any, bucket: int) -> dict[SpendKey, list[int]]:
    """A bucket's spend summed over the processes that wrote it to Redis."""
    totals: dict[SpendKey, list[int]] = {}
    for raw_field, raw_value in client.hgetall(f"{REDIS_LLM_PREFIX}{bucket}").items():
        route, model, consumer, _source = json.loads(raw_field)
        add_into(totals.setdefault((route, model, consumer), [0] * len(WINDOW_FIELDS)), json.loads(raw_value))
    return totals


def replace_ingested(bucket: int, totals: dict[SpendKey, list[int]]) -> None:
    """Replace the bucket's `redis` rows with `totals` (inside the ingest's transaction)."""
    LlmSpendRawPoint.objects.filter(start=_utc(bucket), source="redis").delete()
    LlmSpendRawPoint.objects.bulk_create([
        LlmSpendRawPoint(start=_utc(bucket), route=route, model=model, consumer=consumer, source="redis",
                         **dict(zip(WINDOW_FIELDS, cell, strict=True)))
        for (route, model, consumer), cell in totals.items()
    ])


def spend_rows(resolution: str) -> QuerySet[Any]:
    """The QuerySet of LLM spend points of a resolution (raw points for "10s")."""
    if resolution == "10s":
        return LlmSpendRawPoint.objects.all()
    return LlmSpendRollupPoint.objects.filter(resolution=resolution)


def fill(resolution: str, source: str, start: datetime, end: datetime, step: int) -> int:
    """Recompute the `resolution` buckets of [start, end) from `source`, replacing their rows (called inside the
    rollup's transaction, before its marker moves); returns how many rows."""
    totals: dict[tuple[datetime, str, str, str], list[int]] = defaultdict(lambda: [0] * len(WINDOW_FIELDS))
    for row in spend_rows(source).filter(start__gte=start, start__lt=end).iterator(chunk_size=2000):
        add_into(totals[(_floor(row.start, step), row.route, row.model, row.consumer)], figures_of(row))
    LlmSpendRollupPoint.objects.filter(resolution=resolution, start__gte=start, start__lt=end).delete()
    LlmSpendRollupPoint.objects.bulk_create([
        LlmSpendRollupPoint(resolution=resolution, start=bucket, route=route, model=model, consumer=consumer,
                            **dict(zip(WINDOW_FIELDS, cell, strict=True)))
        for (bucket, route, model, consumer), cell in totals.items()
    ], batch_size=1000)
    return len(totals)
