"""`runproxy` serves HTTP/2 with prior knowledge on its proxy port, logs it like HTTP/1.1, and drains it on
SIGTERM (GOAWAY, the streams in flight finish, exit 0)."""
from __future__ import annotations

import json
import signal
import subprocess

import pytest
from h2.errors import ErrorCodes

from routes.services import save_route
from tests.support.gateway import serving_gateway, start_gateway
from tests.support.h2client import H2Client
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_curl_with_prior_knowledge_goes_through_runproxy_and_is_access_logged(tmp_path):
    with UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        with serving_gateway(tmp_path) as gateway:
            result = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge", "-w",
                                     "\n%{http_version}", f"http://127.0.0.1:{gateway.port}/echo?x=1"],
                                    capture_output=True, timeout=20, check=False)
            body, _, version = result.stdout.rpartition(b"\n")
            assert version == b"2", result.stderr
            assert json.loads(body)["path"] == "/echo"
        lines = [line for line in gateway.access_lines() if line["path"] == "/echo"]
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [("GET", "echo", 200)]


def test_sigterm_sends_goaway_and_drains_an_http2_request_in_flight(tmp_path):
    with UpstreamServer() as upstream:
        save_route({"name": "slow", "external_path": "/slow", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        gateway = start_gateway(tmp_path, grace=10)
        gateway.wait_version(1)
        with H2Client(gateway.port) as client:
            stream = client.request("GET", "/slow?ms=1500", authority=f"127.0.0.1:{gateway.port}")
            assert upstream.wait_until(lambda s: len(s.requests) == 1, timeout=5)
            gateway.process.send_signal(signal.SIGTERM)
            assert client.read_until(lambda c: c.terminated is not None)
            assert client.terminated is not None
            assert client.terminated.error_code == ErrorCodes.NO_ERROR
            assert client.terminated.last_stream_id == stream
            response = client.response(stream, timeout=15)
            assert client.read_until(lambda c: c.closed, timeout=10) or client.closed
        assert response.status == 200
        assert json.loads(bytes(response.body))["path"] == "/slow"
        assert gateway.process.wait(20) == 0
