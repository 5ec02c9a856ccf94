"""SIGTERM: `runproxy` stops accepting, finishes the requests in flight, and exits 0."""
from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from routes.services import save_route
from tests.support.gateway import http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_finishes_requests_in_flight_and_exits_zero(tmp_path):
    with UpstreamServer() as upstream:
        save_route({"name": "slow", "external_path": "/slow", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]},
                   actor=None, source="test")
        gateway = start_gateway(tmp_path, workers=2, grace=10)
        outcome: dict[str, object] = {}

        def slow_request() -> None:
            outcome["status"], _, outcome["body"] = http("GET", gateway.url + "/slow?ms=5000", timeout=20)

        client = threading.Thread(target=slow_request)
        client.start()
        assert upstream.wait_until(lambda s: len(s.requests) == 1, timeout=5)
        gateway.process.send_signal(signal.SIGTERM)
        assert "status" not in outcome, "the request must still be in flight when SIGTERM arrives"
        # No longer accepting, soon (how soon depends on how busy the machine is), while the request is in flight.
        deadline = time.monotonic() + 3
        refused = False
        while not refused and time.monotonic() < deadline:
            try:
                http("GET", gateway.url + "/live", timeout=1)
            except OSError:
                refused = True
            else:
                time.sleep(0.05)
        assert refused, "the gateway still accepted connections 3 s after SIGTERM"
        assert "status" not in outcome, "new connections must be refused while the request is still in flight"
        client.join(20)
        assert outcome["status"] == 200
        assert json.loads(outcome["body"])["path"] == "/slow"
        assert gateway.process.wait(20) == 0


def test_sigterm_with_nothing_in_flight_exits_promptly(tmp_path):
    gateway = start_gateway(tmp_path, workers=2, grace=10)
    started = time.monotonic()
    assert gateway.stop() == 0
    assert time.monotonic() - started < 5
