"""The verdicts API: viewers list and read verdicts with their reasons; operators lift them, audited."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.models import Verdict
from routes.models import AuditEntry
from tests.metrics.abuse.factories import make_verdict
from tests.support.users import api_client_of

pytestmark = pytest.mark.django_db


def test_a_viewer_reads_a_verdict_with_its_features_model_action_and_expiry():
    verdict = make_verdict()
    answer = api_client_of("viewer").get(f"/api/verdicts/{verdict.pk}/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["kind"] == "credential_stuffing" and body["client"] == "ip:10.0.0.9" and body["active"] is True
    assert body["features"][0] == {"name": "auth_failures", "value": 42.0, "baseline": None, "population": 0.0,
                                   "score": 14.2}
    assert body["model_version"].startswith("iforest-") and body["action"] == "block"
    assert body["expires_at"] and body["lifted_at"] is None


def test_the_list_filters_by_route_client_kind_and_whether_in_force():
    now = timezone.now()
    current = make_verdict()
    expired = make_verdict(client="ip:10.0.0.10", kind="enumeration", expires_at=now - timedelta(seconds=1))
    make_verdict(route="other")
    viewer = api_client_of("viewer")

    def ids(query: str) -> set[int]:
        answer = viewer.get(f"/api/verdicts/?{query}")
        assert answer.status_code == 200, answer.content
        return {row["id"] for row in answer.json()["results"]}

    assert ids("route=shop") == {current.pk, expired.pk}
    assert ids("route=shop&active=true") == {current.pk}
    assert ids("route=shop&active=false") == {expired.pk}
    assert ids("kind=enumeration") == {expired.pk}
    assert ids("client=ip:10.0.0.9&route=shop") == {current.pk}


def test_an_unknown_kind_filter_is_refused_by_name():
    answer = api_client_of("viewer").get("/api/verdicts/?kind=ddos")
    assert answer.status_code == 400
    assert "kind" in answer.json()["errors"]


def test_an_operator_lifts_a_verdict_with_a_reason_and_the_trail_names_it():
    verdict = make_verdict()
    answer = api_client_of("operator").post(f"/api/verdicts/{verdict.pk}/lift/", {"reason": "our load test"},
                                            format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["active"] is False and answer.json()["lifted_by"] == "operator"
    verdict.refresh_from_db()
    assert verdict.lifted_at is not None and verdict.lift_reason == "our load test"
    entry = AuditEntry.objects.get(object_type="verdict")
    assert entry.object_id == str(verdict.pk) and entry.actor_name == "operator" and entry.source == "api"
    assert entry.changes["lift_reason"] == ["", "our load test"]
    assert api_client_of("viewer").get("/api/verdicts/?active=true").json()["results"] == []


def test_lifting_twice_answers_409_and_audits_once():
    verdict = make_verdict()
    operator = api_client_of("operator")
    assert operator.post(f"/api/verdicts/{verdict.pk}/lift/").status_code == 200
    again = operator.post(f"/api/verdicts/{verdict.pk}/lift/")
    assert again.status_code == 409
    assert "was lifted at" in again.json()["errors"][""][0]
    assert AuditEntry.objects.filter(object_type="verdict").count() == 1


def test_a_viewer_may_not_lift_a_verdict():
    verdict = make_verdict()
    answer = api_client_of("viewer").post(f"/api/verdicts/{verdict.pk}/lift/", {"reason": "x"}, format="json")
    assert answer.status_code == 403
    assert Verdict.objects.get(pk=verdict.pk).lifted_at is None


def test_the_verdict_endpoints_are_in_the_openapi_schema():
    answer = api_client_of("viewer").get("/api/schema/", HTTP_ACCEPT="application/json")
    paths = answer.json()["paths"]
    assert "/api/verdicts/" in paths and "/api/verdicts/{id}/" in paths and "/api/verdicts/{id}/lift/" in paths
