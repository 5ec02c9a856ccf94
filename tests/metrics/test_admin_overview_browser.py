"""The admin home in a real browser (Debian's chromium, driven by Playwright): after traffic through a real
gateway, the overview lists the route with its requests, and its links lead to the metrics dashboard."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from metrics import timeseries
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

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]
REQUESTS_CELL = "#overview-routes tr[data-route=echo] td.number"


def test_the_admin_home_shows_the_routes_traffic_and_links_to_its_dashboard(tmp_path, echo_route,  # noqa: F811
                                                                            browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path, extra_env={"RUSTA_METRICS_FLUSH_INTERVAL": "0.5"})
    try:
        gateway.wait_version(1)
        for _ in range(6):
            assert http("GET", gateway.url + "/echo", headers={"Connection": "close"})[0] == 200
        page = browser_page
        log_in(page, gateway.admin_url)
        for _ in range(40):  # the gateway writes its points every 0.5 s
            # With Redis the points wait there until the rollup task ingests them; run it as Celery would
            # (from another thread: Playwright's sync API runs an event loop in this one, which Django refuses).
            with ThreadPoolExecutor(1) as thread:
                thread.submit(timeseries.ingest_and_rollup, timezone.now() + timedelta(minutes=1)).result()
            page.goto(f"{gateway.admin_url}/admin/")
            if page.locator(REQUESTS_CELL).first.inner_text() == "6":
                break
            page.wait_for_timeout(250)
        assert page.locator(REQUESTS_CELL).first.inner_text() == "6"
        assert "1 up" in page.inner_text("#overview-routes tr[data-route=echo]")
        assert page.locator("#content-main").count() == 1  # the apps are still listed below

        page.click("#metrics-dashboard-link")
        page.wait_for_url("**/admin/metrics/dashboard/")
        page.wait_for_selector("#metrics-dashboard")

        page.go_back()
        page.click("#overview-routes tr[data-route=echo] a")
        page.wait_for_url("**/admin/metrics/dashboard/route/echo/")
        page.wait_for_selector("#metrics-dashboard[data-route=echo]")
    finally:
        assert gateway.stop() == 0
