"""In a real browser on a real gateway: a verdict's admin page says why, and its Lift button lifts it (audited)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from metrics.models import Verdict
from routes.models import AuditEntry
from tests.metrics.abuse.factories import make_verdict
from tests.support.admin_browser import browser_page, fast_password_hashing, log_in, operator  # noqa: F401
from tests.support.browser import needs_chromium
from tests.support.gateway import start_gateway

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


@pytest.fixture
def verdict(operator) -> Verdict:  # noqa: F811
    return make_verdict()  # before the browser starts (Playwright's loop runs in this thread)


def test_an_operator_reads_why_and_lifts_a_verdict_in_the_admin(tmp_path, verdict, browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        page = browser_page
        log_in(page, gateway.admin_url)
        page.goto(f"{gateway.admin_url}/admin/metrics/verdict/")
        assert "ip:10.0.0.9" in page.locator("#result_list").inner_text()
        page.click(f"#result_list a[href$='/{verdict.pk}/change/']")
        why = page.locator(".verdict-reasons").inner_text()
        assert "401/403 answers: 42 in the window" in why
        assert "no history of its own yet" in why and "route's clients' median 0" in why
        page.click("#lift-verdict")
        page.fill("#id_reason", "a partner's load test")
        page.click("#lift-submit")
        page.wait_for_selector(".messagelist")
        assert f"Verdict {verdict.pk} lifted" in page.locator(".messagelist").inner_text()
        assert page.locator("#lift-verdict").count() == 0  # nothing left to lift
    finally:
        assert gateway.stop() == 0
    with ThreadPoolExecutor(1) as thread:  # the ORM refuses Playwright's thread, which runs an event loop
        lifted = thread.submit(Verdict.objects.get, pk=verdict.pk).result()
        entry = thread.submit(AuditEntry.objects.get, object_type="verdict", object_id=str(verdict.pk)).result()
    assert lifted.lifted_at is not None and lifted.lift_reason == "a partner's load test"
    assert entry.source == "admin" and entry.actor_name == "ops"
