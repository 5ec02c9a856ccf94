"""metrics.history: each process's 10-second points reach the store, and a retried write never counts twice."""
from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from metrics import history
from metrics.models import RawPoint
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC).timestamp()


def window(requests: int, status: int = 200, route: str = "users", backend: str = "b:1"):
    recorder = Recorder()
    for index in range(requests):
        recorder.record_request(route, "GET", status, 0.002 * (index + 1), 0.001, 1, 10, backend,
                                "upstream_timeout" if status == 504 else None)
    return recorder.take_window()


def counted(**filters) -> int:
    return sum(RawPoint.objects.filter(**filters).values_list("count", flat=True))


def test_windows_of_one_bucket_make_one_point_per_route_and_backend():
    buffer = history.HistoryBuffer("p1")
    buffer.add(window(3), T0 + 1)
    buffer.add(window(2), T0 + 5)
    buffer.add(window(1, backend="b:2"), T0 + 9)
    buffer.flush(history.DatabaseStore(), T0 + 10)
    assert counted(backend="b:1") == 5
    assert counted(backend="b:2") == 1
    point = RawPoint.objects.get(backend="b:1")
    assert point.start == datetime.fromtimestamp(T0, UTC)
    assert point.bytes_in == 5 and point.bytes_out == 50
    assert point.duration_min == pytest.approx(0.002) and point.duration_max == pytest.approx(0.006)
    assert sum(point.buckets) == 5


def test_a_bucket_written_again_is_replaced_not_added():
    buffer = history.HistoryBuffer("p1")
    store = history.DatabaseStore()
    buffer.add(window(3), T0 + 1)
    buffer.flush(store, T0 + 2)
    buffer.add(window(2), T0 + 3)
    buffer.flush(store, T0 + 4)
    store.write("p1", dict(buffer.points))  # a retried write of the same figures
    assert counted() == 5
    assert RawPoint.objects.count() == 1


def test_errors_are_counted_by_class():
    buffer = history.HistoryBuffer("p1")
    buffer.add(window(2, status=404), T0)
    buffer.add(window(3, status=504), T0)
    buffer.add(window(1), T0)
    buffer.flush(history.DatabaseStore(), T0 + 1)
    point = RawPoint.objects.get()
    assert (point.count, point.errors_4xx, point.errors_5xx, point.errors_gateway) == (6, 2, 3, 3)


def test_two_processes_keep_rows_of_their_own():
    for source, requests in (("p1", 2), ("p2", 3)):
        buffer = history.HistoryBuffer(source)
        buffer.add(window(requests), T0)
        buffer.flush(history.DatabaseStore(), T0 + 1)
    assert counted() == 5
    assert RawPoint.objects.count() == 2


def test_buckets_long_over_are_forgotten_after_their_last_write():
    buffer = history.HistoryBuffer("p1")
    buffer.add(window(1), T0)
    buffer.flush(history.DatabaseStore(), T0 + 100)
    assert buffer.points == {}


def test_a_failed_write_is_retried_by_the_next_flush():
    class Flaky:
        calls = 0

        def write(self, source, points):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise OSError("store away")
            history.DatabaseStore().write(source, points)

    buffer = history.HistoryBuffer("p1")
    buffer.add(window(2), T0)
    with pytest.raises(OSError):
        buffer.flush(Flaky(), T0 + 1)
    buffer.flush(Flaky(), T0 + 2)
    assert counted() == 2


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the scaled-out suite)")
def test_points_kept_in_redis_are_ingested_once_whatever_the_retries(settings):
    client = history.redis_client(os.environ["REDIS_URL"])
    client.delete(history.REDIS_PENDING, f"{history.REDIS_PREFIX}{int(T0)}")
    store = history.RedisStore(client)
    for source, requests in (("p1", 2), ("p2", 3)):
        buffer = history.HistoryBuffer(source)
        buffer.add(window(requests), T0)
        buffer.flush(store, T0 + 1)
        buffer.flush(store, T0 + 1)
    too_early = datetime.fromtimestamp(T0 + 12, UTC)
    assert history.ingest_from_redis(client, too_early) == 0
    assert history.oldest_pending(client) == datetime.fromtimestamp(T0, UTC)
    later = datetime.fromtimestamp(T0 + 60, UTC)
    assert history.ingest_from_redis(client, later) == 1
    client.zadd(history.REDIS_PENDING, {str(int(T0)): T0})  # a crash before the bucket left the pending set
    assert history.ingest_from_redis(client, later) == 1
    assert counted(source="redis") == 5
    assert RawPoint.objects.count() == 1
    assert history.oldest_pending(client) is None
