"""`GET /api/config/export/`: secrets redacted, and written out only for a superuser who asks."""
from __future__ import annotations

import json

import pytest

from routes import import_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def secrets_stored(route_doc):
    import_export.import_config({"jwt": {"secret": "jwt-secret-value-0123456789abcdef"},
                            "routers": [route_doc(ai_policy={"enabled": True, "strategy": "content_analysis",
                                                             "api_key": "sk-route-key"})]},
                           actor=None, source="import")


def test_the_export_marks_secrets_redacted(api, secrets_stored):
    body = api.get("/api/config/export/").content.decode()
    assert "jwt-secret-value" not in body and "sk-route-key" not in body
    assert json.loads(body)["jwt"]["secret"] == "<redacted>"


def test_a_superuser_may_ask_for_the_secrets(api, secrets_stored):
    data = json.loads(api.get("/api/config/export/?include_secrets=true").content)
    assert data["jwt"]["secret"] == "jwt-secret-value-0123456789abcdef"
    assert data["routers"][0]["ai_policy"]["api_key"] == "sk-route-key"


@pytest.mark.parametrize("client_fixture", ["operator_api", "viewer_api"])
def test_anyone_else_asking_for_secrets_is_refused(request, client_fixture, secrets_stored):
    response = request.getfixturevalue(client_fixture).get("/api/config/export/?include_secrets=true")
    assert response.status_code == 403
    assert b"jwt-secret-value" not in response.content


def test_an_operator_still_gets_the_redacted_export(operator_api, secrets_stored):
    assert operator_api.get("/api/config/export/?include_secrets=false").status_code == 200


def test_the_route_api_never_returns_a_secret(api, secrets_stored):
    body = api.get("/api/routes/").content.decode() + api.get("/api/config/").content.decode()
    assert "sk-route-key" not in body and "jwt-secret-value" not in body
