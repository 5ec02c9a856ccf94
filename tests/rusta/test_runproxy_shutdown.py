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
            outcome["status"], _, outcome["body"] = http("GET", gateway.url + "/slow?ms=1500", timeout=20)

        client = threading.Thread(target=slow_request)
        client.start()
        assert upstream.wait_until(lambda s: len(s.requests) == 1, timeout=5)
        gateway.process.send_signal(signal.SIGTERM)
        assert "status" not in outcome, "the request must still be in flight when SIGTERM arrives"
        time.sleep(0.3)
        with pytest.raises(OSError):
            http("GET", gateway.url + "/live", timeout=2)  # no longer accepting
        client.join(20)
        assert outcome["status"] == 200
        assert json.loads(outcome["body"])["path"] == "/slow"
        assert gateway.process.wait(20) == 0


def test_sigterm_with_nothing_in_flight_exits_promptly(tmp_path):
    gateway = start_gateway(tmp_path, workers=2, grace=10)
    started = time.monotonic()
    assert gateway.stop() == 0
    assert time.monotonic() - started < 5
