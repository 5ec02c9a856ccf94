"""The advice API: GET /api/advice/ shows findings with evidence and diff; POST /api/advice/{id}/apply/ applies the
draft shown, audited with source "advice", refuses stale advice (409) and viewers (403)."""
from __future__ import annotations

import pytest

from routes.models import AuditEntry, Route
from routes.services import save_route
from tests.support.advice_series import hourly, route
from tests.support.users import api_client_of

pytestmark = pytest.mark.django_db
FAST, SLOW = "10.0.0.5:8080", "10.0.0.5:8081"


@pytest.fixture
def slow_backend():
    route("users", (8080, 8081), read_timeout_ms=1000)
    hourly("users", FAST, 24, 300, latency=0.02)
    hourly("users", SLOW, 24, 300, latency=0.2)


def the_finding(client) -> dict:
    response = client.get("/api/advice/")
    assert response.status_code == 200, response.content
    [finding] = response.json()["findings"]
    return finding


def test_the_list_shows_the_finding_with_its_evidence_draft_and_diff(slow_backend):
    finding = the_finding(api_client_of("viewer"))
    assert finding["id"].startswith("latency_aware:users:")
    assert finding["severity"] == "warning" and finding["text_source"] == "template"
    assert set(finding["evidence"]["figures"]["backends"]) == {FAST, SLOW}
    assert finding["evidence"]["series"] == [f"latency route=users backend={FAST}",
                                             f"latency route=users backend={SLOW}"]
    assert finding["draft"]["patch"] == {"load_balancing_strategy": "latency_aware"}
    assert finding["changes"] == {"load_balancing_strategy": ["round_robin", "latency_aware"]}
    assert '-  "load_balancing_strategy": "round_robin",' in finding["diff"]
    assert '+  "load_balancing_strategy": "latency_aware",' in finding["diff"]


def test_an_operator_applies_the_draft_shown_and_it_is_audited_with_source_advice(slow_backend):
    client = api_client_of("operator")
    finding = the_finding(client)
    response = client.post(f"/api/advice/{finding['id']}/apply/")
    assert response.status_code == 200, response.content
    assert Route.objects.get(name="users").load_balancing_strategy == "latency_aware"
    entry = AuditEntry.objects.get(pk=response.json()["audit_entry"])
    assert entry.source == "advice" and entry.actor_name == "operator" and entry.object_repr == "users"
    assert entry.changes == finding["changes"]  # the diff shown is the change applied
    assert response.json()["audit_url"] == f"/admin/routes/auditentry/{entry.pk}/change/"


def test_a_draft_made_for_a_route_that_changed_since_is_refused_naming_what_changed(slow_backend):
    client = api_client_of("operator")
    finding = the_finding(client)
    save_route({"read_timeout_ms": 1500}, actor=None, source="test", route=Route.objects.get(name="users"),
               partial=True)
    response = client.post(f"/api/advice/{finding['id']}/apply/")
    assert response.status_code == 409
    assert "changed: read_timeout_ms" in response.json()["reason"]
    assert response.json()["current"] == the_finding(client)["id"] != finding["id"]
    assert Route.objects.get(name="users").load_balancing_strategy == "round_robin"


def test_advice_applied_once_is_stale_the_second_time(slow_backend):
    client = api_client_of("operator")
    finding = the_finding(client)
    assert client.post(f"/api/advice/{finding['id']}/apply/").status_code == 200
    response = client.post(f"/api/advice/{finding['id']}/apply/")
    assert response.status_code == 409
    assert "no longer advises" in response.json()["reason"]
    assert AuditEntry.objects.filter(source="advice").count() == 1


def test_a_viewer_cannot_apply(slow_backend):
    client = api_client_of("viewer")
    finding = the_finding(client)
    assert client.post(f"/api/advice/{finding['id']}/apply/").status_code == 403
    assert Route.objects.get(name="users").load_balancing_strategy == "round_robin"
    assert not AuditEntry.objects.filter(source="advice").exists()


def test_an_unknown_id_is_not_found(slow_backend):
    client = api_client_of("operator")
    assert client.post("/api/advice/no-such-rule:users:abc/apply/").status_code == 404
    assert client.post("/api/advice/cache:gateway:none/apply/").status_code == 409


def test_the_forecast_lists_each_routes_load(slow_backend):
    response = api_client_of("viewer").get("/api/advice/forecast/")
    assert response.status_code == 200
    [users] = response.json()["routes"]
    assert users["route"] == "users" and users["model"] == "holt" and users["history_hours"] == 24
    assert users["peak_rps"] == pytest.approx(600 / 3600, rel=0.05)
