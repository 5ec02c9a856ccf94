"""`runproxy --tls-port`: the supervisor binds the TLS listener, every worker serves the proxy on it.

Certificates come from the database once the Certificate model lands; until then the table has none, so these
tests see the listener refuse every handshake as it must without a certificate (unrecognized_name)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest

from tests.support.gateway import ROOT, Gateway, free_port, http, start_gateway

pytestmark = pytest.mark.django_db(transaction=True)


def tls_port(gateway: Gateway, timeout: float = 10) -> int:
    """The TLS listener's port, as the start-up log says it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"proxy listening on https://127\.0\.0\.1:(\d+)", gateway.log())
        if found:
            return int(found[1])
        time.sleep(0.05)
    raise AssertionError(f"no https listener in the log:\n{gateway.log()}")


def s_client(port: int, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *options],
                          input="", capture_output=True, text=True, timeout=20)


def test_it_listens_on_the_tls_port_it_was_given_and_says_so(tmp_path):
    port = free_port()
    gateway = start_gateway(tmp_path, extra_args=("--tls-port", str(port)))
    try:
        assert tls_port(gateway) == port
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        assert gateway.stop() == 0


def test_port_0_picks_a_free_port_and_without_certificates_a_handshake_fails_with_unrecognized_name(tmp_path):
    gateway = start_gateway(tmp_path, extra_args=("--tls-port", "0"), workers=2)
    try:
        port = tls_port(gateway)
        context = ssl.create_default_context()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
                context.wrap_socket(raw, server_hostname="a.example")
        assert http("GET", gateway.url + "/live")[0] == 200
    finally:
        assert gateway.stop() == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_sees_the_alert_and_tls_1_1_is_refused(tmp_path):
    gateway = start_gateway(tmp_path, extra_args=("--tls-port", "0"))
    try:
        port = tls_port(gateway)
        named = s_client(port, "-servername", "a.example", "-tls1_3")
        assert "SSL alert number 112" in named.stderr  # unrecognized_name: the alert itself reached the client
        old = s_client(port, "-servername", "a.example", "-tls1_1")
        assert old.returncode != 0
        assert "SSL alert number 70" in old.stderr  # protocol_version
    finally:
        assert gateway.stop() == 0


def test_an_impossible_tls_port_is_refused_before_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "runproxy", "--tls-port", "70000", "--no-background"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "RUSTA_VAR_DIR": str(tmp_path / "var")},
    )
    assert result.returncode != 0
    assert "--tls-port must be a port number" in result.stderr
