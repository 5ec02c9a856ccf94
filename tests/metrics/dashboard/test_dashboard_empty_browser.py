"""When a chart says "No data in this range." (Debian's chromium, headless, driven by Playwright, against a real
`runproxy`): traffic without a single 5xx is a 0% ratio, not missing data."""
from __future__ import annotations

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


@pytest.fixture
def clean_traffic():
    store_points([90, 80, 70, 60, 50, 40], count=20)  # requests, none of them a 5xx


def test_traffic_without_errors_draws_a_zero_ratio_instead_of_saying_no_data(clean_traffic, page, gateway):
    open_dashboard(page, gateway, "errors/?range=3600")
    assert page.is_hidden("#chart-error-ratio .empty")
    assert page.is_visible("#chart-errors .empty")  # no error of any class: nothing to draw there


def test_a_range_without_traffic_says_no_data(page, gateway):
    open_dashboard(page, gateway, "errors/?range=3600")
    assert page.is_visible("#chart-error-ratio .empty")
