"""`manage.py runproxy` on a port that is taken: the error names the listener, its host and its port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.gateway import ROOT, free_port
from tests.support.gateway import test_database_url as database_url  # aliased: pytest would collect it

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback TCP port this test holds open, so runproxy cannot bind it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


def runproxy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url(), "RUSTA_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "manage.py", "runproxy", "--no-background", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_a_taken_proxy_port_is_named_in_the_error(tmp_path):
    with taken_port() as port:
        result = runproxy(tmp_path, "--port", str(port), "--admin-port", str(free_port()))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port} (the proxy listener): address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_admin_port_is_named_in_the_error(tmp_path):
    with taken_port() as port:
        result = runproxy(tmp_path, "--port", str(free_port()), "--admin-port", str(port))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port} (the admin listener): address already in use" in result.stderr


def test_a_taken_dns_port_is_named_in_the_error(tmp_path):
    with taken_port() as port:
        result = runproxy(tmp_path, "--port", str(free_port()), "--admin-port", str(free_port()),
                          "--dns-port", str(port))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port} (the DNS listener): address already in use" in result.stderr
