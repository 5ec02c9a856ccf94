"""The dashboard on a phone's 390 px wide screen: nothing wider than the screen, charts as wide as their box
(Debian's chromium, headless, driven by Playwright, against a real `runproxy`)."""
from __future__ import annotations

import pytest
from django.conf import settings

from metrics.dashboard.views import UPLOT_SCRIPT
from routes.services import save_route
from tests.metrics.dashboard.conftest import PHONE, open_dashboard, store_points
from tests.support.browser import needs_chromium

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

OVERFLOW = "() => document.scrollingElement.scrollWidth - window.innerWidth"
# Each chart's drawing against its box: right edges in page pixels.
CHART_EDGES = """() => [...document.querySelectorAll('.metrics-chart')].map(figure => ({
    figure: figure.getBoundingClientRect().right,
    canvas: figure.querySelector('canvas').getBoundingClientRect().right,
    plot: figure.querySelector('.plot').clientWidth,
    chart: window.rustaCharts[figure.id.replace('chart-', '')].width,
}))"""


@pytest.fixture
def history():
    save_route({"name": "a-route-with-a-rather-long-name-for-a-phone", "external_path": "/long", "methods": ["GET"],
                "backends": [{"host": "http://127.0.0.1", "port": 9}]}, actor=None, source="test")
    store_points([60, 50, 40], route="a-route-with-a-rather-long-name-for-a-phone", count=20, bytes_out=4_000_000)


def assert_fits(page) -> None:
    assert page.evaluate(OVERFLOW) <= 0
    edges = page.evaluate(CHART_EDGES)
    assert edges
    for edge in edges:
        assert edge["canvas"] <= edge["figure"] + 0.5, edge
        assert edge["chart"] == edge["plot"], edge  # the chart takes its box's width, not a fixed one


def test_the_overview_fits_a_phone_screen(history, gateway, page):
    page.set_viewport_size(PHONE)
    open_dashboard(page, gateway)
    assert_fits(page)


def test_a_route_page_fits_a_phone_screen(history, gateway, page):
    page.set_viewport_size(PHONE)
    open_dashboard(page, gateway, "route/a-route-with-a-rather-long-name-for-a-phone/")
    assert_fits(page)


def test_the_charts_shrink_when_the_window_narrows(history, gateway, page):
    page.set_viewport_size({"width": 1280, "height": 800})
    open_dashboard(page, gateway)
    wide = page.evaluate("() => window.rustaCharts.requests.width")
    page.set_viewport_size(PHONE)
    page.wait_for_function("w => window.rustaCharts.requests.width < w", arg=wide)
    assert_fits(page)
