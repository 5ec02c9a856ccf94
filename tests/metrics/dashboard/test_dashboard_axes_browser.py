"""What the dashboard's axes say: bytes in units people read, labels that fit their axis, and a time axis that
starts where a new install's history does (Debian's chromium, headless, driven by Playwright, against a real
`runproxy`)."""
from __future__ import annotations

import re

import pytest
from django.conf import settings

from metrics.dashboard.views import UPLOT_SCRIPT
from tests.metrics.dashboard.conftest import open_dashboard, store_points
from tests.support.browser import needs_chromium

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

# The y axis tick labels of a chart as drawn, each with its width and the room the axis leaves it (CSS pixels).
Y_LABELS = """id => {
    const u = window.rustaCharts[id];
    const axis = u.axes[1];
    u.ctx.font = axis.font[0];
    return axis._values.map(text => ({
        text, width: u.ctx.measureText(text).width / devicePixelRatio,
        room: axis._size - axis.ticks.size - axis.gap,
    }));
}"""
# Short numbers with a unit: "0 B", "500 KB", "1.5 MB" (also accepts KiB, MiB...).
BYTES_LABEL = re.compile(r"^\d{1,3}(\.\d{1,2})? (B|[KMGTP]i?B)$")


@pytest.fixture
def megabytes():
    # About 3.3 MB out per 10 s: raw byte counts would be seven digits long.
    store_points([90, 80, 70, 60, 50, 40], count=20, bytes_out=3_300_000)


@pytest.fixture
def two_minutes_of_history():
    # A new install: the gateway has been serving for two minutes, the default range is the last hour.
    return store_points([120, 110, 100, 90, 80, 70, 60, 50, 40, 30, 20, 10], count=20)


def test_the_byte_axis_reads_in_units(megabytes, gateway, page):
    open_dashboard(page, gateway)
    labels = [label["text"] for label in page.evaluate(Y_LABELS, "bytes")]
    assert len(labels) >= 3
    assert all(BYTES_LABEL.match(text) for text in labels), labels
    assert any(text.endswith("MB") for text in labels), labels


def test_axis_labels_fit_inside_the_chart(megabytes, gateway, page):
    open_dashboard(page, gateway)
    for chart in page.evaluate("() => Object.keys(window.rustaCharts)"):
        for label in page.evaluate(Y_LABELS, chart):
            assert label["width"] <= label["room"], (chart, label)


def test_a_new_installs_history_fills_the_time_axis(two_minutes_of_history, gateway, page):
    first, last = (int(t.timestamp()) for t in (two_minutes_of_history[0], two_minutes_of_history[-1]))
    open_dashboard(page, gateway)
    assert page.input_value("#range") == "3600"  # the default: last hour
    shown = page.evaluate("() => { const x = window.rustaCharts.requests.scales.x; return [x.min, x.max]; }")
    assert (last - first) / (shown[1] - shown[0]) > 0.5  # not squeezed into the last 3% of the axis
    assert shown[0] <= first
    assert page.is_visible("#range-note")
