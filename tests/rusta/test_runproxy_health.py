"""`manage.py runproxy` as a user starts it: both listeners, health endpoints, start-up failures."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.gateway import ROOT, free_port, http, start_gateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/health", "/ready", "/live"])
def test_health_endpoints_answer_on_both_listeners(tmp_path, path):
    gateway = start_gateway(tmp_path)
    try:
        for base in (gateway.url, gateway.admin_url):
            status, headers, body = http("GET", base + path)
            assert status == 200, (base, body)
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["status"] == "ok"
    finally:
        assert gateway.stop() == 0


def test_ready_is_unavailable_while_the_database_does_not_answer(tmp_path):
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/rusta"
    gateway = start_gateway(tmp_path, extra_env={"DATABASE_URL": unreachable}, wait=False)
    try:
        deadline_status = None
        for _ in range(200):
            try:
                deadline_status, _, body = http("GET", gateway.url + "/live", timeout=2)
                break
            except OSError:
                import time

                time.sleep(0.1)
        assert deadline_status == 200
        status, _, body = http("GET", gateway.url + "/ready")
        assert status == 503
        assert json.loads(body)["checks"]["database"] is False
        status, _, _ = http("GET", gateway.admin_url + "/ready")
        assert status == 503
    finally:
        assert gateway.stop() == 0


def test_the_admin_listener_serves_the_admin_login_page(tmp_path):
    gateway = start_gateway(tmp_path)
    try:
        status, _, body = http("GET", gateway.admin_url + "/admin/login/")
        assert status == 200
        assert b"Django administration" in body or b"Log in" in body
        status, headers, _ = http("GET", gateway.admin_url + "/static/admin/css/base.css")
        assert status == 200
        assert "text/css" in headers["content-type"]
    finally:
        gateway.stop()


def test_it_refuses_a_port_already_in_use_with_a_clear_message(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "runproxy", "--port", str(port), "--admin-port", str(free_port())],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**start_env(tmp_path)},
        )
    assert result.returncode != 0
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def start_env(tmp_path):
    import os

    from tests.support.gateway import test_database_url

    return {**os.environ, "DATABASE_URL": test_database_url(), "RUSTA_VAR_DIR": str(tmp_path)}
