"""Gateways started from one checkout with different databases share RUSTA_VAR_DIR but not their own state:
each one's /metrics counts its own traffic only, and each runs its background work on its own broker folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from routes.services import save_route
from rusta.instance import instance_dir
from tests.support.gateway import ROOT, Gateway, http, start_gateway
from tests.support.gateway import test_database_url as database_url  # aliased: pytest would collect it
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 7


def other_database(tmp_path: Path) -> str:
    """A second, migrated database (SQLite in tmp_path) for the second gateway."""
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "RUSTA_VAR_DIR": str(tmp_path / "var")}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True,
                   timeout=300)
    return url


def requests_counted(gateway: Gateway, route: str) -> int:
    """The gateway's rusta_requests_total for `route`, from its /metrics."""
    _, _, body = http("GET", gateway.admin_url + "/metrics")
    pattern = rf'^rusta_requests_total\{{[^}}]*route="{route}"[^}}]*\}} (\d+)'
    return sum(int(count) for count in re.findall(pattern, body.decode(), re.MULTILINE))


def test_two_gateways_with_different_databases_do_not_add_up_each_others_metrics(tmp_path):
    other = other_database(tmp_path)
    with UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        first = start_gateway(tmp_path)  # both in tmp_path/var
        second = start_gateway(tmp_path, extra_env={"DATABASE_URL": other})
        try:
            first.wait_version(1)
            for _ in range(REQUESTS):
                assert http("GET", first.url + "/echo")[0] == 200
            deadline = time.monotonic() + 15
            while requests_counted(first, "echo") < REQUESTS:  # each worker writes its figures every second
                assert time.monotonic() < deadline, first.log()
                time.sleep(0.2)
            time.sleep(1.5)  # a file the second gateway shared would have reached it by now
            assert requests_counted(first, "echo") == REQUESTS
            assert requests_counted(second, "echo") == 0
        finally:
            assert first.stop() == 0
            assert second.stop() == 0


def test_each_gateway_keeps_its_state_in_a_folder_named_after_its_database(tmp_path):
    other = other_database(tmp_path)
    first = start_gateway(tmp_path)
    second = start_gateway(tmp_path, extra_env={"DATABASE_URL": other})
    try:
        var = tmp_path / "var"
        folders = {instance_dir(var, database_url()), instance_dir(var, other)}
        assert len(folders) == 2
        assert {path.parent for path in (var / "instances").glob("*/metrics-proc")} == folders
        assert any(path.name.startswith("other-") for path in folders)  # readable: the database's name
        assert not (var / "metrics-proc").exists()
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
