"""Raw 10-second points: how each gateway process writes them, and how points kept in Redis reach the database.

A process accumulates its recorder windows into 10-second buckets (`HistoryBuffer`) and, every few seconds,
writes every bucket that changed to the store, *replacing* what it wrote before for that bucket:

- `DatabaseStore` (no REDIS_URL): one RawPoint row per (bucket, route, backend, process), upserted;
- `RedisStore` (REDIS_URL set): one hash per bucket (`rusta:metrics:10s:<epoch>`) with a field per
  (route, backend, process), and the bucket's epoch in the sorted set `rusta:metrics:pending`.
  `ingest_from_redis` (a Celery task) sums each closed bucket over its processes into RawPoint rows with
  source `redis`, replacing them whole, then forgets the bucket: run twice, it writes the same rows.

Consumers' points (per consumer and route, from the recorder's consumer window) take the same path beside them:
ConsumerRawPoint rows upserted by the process, or a second hash per bucket (`rusta:metrics:consumers:10s:<epoch>`)
ingested with the bucket's route points, in the same transaction.

LLM routes' spend points (per route, model and consumer, from protocols.llm.metrics' window) take the same path
too: metrics.llm_points has their buffer, rows and hash (`rusta:metrics:llm:10s:<epoch>`).

Replacing instead of incrementing is what makes a retried write harmless.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from django.db import transaction

from metrics import llm_points
from metrics.aggregates import (
    CONSUMER_FIELDS,
    FIELDS,
    Agg,
    ConsumerSeriesKey,
    SeriesKey,
    from_consumer_window,
    from_window,
)
from metrics.models import ConsumerRawPoint, RawPoint
from protocols.llm.metrics import SpendKey
from protocols.recorder import ConsumerKey, WindowKey

log = logging.getLogger(__name__)

BUCKET_SECONDS = 10
# A bucket is kept in memory (and written again when it changes) this long after it ended, then dropped.
KEEP_AFTER_END = 30.0
# A Redis bucket is ingested once it ended this long ago: every process has flushed it by then.
INGEST_GRACE = 8.0
REDIS_PREFIX = "rusta:metrics:10s:"
REDIS_CONSUMER_PREFIX = "rusta:metrics:consumers:10s:"
REDIS_PENDING = "rusta:metrics:pending"
# Kept after ingesting, so that a process writing a bucket late has it ingested again whole; and a bucket
# nobody ingests (no Celery worker) does not stay in Redis forever.
REDIS_TTL = 3600

BucketKey = tuple[int, str, str]  # epoch of the bucket start, route, backend
ConsumerBucketKey = tuple[int, str, str]  # epoch of the bucket start, consumer, route


def bucket_of(timestamp: float) -> int:
    return int(timestamp // BUCKET_SECONDS) * BUCKET_SECONDS


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def process_source() -> str:
    """Who writes: host, pid and start time, so a restarted process never overwrites its predecessor's rows."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{int(time.time())}"


class Store(Protocol):
    def write(self, source: str, points: dict[BucketKey, Agg]) -> None:
        """Replace `source`'s rows of these buckets and series with these aggregates."""

    def write_consumers(self, source: str, points: dict[ConsumerBucketKey, Agg]) -> None:
        """The same for consumers' points (called only when there are some)."""

    def write_llm_spend(self, source: str, points: dict[llm_points.SpendBucketKey, list[int]]) -> None:
        """The same for LLM spend points (called only when there are some)."""


class HistoryBuffer:
    """This process's aggregates per 10-second bucket, until each has been written after it ended."""

    def __init__(self, source: str | None = None) -> None:
        self.source = source or process_source()
        self.points: dict[BucketKey, Agg] = {}
        self.dirty: set[BucketKey] = set()
        self.consumer_points: dict[ConsumerBucketKey, Agg] = {}
        self.consumers_dirty: set[ConsumerBucketKey] = set()
        self.spend = llm_points.SpendBuffer()

    def add(self, window: dict[WindowKey, list[Any]], at: float,
            consumers: dict[ConsumerKey, list[Any]] | None = None,
            spend: dict[SpendKey, list[int]] | None = None) -> None:
        """A recorder window that started at `at` (the flusher keeps windows within one bucket), and the consumer
        window and LLM spend window closed with it."""
        bucket = bucket_of(at)
        _merge_into(self.points, self.dirty, bucket, from_window(window))
        if consumers:
            _merge_into(self.consumer_points, self.consumers_dirty, bucket, from_consumer_window(consumers))
        if spend:
            self.spend.add(spend, bucket)

    def flush(self, store: Store, now: float) -> int:
        """Write the buckets that changed; forget those long over. Returns how many points were written.

        A failed write keeps them dirty: the next flush writes them again (a replace, so no harm)."""
        dirty = {key: self.points[key] for key in self.dirty}
        if dirty:
            store.write(self.source, dirty)
            self.dirty.clear()
        consumers_dirty = {key: self.consumer_points[key] for key in self.consumers_dirty}
        if consumers_dirty:
            store.write_consumers(self.source, consumers_dirty)
            self.consumers_dirty.clear()
        spent = self.spend.flush(store, self.source, now)
        for points, still_dirty in ((self.points, self.dirty), (self.consumer_points, self.consumers_dirty)):
            for key in [key for key in points if key[0] + BUCKET_SECONDS + KEEP_AFTER_END < now]:
                if key not in still_dirty:
                    del points[key]
        return len(dirty) + len(consumers_dirty) + spent


def _merge_into(points: dict[tuple[int, str, str], Agg], dirty: set[tuple[int, str, str]], bucket: int,
                aggregates: dict[tuple[str, str], Agg]) -> None:
    for (first, second), agg in aggregates.items():
        key = (bucket, first, second)
        current = points.get(key)
        if current is None:
            points[key] = agg
        else:
            current.merge(agg)
        dirty.add(key)


class DatabaseStore:
    """RawPoint rows upserted by the process itself (the embedded default)."""

    def write(self, source: str, points: dict[BucketKey, Agg]) -> None:
        rows = [RawPoint(start=utc(bucket), route=route, backend=backend, source=source, **agg.as_dict())
                for (bucket, route, backend), agg in points.items()]
        RawPoint.objects.bulk_create(rows, update_conflicts=True, unique_fields=["start", "route", "backend",
                                                                                 "source"],
                                     update_fields=list(FIELDS))

    def write_consumers(self, source: str, points: dict[ConsumerBucketKey, Agg]) -> None:
        rows = [ConsumerRawPoint(start=utc(bucket), consumer=consumer, route=route, source=source,
                                 **agg.consumer_dict())
                for (bucket, consumer, route), agg in points.items()]
        ConsumerRawPoint.objects.bulk_create(rows, update_conflicts=True,
                                             unique_fields=["start", "consumer", "route", "source"],
                                             update_fields=list(CONSUMER_FIELDS))

    def write_llm_spend(self, source: str, points: dict[llm_points.SpendBucketKey, list[int]]) -> None:
        llm_points.write_database(source, points)


class RedisStore:
    """Hashes in Redis, ingested by `ingest_from_redis` (REDIS_URL set)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def write(self, source: str, points: dict[BucketKey, Agg]) -> None:
        pipe = self.client.pipeline(transaction=False)
        buckets: set[int] = set()
        for (bucket, route, backend), agg in points.items():
            field = json.dumps([route, backend, source])
            pipe.hset(f"{REDIS_PREFIX}{bucket}", field, json.dumps(agg.as_dict()))
            buckets.add(bucket)
        for bucket in buckets:
            pipe.expire(f"{REDIS_PREFIX}{bucket}", REDIS_TTL)
            pipe.zadd(REDIS_PENDING, {str(bucket): bucket})
        pipe.execute()

    def write_consumers(self, source: str, points: dict[ConsumerBucketKey, Agg]) -> None:
        pipe = self.client.pipeline(transaction=False)
        buckets: set[int] = set()
        for (bucket, consumer, route), agg in points.items():
            pipe.hset(f"{REDIS_CONSUMER_PREFIX}{bucket}", json.dumps([consumer, route, source]),
                      json.dumps(agg.consumer_dict()))
            buckets.add(bucket)
        for bucket in buckets:
            pipe.expire(f"{REDIS_CONSUMER_PREFIX}{bucket}", REDIS_TTL)
            pipe.zadd(REDIS_PENDING, {str(bucket): bucket})
        pipe.execute()

    def write_llm_spend(self, source: str, points: dict[llm_points.SpendBucketKey, list[int]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for bucket in llm_points.write_redis(pipe, source, points):
            pipe.expire(f"{llm_points.REDIS_LLM_PREFIX}{bucket}", REDIS_TTL)
            pipe.zadd(REDIS_PENDING, {str(bucket): bucket})
        pipe.execute()


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def store_for(redis_url: str) -> Store:
    return RedisStore(redis_client(redis_url)) if redis_url else DatabaseStore()


def oldest_pending(client: Any) -> datetime | None:
    """The start of the oldest bucket still in Redis: rollups must not pass it (its points are not in yet)."""
    first = client.zrange(REDIS_PENDING, 0, 0, withscores=True)
    return utc(first[0][1]) if first else None


def ingest_from_redis(client: Any, now: datetime | None = None, limit: int = 500) -> int:
    """Move the closed buckets from Redis into RawPoint rows (source `redis`); returns how many buckets.

    Each bucket is recomputed whole from its hash and its rows replaced in one transaction; it leaves the pending
    set only afterwards, so a crash in between just ingests it again, to the same rows. The hash itself stays
    until it expires: a process that writes the bucket late puts it back in the pending set, and it is ingested
    again whole.
    """
    cutoff = (now or datetime.now(UTC)).timestamp() - BUCKET_SECONDS - INGEST_GRACE
    done = 0
    for member, score in client.zrangebyscore(REDIS_PENDING, "-inf", cutoff, start=0, num=limit, withscores=True):
        bucket = int(score)
        fields = client.hgetall(f"{REDIS_PREFIX}{bucket}")
        totals: dict[SeriesKey, Agg] = {}
        for raw_field, raw_value in fields.items():
            route, backend, _source = json.loads(raw_field)
            agg = totals.setdefault((route, backend), Agg())
            agg.merge(Agg.from_dict(json.loads(raw_value)))
        consumers: dict[ConsumerSeriesKey, Agg] = {}
        for raw_field, raw_value in client.hgetall(f"{REDIS_CONSUMER_PREFIX}{bucket}").items():
            consumer, route, _source = json.loads(raw_field)
            consumers.setdefault((consumer, route), Agg()).merge(Agg.from_dict(json.loads(raw_value)))
        spend = llm_points.read_redis_bucket(client, bucket)
        with transaction.atomic():
            RawPoint.objects.filter(start=utc(bucket), source="redis").delete()
            RawPoint.objects.bulk_create([
                RawPoint(start=utc(bucket), route=route, backend=backend, source="redis", **agg.as_dict())
                for (route, backend), agg in totals.items()
            ])
            ConsumerRawPoint.objects.filter(start=utc(bucket), source="redis").delete()
            ConsumerRawPoint.objects.bulk_create([
                ConsumerRawPoint(start=utc(bucket), consumer=consumer, route=route, source="redis",
                                 **agg.consumer_dict())
                for (consumer, route), agg in consumers.items()
            ])
            llm_points.replace_ingested(bucket, spend)
        client.zrem(REDIS_PENDING, member)
        done += 1
    return done


def sum_rows(rows: Iterable[Any]) -> Agg:
    total = Agg()
    for row in rows:
        total.merge(Agg.from_row(row))
    return total
