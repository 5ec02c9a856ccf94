"""A route's learned API docs page in a real browser (chromium, driven by Playwright) served by a real gateway:
reached from the route's page, after traffic through the same gateway was sampled, it lists the learned
operations with their parameters, fields and statuses, the drift from the declared document, and the JSON."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from routes.models import ConfigState, Route
from routes.services import save_route
from tests.support.admin_browser import browser_page, fast_password_hashing, log_in, operator  # noqa: F401
from tests.support.browser import needs_chromium
from tests.support.gateway import http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]
DECLARED = {"openapi": "3.0.3", "paths": {"/echo": {"post": {"responses": {"200": {"description": "echo"}}}}}}


@pytest.fixture
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def echo(upstream) -> tuple[Route, int]:
    """The route and the configuration version that serves it, read before the browser starts (Playwright's sync
    API runs an event loop in the test's thread, where Django refuses queries)."""
    route = save_route({"name": "echo", "external_path": "/echo/{what}", "internal_path": "/{what}",
                       "methods": ["GET", "POST"], "backends": [{"host": "http://127.0.0.1", "port": upstream.port}],
                       "api_docs": {"sample_rate": 1, "openapi": DECLARED}}, actor=None, source="test")
    return route, ConfigState.objects.get(pk=1).version


def test_the_page_lists_learned_operations_and_the_drift(tmp_path, echo, browser_page):  # noqa: F811
    route, version = echo
    gateway = start_gateway(tmp_path, extra_env={"RUSTA_METRICS_FLUSH_INTERVAL": "0.2"})
    try:
        gateway.wait_version(version)
        for limit in (5, 10):
            status, _, _ = http("POST", f"{gateway.url}/echo/respond?limit={limit}&header=Content-Type:application/"
                                        "json&body=" + quote(json.dumps({"id": limit, "state": "ok"})),
                                json.dumps({"name": "n"}).encode(), {"Content-Type": "application/json"})
            assert status == 200
        assert http("GET", f"{gateway.url}/echo/respond?status=404")[0] == 404

        page = browser_page
        log_in(page, gateway.admin_url)
        page.goto(f"{gateway.admin_url}/admin/routes/route/{route.pk}/change/")
        page.click("#rusta-apidocs-link")
        page.wait_for_selector("#learned-docs")
        # The flusher writes every 0.2 s: reload until both operations are there.
        for _ in range(50):
            if page.locator(".operation").count() >= 2:
                break
            page.wait_for_timeout(200)
            page.reload()
        post = page.locator('.operation[data-method="POST"][data-path="/echo/respond"]')
        assert post.count() == 1
        text = post.inner_text()
        assert "limit" in text and "query" in text  # the query parameter
        assert "name" in text and "state" in text  # request and response fields
        assert "Response 200" in text
        get = page.locator('.operation[data-method="GET"]')
        assert "404" in get.inner_text()
        kinds = page.locator("#drift-items tr[data-kind]").evaluate_all("rows => rows.map(r => r.dataset.kind)")
        assert "undocumented_path" in kinds  # the declared document has /echo only
        assert '"openapi": "3.0.3"' in page.locator("#learned-json pre").inner_text()
    finally:
        assert gateway.stop() == 0
