"""In a real browser on a real gateway started without its background work: the admin's banner says so."""
from __future__ import annotations

import json
import time

import pytest

from tests.support.admin_browser import PASSWORD, browser_page, fast_password_hashing, operator  # noqa: F401
from tests.support.browser import needs_chromium
from tests.support.gateway import http, start_gateway

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]



def test_the_admin_shows_a_banner_with_what_to_run_while_background_work_is_missing(tmp_path, browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path, background=False, extra_env={"RUSTA_BACKGROUND_STALE_AFTER": "1"})
    try:
        deadline = time.monotonic() + 20
        while json.loads(http("GET", gateway.admin_url + "/health")[2])["status"] != "degraded":
            assert time.monotonic() < deadline, gateway.log()
            time.sleep(0.2)
        page = browser_page
        page.goto(f"{gateway.admin_url}/admin/login/")
        assert page.locator("#rusta-background-missing").count() == 0  # not before logging in
        page.fill("#id_username", "ops")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#user-tools")
        for path in ("/admin/", "/admin/routes/route/", "/admin/metrics/dashboard/"):
            page.goto(gateway.admin_url + path)
            banner = page.locator("#rusta-background-missing")
            assert banner.is_visible(), path
            assert "has never reported" in banner.inner_text()
            assert "celery -A rusta worker --beat" in banner.inner_text()
    finally:
        assert gateway.stop() == 0
