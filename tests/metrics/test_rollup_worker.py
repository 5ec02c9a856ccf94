"""Traffic through a real gateway, rolled up and pruned by a real Celery worker, read back from the history API.

The worker runs on the suite's broker: the embedded filesystem broker in the first suite, Redis in the second
(where the gateway writes its raw points to Redis and the rollup task ingests them first). Tasks are sent with
`now` six minutes ahead, so every bucket of the traffic is final without waiting for it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from metrics.models import FillState, RawPoint, RollupPoint
from routes.services import save_route
from rusta.instance import instance_dir
from tests.support import gateway as gateways
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 30


def broker_app(var: Path) -> Celery:
    """A Celery client on the same broker as the worker below."""
    if settings.REDIS_URL:
        return Celery("rusta-test-client", broker=settings.REDIS_URL)
    folder = instance_dir(var, gateways.test_database_url()) / "celery"  # the worker's, as its settings place it
    return Celery("rusta-test-client", broker="filesystem://localhost/", broker_transport="rusta.broker:Transport",
                  broker_transport_options={
                      "data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                      "control_folder": str(folder / "control"), "processed_folder": str(folder / "processed"),
                      "store_processed": False,
                  })


@pytest.fixture
def worker(tmp_path) -> Iterator[Path]:
    """A `celery worker` (no beat: the test sends the tasks) on the test database and the suite's broker."""
    var = tmp_path / "worker-var"
    env = {**os.environ, "DATABASE_URL": gateways.test_database_url(), "RUSTA_VAR_DIR": str(var),
           "RUSTA_SECRET_KEY": "test-only-secret-key-not-used-anywhere-else-0123456789"}
    log_path = tmp_path / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rusta", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=gateways.ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield var
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(condition, what: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def test_rollup_and_retention_tasks_on_a_real_worker_keep_the_right_counts(tmp_path, worker, api):
    with UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        gateway = gateways.start_gateway(tmp_path, workers=2, extra_env={"RUSTA_METRICS_FLUSH_INTERVAL": "0.5"})
        try:
            gateway.wait_version(1)
            started = timezone.now()
            for _ in range(REQUESTS):
                assert gateways.http("GET", gateway.url + "/echo", headers={"Connection": "close"})[0] == 200
        finally:
            assert gateway.stop() == 0  # a clean stop writes the last points
    if not settings.REDIS_URL:
        assert sum(RawPoint.objects.values_list("count", flat=True)) == REQUESTS
    # A 1-minute point older than its 7 days of retention: the retention task must delete it.
    stale = RollupPoint.objects.create(resolution="1m", start=started - timedelta(days=30), route="echo", count=99)

    later = (timezone.now() + timedelta(minutes=6)).isoformat()  # past the 5-minute bucket of the traffic
    client = broker_app(worker)
    client.send_task("metrics.rollup", kwargs={"now": later})
    wait_for(lambda: FillState.objects.filter(resolution="1m", filled_until__gt=started).exists(),
             "the 1-minute rollup")
    client.send_task("metrics.apply_retention", kwargs={"now": later})
    wait_for(lambda: not RollupPoint.objects.filter(pk=stale.pk).exists(), "the retention run")

    params = {"name": "requests", "route": "echo", "start": (started - timedelta(minutes=5)).isoformat(),
              "end": (started + timedelta(minutes=5)).isoformat()}
    for interval in ("10s", "1m", "5m"):
        response = api.get("/api/metrics/history/", {**params, "interval": interval})
        assert response.status_code == 200
        assert sum(p["count"] for p in response.json()["points"]) == REQUESTS, interval
