"""/api/consumers/: consumers by id or name, and their API keys, which only the answer that issues one shows."""
from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from routes.models import AuditEntry
from tests.support.users import api_client_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> APIClient:
    return api_client_of("operator")


@pytest.fixture
def consumer(operator) -> dict:
    response = operator.post("/api/consumers/", {"name": "billing", "jwt_subjects": ["alice"]}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def issued(operator, consumer) -> dict:
    response = operator.post(f"/api/consumers/{consumer['id']}/keys/", format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_created_consumer_reads_back_by_id_and_by_name(operator, consumer):
    by_name = operator.get("/api/consumers/billing/").json()
    assert by_name == operator.get(f"/api/consumers/{consumer['id']}/").json()
    assert (by_name["jwt_subjects"], by_name["keys"]) == (["alice"], [])


def test_an_invalid_consumer_is_400_with_errors_by_path(operator, consumer):
    response = operator.post("/api/consumers/", {"name": "shipping", "jwt_subjects": ["alice"]}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["jwt_subjects[0]"]


def test_issuing_a_key_answers_it_once(operator, issued):
    assert issued["key"].startswith("rk_") and issued["prefix"] == issued["key"][:11]
    assert (issued["consumer"], issued["state"]) == ("billing", "active")


def test_the_api_never_returns_a_key_after_it_was_issued(operator, consumer, issued):
    reads = [operator.get("/api/consumers/"), operator.get(f"/api/consumers/{consumer['id']}/"),
             operator.get(f"/api/consumers/{consumer['id']}/keys/"), operator.get("/api/audit/"),
             operator.get("/api/config/")]
    for response in reads:
        assert response.status_code == 200
        assert issued["key"] not in json.dumps(response.json())
    shown = operator.get(f"/api/consumers/{consumer['id']}/keys/").json()
    assert [key["prefix"] for key in shown] == [issued["prefix"]]
    assert "key" not in shown[0] and "digest" not in shown[0]


def test_rotating_answers_the_new_key_and_the_old_one_is_expiring(operator, consumer, issued):
    url = f"/api/consumers/{consumer['id']}/keys/{issued['id']}/rotate/"
    response = operator.post(url, {"overlap_s": 60}, format="json")
    assert response.status_code == 201
    assert response.json()["key"] not in (issued["key"], "")
    states = {key["prefix"]: key["state"] for key in operator.get(f"/api/consumers/{consumer['id']}/keys/").json()}
    assert states[issued["prefix"]] == "expiring"


def test_a_rotation_with_an_unknown_field_is_refused(operator, consumer, issued):
    url = f"/api/consumers/{consumer['id']}/keys/{issued['id']}/rotate/"
    response = operator.post(url, {"overlap": 60}, format="json")
    assert response.status_code == 400 and "overlap" in response.json()["errors"]


def test_deleting_a_key_revokes_it_and_keeps_it_listed(operator, consumer, issued):
    response = operator.delete(f"/api/consumers/{consumer['id']}/keys/{issued['id']}/")
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    assert operator.get(f"/api/consumers/{consumer['id']}/keys/").json()[0]["state"] == "revoked"


def test_a_key_of_another_consumer_is_not_found_under_this_one(operator, consumer, issued):
    other = operator.post("/api/consumers/", {"name": "shipping"}, format="json").json()
    assert operator.delete(f"/api/consumers/{other['id']}/keys/{issued['id']}/").status_code == 404


def test_every_change_is_in_the_audit_trail(operator, consumer, issued):
    operator.delete(f"/api/consumers/{consumer['id']}/keys/{issued['id']}/")
    operator.delete(f"/api/consumers/{consumer['id']}/")
    trail = [(e.object_type, e.action, e.source) for e in AuditEntry.objects.order_by("id")]
    assert trail == [("consumer", "create", "api"), ("api_key", "create", "api"), ("api_key", "update", "api"),
                     ("consumer", "delete", "api")]


def test_a_viewer_reads_consumers_but_issues_no_key(consumer):
    viewer = api_client_of("viewer")
    assert viewer.get(f"/api/consumers/{consumer['id']}/").status_code == 200
    assert viewer.post(f"/api/consumers/{consumer['id']}/keys/", format="json").status_code == 403
