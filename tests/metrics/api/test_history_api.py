"""GET /api/metrics/ and /api/metrics/history/: the stored series, staff only, bad parameters named in a 400."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics.models import RawPoint, RollupPoint
from protocols.recorder import BUCKETS, LATENCY_BOUNDS

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
RANGE = {"start": "2026-11-26T12:00:00Z", "end": "2026-11-26T12:05:00Z"}


def point(model=RawPoint, start=T0, count=10, route="users", backend="b:1", fast=9, **extra):
    buckets = [0] * BUCKETS
    buckets[LATENCY_BOUNDS.index(0.005)] = fast  # (2.5 ms, 5 ms]
    buckets[LATENCY_BOUNDS.index(1.0)] = count - fast  # (0.75 s, 1 s]
    fields = {"start": start, "route": route, "backend": backend, "count": count, "errors_5xx": 1,
              "errors_4xx": 2, "duration_sum": 0.004 * fast + 0.9 * (count - fast), "duration_min": 0.003,
              "duration_max": 0.95, "bytes_in": 100, "bytes_out": 1000, "buckets": buckets, **extra}
    if model is RawPoint:
        fields.setdefault("source", "p1")
    return model.objects.create(**fields)


def get(api, **params):
    return api.get("/api/metrics/history/", params)


def test_requests_are_summed_per_bucket_over_backends_and_processes(api):
    point()
    point(backend="b:2", count=5, fast=5)
    point(source="p2", count=1, fast=1)
    point(start=T0 + timedelta(seconds=10), count=4, fast=4)
    response = get(api, name="requests", interval="10s", route="users", **RANGE)
    assert response.status_code == 200, response.json()
    points = response.json()["points"]
    assert [(p["t"], p["count"]) for p in points] == [("2026-11-26T12:00:00Z", 16), ("2026-11-26T12:00:10Z", 4)]
    assert points[0]["rate"] == 1.6


def test_a_backend_filter_keeps_only_its_traffic(api):
    point()
    point(backend="b:2", count=5, fast=5)
    points = get(api, name="requests", interval="10s", backend="b:2", **RANGE).json()["points"]
    assert [p["count"] for p in points] == [5]


def test_latency_points_carry_count_sum_min_max_avg_and_quantiles(api):
    point()
    latency = get(api, name="latency", interval="10s", **RANGE).json()["points"][0]
    assert latency["count"] == 10
    assert latency["min"] == 0.003 and latency["max"] == 0.95
    assert latency["avg"] == pytest.approx((0.036 + 0.9) / 10)
    assert 0.0025 <= latency["p50"] <= 0.005
    assert 0.75 <= latency["p95"] <= 0.95
    assert latency["p99"] <= 0.95


def test_errors_and_bytes_points(api):
    point()
    errors = get(api, name="errors", interval="10s", **RANGE).json()["points"][0]
    assert (errors["errors_4xx"], errors["errors_5xx"], errors["ratio"]) == (2, 1, 0.1)
    traffic = get(api, name="bytes", interval="10s", **RANGE).json()["points"][0]
    assert (traffic["bytes_in"], traffic["bytes_out"]) == (100, 1000)


def test_rolled_up_intervals_read_their_own_series(api):
    point(model=RollupPoint, resolution="1m", count=60, fast=60)
    point(model=RollupPoint, resolution="5m", count=300, fast=300)
    assert get(api, name="requests", interval="1m", **RANGE).json()["points"][0]["count"] == 60
    assert get(api, name="requests", interval="5m", **RANGE).json()["points"][0]["count"] == 300


def test_unix_times_are_accepted(api):
    point()
    start = int(T0.timestamp())
    response = get(api, name="requests", interval="10s", start=start, end=start + 60)
    assert [p["count"] for p in response.json()["points"]] == [10]


def test_without_a_range_the_latest_intervals_are_read(api):
    response = get(api, name="requests")
    body = response.json()
    assert response.status_code == 200
    assert body["interval"] == "1m"
    assert body["points"] == []


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"name": "cpu"}, "name", "not a valid choice"),
    ({}, "name", "required"),
    ({"name": "requests", "interval": "2m"}, "interval", "not a valid choice"),
    ({"name": "requests", "start": "yesterday"}, "start", "Not a date"),
    ({"name": "requests", "end": "2026-13-45T00:00:00Z"}, "end", "Not a date"),
    ({"name": "requests", **{"start": RANGE["end"], "end": RANGE["start"]}}, "start", "before end"),
    ({"name": "requests", "interval": "10s", "start": "2026-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
     "interval", "at most 2000"),
])
def test_bad_parameters_are_refused_with_a_message(api, params, field, words):
    response = get(api, **params)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert words in " ".join(errors[field]), errors


def test_the_catalogue_lists_routes_backends_and_resolutions_with_retention(api):
    point()
    point(model=RollupPoint, resolution="1h", route="orders", backend="b:9")
    body = api.get("/api/metrics/").json()
    assert body["names"] == ["requests", "latency", "errors", "bytes"]
    assert body["routes"] == ["orders", "users"]
    assert body["backends"] == ["b:1", "b:9"]
    retention = {r["interval"]: r["retention_days"] for r in body["resolutions"]}
    assert retention == {"10s": 1, "1m": 7, "5m": 30, "1h": 365, "1d": None}


def test_the_history_is_for_staff_only(client, plain_user):
    assert client.get("/api/metrics/history/", {"name": "requests"}).status_code in (401, 403)
    client.force_login(plain_user)
    assert client.get("/api/metrics/").status_code == 403
