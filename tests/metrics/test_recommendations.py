"""metrics.recommendations: rules that read the series and say what is wrong and why."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics.models import RawPoint, RollupPoint
from metrics.procfiles import Combined
from metrics.recommendations import recommend
from protocols.recorder import BUCKETS, LATENCY_BOUNDS
from routes.health.models import BackendHealth, HealthState
from routes.services import save_route

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


def traffic(backend: str, count: int, errors: int, latency: float = 0.01, start: datetime | None = None,
            model=RawPoint, **extra) -> None:
    buckets = [0] * BUCKETS
    buckets[min(i for i, bound in enumerate(LATENCY_BOUNDS) if bound >= latency)] = count
    fields = {"start": start or NOW - timedelta(minutes=5), "route": "users", "backend": backend, "count": count,
              "errors_5xx": errors, "duration_sum": latency * count, "duration_min": latency,
              "duration_max": latency, "buckets": buckets, **extra}
    if model is RawPoint:
        fields["source"] = "p1"
    model.objects.create(**fields)


def test_a_route_with_many_5xx_names_the_backend_whose_breaker_opened():
    traffic("10.0.0.5:8080", 50, 12)
    traffic("10.0.0.6:8080", 50, 0)
    live = Combined()
    live.breakers[("users", "10.0.0.5:8080")] = 2
    live.totals.breaker_opens[("users", "10.0.0.5:8080")] = 4
    texts = [r.text for r in recommend(NOW, live)]
    assert any(text.startswith("route users: 5xx at 12% over the last 15 min") and
               "breaker opened 4 time(s)" in text and "10.0.0.5:8080 is the likely cause" in text
               for text in texts), texts


def test_a_backend_down_per_its_health_checks_is_reported_and_blamed():
    route = save_route({"name": "users", "external_path": "/users", "methods": ["GET"],
                        "backends": [{"host": "http://10.0.0.5", "port": 8080, "health_check_path": "/h"}]},
                       actor=None, source="test")
    BackendHealth.objects.update_or_create(backend=route.backends.get(),
        defaults={"state": HealthState.UNHEALTHY, "reason": "status 503"})
    traffic("10.0.0.5:8080", 40, 40)
    texts = [r.text for r in recommend(NOW)]
    assert "backend 10.0.0.5:8080 is down: its health checks fail (status 503); it gets no traffic until it " \
           "recovers." in texts
    assert any("its health checks fail (status 503)" in t and "likely cause" in t for t in texts if "5xx" in t)


def test_a_p99_far_above_the_days_baseline_is_a_warning():
    for hour in range(2, 20):
        traffic("10.0.0.5:8080", 100, 0, latency=0.02, start=NOW - timedelta(hours=hour), model=RollupPoint,
                resolution="5m")
    traffic("10.0.0.5:8080", 100, 0, latency=0.5)
    texts = [r.text for r in recommend(NOW)]
    assert any(t.startswith("route users: p99 latency") and "baseline" in t for t in texts), texts


def test_quiet_healthy_traffic_gives_no_recommendation():
    traffic("10.0.0.5:8080", 100, 1)
    traffic("10.0.0.5:8080", 5, 5, start=NOW - timedelta(minutes=2), route="rare")
    assert recommend(NOW) == []


def save_certificate_expiring(name: str, host: str, not_after: datetime) -> None:
    import trustme

    from routes.certificates.services import save_certificate
    from tests.support.certificates import issued

    pair = issued(trustme.CA(), host, not_after=not_after)
    save_certificate({"name": name, "certificate": pair.chain, "key": pair.key}, actor=None, source="test")


def test_a_certificate_expiring_within_three_weeks_is_a_warning_naming_it_and_its_expiry():
    save_certificate_expiring("api", "api.example.com", NOW + timedelta(days=10))
    found = [r for r in recommend(NOW) if r.subject == "api"]
    assert [(r.severity, r.text) for r in found] == [("warning", (
        "certificate api expires on 2026-12-06 15:00 UTC (in 10 day(s)): renew it before then (PUT "
        "/api/certificates/api/ with the new chain and key)."))]


def test_an_expired_certificate_is_critical():
    save_certificate_expiring("old", "old.example.com", NOW - timedelta(hours=1))
    found = [r for r in recommend(NOW) if r.subject == "old"]
    assert [r.severity for r in found] == ["critical"] and found[0].text.startswith(
        "certificate old expired on 2026-11-26 14:00 UTC")


def test_a_certificate_far_from_expiry_says_nothing():
    save_certificate_expiring("far", "far.example.com", NOW + timedelta(days=60))
    assert [r for r in recommend(NOW) if r.subject == "far"] == []
