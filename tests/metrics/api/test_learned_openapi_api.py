"""GET /api/routes/{id}/learned-openapi/ and .../drift/: a route's learned document and its drift, by id or name,
for viewers too."""
from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from metrics.apidocs import store
from protocols.apidocs.learn import Learner
from protocols.apidocs.sampler import RawSample
from routes.services import save_route
from tests.support.users import api_client_of

pytestmark = pytest.mark.django_db
DECLARED = {"openapi": "3.0.3", "paths": {"/users/{id}": {"get": {"responses": {"200": {"description": "", "content": {
    "application/json": {"schema": {"type": "object", "required": ["id", "email"], "properties": {
        "id": {"type": "integer"}, "email": {"type": "string"}}}}}}}}}}}


@pytest.fixture
def route():
    route = save_route({"name": "users", "external_path": "/users/{id}", "methods": ["GET"],
                        "backends": [{"host": "http://10.0.0.5", "port": 8080}],
                        "api_docs": {"sample_rate": 0.5, "openapi": DECLARED}}, actor=None, source="test")
    learner = Learner()
    for user in (1, 2):
        learner.add(RawSample("users", (None, "id"), "GET", f"/users/{user}", b"", "", None, False, 200,
                              "application/json", json.dumps({"id": user, "nick": "n"}).encode(), False))
    store.write_operations(learner.take())
    return route


@pytest.fixture
def viewer() -> APIClient:
    return api_client_of("viewer")


def test_a_viewer_reads_the_learned_document_by_id_or_name(viewer, route):
    by_id = viewer.get(f"/api/routes/{route.pk}/learned-openapi/")
    assert by_id.status_code == 200
    assert viewer.get("/api/routes/users/learned-openapi/").json() == by_id.json()
    operation = by_id.json()["paths"]["/users/{id}"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["required"] == ["id", "nick"]


def test_the_drift_names_what_traffic_adds_and_lacks(viewer, route):
    body = viewer.get("/api/routes/users/learned-openapi/drift/").json()
    assert body["declared"] is True
    assert {(item["kind"], item["field"]) for item in body["items"]} == {("new_field", "nick"),
                                                                         ("missing_field", "email")}
    assert body["counts"]["new_field"] == 1 and body["counts"]["missing_field"] == 1


def test_a_route_without_a_declared_document_has_no_drift_to_show(viewer):
    save_route({"name": "plain", "external_path": "/plain", "methods": ["GET"],
                "backends": [{"host": "http://10.0.0.5", "port": 8080}]}, actor=None, source="test")
    body = viewer.get("/api/routes/plain/learned-openapi/drift/").json()
    assert body["declared"] is False and body["items"] == []
    assert viewer.get("/api/routes/plain/learned-openapi/").json()["paths"] == {}


def test_an_unknown_route_is_a_404(viewer):
    response = viewer.get("/api/routes/nope/learned-openapi/")
    assert response.status_code == 404 and "nope" in json.dumps(response.json())


def test_without_credentials_it_is_a_401(route):
    assert APIClient().get(f"/api/routes/{route.pk}/learned-openapi/").status_code == 401


def test_the_api_schema_documents_both_endpoints(viewer):
    paths = viewer.get("/api/schema/?format=json").json()["paths"]
    assert "get" in paths["/api/routes/{id}/learned-openapi/"]
    drift = paths["/api/routes/{id}/learned-openapi/drift/"]["get"]
    assert drift["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("LearnedDrift")
