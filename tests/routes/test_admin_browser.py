"""The newcomer's path in a real browser: log into the admin, add a route, see a request go through it."""
from __future__ import annotations

import base64
import json

import pytest

from tests.support.admin_browser import browser_page, fast_password_hashing, log_in, operator  # noqa: F401
from tests.support.browser import needs_chromium
from tests.support.gateway import http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]



def submit_route(page, admin_url: str, name: str, external_path: str, port: int, internal_path: str = "") -> None:
    """Fill the admin's add-route form with one GET method and one backend, and save it."""
    page.goto(f"{admin_url}/admin/routes/route/add/")
    page.fill("#id_name", name)
    page.fill("#id_external_path", external_path)
    page.fill("#id_internal_path", internal_path)
    page.check("input[name=methods][value=GET]")
    page.fill("input[name=backends-0-host]", "http://127.0.0.1")
    page.fill("input[name=backends-0-port]", str(port))
    page.click("input[name=_save]")


def test_a_route_added_in_the_admin_serves_traffic(tmp_path, browser_page):  # noqa: F811
    with UpstreamServer() as upstream:
        gateway = start_gateway(tmp_path)
        try:
            page = browser_page
            log_in(page, gateway.admin_url)
            submit_route(page, gateway.admin_url, "hello", "/hello/{who}", upstream.port, "/greet/{who}")
            page.wait_for_selector(".messagelist .success")
            assert "hello" in page.inner_text("#result_list")

            status, _, body = http("GET", gateway.url + "/hello/world")
            for _ in range(40):
                if status == 200:
                    break
                page.wait_for_timeout(50)
                status, _, body = http("GET", gateway.url + "/hello/world")
            assert status == 200
            assert json.loads(body)["path"] == "/greet/world"
        finally:
            assert gateway.stop() == 0


def test_a_bad_pattern_in_the_admin_shows_an_error_and_saves_nothing(tmp_path, browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        page = browser_page
        log_in(page, gateway.admin_url)
        submit_route(page, gateway.admin_url, "broken", "/users/{id", 9000)
        error = page.inner_text(".field-external_path .errorlist")
        assert "parameter" in error or "brace" in error
        credentials = base64.b64encode(b"ops:an-operator-password-9").decode()
        _, _, body = http("GET", gateway.admin_url + "/api/routes/", headers={"Authorization": f"Basic {credentials}"})
        assert json.loads(body)["count"] == 0
    finally:
        assert gateway.stop() == 0
