"""metrics.advice.limits: a rate limit from the p99 of per-client rates (client windows, else consumers' points)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from metrics.advice.context import Context
from metrics.advice.limits import rate_limit
from metrics.models import ConsumerRawPoint
from tests.support.advice_series import NOW, UNTIL, client_windows, route

pytestmark = pytest.mark.django_db
CLIENTS = {f"ip:10.1.0.{n}": 1.0 + n / 10 for n in range(10)}  # 1.0 to 1.9 requests per second


def test_it_advises_a_limit_from_the_clients_p99_rate_on_a_route_without_one():
    route("search")
    client_windows("search", CLIENTS, windows=30)
    [finding] = rate_limit(Context(NOW))
    figures = finding.evidence["figures"]
    assert figures["clients"] == 10 and figures["client_windows"] == 300
    assert figures["rate_p99_per_s"] == 1.9
    # 1.9 req/s x 3 (headroom) x 60 s = 342, rounded up to a figure a person would write.
    assert finding.patch == {"rate_limit": {"limit": 500, "window_s": 60, "scope": ["ip"]}}


def test_it_lowers_a_limit_far_above_use():
    route("search", rate_limit={"limit": 100000, "window_s": 60, "scope": ["ip"]})
    client_windows("search", CLIENTS, windows=30)
    [finding] = rate_limit(Context(NOW))
    assert finding.patch == {"rate_limit": {"limit": 500, "window_s": 60, "scope": ["ip"]}}


def test_it_raises_a_limit_below_normal_use():
    route("search", rate_limit={"limit": 30, "window_s": 60})
    client_windows("search", CLIENTS, windows=30)
    [finding] = rate_limit(Context(NOW))
    assert finding.severity == "warning"
    assert finding.patch == {"rate_limit": {"limit": 500, "window_s": 60}}


def test_it_reads_the_consumers_points_when_the_route_counts_no_clients():
    route("partners")
    ConsumerRawPoint.objects.bulk_create([
        ConsumerRawPoint(start=UNTIL - timedelta(seconds=10 * (i + 1)), consumer=f"c{n}", route="partners",
                         source="p1", count=20) for n in range(4) for i in range(10)])
    [finding] = rate_limit(Context(NOW))
    assert finding.evidence["figures"]["source"] == "consumer points"
    assert finding.patch == {"rate_limit": {"limit": 500, "window_s": 60, "scope": ["consumer"]}}


def test_it_is_silent_on_a_limit_that_fits_use():
    route("search", rate_limit={"limit": 500, "window_s": 60})
    client_windows("search", CLIENTS, windows=30)
    assert rate_limit(Context(NOW)) == []
