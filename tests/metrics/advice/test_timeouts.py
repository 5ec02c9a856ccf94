"""metrics.advice.timeouts: read_timeout_ms from the observed p99.9, raised when reached, lowered when far above."""
from __future__ import annotations

import pytest

from metrics.advice.context import Context
from metrics.advice.timeouts import read_timeout
from metrics.procfiles import Combined
from tests.support.advice_series import NOW, hourly, route

pytestmark = pytest.mark.django_db
BACKEND = "10.0.0.5:8080"


def test_it_raises_a_timeout_that_requests_reach():
    route("reports", read_timeout_ms=2000)
    # Every hour a few requests run into the 2 s read timeout and the gateway answers them itself (504).
    hourly("reports", BACKEND, 24, 1000, latency=0.3, tail=(2.0, 5), errors_5xx=5, errors_gateway=5)
    live = Combined()
    live.totals.upstream_errors[(BACKEND, "timeout")] = 37
    [finding] = read_timeout(Context(NOW, live))
    figures = finding.evidence["figures"]
    assert figures["p99_9_ms"] >= 1800 and figures["read_timeout_ms"] == 2000
    assert figures["gateway_errors"] == 120 and figures["upstream_timeouts_since_start"] == 37
    assert finding.severity == "warning"
    assert finding.patch == {"read_timeout_ms": 5000}  # twice the larger of the timeout and the p99.9, rounded up


def test_it_lowers_a_timeout_far_above_what_the_backend_takes():
    route("fast", read_timeout_ms=60000)
    hourly("fast", BACKEND, 24, 1000, latency=0.04, tail=(0.1, 2))
    [finding] = read_timeout(Context(NOW))
    assert finding.severity == "info"
    assert finding.evidence["figures"]["p99_9_ms"] <= 100
    assert finding.patch == {"read_timeout_ms": 1000}


def test_it_is_silent_on_a_timeout_that_fits_the_latency():
    route("steady", read_timeout_ms=3000)
    hourly("steady", BACKEND, 24, 1000, latency=0.2, tail=(0.5, 3))
    assert read_timeout(Context(NOW)) == []


def test_it_is_silent_on_too_few_requests_for_a_p99_9():
    route("quiet", read_timeout_ms=60000)
    hourly("quiet", BACKEND, 5, 100, latency=0.04)
    assert read_timeout(Context(NOW)) == []
