"""A route's AI routing page in a real browser (Debian's chromium, driven by Playwright) served by a real gateway:
reached from the route's page, its chart drawn, its tables filled, and new decisions shown without a reload."""
from __future__ import annotations

import os
import time

import pytest
from django.conf import settings

from metrics import procfiles
from metrics.dashboard.views import UPLOT_SCRIPT
from protocols.ai import records
from protocols.ai.decide import Decision
from protocols.ai.records import DecisionLog
from protocols.recorder import Totals
from routes.models import Route
from routes.services import save_route
from rusta.instance import instance_dir
from tests.support.admin_browser import browser_page, fast_password_hashing, log_in, operator  # noqa: F401
from tests.support.browser import needs_chromium
from tests.support.gateway import start_gateway
from tests.support.gateway import test_database_url as database_url  # renamed: pytest would collect test_*

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

CHART_HAS_DATA = """() => {
    const plot = window.rustaAiChart;
    return !!plot && plot.data.length === 5 && plot.data.slice(1).some(series => series.some(v => v > 0));
}"""


@pytest.fixture
def shop() -> Route:
    """An AI route, saved before the browser starts (Playwright's sync API runs an event loop in the test's
    thread, where Django refuses queries)."""
    backends = [{"host": "http://10.0.0.5", "port": 8080}, {"host": "http://10.0.0.6", "port": 8080}]
    return save_route({"name": "shop", "external_path": "/shop", "methods": ["GET"], "backends": backends,
                       "ai_policy": {"strategy": "latency_prediction"}}, actor=None, source="test")


def report(folder, log: DecisionLog) -> None:
    """This test process as one more gateway worker: its AI record in the folder the gateway's admin reads."""
    procfiles.write(folder, Totals(), [], time.time(), pid=os.getpid(),
                    ai=records.snapshot(logs=[log], clients=[]))


def test_the_ai_routing_page_draws_the_decision_mix_and_lists_decisions_and_verdicts(tmp_path, shop,
                                                                                     browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        folder = procfiles.folder_for(instance_dir(tmp_path / "var", database_url()))
        now = time.time()
        times = iter([now - 900, now - 900, now - 300, now - 60, now - 5])
        log = DecisionLog(clock=lambda: next(times))
        log.record("shop", "latency_prediction", Decision(0, "model", "fastest", 0.0002), "http://10.0.0.5:8080")
        log.record("shop", "latency_prediction", Decision(1, "model", "fastest", 0.0002), "http://10.0.0.6:8080")
        log.record("shop", "latency_prediction", Decision(None, "fallback", "too few samples", 0.0001))
        log.verdict("shop", "203.0.113.7", 14.0, ("burst",), "shadow")
        report(folder, log)

        page = browser_page
        log_in(page, gateway.admin_url)
        page.goto(f"{gateway.admin_url}/admin/routes/route/{shop.pk}/change/")
        page.click("#rusta-ai-routing-link")
        page.wait_for_url("**/admin/metrics/dashboard/ai/shop/")
        assert page.locator("#charts-missing").count() == 0
        page.wait_for_selector("#chart-ai-mix canvas")
        page.wait_for_function(CHART_HAS_DATA)
        assert page.locator("#ai-recent tbody tr").count() == 3
        assert "too few samples" in page.inner_text("#ai-fallbacks tbody")
        assert page.inner_text("#ai-verdicts tbody tr td:nth-child(2)") == "203.0.113.7"
        assert page.is_hidden("#ai-no-workers")  # the gateway's own worker is running

        # One more decision: the page polls its JSON and shows it without a reload.
        log.record("shop", "latency_prediction", Decision(0, "llm", "asked", 0.2), "http://10.0.0.5:8080")
        report(folder, log)
        page.wait_for_function("() => document.getElementById('ai-decisions').textContent === '4'")
        assert page.locator("#ai-recent tbody tr").count() == 4
        assert page.inner_text("#ai-recent tbody tr:first-child td:nth-child(3)") == "llm"
        page.wait_for_function("() => window.rustaAiChart.data[2].some(v => v > 0)")  # the llm series
    finally:
        assert gateway.stop() == 0
