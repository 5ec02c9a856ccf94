"""routes.health.services.set_health_override: an operator forces a backend up or down, audited and published."""
from __future__ import annotations

import pytest

from routes import services
from routes.health.models import BackendHealth, HealthEvent, HealthState, Override
from routes.health.services import parse_override, set_health_override
from routes.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend(route_doc):
    return services.save_route(route_doc(), actor=None, source="api").backends.first()


def health_version() -> int:
    return services.config_version().health_version


def test_forcing_a_backend_down_is_audited_and_published(backend, staff_user):
    start = health_version()
    health = set_health_override(backend, Override.DOWN, actor=staff_user, source="api")
    assert (health.override, health.override_by, health.effective) == ("down", "alice", False)
    assert health.override_at is not None
    entry = AuditEntry.objects.get(action="override")
    assert (entry.actor_name, entry.source, entry.object_type, entry.object_id) == (
        "alice", "api", "backend", str(backend.pk))
    assert entry.changes == {"health_override": ["none", "down"]}
    assert health_version() == start + 1


def test_forcing_an_unhealthy_backend_up_gives_it_traffic(backend, staff_user):
    BackendHealth.objects.update_or_create(backend=backend,
        defaults={"state": HealthState.UNHEALTHY, "reason": "refused"})
    start = health_version()
    health = set_health_override(backend, Override.UP, actor=staff_user, source="admin")
    assert health.effective is True
    assert health.state == HealthState.UNHEALTHY  # the probes' verdict is kept, only overridden
    assert health_version() == start + 1


def test_clearing_an_override_hands_the_backend_back_to_its_probes(backend, staff_user):
    BackendHealth.objects.update_or_create(backend=backend, defaults={"state": HealthState.UNHEALTHY})
    set_health_override(backend, Override.UP, actor=staff_user, source="api")
    health = set_health_override(backend, Override.NONE, actor=staff_user, source="api")
    assert (health.override, health.override_by, health.override_at, health.effective) == ("none", "", None, False)
    reasons = list(HealthEvent.objects.filter(backend=backend).order_by("id").values_list("reason", flat=True))
    assert reasons == ["forced up by alice", "override cleared by alice"]


def test_setting_the_same_override_again_writes_nothing(backend, staff_user):
    set_health_override(backend, Override.DOWN, actor=staff_user, source="api")
    before = (health_version(), AuditEntry.objects.count(), HealthEvent.objects.count())
    set_health_override(backend, Override.DOWN, actor=staff_user, source="api")
    assert (health_version(), AuditEntry.objects.count(), HealthEvent.objects.count()) == before


def test_forcing_up_a_backend_that_already_gets_traffic_does_not_bump_the_version(backend, staff_user):
    start = health_version()
    set_health_override(backend, Override.UP, actor=staff_user, source="api")
    assert health_version() == start
    assert AuditEntry.objects.filter(action="override").count() == 1


@pytest.mark.parametrize(("value", "expected"), [("up", "up"), ("DOWN", "down"), (None, "none"), ("none", "none")])
def test_override_words_are_parsed(value, expected):
    assert parse_override(value) == expected


@pytest.mark.parametrize("value", ["sideways", 1, True, ["up"]])
def test_anything_else_is_refused_with_a_message(value):
    with pytest.raises(services.ConfigError) as caught:
        parse_override(value)
    assert list(caught.value.errors) == ["override"]
