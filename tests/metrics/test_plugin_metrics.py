"""The plugins on /metrics: each worker's phase calls, failures and time summed (a dead worker's kept), every
family accepted by promtool, and a real `runproxy --workers 2` counting a failing plugin's every call."""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from metrics import exposition, procfiles
from metrics.procfiles import Combined
from protocols.recorder import Totals
from tests.metrics.test_exposition import PROMTOOL, needs_promtool, promtool_check
from tests.metrics.test_procfiles import dead_pid
from tests.support.gateway import http, start_gateway
from tests.support.plugin_packages import installed_for_gateway
from tests.support.upstream import UpstreamServer


def worker(calls: int, timeouts: int, seconds: float) -> dict[str, object]:
    """One worker's plugins section (protocols.plugins.snapshot's shape)."""
    return {"calls": [["example", "upstream", calls], ["sleeping", "access", timeouts]],
            "errors": [["sleeping", "access", "timeout", timeouts]],
            "seconds": [["example", "upstream", seconds], ["sleeping", "access", 0.02 * timeouts]]}


def combined_of(tmp_path: Path, *sections: tuple[int, dict[str, object]]) -> Combined:
    for pid, section in sections:
        procfiles.write(tmp_path, Totals(), [], 1.0, pid=pid, plugins=section)
    return procfiles.combined(tmp_path)


def test_the_workers_plugin_counters_add_up(tmp_path):
    combined = combined_of(tmp_path, (os.getpid(), worker(10, 2, 0.5)), (os.getppid(), worker(5, 1, 0.25)))
    assert combined.plugins["calls"] == [["example", "upstream", 15], ["sleeping", "access", 3]]
    assert combined.plugins["errors"] == [["sleeping", "access", "timeout", 3]]
    assert combined.plugins["seconds"][0] == ["example", "upstream", 0.75]


def test_a_dead_or_stopped_workers_plugin_counters_are_kept(tmp_path):
    combined_of(tmp_path, (dead_pid(), worker(7, 1, 0.1)), (os.getpid(), worker(1, 0, 0.1)))
    assert procfiles.combined(tmp_path).plugins["calls"][0] == ["example", "upstream", 8]
    procfiles.remove(tmp_path, pid=os.getpid())
    after = procfiles.combined(tmp_path)
    assert after.plugins["calls"][0] == ["example", "upstream", 8]
    assert after.plugins["errors"] == [["sleeping", "access", "timeout", 1]]


def test_every_plugin_family_is_exposed_and_passes_promtool():
    text = exposition.render(Combined(workers=1, plugins=worker(40, 3, 0.125)), "1")
    lines = text.splitlines()
    for line in ('rusta_plugin_calls_total{plugin="example",phase="upstream"} 40',
                 'rusta_plugin_errors_total{plugin="sleeping",phase="access",kind="timeout"} 3',
                 'rusta_plugin_seconds_total{plugin="example",phase="upstream"} 0.125'):
        assert line in lines, line
    needs_promtool()
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr


def sample(text: str, family: str, labels: str) -> float:
    found = re.search(rf"^{re.escape(family + '{' + labels + '}')} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.django_db(transaction=True)
def test_a_gateway_counts_every_call_and_failure_of_a_plugin_over_both_workers(tmp_path):
    user = get_user_model().objects.create_user("ops", "ops@example.com", "a-long-test-password-1",
                                                is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(user)
    with installed_for_gateway(tmp_path / "site") as packages, UpstreamServer() as upstream:
        response = api.post("/api/routes/", {
            "name": "faulty", "external_path": "/faulty", "methods": ["GET"],
            "backends": [{"host": "http://127.0.0.1", "port": upstream.port}],
            "plugins": [{"name": "raising", "on_error": "continue"},
                        {"name": "example", "config": {"header_value": "counted"}}]}, format="json")
        assert response.status_code == 201, response.json()
        gateway = start_gateway(tmp_path, workers=2, extra_env=packages)
        statuses: list[int] = []
        try:
            def load() -> None:
                for _ in range(15):
                    statuses.append(http("GET", gateway.url + "/faulty", timeout=5)[0])

            threads = [threading.Thread(target=load) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            deadline = time.monotonic() + 10
            while True:
                text = http("GET", gateway.admin_url + "/metrics", headers={"Connection": "close"})[2].decode()
                raised = sample(text, "rusta_plugin_errors_total", 'plugin="raising",phase="access",kind="raised"')
                if raised >= 60 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        finally:
            assert gateway.stop() == 0
    assert statuses == [200] * 60
    assert raised == 60
    assert sample(text, "rusta_plugin_calls_total", 'plugin="example",phase="upstream"') == 60
    assert sample(text, "rusta_plugin_seconds_total", 'plugin="example",phase="upstream"') > 0
    if PROMTOOL is not None:
        result = promtool_check(text)
        assert result.returncode == 0, result.stdout + result.stderr
