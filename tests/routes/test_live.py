"""routes.live.TableWatcher: one query per poll; a new table on a config change, a new overlay on a health change."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from protocols.table import LiveTable
from routes import services
from routes.health.models import BackendHealth, HealthState
from routes.live import TableWatcher

pytestmark = pytest.mark.django_db(transaction=True)  # the watcher closes old connections, as in a gateway


@pytest.fixture
def watcher() -> TableWatcher:
    return TableWatcher(LiveTable(), interval=0.1, clock=lambda: 1000.0)


def test_the_first_poll_loads_the_table_and_the_health_overlay(watcher, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    backend = route.backends.first()
    BackendHealth.objects.update_or_create(backend=backend, defaults={"state": HealthState.UNHEALTHY})
    services.bump_health_version()
    assert watcher.check_once() is True
    assert len(watcher.state.table) == 1
    assert (watcher.state.health, watcher.state.health_version) == ({backend.pk: False}, 1)


def test_an_unchanged_database_costs_one_query_per_poll(watcher, route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    watcher.check_once()
    with CaptureQueriesContext(connection) as queries:
        assert watcher.check_once() is False
    assert len(queries) == 1


def test_a_health_change_installs_a_new_overlay_and_keeps_the_table(watcher, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    watcher.check_once()
    table = watcher.state.table
    backend = route.backends.first()
    BackendHealth.objects.update_or_create(backend=backend, defaults={"state": HealthState.UNHEALTHY})
    services.bump_health_version()
    with CaptureQueriesContext(connection) as queries:
        assert watcher.check_once() is False
    assert len(queries) == 2  # the versions, then the health map
    assert watcher.state.table is table
    assert watcher.state.health == {backend.pk: False}


def test_a_route_edit_rebuilds_the_table_but_keeps_the_backend_ids_of_the_overlay(watcher, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    backend = route.backends.first()
    BackendHealth.objects.update_or_create(backend=backend, defaults={"state": HealthState.UNHEALTHY})
    services.bump_health_version()
    watcher.check_once()
    services.save_route({"priority": 3}, actor=None, source="api", route=route, partial=True)
    assert watcher.check_once() is True
    served = {b.id for r in watcher.state.table.routes for b in r.backends}
    assert backend.pk in served
    assert watcher.state.health == {backend.pk: False}
