"""`manage.py healthcheck`: the health checks without a broker, once or in a loop."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import call_command

from routes.health.models import HealthProbe
from tests.support.gateway import ROOT
from tests.support.gateway import test_database_url as database_url
from tests.support.upstream import UpstreamServer, refused_port

pytestmark = pytest.mark.django_db


def test_once_probes_what_is_due_and_prints_the_changes(checked_route):
    port = refused_port()
    checked_route(port, unhealthy_threshold=1)
    out = StringIO()
    call_command("healthcheck", "--once", stdout=out)
    assert out.getvalue().splitlines() == [
        f"backend http://127.0.0.1:{port} of route checked: unknown -> unhealthy (refused)",
        "probed 1 backend(s), 1 state change(s)",
    ]
    assert HealthProbe.objects.count() == 1


def test_running_it_twice_at_once_does_not_probe_twice(checked_route):
    with UpstreamServer() as upstream:
        checked_route(upstream.port)
        call_command("healthcheck", "--once", stdout=StringIO())
        out = StringIO()
        call_command("healthcheck", "--once", stdout=out)
    assert out.getvalue().strip() == "probed 0 backend(s), 0 state change(s)"
    assert HealthProbe.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_loop_probes_until_sigterm_and_exits_cleanly(checked_route, tmp_path):
    port = refused_port()
    checked_route(port, unhealthy_threshold=1)
    env = {**os.environ, "DATABASE_URL": database_url(), "RUSTA_VAR_DIR": str(tmp_path)}
    loop = subprocess.Popen([sys.executable, "manage.py", "healthcheck", "--tick", "0.2", "-v", "2"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not HealthProbe.objects.exists() and loop.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    loop.send_signal(signal.SIGTERM)
    out, err = loop.communicate(timeout=20)
    assert loop.returncode == 0, err
    assert f"backend http://127.0.0.1:{port} of route checked: unknown -> unhealthy (refused)" in out
