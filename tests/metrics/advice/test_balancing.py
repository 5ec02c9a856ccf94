"""metrics.advice.balancing: latency_aware for routes whose backends' latencies differ clearly and persistently."""
from __future__ import annotations

from datetime import timedelta

import pytest

from metrics.advice.balancing import latency_aware
from metrics.advice.context import Context
from metrics.advice.findings import iso
from tests.support.advice_series import NOW, UNTIL, hourly, route

pytestmark = pytest.mark.django_db
FAST, SLOW = "10.0.0.5:8080", "10.0.0.5:8081"


def test_it_advises_latency_aware_when_one_backend_is_persistently_slower():
    route("users", (8080, 8081))
    hourly("users", FAST, 48, 300, latency=0.02)
    hourly("users", SLOW, 48, 300, latency=0.2)
    [finding] = latency_aware(Context(NOW))
    assert finding.route == "users"
    assert finding.patch == {"load_balancing_strategy": "latency_aware"}
    backends = finding.evidence["figures"]["backends"]
    assert backends[SLOW]["p50_ms"] > 5 * backends[FAST]["p50_ms"]
    assert backends[SLOW]["count"] == backends[FAST]["count"] == 48 * 300
    assert finding.evidence["figures"]["hours_slower"] == finding.evidence["figures"]["hours_compared"] == 48
    assert finding.evidence["range"] == {"start": iso(UNTIL - timedelta(days=7)), "end": iso(UNTIL)}
    assert finding.evidence["dashboard"].startswith("/admin/metrics/dashboard/route/users/")


def test_it_is_silent_when_the_backends_answer_alike():
    route("users", (8080, 8081))
    hourly("users", FAST, 48, 300, latency=0.02)
    hourly("users", SLOW, 48, 300, latency=0.022)
    assert latency_aware(Context(NOW)) == []


def test_it_is_silent_when_the_slowness_was_a_passing_spike():
    route("users", (8080, 8081))
    hourly("users", FAST, 48, 300, latency=0.02)
    hourly("users", SLOW, 40, 300, latency=0.02)
    # Eight slow hours long ago: the window is slower overall, but not persistently.
    hourly("users", SLOW, 48, [2000] * 8 + [0] * 40, latency=0.5)
    assert latency_aware(Context(NOW)) == []


def test_it_is_silent_on_a_route_that_already_balances_by_latency():
    route("users", (8080, 8081), load_balancing_strategy="latency_aware")
    hourly("users", FAST, 48, 300, latency=0.02)
    hourly("users", SLOW, 48, 300, latency=0.2)
    assert latency_aware(Context(NOW)) == []
