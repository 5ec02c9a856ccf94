"""`runproxy` and its background work: a Celery worker with beat as a child on the embedded broker, so that a
lone `runproxy` health-checks backends; their health reaches every gateway process within its poll interval.

In the scaled-out suite (REDIS_URL set) the operator runs worker and beat separately, so these gateways are
started with --with-background, which runs the same worker over Redis.
"""
from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from routes.health.models import BackendHealth, HealthProbe, HealthState
from routes.models import Backend, ConfigState
from routes.services import save_route
from rusta.instance import instance_dir
from tests.support.gateway import Gateway, http, start_gateway
from tests.support.gateway import test_database_url as database_url
from tests.support.upstream import UpstreamServer
from tests.support.users import role_user

pytestmark = pytest.mark.django_db(transaction=True)
SCALED = bool(os.environ.get("REDIS_URL"))
# On the embedded broker runproxy starts the worker by itself; with Redis it has to be asked.
BACKGROUND = True if SCALED else None


def children(pid: int) -> dict[int, str]:
    """Every process below `pid` (pid -> command line), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                try:
                    found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                frontier.append(child)
    return found


def celery_workers(gateway: Gateway) -> list[int]:
    return [pid for pid, command in children(gateway.process.pid).items()
            if "celery" in command and " worker" in command]


def wait_for(condition: Callable[[], bool], what: str, gateway: Gateway, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s:\n{gateway.log()[-4000:]}")


def checked_route(*ports_and_paths: tuple[int, str], **extra) -> None:
    save_route({
        "name": "checked", "external_path": "/lb", "methods": ["GET"],
        "health_check": {"interval_s": 1, "timeout_ms": 500, "healthy_threshold": 1, "unhealthy_threshold": 1},
        "backends": [{"host": "http://127.0.0.1", "port": port, "health_check_path": path}
                     for port, path in ports_and_paths],
        **extra,
    }, actor=None, source="test")


def api_token() -> str:
    """A token of an operator (the role that may override backend health)."""
    return Token.objects.create(user=role_user("ops", "operator")).key


def live_status(gateway: Gateway, token: str) -> dict:
    status, _, body = http("GET", gateway.admin_url + "/api/config/status/",
                           headers={"Authorization": f"Token {token}"})
    assert status == 200, body
    return json.loads(body)


@pytest.mark.skipif(SCALED, reason="the embedded default (no REDIS_URL)")
def test_runproxy_on_the_embedded_broker_starts_a_celery_worker_with_beat(tmp_path):
    gateway = start_gateway(tmp_path, background=None)
    try:
        wait_for(lambda: len(celery_workers(gateway)) >= 1, "the Celery worker start", gateway)
        command = children(gateway.process.pid)[celery_workers(gateway)[0]]
        assert "--beat" in command and "--pool solo" in command
        assert str(instance_dir(tmp_path / "var", database_url()) / "celerybeat-schedule") in command
    finally:
        assert gateway.stop() == 0


def test_a_lone_runproxy_probes_backends_without_any_other_command(tmp_path):
    with UpstreamServer() as upstream:
        checked_route((upstream.port, "/health"))
        gateway = start_gateway(tmp_path, background=BACKGROUND)
        try:
            wait_for(lambda: HealthProbe.objects.exists(), "a health probe", gateway)
            assert any(request.target == "/health" for request in upstream.requests)
            assert BackendHealth.objects.get().state == HealthState.HEALTHY
        finally:
            assert gateway.stop() == 0


def test_no_background_starts_no_celery_worker(tmp_path):
    with UpstreamServer() as upstream:
        checked_route((upstream.port, "/health"))
        gateway = start_gateway(tmp_path, background=False)
        try:
            assert celery_workers(gateway) == []  # it would have been started with the gateway's workers
            time.sleep(2)  # a worker with beat would have probed the backend by now
            assert not HealthProbe.objects.exists()
        finally:
            assert gateway.stop() == 0


@pytest.mark.skipif(not SCALED, reason="the scaled-out suite (REDIS_URL)")
def test_with_redis_runproxy_leaves_the_background_work_to_the_operator(tmp_path):
    gateway = start_gateway(tmp_path, background=None)
    try:
        assert celery_workers(gateway) == []  # it would have been started with the gateway's workers
    finally:
        assert gateway.stop() == 0


def test_a_gateway_without_background_work_says_so_at_start_up(tmp_path):
    gateway = start_gateway(tmp_path, background=False)
    try:
        assert "background work is not started by this gateway" in gateway.log()
        assert "celery -A rusta worker --beat" in gateway.log()
        assert "/health and /ready say \"degraded\"" in gateway.log()
    finally:
        assert gateway.stop() == 0


def test_sigterm_stops_the_celery_worker_and_its_beat(tmp_path):
    gateway = start_gateway(tmp_path, background=BACKGROUND)
    wait_for(lambda: len(children(gateway.process.pid)) >= 3, "the worker and its beat", gateway)
    background = [pid for pid, command in children(gateway.process.pid).items() if "celery" in command]
    assert gateway.stop() == 0
    assert all(not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid) for pid in background)


def _state(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return "zombie"


def test_a_dead_celery_worker_is_replaced(tmp_path):
    gateway = start_gateway(tmp_path, background=BACKGROUND)
    try:
        wait_for(lambda: len(celery_workers(gateway)) >= 1, "the Celery worker start", gateway)
        first = min(celery_workers(gateway))
        os.killpg(first, signal.SIGKILL)
        wait_for(lambda: celery_workers(gateway) and first not in celery_workers(gateway),
                 "a new Celery worker", gateway)
        # The supervisor says so too; its line may land a moment after the new worker shows up in /proc.
        wait_for(lambda: "background worker" in gateway.log() and "starting a new one" in gateway.log(),
                 "the log line about the restart", gateway)
    finally:
        assert gateway.stop() == 0


def test_a_backend_marked_down_reaches_the_live_process_through_the_health_version(tmp_path):
    token = api_token()
    with UpstreamServer() as good, UpstreamServer() as bad:
        checked_route((good.port, "/health"), (bad.port, "/status/503"))
        gateway = start_gateway(tmp_path, background=BACKGROUND)
        try:
            unhealthy = BackendHealth.objects.filter(state=HealthState.UNHEALTHY)
            wait_for(unhealthy.exists, "the 503 backend going down", gateway)
            bad_id = unhealthy.get().pk
            stored = ConfigState.objects.get(pk=1).health_version

            def caught_up() -> bool:
                status = live_status(gateway, token)
                return status["live"]["health_version"] >= stored

            wait_for(caught_up, "the live process loading the health version", gateway, timeout=5)
            status = live_status(gateway, token)
            assert status["live"]["down_backends"] == [bad_id]
            assert status["database"]["health_version"] == status["live"]["health_version"]
        finally:
            assert gateway.stop() == 0


def test_the_gateway_stops_sending_traffic_to_a_backend_the_health_check_marked_down(tmp_path):
    token = api_token()
    with UpstreamServer() as good, UpstreamServer() as bad:
        checked_route((good.port, "/health"), (bad.port, "/status/503"))
        gateway = start_gateway(tmp_path, background=BACKGROUND)
        try:
            wait_for(lambda: BackendHealth.objects.filter(state=HealthState.UNHEALTHY).exists(),
                     "the 503 backend going down", gateway)
            wait_for(lambda: live_status(gateway, token)["health_in_sync"], "the overlay reaching the gateway",
                     gateway, timeout=5)
            served_before = sum(1 for r in bad.requests if r.target == "/lb")
            assert {http("GET", gateway.url + "/lb")[0] for _ in range(20)} == {200}
            assert sum(1 for r in bad.requests if r.target == "/lb") == served_before
            assert sum(1 for r in good.requests if r.target == "/lb") >= 20
        finally:
            assert gateway.stop() == 0


def test_an_override_through_the_running_gateways_api_reaches_its_live_process(tmp_path):
    token = api_token()
    with UpstreamServer() as upstream:
        checked_route((upstream.port, "/health"))
        backend = Backend.objects.get()
        gateway = start_gateway(tmp_path, background=False)
        try:
            status, _, body = http("POST", f"{gateway.admin_url}/api/backends/{backend.pk}/health/",
                                   body=json.dumps({"override": "down"}).encode(),
                                   headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
            assert status == 200, body
            assert json.loads(body)["override"] == "down"
            wait_for(lambda: live_status(gateway, token)["live"]["down_backends"] == [backend.pk],
                     "the override reaching the live process", gateway, timeout=5)
        finally:
            assert gateway.stop() == 0


def health_bodies(gateway: Gateway, path: str) -> list[tuple[int, dict]]:
    """(status, body) of `path` on both listeners."""
    answers = [http("GET", base + path) for base in (gateway.url, gateway.admin_url)]
    return [(status, json.loads(body)) for status, _, body in answers]


def test_health_and_ready_say_degraded_while_no_background_work_reports(tmp_path):
    gateway = start_gateway(tmp_path, background=False, extra_env={"RUSTA_BACKGROUND_STALE_AFTER": "1"})
    try:
        wait_for(lambda: all(body["status"] == "degraded" for _, body in health_bodies(gateway, "/ready")),
                 "/ready saying degraded", gateway)
        for path in ("/ready", "/health"):
            for status, body in health_bodies(gateway, path):
                assert status == 200  # serving on: no load balancer takes the gateway out for this
                assert body["background"]["ok"] is False
                assert body["background"]["seconds_since_last_run"] is None
                assert "celery -A rusta worker --beat" in body["background"]["message"]
        assert all(body["checks"]["background"] is False for _, body in health_bodies(gateway, "/ready"))
    finally:
        assert gateway.stop() == 0


def test_health_reports_when_the_background_work_last_ran(tmp_path):
    gateway = start_gateway(tmp_path, background=BACKGROUND)
    try:
        wait_for(lambda: health_bodies(gateway, "/health")[0][1]["background"]["seconds_since_last_run"] is not None,
                 "the background work's first report", gateway)
        for status, body in health_bodies(gateway, "/ready"):
            assert (status, body["status"], body["checks"]["background"]) == (200, "ok", True)
            assert body["background"]["seconds_since_last_run"] < 30
    finally:
        assert gateway.stop() == 0
