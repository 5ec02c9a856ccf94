"""The admin's Advice page in a real browser (chromium, driven by Playwright) against a real gateway: the finding's
evidence and diff are shown, Apply (confirmed) changes the route and links the audit entry it wrote."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from routes.models import AuditEntry, Route
from tests.support.admin_browser import (  # noqa: F401
    browser_page,
    fast_password_hashing,
    log_in,
    operator,
)
from tests.support.advice_series import hourly, route
from tests.support.browser import needs_chromium
from tests.support.gateway import start_gateway

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]
FAST, SLOW = "10.0.0.5:8080", "10.0.0.5:8081"


@pytest.fixture
def slow_backend():
    """Stored before the browser starts: Playwright's sync API runs an event loop in this thread."""
    route("users", (8080, 8081), read_timeout_ms=1000)
    hourly("users", FAST, 24, 300, latency=0.02)
    hourly("users", SLOW, 24, 300, latency=0.2)


def in_thread(call):
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(call).result()


def test_an_operator_sees_the_evidence_and_diff_and_applies_the_draft(tmp_path, slow_backend,
                                                                     browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        page = browser_page
        log_in(page, gateway.admin_url)
        page.goto(f"{gateway.admin_url}/admin/")
        page.click("#advice-link")
        page.wait_for_url("**/admin/metrics/dashboard/advice/")
        finding = page.locator("article.advice-finding[data-rule=latency_aware][data-route=users]")
        assert "answers with a p50 of 200.0 ms" in finding.locator(".advice-text").inner_text()
        evidence = finding.locator("table.advice-evidence").inner_text()
        assert "hours_compared" in evidence and FAST in evidence and SLOW in evidence
        diff = finding.locator("pre.advice-diff").inner_text()
        assert '-  "load_balancing_strategy": "round_robin",' in diff
        assert '+  "load_balancing_strategy": "latency_aware",' in diff

        dialogs: list[str] = []
        page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        finding.locator("button.advice-apply").click()
        page.wait_for_selector("#advice-audit-link")
        assert dialogs == ["Apply this change to route users?"]
        assert "Applied to route users: load_balancing_strategy" in page.inner_text("ul.messagelist")
        assert in_thread(lambda: Route.objects.get(name="users").load_balancing_strategy) == "latency_aware"

        page.click("#advice-audit-link")
        entry = in_thread(lambda: AuditEntry.objects.get(source="advice"))
        page.wait_for_url(f"**/admin/routes/auditentry/{entry.pk}/change/")
        assert "advice" in page.inner_text("#content-main")
        # Applied, the advice is gone from the page.
        page.goto(f"{gateway.admin_url}/admin/metrics/dashboard/advice/")
        assert page.locator("article.advice-finding[data-rule=latency_aware]").count() == 0
    finally:
        assert gateway.stop() == 0
