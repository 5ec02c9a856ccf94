"""A route's dashboard page shows that route's live figures, labelled as the route's, next to the gateway's own
(two routes served by the real proxy; Debian's chromium, headless, driven by Playwright)."""
from __future__ import annotations

import pytest
from django.conf import settings

from metrics.dashboard.views import UPLOT_SCRIPT
from routes.services import save_route
from tests.metrics.dashboard.conftest import open_dashboard
from tests.metrics.dashboard.test_dashboard_browser import send, upstream  # noqa: F401
from tests.support.browser import needs_chromium

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

TEXT = "id => document.getElementById(id).textContent"


@pytest.fixture
def two_routes(upstream):  # noqa: F811
    # Saved before the browser starts: Playwright's sync API runs an event loop in this thread.
    for name in ("orders", "users"):
        save_route({"name": name, "external_path": f"/{name}", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")


def test_a_route_page_shows_the_routes_own_live_figures(two_routes, gateway, page):
    gateway.wait_version(2)
    send(gateway.url + "/orders", 7)
    send(gateway.url + "/users", 3)
    open_dashboard(page, gateway, "route/orders/")
    page.wait_for_selector("#live-status.connected")
    page.wait_for_function(f"() => ({TEXT})('live-requests_total') === '7'")  # orders' 7, not the gateway's 10
    assert page.inner_text("#live-scope .live-label") == "Route orders"
    assert page.inner_text("#live-gateway .live-label") == "Whole gateway"
    # The 7 are counted, so the next rounds see only what comes now: the gateway busy, orders idle.
    send(gateway.url + "/users", 4)
    page.wait_for_function("""() => {
        const gateway = document.getElementById('live-gateway-requests_per_second').textContent;
        const route = document.getElementById('live-requests_per_second').textContent;
        return gateway !== '–' && Number(gateway) > 0 && route === '0';
    }""")
    assert page.evaluate(TEXT, "live-requests_total") == "7"


def test_the_overview_labels_its_live_figures_as_the_whole_gateways(two_routes, gateway, page):
    gateway.wait_version(2)
    send(gateway.url + "/orders", 7)
    send(gateway.url + "/users", 3)
    open_dashboard(page, gateway)
    page.wait_for_selector("#live-status.connected")
    page.wait_for_function(f"() => ({TEXT})('live-requests_total') === '10'")
    assert page.inner_text("#live-scope .live-label") == "Whole gateway"
