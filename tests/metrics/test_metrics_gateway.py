"""/metrics on a real `runproxy --workers 2` in front of a real upstream: every worker's figures, combined."""
from __future__ import annotations

import re
import time

import pytest

from routes.services import save_route
from tests.metrics.test_exposition import needs_promtool, promtool_check
from tests.support.gateway import Gateway, http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 40


def requests_total(text: str, route: str = "echo") -> int:
    return sum(int(value) for value in re.findall(
        rf'^rusta_requests_total{{route="{route}",method="GET",status_class="2xx"}} (\d+)$', text, re.M))


def scrape(gateway: Gateway) -> str:
    status, _, body = http("GET", gateway.admin_url + "/metrics", headers={"Connection": "close"})
    assert status == 200
    return body.decode()


def wait_for_total(gateway: Gateway, expected: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = scrape(gateway)
        if requests_total(text) == expected:
            return text
        time.sleep(0.2)
    raise AssertionError(f"rusta_requests_total stayed at {requests_total(text)}, expected {expected}")


@pytest.fixture
def busy_gateway(tmp_path):
    with UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        gateway = start_gateway(tmp_path, workers=2)
        try:
            gateway.wait_version(1)
            for _ in range(REQUESTS):
                # A new connection each time, so the kernel spreads them over both workers.
                status, _, _ = http("GET", gateway.url + "/echo", headers={"Connection": "close"})
                assert status == 200
            yield gateway
        finally:
            assert gateway.stop() == 0


def test_every_scrape_counts_the_requests_of_both_workers(busy_gateway):
    wait_for_total(busy_gateway, REQUESTS)
    for _ in range(10):  # each on a new connection: whichever worker answers
        text = scrape(busy_gateway)
        assert requests_total(text) == REQUESTS
        assert "rusta_metrics_workers 2" in text.splitlines()


def test_a_real_scrape_passes_promtool(busy_gateway):
    needs_promtool()
    text = wait_for_total(busy_gateway, REQUESTS)
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'rusta_request_duration_seconds_count{route="echo"} ' + str(REQUESTS) in text
