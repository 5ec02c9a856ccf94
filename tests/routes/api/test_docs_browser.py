"""The API reference in a real browser on a real gateway: logged into the admin, /api/docs/ (Swagger UI) and
/api/docs/redoc/ draw the management API from /api/schema/, and the browser asks no host but the admin listener."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.admin_browser import browser_page, fast_password_hashing, log_in, operator  # noqa: F401
from tests.support.browser import needs_chromium
from tests.support.gateway import start_gateway

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Traffic:
    """Every URL the page asks for from now on, and those its own Content-Security-Policy stopped before they left
    the browser (Chromium still reports those as requests, failed with "csp")."""

    def __init__(self, page) -> None:
        self.page = page
        self.urls: list[str] = []
        self.blocked: set[str] = set()
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("requestfailed", lambda request: self.blocked.add(request.url) if request.failure == "csp" else None)

    def sent_off_loopback(self) -> list[str]:
        """The URLs that went over the network to another host, whether it answered or not (data: and blob: URLs
        never leave the page)."""
        self.page.wait_for_load_state("networkidle")  # every request reported, and how it ended
        return [url for url in self.urls if urlsplit(url).scheme in ("http", "https", "ws", "wss")
                and urlsplit(url).hostname not in LOOPBACK and url not in self.blocked]


def schema_answers(page, url: str) -> list[int]:
    """The statuses /api/schema/ answered the page's own requests with."""
    statuses: list[int] = []
    page.on("response", lambda response: statuses.append(response.status)
            if urlsplit(response.url).path == "/api/schema/" else None)
    page.goto(url)
    return statuses


def test_swagger_ui_lists_the_management_endpoints_from_the_schema(tmp_path, browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        page = browser_page
        log_in(page, gateway.admin_url)
        traffic = Traffic(page)
        statuses = schema_answers(page, f"{gateway.admin_url}/api/docs/")
        routes = page.locator('.opblock-summary-path[data-path="/api/routes/"]')
        routes.first.wait_for()
        assert routes.count() == 2  # GET (list) and POST (create)
        assert page.locator('.opblock-summary-path[data-path="/api/config/reload/"]').count() == 1
        assert statuses == [200]  # fetched with the admin session
        assert page.locator(".swagger-ui .errors-wrapper").count() == 0
        assert traffic.sent_off_loopback() == []
        assert any(urlsplit(url).path.startswith("/static/drf_spectacular_sidecar/") for url in traffic.urls)
    finally:
        assert gateway.stop() == 0


def test_swagger_ui_calls_the_api_with_the_admin_session(tmp_path, browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        page = browser_page
        log_in(page, gateway.admin_url)
        traffic = Traffic(page)
        page.goto(f"{gateway.admin_url}/api/docs/")
        status = page.locator("#operations-config-config_status_retrieve")
        status.locator(".opblock-summary-control").click()
        status.locator(".try-out__btn").click()
        status.locator(".execute").click()
        answer = status.locator(".live-responses-table tr.response .response-col_status").first
        answer.wait_for()
        assert answer.inner_text().strip() == "200"
        assert traffic.sent_off_loopback() == []
    finally:
        assert gateway.stop() == 0


def test_redoc_describes_the_management_endpoints_from_the_schema(tmp_path, browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        page = browser_page
        log_in(page, gateway.admin_url)
        traffic = Traffic(page)
        statuses = schema_answers(page, f"{gateway.admin_url}/api/docs/redoc/")
        page.get_by_text("Rusta management API", exact=False).first.wait_for()
        page.locator("[data-section-id^='tag/routes']").first.wait_for()
        assert statuses == [200]
        assert "/api/routes/" in page.inner_text("body")
        assert traffic.sent_off_loopback() == []
    finally:
        assert gateway.stop() == 0
