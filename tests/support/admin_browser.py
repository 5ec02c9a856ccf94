"""The admin in a real browser: an operator whose password a real gateway verifies, a chromium page, logging in,
and a route to an echo upstream saved before the browser starts.

Test modules import the fixtures they use by name (pytest finds fixtures in a module's namespace).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from routes.services import save_route
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.upstream import UpstreamServer

USERNAME, PASSWORD = "ops", "an-operator-password-9"


@pytest.fixture
def fast_password_hashing() -> None:
    """Overrides the suite's fast hasher: the gateway process must verify this password with the real one."""


@pytest.fixture
def operator() -> Any:
    # Created before the browser starts: Playwright's sync API runs an event loop in this thread, where the ORM
    # refuses to run.
    return get_user_model().objects.create_superuser(username=USERNAME, password=PASSWORD)


@pytest.fixture
def browser_page(operator: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def log_in(page: Any, admin_url: str) -> None:
    page.goto(f"{admin_url}/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")  # only shown once logged in


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def echo_route(upstream: UpstreamServer) -> None:
    """Route `echo` (GET /echo) to the upstream; saved before the browser starts, for the same reason."""
    save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
