"""routes.health.checks.probe_due_backends against real loopback backends: thresholds, reasons, idempotence, history."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routes import services
from routes.health.checks import probe_due_backends
from routes.health.models import BackendHealth, HealthEvent, HealthProbe, HealthState, Override
from routes.health.services import set_health_override
from tests.routes.conftest import only_backend
from tests.support.upstream import UpstreamServer, refused_port

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def health_version() -> int:
    return services.config_version().health_version


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


def state_of(backend) -> BackendHealth:
    return BackendHealth.objects.get(pk=backend.pk)


def test_a_backend_answering_503_goes_unhealthy_after_the_threshold(upstream, checked_route):
    backend = only_backend(checked_route(upstream.port, path="/status/503", unhealthy_threshold=2))
    probe_due_backends(now=at(0))
    assert state_of(backend).state == HealthState.UNKNOWN
    run = probe_due_backends(now=at(1))
    health = state_of(backend)
    assert (health.state, health.reason, health.consecutive_failures) == ("unhealthy", "status 503", 2)
    assert [(c.from_state, c.to_state, c.reason) for c in run.changes] == [("unknown", "unhealthy", "status 503")]


def test_a_refused_backend_goes_unhealthy_with_reason_refused(checked_route):
    backend = only_backend(checked_route(refused_port(), unhealthy_threshold=1))
    probe_due_backends(now=at(0))
    assert (state_of(backend).state, state_of(backend).reason) == ("unhealthy", "refused")


def test_a_hung_backend_goes_unhealthy_with_reason_timeout(upstream, checked_route):
    backend = only_backend(checked_route(upstream.port, path="/hang", unhealthy_threshold=1, timeout_ms=200))
    probe_due_backends(now=at(0))
    assert (state_of(backend).state, state_of(backend).reason) == ("unhealthy", "timeout")


def test_a_recovered_backend_comes_back_after_the_healthy_threshold(checked_route):
    port = refused_port()
    backend = only_backend(checked_route(port, unhealthy_threshold=1, healthy_threshold=2))
    probe_due_backends(now=at(0))
    assert state_of(backend).state == HealthState.UNHEALTHY
    with UpstreamServer(port=port):
        probe_due_backends(now=at(1))
        assert state_of(backend).state == HealthState.UNHEALTHY  # one success is not enough
        probe_due_backends(now=at(2))
    health = state_of(backend)
    assert (health.state, health.reason, health.consecutive_successes) == ("healthy", "status 200", 2)
    assert list(HealthEvent.objects.filter(backend=backend).order_by("id").values_list("to_state", "reason")) == [
        ("unhealthy", "refused"), ("healthy", "status 200"),
    ]


def test_a_healthy_backend_is_not_taken_out_by_fewer_failures_than_the_threshold(checked_route):
    port = refused_port()
    with UpstreamServer(port=port):
        backend = only_backend(checked_route(port, unhealthy_threshold=3))
        probe_due_backends(now=at(0))
    probe_due_backends(now=at(1))
    probe_due_backends(now=at(2))
    assert state_of(backend).state == HealthState.HEALTHY
    probe_due_backends(now=at(3))
    assert state_of(backend).state == HealthState.UNHEALTHY


def test_running_again_at_the_same_time_probes_nothing(upstream, checked_route):
    checked_route(upstream.port, path="/status/503")
    assert len(probe_due_backends(now=at(0)).outcomes) == 1
    assert probe_due_backends(now=at(0)).outcomes == []
    assert probe_due_backends(now=at(0.5)).outcomes == []
    assert HealthProbe.objects.count() == 1
    assert BackendHealth.objects.get().consecutive_failures == 1


def test_each_backend_is_probed_on_its_routes_interval(upstream, checked_route):
    checked_route(upstream.port, name="fast", interval_s=1)
    checked_route(upstream.port, name="slow", interval_s=5)
    assert len(probe_due_backends(now=at(0)).outcomes) == 2
    assert len(probe_due_backends(now=at(1)).outcomes) == 1
    assert len(probe_due_backends(now=at(5)).outcomes) == 2


def test_backends_without_a_health_check_path_or_disabled_are_not_probed(upstream, checked_route):
    services.save_route({"name": "plain", "external_path": "/plain", "methods": ["GET"],
                         "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
    route = checked_route(upstream.port)
    services.save_route({"backends": [{"host": "http://127.0.0.1", "port": upstream.port,
                                       "health_check_path": "/health", "enabled": False}]},
                        actor=None, source="test", route=route, partial=True)
    assert probe_due_backends(now=at(0)).outcomes == []


def test_a_route_without_a_health_check_block_probes_with_the_defaults(upstream):
    route = services.save_route({"name": "d", "external_path": "/d", "methods": ["GET"], "backends": [
        {"host": "http://127.0.0.1", "port": upstream.port, "health_check_path": "/status/500"}]},
        actor=None, source="test")
    for second in (0, 5, 10):  # every 5 s, unhealthy after 3 failures
        probe_due_backends(now=at(second))
        assert probe_due_backends(now=at(second + 4)).outcomes == []
    assert state_of(route.backends.get()).state == HealthState.UNHEALTHY


def test_the_gateways_are_told_only_when_a_backend_gets_or_loses_traffic(upstream, checked_route):
    port = refused_port()
    with UpstreamServer(port=port):
        checked_route(port, unhealthy_threshold=1)
        start = health_version()
        assert probe_due_backends(now=at(0)).published is False  # unknown -> healthy: it had traffic already
    assert health_version() == start
    assert probe_due_backends(now=at(1)).published is True
    assert health_version() == start + 1
    assert probe_due_backends(now=at(2)).published is False  # still unhealthy
    assert health_version() == start + 1


def test_only_the_latest_probes_and_changes_are_kept(upstream, checked_route):
    backend = only_backend(checked_route(upstream.port, path="/status/503"))
    for second in range(6):
        probe_due_backends(now=at(second), keep=3)
    assert list(HealthProbe.objects.filter(backend=backend).values_list("at", flat=True)) == [at(5), at(4), at(3)]


def test_removing_the_health_check_path_brings_an_unhealthy_backend_back(checked_route):
    route = checked_route(refused_port(), unhealthy_threshold=1)
    backend = only_backend(route)
    probe_due_backends(now=at(0))
    start = health_version()
    services.save_route({"backends": [{"host": "http://127.0.0.1", "port": backend.port}]}, actor=None,
                        source="test", route=route, partial=True)
    assert probe_due_backends(now=at(1)).published is True
    health = state_of(backend)
    assert (health.state, health.reason, health.effective) == ("unknown", "not checked", True)
    assert health_version() == start + 1


def test_a_route_edit_keeps_the_health_state_of_its_backends(checked_route):
    route = checked_route(refused_port(), unhealthy_threshold=1)
    backend = only_backend(route)
    probe_due_backends(now=at(0))
    services.save_route({"priority": 7, "health_check": {"interval_s": 2, "unhealthy_threshold": 1}}, actor=None,
                        source="test", route=route, partial=True)
    assert state_of(only_backend(route)).state == HealthState.UNHEALTHY
    assert only_backend(route).pk == backend.pk


def test_many_hung_backends_are_probed_at_once(upstream, checked_route):
    checked_route(*[upstream.port] * 6, path="/hang", timeout_ms=400)
    started = datetime.now(UTC)
    run = probe_due_backends(now=at(0))
    assert len(run.outcomes) == 6
    assert datetime.now(UTC) - started < timedelta(seconds=2)


def test_a_forced_up_backend_is_still_probed_but_its_verdict_changes_no_traffic(checked_route):
    backend = only_backend(checked_route(refused_port(), unhealthy_threshold=1))
    set_health_override(backend, Override.UP, actor=None, source="test")
    start = health_version()
    run = probe_due_backends(now=at(0))
    health = state_of(backend)
    assert (health.state, health.effective, run.published) == ("unhealthy", True, False)
    assert health_version() == start
