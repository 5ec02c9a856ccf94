"""metrics.rollups: raw points rolled up into 1 min .. 1 d series, resumably and idempotently, and retention."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics import rollups
from metrics.models import FillState, RawPoint, RetentionPolicy, RollupPoint
from protocols.recorder import BUCKETS

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def raw(start: datetime, count: int, route: str = "users", backend: str = "b:1", source: str = "p1",
        duration: float = 0.01) -> RawPoint:
    buckets = [0] * BUCKETS
    buckets[5] = count
    return RawPoint.objects.create(start=start, route=route, backend=backend, source=source, count=count,
                                   errors_5xx=count // 2, duration_sum=duration * count, duration_min=duration,
                                   duration_max=duration * 2, bytes_in=count, bytes_out=10 * count, buckets=buckets)


def traffic(minutes: int = 3) -> int:
    """Raw points every 10 s for `minutes` from T0, from two processes; returns the total count."""
    total = 0
    for second in range(0, minutes * 60, 10):
        for source, count in (("p1", 2), ("p2", 3)):
            raw(T0 + timedelta(seconds=second), count, source=source)
            total += count
    return total


def total(resolution: str) -> int:
    return sum(RollupPoint.objects.filter(resolution=resolution).values_list("count", flat=True))


def test_a_minute_rollup_sums_its_raw_points_over_processes():
    traffic(3)
    run = rollups.rollup("1m", T0 + timedelta(minutes=10))
    assert run.rows == 3  # series-buckets written (the empty minutes after them are filled too)
    points = list(RollupPoint.objects.filter(resolution="1m").order_by("start"))
    assert [p.count for p in points] == [30, 30, 30]
    assert points[0].duration_min == pytest.approx(0.01) and points[0].duration_max == pytest.approx(0.02)
    assert points[0].buckets[5] == 30


def test_running_a_rollup_twice_changes_nothing():
    expected = traffic(3)
    now = T0 + timedelta(minutes=10)
    rollups.run_all(now)
    rollups.run_all(now)
    assert total("1m") == expected
    assert RollupPoint.objects.filter(resolution="1m").count() == 3


def test_a_recent_bucket_waits_until_its_points_are_final():
    traffic(2)
    rollups.rollup("1m", T0 + timedelta(minutes=2, seconds=5))  # the second minute ended 5 s ago
    assert total("1m") == 30
    rollups.rollup("1m", T0 + timedelta(minutes=2, seconds=30))
    assert total("1m") == 60


def test_a_rollup_stops_before_a_bucket_still_waiting_in_redis():
    traffic(3)
    rollups.rollup("1m", T0 + timedelta(minutes=10), pending_before=T0 + timedelta(minutes=1, seconds=20))
    assert total("1m") == 30


def test_a_crash_mid_way_loses_nothing_and_counts_nothing_twice(monkeypatch):
    expected = traffic(3)
    monkeypatch.setattr(rollups, "BATCH_BUCKETS", 1)
    original = rollups._fill
    calls = {"n": 0}

    def crash_on_the_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(rollups, "_fill", crash_on_the_second_batch)
    with pytest.raises(RuntimeError):
        rollups.rollup("1m", T0 + timedelta(minutes=10))
    assert total("1m") == 30
    assert FillState.objects.get(resolution="1m").filled_until == T0 + timedelta(minutes=1)
    monkeypatch.setattr(rollups, "_fill", original)
    rollups.rollup("1m", T0 + timedelta(minutes=10))
    rollups.rollup("1m", T0 + timedelta(minutes=10))
    assert total("1m") == expected


def test_coarser_rollups_follow_the_finer_ones():
    expected = traffic(7)
    rollups.run_all(T0 + timedelta(days=2))
    assert total("1m") == expected
    assert total("5m") == expected
    assert total("1h") == expected
    assert total("1d") == expected
    assert RollupPoint.objects.filter(resolution="5m").count() == 2


def test_a_coarser_rollup_never_passes_the_finer_ones_marker():
    traffic(7)
    rollups.rollup("1m", T0 + timedelta(minutes=6))  # 1m filled until 12:05
    rollups.rollup("5m", T0 + timedelta(days=1))
    assert FillState.objects.get(resolution="5m").filled_until == T0 + timedelta(minutes=5)


def test_retention_deletes_points_older_than_their_resolutions_policy():
    now = T0 + timedelta(days=10)
    RetentionPolicy.objects.filter(resolution="1m").update(keep_days=7)
    old = RollupPoint.objects.create(resolution="1m", start=T0, route="users", backend="b:1", count=1)
    recent = RollupPoint.objects.create(resolution="1m", start=now - timedelta(days=1), route="users",
                                        backend="b:1", count=1)
    FillState.objects.create(resolution="5m", filled_until=now)
    deleted = rollups.apply_retention(now)
    assert deleted["1m"] == 1
    assert not RollupPoint.objects.filter(pk=old.pk).exists()
    assert RollupPoint.objects.filter(pk=recent.pk).exists()


def test_retention_keeps_raw_points_the_minute_rollup_has_not_used():
    raw(T0, 1)
    rollups.apply_retention(T0 + timedelta(days=5))
    assert RawPoint.objects.count() == 1
    rollups.rollup("1m", T0 + timedelta(days=5))
    rollups.apply_retention(T0 + timedelta(days=5))
    assert RawPoint.objects.count() == 0
    assert total("1m") == 1


def test_a_resolution_kept_forever_is_never_deleted():
    RetentionPolicy.objects.filter(resolution="1d").update(keep_days=None)
    RollupPoint.objects.create(resolution="1d", start=T0 - timedelta(days=3000), count=1)
    rollups.apply_retention(T0)
    assert total("1d") == 1


def test_the_default_policy_is_one_row_per_resolution():
    assert dict(RetentionPolicy.objects.values_list("resolution", "keep_days")) == {
        "10s": 1, "1m": 7, "5m": 30, "1h": 365, "1d": None}
