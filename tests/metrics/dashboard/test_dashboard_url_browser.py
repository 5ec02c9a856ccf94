"""The dashboard keeps the chosen range and resolution in its address, so a reload or a shared link shows the
same charts (Debian's chromium, headless, driven by Playwright, against a real `runproxy`)."""
from __future__ import annotations

import pytest
from django.conf import settings

from metrics.dashboard.views import UPLOT_SCRIPT
from tests.metrics.dashboard.conftest import open_dashboard
from tests.support.browser import needs_chromium

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

X_SPAN = "() => { const x = window.rustaCharts.requests.scales.x; return x.max - x.min; }"


def test_the_chosen_range_survives_a_reload(gateway, page):
    open_dashboard(page, gateway)
    page.select_option("#range", "21600")
    page.wait_for_url("**/dashboard/?range=21600")
    page.reload()
    page.wait_for_selector("#metrics-dashboard[data-loaded]")
    assert page.input_value("#range") == "21600"
    assert page.evaluate(X_SPAN) > 5 * 3600  # six hours drawn, not the default hour


def test_the_chosen_resolution_survives_a_reload(gateway, page):
    open_dashboard(page, gateway)
    page.select_option("#interval", "1m")
    page.wait_for_url("**/dashboard/?range=3600&interval=1m")
    page.reload()
    page.wait_for_selector("#metrics-dashboard[data-loaded]")
    assert page.input_value("#interval") == "1m"
    assert page.evaluate("() => { const x = window.rustaCharts.requests.data[0]; return x[1] - x[0]; }") == 60


def test_a_shared_link_opens_with_its_range(gateway, page):
    open_dashboard(page, gateway, "traffic/?range=86400")
    assert page.input_value("#range") == "86400"
    assert page.evaluate(X_SPAN) > 23 * 3600


def test_another_tab_keeps_the_chosen_range(gateway, page):
    open_dashboard(page, gateway)
    page.select_option("#range", "900")
    page.wait_for_url("**/dashboard/?range=900")
    page.click("a[data-view=errors]")
    page.wait_for_url("**/dashboard/errors/?range=900")
    page.wait_for_selector("#metrics-dashboard[data-loaded]")
    assert page.input_value("#range") == "900"
