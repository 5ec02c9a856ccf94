"""`GET /api/audit/`: every configuration change with who, when and the diff; filters; read-only."""
from __future__ import annotations

import pytest

from routes import services
from routes.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(api, operator_api, route_doc):
    api.post("/api/routes/", route_doc(), format="json")
    operator_api.patch("/api/routes/users/", {"priority": 5}, format="json")
    operator_api.post("/api/config/reload/")
    operator_api.delete("/api/routes/users/")


def test_the_list_shows_each_change_newest_first_with_actor_and_diff(viewer_api, history):
    results = viewer_api.get("/api/audit/").json()["results"]
    assert [(entry["action"], entry["actor"]) for entry in results] == [
        ("delete", "otto"), ("reload", "otto"), ("update", "otto"), ("create", "alice")]
    assert results[2]["changes"] == {"priority": [0, 5]}
    assert results[2]["object_type"] == "route" and results[2]["object_repr"] == "users"
    assert results[2]["source"] == "api" and results[2]["created_at"]


@pytest.mark.parametrize(("query", "actions"), [
    ("actor=alice", ["create"]),
    ("action=update", ["update"]),
    ("object_type=config", ["reload"]),
    ("object=users", ["delete", "update", "create"]),
    ("actor=otto&object_type=route", ["delete", "update"]),
])
def test_the_list_filters_by_actor_action_and_object(viewer_api, history, query, actions):
    results = viewer_api.get(f"/api/audit/?{query}").json()["results"]
    assert [entry["action"] for entry in results] == actions


def test_it_filters_by_object_id(viewer_api, history):
    route_id = AuditEntry.objects.get(action="create").object_id
    assert len(viewer_api.get(f"/api/audit/?object_id={route_id}").json()["results"]) == 3


def test_it_filters_by_time(viewer_api, history):
    newest = AuditEntry.objects.first()
    results = viewer_api.get("/api/audit/", {"since": newest.created_at.isoformat()}).json()["results"]
    assert [entry["id"] for entry in results] == [newest.pk]


def test_an_unknown_action_is_a_400_naming_the_parameter(viewer_api):
    response = viewer_api.get("/api/audit/?action=explode")
    assert response.status_code == 400
    assert "action" in response.json()["errors"]


def test_one_entry_can_be_read_by_id(viewer_api, history):
    entry = AuditEntry.objects.last()
    assert viewer_api.get(f"/api/audit/{entry.pk}/").json()["action"] == "create"


def test_the_trail_cannot_be_changed_through_the_api(operator_api, history):
    entry = AuditEntry.objects.first()
    assert operator_api.delete(f"/api/audit/{entry.pk}/").status_code == 405
    assert operator_api.post("/api/audit/", {}, format="json").status_code == 405
    assert AuditEntry.objects.count() == 4


def test_secrets_in_a_diff_are_redacted(viewer_api, route_doc):
    services.save_route(route_doc(ai_policy={"strategy": "content_analysis", "api_key": "sk-live-123"}), actor=None,
                        source="api")
    body = viewer_api.get("/api/audit/").content.decode()
    assert "sk-live-123" not in body and "<redacted>" in body
