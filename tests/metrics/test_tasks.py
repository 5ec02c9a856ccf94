"""metrics.tasks.run_health_checks run by a real Celery worker with beat, against real loopback backends.

The worker uses the broker of the suite: the embedded filesystem broker in the first suite, Redis in the second
(REDIS_URL set). Beat sends the task every second; each test waits for the database to show the outcome.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from routes.health.models import BackendHealth, HealthEvent, HealthProbe, HealthState
from tests.routes.conftest import only_backend
from tests.support import gateway
from tests.support.upstream import UpstreamServer, refused_port

pytestmark = pytest.mark.django_db(transaction=True)
SCALED = bool(os.environ.get("REDIS_URL"))


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Worker]:
    """One `celery worker --beat` for the module, on the test database and the suite's broker."""
    var = tmp_path_factory.mktemp("celery-var")
    with django_db_blocker.unblock():
        database_url = gateway.test_database_url()
    env = {**os.environ, "DATABASE_URL": database_url, "RUSTA_VAR_DIR": str(var),
           "RUSTA_SECRET_KEY": "test-only-secret-key-not-used-anywhere-else-0123456789"}
    log_path = var / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "rusta", "worker", "--beat", "--pool", "solo",
               "--loglevel", "INFO", "--schedule-filename", str(var / "beat-schedule"),
               "--without-mingle", "--without-gossip", "--without-heartbeat"]
    process = subprocess.Popen(command, cwd=gateway.ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    yield Worker(process, log_path)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with_suppressed_lookup(lambda: os.killpg(process.pid, signal.SIGKILL))  # its beat, if still there


def with_suppressed_lookup(action: Callable[[], None]) -> None:
    try:
        action()
    except ProcessLookupError:
        pass


def wait_for(worker: Worker, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert worker.process.poll() is None, f"the Celery worker exited:\n{worker.log()}"
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s:\n{worker.log()[-4000:]}")


def state(backend) -> BackendHealth | None:
    return BackendHealth.objects.filter(pk=backend.pk).first()


def test_the_worker_uses_the_broker_of_the_suite(worker):
    wait_for(worker, lambda: "celery@" in worker.log() or "ready" in worker.log(), "the worker start")
    # The embedded broker is kombu's filesystem transport as rusta.broker adapts it.
    assert ("redis://" if SCALED else "rusta.broker:Transport://") in worker.log()


def test_a_backend_answering_503_goes_unhealthy_after_the_threshold(worker, checked_route):
    with UpstreamServer() as upstream:
        backend = only_backend(checked_route(upstream.port, path="/status/503", unhealthy_threshold=2))
        wait_for(worker, lambda: (s := state(backend)) is not None and s.state == HealthState.UNHEALTHY,
                 "the 503 backend going unhealthy")
    health = state(backend)
    assert (health.reason, health.consecutive_failures) == ("status 503", 2)
    assert HealthProbe.objects.filter(backend=backend, ok=False, status_code=503).count() == 2
    assert "metrics.run_health_checks" in worker.log()


def test_a_refused_backend_goes_unhealthy_with_reason_refused(worker, checked_route):
    backend = only_backend(checked_route(refused_port(), unhealthy_threshold=1))
    wait_for(worker, lambda: (s := state(backend)) is not None and s.state == HealthState.UNHEALTHY,
             "the refused backend going unhealthy")
    assert state(backend).reason == "refused"


def test_a_hung_backend_goes_unhealthy_with_reason_timeout(worker, checked_route):
    with UpstreamServer() as upstream:
        backend = only_backend(checked_route(upstream.port, path="/hang", unhealthy_threshold=1, timeout_ms=300))
        wait_for(worker, lambda: (s := state(backend)) is not None and s.state == HealthState.UNHEALTHY,
                 "the hung backend going unhealthy")
    assert state(backend).reason == "timeout"


def test_a_recovered_backend_comes_back_after_the_healthy_threshold(worker, checked_route):
    port = refused_port()
    backend = only_backend(checked_route(port, unhealthy_threshold=1, healthy_threshold=2))
    wait_for(worker, lambda: (s := state(backend)) is not None and s.state == HealthState.UNHEALTHY,
             "the dead backend going unhealthy")
    with UpstreamServer(port=port) as upstream:
        wait_for(worker, lambda: state(backend).state == HealthState.HEALTHY, "the recovered backend coming back")
        probes_seen = len([r for r in upstream.requests if r.target == "/health"])
    assert probes_seen >= 2  # healthy_threshold consecutive successes
    changes = list(HealthEvent.objects.filter(backend=backend).order_by("id").values_list("to_state", "reason"))
    assert changes == [("unhealthy", "refused"), ("healthy", "status 200")]
