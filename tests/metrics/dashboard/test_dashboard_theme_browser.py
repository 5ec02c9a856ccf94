"""The dashboard's charts in the admin's dark theme: axis labels, grid and legend stand out from the dark page
(Debian's chromium, headless, driven by Playwright, against a real `runproxy`)."""
from __future__ import annotations

import pytest
from django.conf import settings

from metrics.dashboard.views import UPLOT_SCRIPT
from tests.metrics.dashboard.conftest import BACKGROUND_OF, contrast, open_dashboard, store_points
from tests.support.browser import needs_chromium

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

# What each chart draws with: the colours handed to uPlot, read back from the chart as it is drawn.
CHART_COLOURS = """() => Object.entries(window.rustaCharts).map(([id, u]) => ({
    id,
    labels: u.axes.map((axis, i) => axis.stroke(u, i)),
    grid: u.axes.map((axis, i) => axis.grid.stroke(u, i)),
    legend: getComputedStyle(u.root.querySelector('.u-legend th')).color,
    background: (""" + BACKGROUND_OF + """)(u.root),
}))"""


@pytest.fixture
def history():
    store_points([60, 50, 40], count=20, bytes_out=40_000)


def assert_readable(page) -> None:
    charts = page.evaluate(CHART_COLOURS)
    assert len(charts) >= 4
    for chart in charts:
        for label in chart["labels"]:
            assert contrast(label, chart["background"]) >= 4.5, chart
        for line in chart["grid"]:
            assert contrast(line, chart["background"]) >= 1.15, chart  # faint on purpose, but there
        assert contrast(chart["legend"], chart["background"]) >= 4.5, chart


def test_axis_labels_grid_and_legend_stand_out_on_a_dark_system_theme(history, gateway, page):
    page.emulate_media(color_scheme="dark")
    open_dashboard(page, gateway)
    background = page.evaluate(f"({BACKGROUND_OF})(document.querySelector('.metrics-chart'))")
    assert contrast(background, "#ffffff") > 10  # the admin really is dark
    assert_readable(page)


def test_the_charts_follow_the_admins_theme_toggle_without_a_reload(history, gateway, page):
    page.emulate_media(color_scheme="light")
    open_dashboard(page, gateway)
    assert_readable(page)
    page.evaluate("() => { window.sameDocument = true; }")
    for _ in range(3):  # the toggle goes round auto, light and dark, in an order that depends on the system's
        if page.evaluate("() => document.documentElement.dataset.theme") == "dark":
            break
        page.click("button.theme-toggle")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert_readable(page)
    assert page.evaluate("() => window.sameDocument") is True
