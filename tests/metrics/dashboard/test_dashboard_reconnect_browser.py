"""The dashboard's live view survives a gateway restart: the open page reconnects its WebSocket by itself
(Debian's chromium, headless, driven by Playwright, against real `runproxy` processes)."""
from __future__ import annotations

import subprocess

import pytest
from django.conf import settings

from metrics.dashboard.views import UPLOT_SCRIPT
from tests.metrics.dashboard.test_dashboard_browser import echo_route, send, upstream  # noqa: F401
from tests.support.admin_browser import browser_page, fast_password_hashing, log_in, operator  # noqa: F401
from tests.support.browser import needs_chromium
from tests.support.gateway import ROOT, Gateway, start_gateway

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
    pytest.mark.skipif(not settings.STATICFILES_DIRS, reason=f"uPlot is not installed ({UPLOT_SCRIPT}): make vendor"),
]

LIVE_TOTAL = "() => document.getElementById('live-requests_total').textContent"


def start_again(gateway: Gateway) -> Gateway:
    """Start a stopped gateway again with the same command line and environment: the same ports, var directory
    and database, as an operator's restart does."""
    log_path = gateway.log_path.with_suffix(".restarted.log")
    stdout_path = gateway.stdout_path.with_suffix(".restarted.out")
    process = subprocess.Popen(gateway.process.args, cwd=ROOT, env=gateway.env, stdout=stdout_path.open("wb"),
                               stderr=log_path.open("wb"))
    again = Gateway(process, gateway.port, gateway.admin_port, log_path, stdout_path, gateway.env)
    try:
        again.wait_ready()
    except Exception:
        again.stop()
        raise
    return again


def test_the_live_view_reconnects_after_a_gateway_restart_without_a_reload(tmp_path, echo_route,  # noqa: F811
                                                                             browser_page):  # noqa: F811
    gateway = start_gateway(tmp_path)
    try:
        gateway.wait_version(1)
        page = browser_page
        log_in(page, gateway.admin_url)
        page.goto(f"{gateway.admin_url}/admin/metrics/dashboard/")
        page.wait_for_selector("#live-status.connected")
        send(gateway.url + "/echo", 5)
        page.wait_for_function(f"() => ({LIVE_TOTAL})() === '5'")
        page.evaluate("() => { window.sameDocument = true; }")  # gone if the page were reloaded

        assert gateway.stop() == 0  # SIGTERM
        page.wait_for_selector("#live-status.disconnected")
        gateway = start_again(gateway)
        page.wait_for_selector("#live-status.connected", timeout=15_000)
        send(gateway.url + "/echo", 3)
        # The restarted gateway counts from zero: 3 can only come from the new process, over the new socket.
        page.wait_for_function(f"() => ({LIVE_TOTAL})() === '3'", timeout=15_000)
        assert page.evaluate("() => window.sameDocument") is True
    finally:
        assert gateway.stop() == 0
