"""POST /api/config/diff/ and /api/config/apply/: a configuration document as JSON, its diff, one audited apply."""
from __future__ import annotations

import json

import pytest

from routes import config_files, import_export, services
from routes.models import AuditEntry, Route
from routes.secrets import REDACTED

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"


def users(**fields):
    return {"external_path": "/users/{id}", "methods": ["GET"], "internal_path": "",
            "backends": [{"host": "http://10.0.0.5", "port": 8080}], **fields}


def state() -> tuple:
    return (import_export.export_config(include_secrets=True), services.config_version().version,
            list(AuditEntry.objects.values_list("id", flat=True)))


@pytest.fixture
def stored():
    document = {"settings": {"jwt": {"secret": JWT_SECRET}},
                "routes": {"users": users(), "old": users(external_path="/old")}}
    config_files.apply_config(document, actor=None, source="test", refs=config_files.References())


def test_the_diff_answers_each_change_and_changes_nothing(operator_api, stored):
    before = state()
    response = operator_api.post("/api/config/diff/?prune=true", {"routes": {"users": users(methods=["GET", "PUT"])}},
                                 format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["changed"] is True and body["applied"] is False
    assert body["routes"] == {"created": [], "updated": ["users"], "deleted": ["old"], "unchanged": []}
    assert body["settings"] == {"added": [], "changed": [], "removed": ["jwt"]}
    assert {"path": "routes.users.methods", "op": "change", "secret": False, "old": ["GET"],
            "new": ["GET", "PUT"]} in body["changes"]
    assert JWT_SECRET not in json.dumps(body)
    assert state() == before


def test_apply_writes_the_document_as_one_audited_change(operator_api, operator, stored):
    version = services.config_version().version
    response = operator_api.post("/api/config/apply/", {"routes": {"users": users(read_timeout_ms=9000)}},
                                 format="json")
    body = response.json()
    assert response.status_code == 200
    assert body["applied"] is True and body["version"] == version + 1
    assert Route.objects.get(name="users").read_timeout_ms == 9000
    entry = AuditEntry.objects.first()
    assert (entry.action, entry.source, entry.actor_name) == ("apply", "api", operator.username)
    assert entry.changes == {"routes.users.read_timeout_ms": [30000, 9000]}
    listed = operator_api.get("/api/audit/", {"action": "apply"})
    assert listed.status_code == 200
    rows = listed.json()["results"]
    assert entry.pk in [row["id"] for row in rows] and {row["action"] for row in rows} == {"apply"}


def test_after_apply_the_diff_of_the_same_document_answers_no_change(operator_api, stored):
    document = {"settings": {"jwt": {"secret": REDACTED}}, "routes": {"users": users(priority=5)}}
    operator_api.post("/api/config/apply/?prune=true", document, format="json")
    body = operator_api.post("/api/config/diff/?prune=true", document, format="json").json()
    assert (body["changed"], body["changes"], body["routes"]["unchanged"]) == (False, [], ["users"])


def test_apply_with_dry_run_changes_nothing(operator_api, stored):
    before = state()
    body = operator_api.post("/api/config/apply/?dry_run=true", {"routes": {"new": users(external_path="/new")}},
                             format="json").json()
    assert body["routes"]["created"] == ["new"] and body["applied"] is False
    assert state() == before


@pytest.mark.parametrize("action", ["diff", "apply"])
def test_viewers_may_neither_diff_nor_apply(viewer_api, stored, action):
    before = state()
    response = viewer_api.post(f"/api/config/{action}/", {"routes": {"users": users(priority=1)}}, format="json")
    assert response.status_code == 403
    assert state() == before


def test_references_are_refused_over_http(operator_api, stored, monkeypatch):
    monkeypatch.setenv("RUSTA_TEST_LEAK", "server-side value")
    response = operator_api.post("/api/config/apply/", {"routes": {"users": users(
        internal_path="/${env:RUSTA_TEST_LEAK}", backends=[{"host": "http://10.0.0.5", "port": 8080,
                                                            "description": "${file:/etc/passwd}"}])}}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"routes.users.internal_path", "routes.users.backends[0].description"}
    assert "only by `manage.py config`" in errors["routes.users.internal_path"][0]
    assert Route.objects.get(name="users").internal_path == ""


def test_a_wrong_type_is_named_by_its_path_in_the_document(operator_api, stored):
    response = operator_api.post("/api/config/apply/", {"routes": {"users": users(methods="GET")}}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["routes.users.methods"] == ['Must be a list like ["GET"], not a string.']


def test_a_request_without_a_document_is_refused(operator_api, stored):
    before = state()
    response = operator_api.post("/api/config/apply/?prune=true")
    assert response.status_code == 400
    assert state() == before
