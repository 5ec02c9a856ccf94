"""Consumers' 10-second points: written by each process beside the route points (database or Redis), replaced
never added to, rolled up with the route series under the same marker, and pruned by the same retention."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from metrics import history, rollups
from metrics.consumer_queries import cover
from metrics.models import ConsumerRawPoint, ConsumerRollupPoint, RawPoint
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def windows(requests: int, consumer: str = "billing", status: int = 200, route: str = "users"):
    """A recorder's route window and consumer window after `requests` requests of `consumer`."""
    recorder = Recorder()
    for index in range(requests):
        recorder.record_request(route, "GET", status, 0.002 * (index + 1), 0.001, 1, 10, "b:1", None, consumer)
    return recorder.take_window(), recorder.take_consumer_window()


def buffered(source: str, requests: int, at: float, **options) -> history.HistoryBuffer:
    buffer = history.HistoryBuffer(source)
    window, consumers = windows(requests, **options)
    buffer.add(window, at, consumers)
    return buffer


def counted(model=ConsumerRawPoint, **filters) -> int:
    return sum(model.objects.filter(**filters).values_list("count", flat=True))


def test_a_consumers_requests_become_one_point_per_consumer_and_route():
    buffer = buffered("p1", 3, T0.timestamp() + 1)
    window, consumers = windows(2, status=503)
    buffer.add(window, T0.timestamp() + 5, consumers)
    window, consumers = windows(1, consumer="search")
    buffer.add(window, T0.timestamp() + 6, consumers)
    buffer.flush(history.DatabaseStore(), T0.timestamp() + 10)
    point = ConsumerRawPoint.objects.get(consumer="billing")
    assert (point.start, point.route, point.count, point.errors_5xx) == (T0, "users", 5, 2)
    assert point.duration_min == pytest.approx(0.002) and point.duration_max == pytest.approx(0.006)
    assert sum(point.buckets) == 5
    assert counted(consumer="search") == 1
    assert counted(RawPoint) == 6  # the route's own points count every request once


def test_a_consumers_point_written_again_is_replaced_not_added():
    buffer = buffered("p1", 3, T0.timestamp() + 1)
    store = history.DatabaseStore()
    buffer.flush(store, T0.timestamp() + 2)
    store.write_consumers("p1", dict(buffer.consumer_points))  # a retried write
    assert counted() == 3
    assert ConsumerRawPoint.objects.count() == 1


def test_a_store_that_fails_on_consumers_writes_them_on_the_next_flush():
    class Flaky(history.DatabaseStore):
        failed = False

        def write_consumers(self, source, points):
            if not Flaky.failed:
                Flaky.failed = True
                raise OSError("store away")
            super().write_consumers(source, points)

    buffer = buffered("p1", 2, T0.timestamp())
    with pytest.raises(OSError):
        buffer.flush(Flaky(), T0.timestamp() + 1)
    buffer.flush(Flaky(), T0.timestamp() + 2)
    assert counted() == 2 and counted(RawPoint) == 2


def test_consumer_points_are_rolled_up_with_the_route_series_and_only_once():
    for second in range(0, 120, 10):
        for source in ("p1", "p2"):
            buffered(source, 2, T0.timestamp() + second).flush(history.DatabaseStore(), T0.timestamp() + second + 1)
    now = T0 + timedelta(minutes=10)
    rollups.run_all(now)
    rollups.run_all(now)
    minutes = ConsumerRollupPoint.objects.filter(resolution="1m").order_by("start")
    assert [(p.consumer, p.route, p.count) for p in minutes] == [("billing", "users", 24)] * 2
    assert counted(ConsumerRollupPoint, resolution="5m") == 48


def test_retention_deletes_old_consumer_points_once_rolled_up():
    old = T0 - timedelta(days=3)
    buffered("p1", 2, old.timestamp()).flush(history.DatabaseStore(), old.timestamp() + 1)
    buffered("p1", 1, T0.timestamp()).flush(history.DatabaseStore(), T0.timestamp() + 1)
    rollups.run_all(T0 + timedelta(minutes=10))
    rollups.apply_retention(T0 + timedelta(minutes=10))
    assert list(ConsumerRawPoint.objects.values_list("start", flat=True)) == [T0]  # raw points: 1 day
    assert counted(ConsumerRollupPoint, resolution="1m") == 3  # 1-minute points: 7 days


def test_a_range_is_read_from_the_coarsest_filled_resolutions_without_overlap():
    start, end = T0 - timedelta(days=2, minutes=7, seconds=5), T0 + timedelta(minutes=3, seconds=25)
    markers = {"1d": T0 - timedelta(hours=12), "1h": T0 - timedelta(minutes=30), "5m": T0,
               "1m": T0 + timedelta(minutes=2)}
    pieces = cover(start, end, markers)
    ordered = sorted(pieces, key=lambda piece: piece[1])
    assert ordered[0][1] == start and ordered[-1][2] == end
    assert all(a[2] == b[1] for a, b in zip(ordered, ordered[1:], strict=False))  # no gap, no overlap
    resolutions = [piece[0] for piece in ordered]
    assert "1d" in resolutions and resolutions[-1] == "10s"
    for resolution, low, high in pieces:
        if resolution != "10s":
            assert low < markers[resolution] and high <= markers[resolution]


def test_without_any_rollup_the_whole_range_is_read_from_raw_points():
    assert cover(T0, T0 + timedelta(hours=1), {}) == [("10s", T0, T0 + timedelta(hours=1))]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the scaled-out suite)")
def test_consumer_points_kept_in_redis_are_ingested_once_with_their_bucket():
    client = history.redis_client(os.environ["REDIS_URL"])
    bucket = int(T0.timestamp())
    client.delete(history.REDIS_PENDING, f"{history.REDIS_PREFIX}{bucket}", f"{history.REDIS_CONSUMER_PREFIX}{bucket}")
    store = history.RedisStore(client)
    for source, requests in (("p1", 2), ("p2", 3)):
        buffer = buffered(source, requests, T0.timestamp())
        buffer.flush(store, T0.timestamp() + 1)
    later = T0 + timedelta(minutes=1)
    assert history.ingest_from_redis(client, later) == 1
    client.zadd(history.REDIS_PENDING, {str(bucket): bucket})  # a crash before the bucket left the pending set
    assert history.ingest_from_redis(client, later) == 1
    assert counted(source="redis") == 5
    assert ConsumerRawPoint.objects.count() == 1
    assert counted(RawPoint, source="redis") == 5
    client.close()
