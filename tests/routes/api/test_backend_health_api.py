"""/api/backends/{id}/health/: a backend's state with its probes and changes; the operator's override."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from routes import services
from routes.health.checks import probe_due_backends
from routes.models import AuditEntry
from tests.routes.conftest import only_backend
from tests.support.upstream import refused_port

pytestmark = pytest.mark.django_db


def url(backend) -> str:
    return f"/api/backends/{backend.pk}/health/"


@pytest.fixture
def backend(route_doc):
    return services.save_route(route_doc(), actor=None, source="api").backends.first()


def test_a_backend_never_probed_is_shown_unknown_and_healthy(api, backend):
    body = api.get(url(backend)).json()
    assert (body["backend"], body["route"], body["url"]) == (backend.pk, "users", backend.url)
    assert (body["state"], body["override"], body["healthy"], body["probes"], body["changes"]) == (
        "unknown", None, True, [], [])


def test_the_state_reason_probes_and_changes_are_shown_newest_first(api, checked_route):
    backend = only_backend(checked_route(refused_port(), unhealthy_threshold=2))
    for second in (0, 1):
        probe_due_backends(now=datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC))
    body = api.get(url(backend)).json()
    assert (body["state"], body["reason"], body["healthy"], body["consecutive_failures"]) == (
        "unhealthy", "refused", False, 2)
    assert [p["at"][:19] for p in body["probes"]] == ["2026-01-01T00:00:01", "2026-01-01T00:00:00"]
    assert {(p["ok"], p["reason"]) for p in body["probes"]} == {(False, "refused")}
    assert [(c["source"], c["from_state"], c["to_state"], c["reason"]) for c in body["changes"]] == [
        ("probe", "unknown", "unhealthy", "refused")]


def test_forcing_a_backend_down_answers_its_new_state_and_is_audited(api, backend):
    response = api.post(url(backend), {"override": "down"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["override"], body["override_by"], body["healthy"]) == ("down", "alice", False)
    assert body["changes"][0]["reason"] == "forced down by alice"
    entry = AuditEntry.objects.get(action="override")
    assert (entry.actor_name, entry.source, entry.changes) == ("alice", "api", {"health_override": ["none", "down"]})


def test_forcing_up_then_clearing_with_null(api, backend):
    assert api.post(url(backend), {"override": "up"}, format="json").json()["override"] == "up"
    body = api.post(url(backend), {"override": None}, format="json").json()
    assert (body["override"], body["healthy"]) == (None, True)
    assert AuditEntry.objects.filter(action="override").count() == 2


def test_an_override_is_published_to_the_gateways(api, backend):
    before = services.config_version().health_version
    api.post(url(backend), {"override": "down"}, format="json")
    assert services.config_version().health_version == before + 1


@pytest.mark.parametrize("payload", [{"override": "sideways"}, {}, {"override": 1}])
def test_an_invalid_override_is_a_400_naming_the_field(api, backend, payload):
    response = api.post(url(backend), payload, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["override"]
    assert not AuditEntry.objects.filter(action="override").exists()


def test_an_unknown_backend_is_not_found(api):
    assert api.get("/api/backends/999999/health/").status_code == 404


def test_only_staff_may_read_or_override(backend, plain_user):
    client = APIClient()
    assert client.get(url(backend)).status_code in (401, 403)
    client.force_authenticate(plain_user)
    assert client.post(url(backend), {"override": "down"}, format="json").status_code == 403
    assert not AuditEntry.objects.filter(action="override").exists()
