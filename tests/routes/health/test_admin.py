"""The backend health admin: state, probes and changes with reasons; force up, force down, clear."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from routes import services
from routes.health.checks import probe_due_backends
from routes.health.models import BackendHealth, Override
from routes.models import AuditEntry
from tests.routes.conftest import PASSWORD, only_backend
from tests.support.upstream import refused_port

pytestmark = pytest.mark.django_db
LIST_URL = reverse("admin:routes_backendhealth_changelist")


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def page_url(backend) -> str:
    return reverse("admin:routes_backendhealth_change", args=[backend.pk])


@pytest.fixture
def unhealthy(checked_route):
    backend = only_backend(checked_route(refused_port(), unhealthy_threshold=1))
    probe_due_backends(now=datetime(2026, 1, 1, tzinfo=UTC))
    return backend


def test_a_backends_page_shows_its_state_probes_and_changes_with_reasons(admin_client, unhealthy):
    page = admin_client.get(page_url(unhealthy)).content.decode()
    assert "unhealthy" in page and "refused" in page
    assert "2026-01-01T00:00:00.000+00:00" in page  # the probe and the change, with their time
    assert "unknown → unhealthy" in page
    assert 'name="_override" value="down"' in page and 'name="_override" value="up"' in page
    assert 'name="_save"' not in page  # nothing else on the page can be changed


def test_the_state_is_coloured(admin_client, unhealthy):
    page = admin_client.get(LIST_URL).content.decode()
    assert "#c62828" in page  # red for unhealthy
    assert unhealthy.url in page


def test_the_force_down_button_overrides_through_the_service(admin_client, route_doc):
    backend = services.save_route(route_doc(), actor=None, source="api").backends.first()
    response = admin_client.post(page_url(backend), {"_override": "down"})
    assert response.status_code == 302
    health = BackendHealth.objects.get(pk=backend.pk)
    assert (health.override, health.override_by, health.effective) == ("down", "alice", False)
    assert AuditEntry.objects.get(action="override").source == "admin"


def health_rows() -> list[tuple]:
    return list(BackendHealth.objects.order_by("pk").values_list())


def test_a_backend_never_probed_has_a_page_and_reading_it_writes_nothing(admin_client, route_doc):
    backend = services.save_route(route_doc(), actor=None, source="api").backends.first()
    before = health_rows()
    page = admin_client.get(page_url(backend)).content.decode()
    assert "no health-check path" in page  # the route document's backends have none
    assert health_rows() == before


def test_the_list_names_every_backend_and_opening_it_writes_nothing(admin_client, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    before = health_rows()
    page = admin_client.get(LIST_URL).content.decode()
    assert all(backend.url in page for backend in route.backends.all())
    assert health_rows() == before and len(before) == route.backends.count()


def test_the_bulk_actions_force_and_clear(admin_client, unhealthy):
    data = {"action": "force_up", "_selected_action": [str(unhealthy.pk)]}
    admin_client.post(LIST_URL, data)
    assert BackendHealth.objects.get(pk=unhealthy.pk).effective is True
    admin_client.post(LIST_URL, {**data, "action": "clear_override"})
    health = BackendHealth.objects.get(pk=unhealthy.pk)
    assert (health.override, health.effective) == (Override.NONE, False)
    assert AuditEntry.objects.filter(action="override").count() == 2


def test_posting_anything_else_changes_nothing(admin_client, unhealthy):
    before = BackendHealth.objects.get(pk=unhealthy.pk)
    response = admin_client.post(page_url(unhealthy), {"state": "healthy", "_save": "Save"})
    assert response.status_code == 302
    after = BackendHealth.objects.get(pk=unhealthy.pk)
    assert (after.state, after.override) == (before.state, before.override)


def test_editing_retention_in_the_admin_list_is_audited(admin_client):
    from metrics.models import RetentionPolicy

    policies = list(RetentionPolicy.objects.order_by("id"))
    form = {"form-TOTAL_FORMS": str(len(policies)), "form-INITIAL_FORMS": str(len(policies)),
            "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000", "_save": "Save"}
    for index, policy in enumerate(policies):
        form[f"form-{index}-id"] = str(policy.pk)
        form[f"form-{index}-keep_days"] = "" if policy.keep_days is None else str(policy.keep_days)
    form["form-0-keep_days"] = "123"
    response = admin_client.post(reverse("admin:metrics_retentionpolicy_changelist"), form)
    assert response.status_code == 302
    assert AuditEntry.objects.get(object_type="retention").changes == {"keep_days": [policies[0].keep_days, 123]}


def test_a_viewer_cannot_force_a_backend_down(client, route_doc):
    from tests.support.users import role_user

    backend = services.save_route(route_doc(), actor=None, source="api").backends.first()
    role_user("vera", "viewer")
    client.login(username="vera", password=PASSWORD)
    assert client.post(page_url(backend), {"_override": "down"}).status_code == 403
    assert not BackendHealth.objects.filter(override=Override.DOWN).exists()
