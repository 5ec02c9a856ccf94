"""The metrics dashboard in a real browser (Debian's chromium, headless, driven by Playwright): charts drawn
from the stored history, and a live figure that changes when traffic goes through the gateway."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from metrics import timeseries
from metrics.dashboard.views import UPLOT_SCRIPT
from tests.support.admin_browser import (  # noqa: F401
    browser_page,
    echo_route,
    fast_password_hashing,
    log_in,
    operator,
    upstream,
)
from tests.support.browser import needs_chromium
from tests.support.gateway import http, start_gateway

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

CHART_HAS_DATA = """id => {
    const plot = window.rustaCharts && window.rustaCharts[id];
    return !!plot && plot.data.length > 1 && plot.data[1].some(v => v != null && v > 0);
}"""


def send(url: str, count: int) -> None:
    for _ in range(count):
        assert http("GET", url, headers={"Connection": "close"})[0] == 200


def test_the_dashboard_draws_charts_with_data_and_shows_live_traffic(tmp_path, echo_route,  # noqa: F811
                                                                     browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path, extra_env={"RUSTA_METRICS_FLUSH_INTERVAL": "0.5"})
    try:
        gateway.wait_version(1)
        send(gateway.url + "/echo", 12)
        page = browser_page
        page.wait_for_timeout(1500)  # the gateway writes its points every 0.5 s
        # With Redis the points wait there until the rollup task ingests them; run it as Celery would.
        # (From another thread: Playwright's sync API runs an event loop in this one, which Django refuses.)
        with ThreadPoolExecutor(1) as thread:
            thread.submit(timeseries.ingest_and_rollup, timezone.now() + timedelta(minutes=1)).result()
        log_in(page, gateway.admin_url)
        page.goto(f"{gateway.admin_url}/admin/metrics/dashboard/")
        assert page.locator("#charts-missing").count() == 0
        page.wait_for_selector("#chart-requests canvas")
        page.wait_for_function(CHART_HAS_DATA, arg="requests")
        page.wait_for_function(CHART_HAS_DATA, arg="latency")
        assert page.locator(".metrics-chart canvas").count() >= 4

        page.wait_for_selector("#live-status.connected")
        page.wait_for_function("() => document.getElementById('live-requests_total').textContent === '12'")
        send(gateway.url + "/echo", 5)
        page.wait_for_function("() => document.getElementById('live-requests_total').textContent === '17'")
        page.wait_for_function(CHART_HAS_DATA, arg="live")

        page.click("a[data-view=errors]")
        page.wait_for_selector("#chart-errors canvas")
        page.select_option("#route-picker", "echo")
        page.wait_for_url("**/dashboard/route/echo/")
        page.wait_for_function(CHART_HAS_DATA, arg="requests")
    finally:
        assert gateway.stop() == 0
