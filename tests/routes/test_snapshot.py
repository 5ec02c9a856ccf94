"""routes.snapshot: what the data plane gets from the database: route specs with their policies, and health."""
from __future__ import annotations

import pytest

from routes import cache_purges, services
from routes.health.models import BackendHealth, HealthState, Override
from routes.schema import BLOCK_NAMES
from routes.snapshot import build_table, current_versions, health_map

pytestmark = pytest.mark.django_db


def test_the_resilience_policies_and_total_timeout_reach_the_route_spec(route_doc):
    services.save_route(route_doc(retry={"max_retries": 2}, health_check={"interval_s": 1},
                                  circuit_breaker={"failure_threshold": 3}, total_timeout_ms=2500,
                                  load_balancing_strategy="latency_aware"), actor=None, source="api")
    spec = build_table().routes[0].spec
    assert spec.policies["retry"] == {"max_retries": 2}
    assert spec.policies["health_check"] == {"interval_s": 1}
    assert spec.policies["circuit_breaker"] == {"failure_threshold": 3}
    assert (spec.total_timeout, spec.load_balancing_strategy) == (2.5, "latency_aware")


def test_unset_policies_reach_the_data_plane_as_none_and_no_total_timeout(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    spec = build_table().routes[0].spec
    assert (spec.policies["health_check"], spec.policies["circuit_breaker"], spec.total_timeout) == (None, None, 0)


def test_the_access_blocks_reach_the_route_spec(route_doc):
    jwt = {"secret": "a-route-secret-of-more-than-32-bytes-0123", "required_scopes": ["orders:read"]}
    rate_limit = {"limit": 5, "window_s": 1}
    services.save_route(route_doc(jwt=jwt, rate_limit=rate_limit), actor=None, source="api")
    services.save_route({"name": "files", "protocol": "ftp", "external_path": "/files", "methods": ["GET"],
                         "backends": [{"host": "ftp://10.0.0.7"}], "ftp": {"username": "u", "password": "p"}},
                        actor=None, source="api")
    services.save_route({"name": "chat", "protocol": "websocket", "external_path": "/chat", "methods": ["GET"],
                         "backends": [{"host": "ws://10.0.0.8"}], "websocket": {"idle_timeout_s": 30}},
                        actor=None, source="api")
    specs = {compiled.name: compiled.spec for compiled in build_table().routes}
    assert (specs["users"].policies["jwt"], specs["users"].policies["rate_limit"]) == (jwt, rate_limit)
    assert specs["files"].policies["ftp"] == {"username": "u", "password": "p"}
    assert specs["chat"].policies["websocket"] == {"idle_timeout_s": 30}


def test_every_policy_field_of_a_route_reaches_the_data_plane(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    assert set(build_table().routes[0].spec.policies) == set(BLOCK_NAMES)


def test_the_polled_versions_come_from_one_row():
    assert current_versions()[:3] == (0, 0, 0)
    services.request_reload(actor=None, source="test")
    services.bump_health_version()
    services.bump_health_version()
    assert current_versions()[:3] == (1, 2, 0)
    purge = cache_purges.request_purge(actor=None, source="test")
    assert current_versions()[:3] == (1, 2, purge.pk)


@pytest.mark.parametrize(("state", "override", "healthy"), [
    (HealthState.HEALTHY, Override.NONE, True),
    (HealthState.UNKNOWN, Override.NONE, True),
    (HealthState.UNHEALTHY, Override.NONE, False),
    (HealthState.UNHEALTHY, Override.UP, True),
    (HealthState.HEALTHY, Override.DOWN, False),
])
def test_the_health_map_applies_overrides_over_the_probes(route_doc, state, override, healthy):
    route = services.save_route(route_doc(), actor=None, source="api")
    backend = route.backends.first()
    BackendHealth.objects.update_or_create(backend=backend, defaults={"state": state, "override": override})
    # A row that says nothing (unknown, no override) is left out: absent means healthy.
    assert health_map().get(backend.pk, True) is healthy and set(health_map()) <= {backend.pk}


def test_backends_never_checked_are_absent_from_the_health_map(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    assert health_map() == {}
