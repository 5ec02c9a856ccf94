"""metrics.advice.caching: busy, read-mostly, slow enough, mostly successful routes without a cache."""
from __future__ import annotations

import pytest

from metrics.advice.caching import cache
from metrics.advice.context import Context
from metrics.procfiles import Combined
from tests.support.advice_series import NOW, hourly, route

pytestmark = pytest.mark.django_db
BACKEND = "10.0.0.5:8080"


def test_it_advises_a_cache_for_a_busy_slow_read_only_route():
    route("catalogue")
    hourly("catalogue", BACKEND, 24, 500, latency=0.12, errors_4xx=10)
    [finding] = cache(Context(NOW))
    figures = finding.evidence["figures"]
    assert figures["requests"] == 12000 and figures["read_share"] == 1.0 and figures["success_share"] == 0.98
    assert finding.patch == {"cache": {"ttl_s": 60}}


def test_it_reads_the_method_mix_from_the_workers_when_they_saw_the_route():
    route("catalogue", methods=["GET", "POST"])
    hourly("catalogue", BACKEND, 24, 500, latency=0.12)
    live = Combined()
    live.totals.requests.update({("catalogue", "GET", "2xx"): 950, ("catalogue", "POST", "2xx"): 50})
    [finding] = cache(Context(NOW, live))
    assert finding.evidence["figures"]["read_share"] == 0.95


@pytest.mark.parametrize("why", ["fast", "writes", "failing", "cached"])
def test_it_is_silent_on_a_route_not_worth_caching(why):
    route("catalogue", methods=["GET", "POST"] if why == "writes" else ["GET"],
          **({"cache": {"ttl_s": 30}} if why == "cached" else {}))
    hourly("catalogue", BACKEND, 24, 500, latency=0.004 if why == "fast" else 0.12,
           errors_5xx=100 if why == "failing" else 0)
    assert cache(Context(NOW)) == []
