"""GET /api/metrics/history/?consumer= and GET /api/metrics/consumers/: a consumer's series and every consumer's
figures over a range, staff only, bad parameters named in a 400."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics.models import ConsumerRawPoint, ConsumerRollupPoint, FillState, RawPoint
from protocols.recorder import BUCKETS, LATENCY_BOUNDS

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
RANGE = {"start": "2026-11-26T12:00:00Z", "end": "2026-11-26T12:05:00Z"}


def point(model=ConsumerRawPoint, start=T0, consumer="billing", route="users", count=10, slow=1, errors_4xx=2,
          errors_5xx=1, **extra):
    """`count` requests, all fast (2.5-5 ms) but `slow` of them (0.75-1 s)."""
    buckets = [0] * BUCKETS
    buckets[LATENCY_BOUNDS.index(0.005)] = count - slow
    buckets[LATENCY_BOUNDS.index(1.0)] = slow
    fields = {"start": start, "consumer": consumer, "route": route, "count": count, "errors_4xx": errors_4xx,
              "errors_5xx": errors_5xx, "duration_sum": 0.004 * (count - slow) + 0.9 * slow,
              "duration_min": 0.003, "duration_max": 0.95 if slow else 0.004, "buckets": buckets, **extra}
    if model is ConsumerRawPoint:
        fields.setdefault("source", "p1")
    return model.objects.create(**fields)


def history(api, **params):
    return api.get("/api/metrics/history/", params)


def summary(api, **params):
    return api.get("/api/metrics/consumers/", params)


def test_a_consumers_series_sums_its_routes_and_processes_and_leaves_others_out(api):
    point()
    point(route="orders", count=4, slow=0)
    point(source="p2", count=1, slow=0)
    point(consumer="search", count=50)
    RawPoint.objects.create(start=T0, route="users", backend="b:1", source="p1", count=99)
    body = history(api, name="requests", interval="10s", consumer="billing", **RANGE).json()
    assert body["consumer"] == "billing"
    assert [(p["t"], p["count"], p["rate"]) for p in body["points"]] == [("2026-11-26T12:00:00Z", 15, 1.5)]


def test_a_consumers_series_on_one_route(api):
    point()
    point(route="orders", count=4, slow=0)
    points = history(api, name="requests", interval="10s", consumer="billing", route="orders", **RANGE).json()
    assert [p["count"] for p in points["points"]] == [4]


def test_a_consumers_errors_and_latency_points(api):
    point()
    errors = history(api, name="errors", interval="10s", consumer="billing", **RANGE).json()["points"][0]
    assert (errors["errors_4xx"], errors["errors_5xx"], errors["ratio"]) == (2, 1, 0.1)
    assert errors["errors_gateway"] is None  # not kept per consumer
    latency = history(api, name="latency", interval="10s", consumer="billing", **RANGE).json()["points"][0]
    assert 0.0025 <= latency["p50"] <= 0.005
    assert 0.75 <= latency["p99"] <= 0.95


def test_a_consumers_rolled_up_series(api):
    point(model=ConsumerRollupPoint, resolution="1m", count=7)
    points = history(api, name="requests", interval="1m", consumer="billing", **RANGE).json()["points"]
    assert [p["count"] for p in points] == [7]


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"name": "bytes"}, "name", "not bytes"),
    ({"name": "requests", "backend": "b:1"}, "backend", "per route, not per backend"),
])
def test_what_a_consumers_history_does_not_keep_is_refused_by_name(api, params, field, words):
    response = history(api, consumer="billing", **params)
    assert response.status_code == 400
    assert words in " ".join(response.json()["errors"][field])


def test_the_summary_lists_consumers_busiest_first_with_errors_latency_and_top_routes(api):
    point()
    point(route="orders", count=30, slow=0, errors_4xx=0, errors_5xx=0)
    point(route="search", count=3, slow=0, errors_4xx=3, errors_5xx=0)
    point(consumer="reports", count=2, slow=0, errors_4xx=0, errors_5xx=0)
    response = summary(api, top=2, **RANGE)
    assert response.status_code == 200
    body = response.json()
    assert [row["consumer"] for row in body["consumers"]] == ["billing", "reports"]
    billing = body["consumers"][0]
    assert (billing["requests"], billing["errors_4xx"], billing["errors_5xx"]) == (43, 5, 1)
    assert billing["error_ratio"] == round(6 / 43, 4) and billing["ratio_5xx"] == round(1 / 43, 4)
    assert billing["rate"] == round(43 / 300, 3)
    assert 0.0025 <= billing["p95"] <= 0.005  # 1 slow request in 43
    assert billing["routes"] == 3
    assert [(r["route"], r["requests"]) for r in billing["top_routes"]] == [("orders", 30), ("users", 10)]
    assert billing["top_routes"][1]["p99"] >= 0.75


def test_the_summary_counts_rolled_up_minutes_and_raw_points_after_them_once(api):
    FillState.objects.create(resolution="1m", filled_until=T0 + timedelta(minutes=1))
    point(model=ConsumerRollupPoint, resolution="1m", count=6)  # the minute's raw points, rolled up
    point(count=6)  # ... and one of those raw points, still stored
    point(start=T0 + timedelta(minutes=1, seconds=10), count=4)  # after the marker: raw only
    body = summary(api, **RANGE).json()
    assert body["consumers"][0]["requests"] == 10


def test_the_summary_defaults_to_the_last_hour(api):
    point(start=datetime.now(UTC) - timedelta(minutes=20))
    point(consumer="old", start=datetime.now(UTC) - timedelta(hours=3))
    body = summary(api).json()
    assert [row["consumer"] for row in body["consumers"]] == ["billing"]


def test_the_summary_of_a_quiet_range_is_empty(api):
    assert summary(api, **RANGE).json()["consumers"] == []


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"start": "yesterday"}, "start", "Not a date"),
    ({"start": RANGE["end"], "end": RANGE["start"]}, "start", "before end"),
    ({"top": "0"}, "top", "greater than or equal to 1"),
    ({"top": "many"}, "top", "valid integer"),
])
def test_bad_summary_parameters_are_refused_with_a_message(api, params, field, words):
    response = summary(api, **params)
    assert response.status_code == 400
    assert words in " ".join(response.json()["errors"][field])


def test_the_catalogue_names_the_consumers_with_history(api):
    point()
    point(model=ConsumerRollupPoint, resolution="1h", consumer="reports")
    assert api.get("/api/metrics/").json()["consumers"] == ["billing", "reports"]


def test_the_consumers_figures_are_for_staff_only(client, plain_user):
    assert client.get("/api/metrics/consumers/").status_code in (401, 403)
    client.force_login(plain_user)
    assert client.get("/api/metrics/consumers/").status_code == 403
