"""metrics.advice.breakers: breaker thresholds from the bursts of 5xx in each backend's five-minute series."""
from __future__ import annotations

from datetime import timedelta

import pytest

from metrics.advice.breakers import circuit_breaker
from metrics.advice.context import Context
from metrics.advice.findings import iso
from metrics.procfiles import Combined
from tests.support.advice_series import NOW, UNTIL, figures, five_minutes, route

pytestmark = pytest.mark.django_db
BACKEND = "10.0.0.5:8080"


def day_with_bursts(bursts: int) -> list[dict]:
    """A day of five-minute points, 100 requests each, `bursts` of them with 80 failing."""
    points = [figures(100) for _ in range(288)]
    for index in range(bursts):
        points[20 + 30 * index] = figures(100, errors_5xx=80, errors_gateway=30)
    return points


def live_traffic(route_name: str, opens: int = 0) -> Combined:
    live = Combined()
    live.totals.requests[(route_name, "GET", "2xx")] = 5000
    if opens:
        live.totals.breaker_opens[(route_name, BACKEND)] = opens
    return live


def test_it_enables_a_breaker_on_a_route_with_bursts_and_none():
    route("orders", circuit_breaker={"enabled": False})
    five_minutes("orders", BACKEND, day_with_bursts(3))
    [finding] = circuit_breaker(Context(NOW))
    assert finding.evidence["figures"]["burst_count"] == 3
    # The first burst is the 21st point of the day (index 20), at 100 minutes past the day's start.
    assert finding.evidence["figures"]["bursts"][0] == {"start": iso(UNTIL - timedelta(days=1, minutes=-100)),
                                                        "requests": 100, "errors_5xx": 80, "gateway_errors": 30}
    assert finding.patch == {"circuit_breaker": {"enabled": True, "failure_ratio": 0.5, "window_s": 30,
                                                 "min_requests": 10}}


def test_it_adds_a_failure_ratio_to_a_breaker_that_never_opened_through_bursts():
    route("orders")
    five_minutes("orders", BACKEND, day_with_bursts(4))
    [finding] = circuit_breaker(Context(NOW, live_traffic("orders")))
    assert finding.evidence["figures"]["breaker_opens_since_start"] == 0
    assert finding.patch == {"circuit_breaker": {"failure_ratio": 0.5, "window_s": 30, "min_requests": 10}}


def test_it_raises_the_threshold_of_a_breaker_that_keeps_opening_without_bursts():
    route("orders", circuit_breaker={"failure_threshold": 3})
    five_minutes("orders", BACKEND, day_with_bursts(0))
    [finding] = circuit_breaker(Context(NOW, live_traffic("orders", opens=25)))
    assert finding.patch == {"circuit_breaker": {"failure_threshold": 10}}


def test_it_is_silent_on_a_healthy_backend():
    route("orders")
    five_minutes("orders", BACKEND, day_with_bursts(0))
    assert circuit_breaker(Context(NOW, live_traffic("orders"))) == []


def test_it_is_silent_when_the_breaker_opened_through_the_bursts():
    route("orders")
    five_minutes("orders", BACKEND, day_with_bursts(3))
    assert circuit_breaker(Context(NOW, live_traffic("orders", opens=3))) == []
